"""Races, preemption, priority order and a user plugin from the docs."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import yaml

from ketch.client.rest import Client
from tests.conftest import ROOT, start_cluster

from .conftest import (
    ISOLATED,
    create_nodes,
    create_pod,
    get_pod,
    node,
    pod,
    wait_bound,
    wait_for,
    wait_unschedulable,
)


async def test_no_overcommit_with_200_pods_raced_onto_10_nodes(kcluster, client):
    await create_nodes(client, *(node(f"n{i}", cpu="2") for i in range(10)))
    ri = client.resource("pods")
    await asyncio.gather(*(client.create(ri, "default", pod(f"r{i:03d}", cpu="100m")) for i in range(210)))

    async def settled() -> list | None:
        items = (await client.list(ri, "default"))["items"]
        bound = [p for p in items if p["spec"].get("nodeName")]
        pending = [p for p in items if any(c.get("status") == "False" for c in p["status"].get("conditions") or [])]
        return items if len(bound) == 200 and len(pending) == 10 else None
    items = await wait_for(settled, timeout=30)
    per_node = Counter(p["spec"]["nodeName"] for p in items if p["spec"].get("nodeName"))
    assert max(per_node.values()) == 20 and len(per_node) == 10, per_node
    msg = next(c["message"] for p in items for c in p["status"].get("conditions") or []
               if c.get("status") == "False")
    assert msg.startswith("0/10 nodes are available: 10 Insufficient cpu."), msg


async def test_preemption_evicts_lower_priority_pod(kcluster, client):
    pcs = client.resource("priorityclasses", "scheduling.k8s.io")
    await client.create(pcs, None, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                    "metadata": {"name": "high"}, "value": 1000})
    await create_nodes(client, node("only", cpu="2"))
    await create_pod(client, pod("low", cpu="1500m", terminationGracePeriodSeconds=30))
    await create_pod(client, pod("keep", cpu="200m"))
    assert await wait_bound(client, "low") == "only"
    await wait_bound(client, "keep")
    await create_pod(client, pod("high", cpu="1", priorityClassName="high"))

    async def nominated() -> str:
        return (await get_pod(client, "high"))["status"].get("nominatedNodeName") or ""
    assert await wait_for(nominated) == "only"

    async def evicted() -> dict | None:
        p = await get_pod(client, "low")
        return p if p["metadata"].get("deletionTimestamp") else None
    victim = await wait_for(evicted)
    cond = next(c for c in victim["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert cond["reason"] == "PreemptionByScheduler"
    assert victim["metadata"]["deletionGracePeriodSeconds"] == 30  # graceful, its own grace period
    keep = await get_pod(client, "keep")
    assert not keep["metadata"].get("deletionTimestamp")  # only as many victims as needed
    # The room is held for "high": a new low-priority pod must not take it.
    await create_pod(client, pod("sneaky", cpu="1"))
    await wait_unschedulable(client, "sneaky")
    # The kubelet would confirm the victim's termination; there is none in these tests.
    await client.delete(client.resource("pods"), "default", "low", {"gracePeriodSeconds": 0})
    assert await wait_bound(client, "high") == "only"
    out = kcluster.kubectl("get", "events", "--field-selector", "reason=Preempted").stdout
    assert "Preempted by pod" in out


async def test_higher_priority_pods_first(kcluster, client):
    pcs = client.resource("priorityclasses", "scheduling.k8s.io")
    await client.create(pcs, None, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                    "metadata": {"name": "urgent"}, "value": 100000})
    # No node yet: both queue; when one slot appears, the urgent pod gets it.
    await create_pod(client, pod("routine", cpu="1", preemptionPolicy="Never"))
    await wait_unschedulable(client, "routine")
    await create_pod(client, pod("urgent", cpu="1", priorityClassName="urgent"))
    await wait_unschedulable(client, "urgent")
    await asyncio.sleep(1.1)  # both past their first back-off: the node's arrival activates both at once
    await create_nodes(client, node("one", cpu="1"))
    assert await wait_bound(client, "urgent") == "one"

    async def retried() -> str:
        msg = await wait_unschedulable(client, "routine")
        return msg if msg.startswith("0/1 nodes") else ""
    msg = await wait_for(retried)
    assert msg == ("0/1 nodes are available: 1 Insufficient cpu. "
                   "preemption: not eligible due to preemptionPolicy=Never."), msg


def _doc_blocks() -> tuple[str, str]:
    text = (ROOT / "docs" / "scheduler.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    conf = re.findall(r"```yaml\n(.*?)```", text, re.S)[0]
    return code, conf


async def test_user_plugin_from_the_docs(tmp_path: Path):
    code, conf = _doc_blocks()
    (tmp_path / "avoid_maintenance.py").write_text(code)
    (tmp_path / "scheduler.yaml").write_text(conf)
    assert yaml.safe_load(conf)["pluginPaths"]
    c = start_cluster(tmp_path / "k", extra=[*ISOLATED, "--no-scheduler"])
    cl = Client(c.url)
    sched = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "ketch"), "scheduler", "--kubeconfig", c.kubeconfig,
        "--config", str(tmp_path / "scheduler.yaml"))
    try:
        await create_nodes(cl, node("m", labels={"example.com/maintenance": "true"}),
                           node("slow", labels={"example.com/pool": "slow"}),
                           node("fast", labels={"example.com/pool": "fast"}))
        for i in range(3):
            await create_pod(cl, pod(f"p{i}"))
            assert await wait_bound(cl, f"p{i}") == "fast"
        await create_pod(cl, pod("m-only", nodeSelector={"kubernetes.io/hostname": "m"}))
        msg = await wait_unschedulable(cl, "m-only")
        assert msg.startswith("0/3 nodes are available: 1 node(s) were under maintenance, "
                              "2 node(s) didn't match Pod's node affinity/selector."), msg
    finally:
        sched.terminate()
        assert await sched.wait() == 0
        await cl.close()
        c.stop()


def test_bad_config_is_one_clear_line(tmp_path: Path):
    import subprocess
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("profiles:\n- plugins:\n    multiPoint:\n      enabled: [{name: Nope}]\n")
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "ketch"), "scheduler", "--kubeconfig", "/nonexistent",
                        "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == "ketch scheduler: unknown plugin 'Nope': add it to pluginPaths"
