"""Node loss: Ready=Unknown, the unreachable taint, eviction after tolerationSeconds, replacement on
the remaining node; the taint goes when the node is back; Pod GC of pods on deleted nodes."""

from __future__ import annotations

import pytest

from tests.conftest import start_cluster

from .conftest import deployment
from .kubelet import Kubelet, eventually


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("ketch-nodes"),
                      extra=["--node-monitor-grace-period", "1.5", "--pod-eviction-timeout", "1"])
    yield c
    assert c.stop() == 0


def _taints(node: dict) -> set[str]:
    return {f"{t['key']}:{t['effect']}" for t in (node.get("spec") or {}).get("taints") or ()}


async def test_node_loss_evicts_and_replaces(api, ns):
    kubelet = Kubelet(api, ns, ["alive", "doomed"], lease_period=0.3)
    await kubelet.start()
    nodes, pods_ri = api.resource("nodes"), api.resource("pods")
    try:
        d = deployment("web", 4)
        d["spec"]["template"]["spec"]["tolerations"] = [   # short values (the default would be 300 s)
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]
        # one pod tolerates the unreachable taint forever; it must stay
        await api.create(api.resource("deployments", "apps"), ns, d)
        await api.create(pods_ri, ns, {"metadata": {"name": "tolerant"}, "spec": {
            "containers": [{"name": "c", "image": "x"}], "nodeName": "doomed",
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]}})

        async def spread():
            ps = (await api.list(pods_ri, ns, "app=web"))["items"]
            on = {p["spec"].get("nodeName") for p in ps}
            return len(ps) == 4 and on == {"alive", "doomed"} and all(
                any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ())
                for p in ps)
        await eventually(spread)
        kubelet.alive.discard("doomed")          # the node stops renewing its Lease and acting

        async def tainted():
            n = await api.get(nodes, None, "doomed")
            ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
            return ready["status"] == "Unknown" and "node.kubernetes.io/unreachable:NoExecute" in _taints(n)
        await eventually(tainted, timeout=10)
        assert "node.kubernetes.io/unreachable:NoExecute" not in _taints(await api.get(nodes, None, "alive"))

        async def replaced():
            ps = (await api.list(pods_ri, ns, "app=web"))["items"]
            live = [p for p in ps if not p["metadata"].get("deletionTimestamp")]
            evicted = [p for p in ps if p["metadata"].get("deletionTimestamp")]
            return len(live) == 4 and all(p["spec"].get("nodeName") == "alive" for p in live) and \
                all(p["spec"]["nodeName"] == "doomed" for p in evicted) and evicted
        try:
            await eventually(replaced, timeout=15)
        except AssertionError:
            ps = (await api.list(pods_ri, ns))["items"]
            raise AssertionError([(p["metadata"]["name"], p["spec"].get("nodeName"), p["metadata"].get("deletionTimestamp"), p["spec"].get("tolerations")) for p in ps]) from None
        assert not (await api.get(pods_ri, ns, "tolerant"))["metadata"].get("deletionTimestamp")
        # the node comes back: the taint goes away
        kubelet.alive.add("doomed")

        async def untainted():
            return not _taints(await api.get(nodes, None, "doomed"))
        await eventually(untainted, timeout=10)
        # the node is deleted: Pod GC removes the pods still bound to it
        kubelet.alive.discard("doomed")
        await api.delete(nodes, None, "doomed")

        async def orphans_gone():
            ps = (await api.list(pods_ri, ns))["items"]
            return not [p for p in ps if p["spec"].get("nodeName") == "doomed"]
        await eventually(orphans_gone, timeout=25)
    finally:
        await kubelet.stop()
