"""ReplicaSet controller against a real apiserver: scale, replace, adopt, release, status."""

from __future__ import annotations

from ketch.api.meta import controller_ref

from .kubelet import Kubelet, eventually


def _rs(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name, "tier": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def _active(api, ns, app):
    pods = (await api.list(api.resource("pods"), ns, f"app={app}"))["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


async def test_scale_up_down_replace_adopt_release(api, ns):
    rs_ri, pod_ri = api.resource("replicasets", "apps"), api.resource("pods")
    rs = await api.create(rs_ri, ns, _rs("web", 3))
    await eventually(lambda: _count(api, ns, "web", 3))
    await api.patch(rs_ri, ns, "web", {"spec": {"replicas": 7}}, sub="scale")
    await eventually(lambda: _count(api, ns, "web", 7))
    await api.patch(rs_ri, ns, "web", {"spec": {"replicas": 2}}, sub="scale")
    await eventually(lambda: _count(api, ns, "web", 2))
    # a deleted pod is replaced
    victim = (await _active(api, ns, "web"))[0]["metadata"]["name"]
    await api.delete(pod_ri, ns, victim)
    pods = await eventually(lambda: _count(api, ns, "web", 2))
    assert victim not in {p["metadata"]["name"] for p in pods}
    for p in pods:
        ref = controller_ref(p)
        assert ref and ref["uid"] == rs["metadata"]["uid"] and ref["kind"] == "ReplicaSet"
    # an orphan that matches is adopted (and the surplus deleted)
    await api.create(pod_ri, ns, {"metadata": {"name": "orphan", "labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    await eventually(lambda: _count(api, ns, "web", 2))

    async def adopted_or_gone():
        pods = await _active(api, ns, "web")
        return all(controller_ref(p) for p in pods)
    await eventually(adopted_or_gone)
    # a pod whose labels stop matching is released, and replaced
    keep = (await _active(api, ns, "web"))[0]["metadata"]["name"]
    await api.patch(pod_ri, ns, keep, {"metadata": {"labels": {"app": "other"}}})

    async def released():
        p = await api.get(pod_ri, ns, keep)
        return not p["metadata"].get("ownerReferences") and len(await _active(api, ns, "web")) == 2
    await eventually(released)
    # status, with a kubelet making pods ready
    kubelet = Kubelet(api, ns, ["n1"])
    await kubelet.start()
    try:
        async def status_ok():
            st = (await api.get(rs_ri, ns, "web")).get("status") or {}
            return (st.get("replicas"), st.get("readyReplicas"), st.get("availableReplicas"),
                    st.get("fullyLabeledReplicas")) == (2, 2, 2, 2) and st.get("observedGeneration") == \
                (await api.get(rs_ri, ns, "web"))["metadata"]["generation"]
        await eventually(status_ok)
    finally:
        await kubelet.stop()
    events = (await api.list(api.resource("events"), ns,
                             field_selector="involvedObject.name=web"))["items"]
    assert any(e["reason"] == "SuccessfulCreate" for e in events)
    assert any(e["reason"] == "SuccessfulDelete" for e in events)


async def test_min_ready_seconds_and_no_double_create(api, ns):
    rs_ri = api.resource("replicasets", "apps")
    body = _rs("slow", 20)
    body["spec"]["minReadySeconds"] = 1
    await api.create(rs_ri, ns, body)
    await eventually(lambda: _count(api, ns, "slow", 20))
    kubelet = Kubelet(api, ns, ["n1"])
    await kubelet.start()
    try:
        async def ready_not_available():
            st = (await api.get(rs_ri, ns, "slow")).get("status") or {}
            return st.get("readyReplicas") == 20
        await eventually(ready_not_available)
        st = (await api.get(rs_ri, ns, "slow"))["status"]
        assert st["availableReplicas"] < 20

        async def available():
            st = (await api.get(rs_ri, ns, "slow")).get("status") or {}
            return st.get("availableReplicas") == 20
        await eventually(available, timeout=10)
    finally:
        await kubelet.stop()
    # expectations: never more pods than asked for, at any time
    assert len(await _active(api, ns, "slow")) == 20


async def _count(api, ns, app, n):
    pods = await _active(api, ns, app)
    return pods if len(pods) == n else None
