"""Binding, the Scheduled event, Pending with Kubernetes' message, retry when a node appears."""

from __future__ import annotations

import asyncio

from .conftest import create_nodes, create_pod, get_pod, node, pod, wait_bound, wait_for, wait_unschedulable


async def test_binds_and_records_scheduled_event(kcluster, client):
    await create_nodes(client, node("n1"))
    await create_pod(client, pod("web", cpu="100m"))
    assert await wait_bound(client, "web") == "n1"
    p = await get_pod(client, "web")
    cond = next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["status"] == "True"

    def described() -> str:
        return kcluster.kubectl("describe", "pod", "web").stdout

    async def has_event() -> bool:
        out = await asyncio.to_thread(described)
        return "Scheduled" in out and "Successfully assigned default/web to n1" in out
    await wait_for(has_event)


async def test_pending_message_then_scheduled_when_node_appears(kcluster, client):
    await create_nodes(
        client,
        node("small", cpu="1"),
        node("tainted-a", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        node("tainted-b", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
    )
    await create_pod(client, pod("big", cpu="2"))
    msg = await wait_unschedulable(client, "big")
    assert msg.startswith("0/3 nodes are available: 1 Insufficient cpu, "
                          "2 node(s) had untolerated taint {dedicated: gpu}."), msg
    out = kcluster.kubectl("describe", "pod", "big").stdout
    assert "FailedScheduling" in out
    assert "Pending" in kcluster.kubectl("get", "pod", "big").stdout
    await create_nodes(client, node("roomy", cpu="8"))
    assert await wait_bound(client, "big", timeout=5) == "roomy"


async def test_not_ready_and_cordoned_nodes_are_skipped(kcluster, client):
    await create_nodes(client, node("down", ready="False"), node("cordoned", unschedulable=True))
    await create_pod(client, pod("p"))
    msg = await wait_unschedulable(client, "p")
    assert msg.startswith("0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                          "1 node(s) were unschedulable."), msg
    # Marking the node Ready (a node update) makes the pod schedulable.
    ri = client.resource("nodes")
    n = await client.get(ri, None, "down")
    n["status"]["conditions"][0]["status"] = "True"
    await client.update(ri, n, sub="status")
    assert await wait_bound(client, "p", timeout=5) == "down"
