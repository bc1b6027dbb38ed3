"""Endpoints and EndpointSlice controllers against a real control plane; the test plays kubelet."""

from __future__ import annotations

import pytest

from ketch.api.errors import StatusError
from tests.controllers.kubelet import eventually

from .conftest import service
from .kubelet import ensure_node, run_pod, set_pod

SLICES = ("endpointslices", "discovery.k8s.io")


@pytest.fixture(autouse=True)
async def node(api):
    await ensure_node(api)


async def _ep(api, ns, name):
    try:
        return await api.get(api.resource("endpoints"), ns, name)
    except StatusError as e:
        if e.code == 404:
            return None
        raise


async def _slices(api, ns, name):
    out = await api.list(api.resource(*SLICES), ns, label_selector=f"kubernetes.io/service-name={name}")
    return out["items"]


def _ips(subsets, key="addresses"):
    return sorted(a["ip"] for s in subsets or [] for a in s.get(key) or [])


async def test_ready_and_not_ready_addresses_follow_readiness(api, ns):
    await api.create(api.resource("services"), ns, service("web", ports=[{"port": 80, "targetPort": 8080}],
                                                           selector={"app": "web"}))
    await run_pod(api, ns, "w1", {"app": "web"}, "10.1.0.1")
    await run_pod(api, ns, "w2", {"app": "web"}, "10.1.0.2", ready=False)
    await run_pod(api, ns, "other", {"app": "other"}, "10.1.0.3")
    await run_pod(api, ns, "lo", {"app": "web"}, "127.0.0.1")     # not an address Endpoints may hold

    async def state():
        ep = await _ep(api, ns, "web")
        return ep and (_ips(ep.get("subsets")), _ips(ep.get("subsets"), "notReadyAddresses"))
    await eventually(lambda: _eq(state(), (["10.1.0.1"], ["10.1.0.2"])), 10)
    # A hand edit of a selector service's Endpoints is reverted.
    await api.patch(api.resource("endpoints"), ns, "web", {"subsets": [{"addresses": [{"ip": "192.0.2.99"}],
                                                                       "ports": [{"port": 1}]}]})
    await eventually(lambda: _eq(state(), (["10.1.0.1"], ["10.1.0.2"])), 10)
    ep = await _ep(api, ns, "web")
    assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    addr = ep["subsets"][0]["addresses"][0]
    assert addr["nodeName"] == "node-a" and addr["targetRef"]["name"] == "w1"
    sl = await eventually(lambda: _slices(api, ns, "web"), 10)
    conds = {e["targetRef"]["name"]: e["conditions"]["ready"] for e in sl[0]["endpoints"]}
    assert conds == {"w1": True, "w2": False} and sl[0]["ports"][0]["port"] == 8080
    assert sl[0]["metadata"]["ownerReferences"][0]["name"] == "web"

    await set_pod(api, ns, "w2", "10.1.0.2", ready=True)
    await set_pod(api, ns, "w1", "10.1.0.1", ready=False)
    await eventually(lambda: _eq(state(), (["10.1.0.2"], ["10.1.0.1"])), 10)
    await api.delete(api.resource("pods"), ns, "w1", {"gracePeriodSeconds": 0})
    await eventually(lambda: _eq(state(), (["10.1.0.2"], [])), 10)

    async def slice_ready():
        sl = await _slices(api, ns, "web")
        return sorted((e["addresses"][0], e["conditions"]["ready"]) for s in sl for e in s["endpoints"])
    await eventually(lambda: _eq(slice_ready(), [("10.1.0.2", True)]), 10)
    # Deleting the service removes its Endpoints; the slices go with it.
    await api.delete(api.resource("services"), ns, "web")
    await eventually(lambda: _eq(_ep(api, ns, "web"), None), 10)
    await eventually(lambda: _eq(_slices(api, ns, "web"), []), 10)


async def test_named_target_port_resolves_per_pod(api, ns):
    await api.create(api.resource("services"), ns, service("named", ports=[{"port": 80, "targetPort": "http"}],
                                                           selector={"app": "n"}))
    await run_pod(api, ns, "a", {"app": "n"}, "10.2.0.1", ports=[{"name": "http", "containerPort": 8080}])
    await run_pod(api, ns, "b", {"app": "n"}, "10.2.0.2", ports=[{"name": "http", "containerPort": 9090}])
    await run_pod(api, ns, "c", {"app": "n"}, "10.2.0.3")    # no such port: not an endpoint

    async def pairs():
        ep = await _ep(api, ns, "named")
        return sorted((a["ip"], s["ports"][0]["port"]) for s in (ep or {}).get("subsets") or []
                      for a in s.get("addresses") or [])
    await eventually(lambda: _eq(pairs(), [("10.2.0.1", 8080), ("10.2.0.2", 9090)]), 10)
    sl = await eventually(lambda: _len(_slices(api, ns, "named"), 2), 10)
    assert sorted(s["ports"][0]["port"] for s in sl) == [8080, 9090]


async def test_headless_publish_not_ready_and_selectorless(api, ns):
    svcs = api.resource("services")
    await api.create(api.resource("pods"), ns, {"metadata": {"name": "h0", "labels": {"app": "h"}}, "spec": {
        "nodeName": "node-a", "hostname": "h0", "subdomain": "db",
        "containers": [{"name": "c", "image": "busybox"}]}})
    await set_pod(api, ns, "h0", "10.3.0.1", ready=False)
    await api.create(svcs, ns, service("db", clusterIP="None", selector={"app": "h"},
                                       publishNotReadyAddresses=True))
    ep = await eventually(lambda: _ep(api, ns, "db"), 10)
    assert ep["subsets"][0]["addresses"][0]["ip"] == "10.3.0.1"       # published although not ready
    assert ep["subsets"][0]["addresses"][0]["hostname"] == "h0"
    assert "service.kubernetes.io/headless" in ep["metadata"]["labels"]
    # A service without a selector: the user's Endpoints stay as written.
    await api.create(svcs, ns, service("ext", ports=[{"port": 5432}]))
    manual = {"metadata": {"name": "ext"}, "subsets": [{"addresses": [{"ip": "192.0.2.44"}],
                                                        "ports": [{"port": 5432}]}]}
    await api.create(api.resource("endpoints"), ns, manual)
    await api.patch(svcs, ns, "ext", {"metadata": {"labels": {"touched": "yes"}}})
    await run_pod(api, ns, "stray", {"app": "ext"}, "10.3.0.9")
    import asyncio
    await asyncio.sleep(0.5)
    ep = await _ep(api, ns, "ext")
    assert _ips(ep["subsets"]) == ["192.0.2.44"] and "labels" not in ep["metadata"]
    assert await _slices(api, ns, "ext") == []


async def _eq(aw, want):
    got = await aw
    return got == want


async def _len(aw, n):
    got = await aw
    return got if len(got) == n else None


async def test_kubectl_describe_and_get(api, ns, cluster):
    import asyncio
    await api.create(api.resource("services"), ns, service("kd", ports=[{"port": 80, "targetPort": 8080}],
                                                           selector={"app": "kd"}))
    await run_pod(api, ns, "kd1", {"app": "kd"}, "10.4.0.1")
    await eventually(lambda: _ep(api, ns, "kd"), 10)
    await eventually(lambda: _len(_slices(api, ns, "kd"), 1), 10)

    def describe() -> str:
        return cluster.kubectl("describe", "service", "kd", "-n", ns).stdout
    out = await eventually(lambda: "10.4.0.1:8080" in (d := describe()) and d, 10)
    assert "Type:" in out and "ClusterIP" in out
    out = await asyncio.to_thread(cluster.kubectl, "get", "svc", "kd", "-n", ns)
    assert "10.43." in out.stdout and "80/TCP" in out.stdout
    out = await asyncio.to_thread(cluster.kubectl, "get", "endpointslices", "-n", ns)
    assert "kd-0" in out.stdout and "10.4.0.1" in out.stdout
