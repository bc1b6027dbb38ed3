"""Each score decides a placement. The pure scores not under test are disabled by a config file
(exercising --scheduler-config), so only the score under test can break the random tie."""

from __future__ import annotations

import pytest
import yaml

from ketch.client.rest import Client
from tests.conftest import start_cluster

from .conftest import ISOLATED, create_nodes, create_pod, node, pod, wait_bound

PURE_SCORES = ["NodeResourcesLeastAllocated", "NodeResourcesBalancedAllocation", "ImageLocality"]


@pytest.fixture
async def only(tmp_path, request):
    """A cluster whose scheduler keeps every filter but only the score named by the test's param."""
    keep = request.param
    cfg = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
           "profiles": [{"schedulerName": "default-scheduler", "plugins": {"multiPoint": {
               "disabled": [{"name": n} for n in PURE_SCORES if n != keep]}}}]}
    path = tmp_path / "sched.yaml"
    path.write_text(yaml.safe_dump(cfg))
    c = start_cluster(tmp_path / "k", extra=[*ISOLATED, "--scheduler-config", str(path)])
    cl = Client(c.url)
    yield cl
    await cl.close()
    c.stop()


def _pinned(name: str, node_name: str, **kw) -> dict:
    p = pod(name, **kw)
    p["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node_name}
    return p


@pytest.mark.parametrize("only", ["NodeResourcesLeastAllocated"], indirect=True)
async def test_least_allocated(only):
    await create_nodes(only, node("a"), node("b"), node("c"))
    await create_pod(only, _pinned("x", "a", cpu="2", memory="4Gi"))
    await create_pod(only, _pinned("y", "b", cpu="1", memory="1Gi"))
    await wait_bound(only, "y")
    await create_pod(only, pod("new", cpu="1", memory="1Gi"))
    assert await wait_bound(only, "new") == "c"


@pytest.mark.parametrize("only", ["NodeResourcesBalancedAllocation"], indirect=True)
async def test_balanced_allocation(only):
    # After placing 2 cpu / 2Gi: a is 50%/50% (balanced), b and c are 50%/12.5%.
    await create_nodes(only, node("a", cpu="4", memory="4Gi"), node("b", cpu="4", memory="16Gi"),
                       node("c", cpu="4", memory="16Gi"))
    await create_pod(only, pod("new", cpu="2", memory="2Gi"))
    assert await wait_bound(only, "new") == "a"


@pytest.mark.parametrize("only", ["ImageLocality"], indirect=True)
async def test_image_locality(only):
    img = [{"names": ["registry.local/big:v1"], "sizeBytes": 800 * 1024 * 1024}]
    await create_nodes(only, node("a"), node("b", images=img), node("c"))
    await create_pod(only, pod("new", image="registry.local/big:v1"))
    assert await wait_bound(only, "new") == "b"


@pytest.mark.parametrize("only", ["none"], indirect=True)
async def test_preferred_node_affinity(only):
    await create_nodes(only, node("a", labels={"disk": "hdd"}), node("b", labels={"disk": "ssd"}), node("c"))
    aff = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    await create_pod(only, pod("new", affinity=aff))
    assert await wait_bound(only, "new") == "b"


@pytest.mark.parametrize("only", ["none"], indirect=True)
async def test_prefer_no_schedule_taint(only):
    soft = [{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]
    await create_nodes(only, node("a", taints=soft), node("b"), node("c", taints=soft))
    await create_pod(only, pod("new"))
    assert await wait_bound(only, "new") == "b"


@pytest.mark.parametrize("only", ["none"], indirect=True)
async def test_preferred_pod_affinity_and_anti_affinity(only):
    await create_nodes(only, node("a"), node("b"), node("c"))
    await create_pod(only, _pinned("cache", "b", labels={"app": "cache"}))
    await create_pod(only, _pinned("noisy", "c", labels={"app": "noisy"}))
    await wait_bound(only, "noisy")
    term = {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}
    aff = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": term}]}}
    await create_pod(only, pod("near", affinity=aff))
    assert await wait_bound(only, "near") == "b"
    t2 = [{"weight": 50, "podAffinityTerm": {**term, "labelSelector": {"matchLabels": {"app": a}}}}
          for a in ("cache", "noisy")]
    await create_pod(only, pod("away", affinity={"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": t2}}))
    assert await wait_bound(only, "away") == "a"


@pytest.mark.parametrize("only", ["none"], indirect=True)
async def test_topology_spread_schedule_anyway(only):
    await create_nodes(only, node("a", labels={"zone": "1"}), node("b", labels={"zone": "1"}),
                       node("c", labels={"zone": "2"}))
    for i, n in enumerate(["a", "b"]):
        await create_pod(only, _pinned(f"w{i}", n, labels={"app": "w"}))
    await wait_bound(only, "w1")
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"app": "w"}}}]
    await create_pod(only, pod("w-new", labels={"app": "w"}, topologySpreadConstraints=spread))
    assert await wait_bound(only, "w-new") == "c"
