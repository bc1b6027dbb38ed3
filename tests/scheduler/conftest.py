"""Fixtures: a fresh `ketch up` (with its scheduler) per test, and helpers to make nodes and pods."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ketch.api.errors import StatusError
from ketch.client.rest import Client
from tests.conftest import start_cluster

# Tests create their own Node objects: keep the built-in node agent (it registers this machine) out.
ISOLATED = ["--no-agent"]


@pytest.fixture
def kcluster(tmp_path):
    """A fresh cluster per test: nodes are cluster-wide, so tests must not share them."""
    c = start_cluster(tmp_path / "ketch", extra=ISOLATED)
    yield c
    c.stop()


@pytest.fixture
async def client(kcluster):
    cl = Client(kcluster.url)
    yield cl
    await cl.close()


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int = 110, labels: dict | None = None,
         taints: list | None = None, ready: str = "True", unschedulable: bool = False,
         images: list | None = None, **extra: str) -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi", **extra}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {"capacity": alloc, "allocatable": alloc, "images": images or [],
                   "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]},
    }


def pod(name: str, cpu: str | None = None, memory: str | None = None, labels: dict | None = None,
        **spec: Any) -> dict:
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    c: dict = {"name": "c", "image": spec.pop("image", "registry.local/app:v1")}
    if req:
        c["resources"] = {"requests": req}
    if "ports" in spec:
        c["ports"] = spec.pop("ports")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [c], **spec}}


async def create_nodes(cl: Client, *nodes: dict) -> None:
    ri = cl.resource("nodes")
    for n in nodes:
        await cl.create(ri, None, n)


async def create_pod(cl: Client, p: dict, ns: str = "default") -> dict:
    return await cl.create(cl.resource("pods"), ns, p)


async def get_pod(cl: Client, name: str, ns: str = "default") -> dict:
    return await cl.get(cl.resource("pods"), ns, name)


async def wait_for(fn, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = await fn()
        except StatusError as e:
            last = e
        if last and not isinstance(last, StatusError):
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last value: {last!r}")
        await asyncio.sleep(interval)


async def wait_bound(cl: Client, name: str, ns: str = "default", timeout: float = 10.0) -> str:
    async def bound() -> str:
        return ((await get_pod(cl, name, ns)).get("spec") or {}).get("nodeName") or ""
    return await wait_for(bound, timeout)


async def wait_unschedulable(cl: Client, name: str, ns: str = "default", timeout: float = 10.0) -> str:
    """The PodScheduled=False message once the scheduler gave up on the pod."""
    async def cond() -> str:
        p = await get_pod(cl, name, ns)
        for c in (p.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                assert c.get("reason") == "Unschedulable"
                return c.get("message") or ""
        return ""
    return await wait_for(cond, timeout)
