"""A simulated scheduler + kubelet for controller tests: binds pods, marks them Ready, finishes
graceful deletions. Nodes can be 'lost' (they stop renewing their Lease and stop acting)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from ketch.api.errors import StatusError
from ketch.api.meta import now_micro, now_rfc3339
from ketch.client.informer import Informer
from ketch.client.rest import Client


def ready_status() -> dict:
    now = now_rfc3339()
    return {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


class Kubelet:
    """Plays scheduler and kubelet for the pods of one namespace."""

    def __init__(self, client: Client, namespace: str, nodes: list[str], ready_delay: float = 0.0,
                 lease_period: float = 0.5, concurrency: int = 32):
        self.client = client
        self.namespace = namespace
        self.nodes = list(nodes)
        self.alive = set(nodes)
        self.ready_delay = ready_delay
        self.lease_period = lease_period
        self.paused = False
        self.pods = Informer(client, client.resource("pods"), namespace)
        self.pod_ri = client.resource("pods")
        self._rr = itertools.cycle(range(1 << 30))
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self._sem = asyncio.Semaphore(concurrency)

    async def start(self) -> None:
        nodes = self.client.resource("nodes")
        leases = self.client.resource("leases", "coordination.k8s.io")
        for n in self.nodes:
            with contextlib.suppress(StatusError):
                await self.client.create(nodes, None, {"metadata": {"name": n}, "status": {"conditions": [
                    {"type": "Ready", "status": "True", "lastHeartbeatTime": now_rfc3339(),
                     "lastTransitionTime": now_rfc3339()}]}})
            with contextlib.suppress(StatusError):
                await self.client.create(leases, "kube-node-lease", {"metadata": {"name": n}, "spec": {
                    "holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": now_micro()}})
        self.pods.add_handlers(self._enqueue, lambda o, n: self._enqueue(n))
        self.pods.start()
        await asyncio.wait_for(self.pods.synced.wait(), 10)
        self._tasks = [asyncio.create_task(self._leases())] + \
            [asyncio.create_task(self._worker()) for _ in range(8)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        await self.pods.stop()

    def _enqueue(self, pod: dict) -> None:
        name = pod["metadata"]["name"]
        if name not in self._queued:
            self._queued.add(name)
            self._queue.put_nowait(name)

    async def _leases(self) -> None:
        leases = self.client.resource("leases", "coordination.k8s.io")
        while True:
            for n in list(self.alive):
                with contextlib.suppress(Exception):
                    await self.client.patch(leases, "kube-node-lease", n, {"spec": {"renewTime": now_micro()}})
            await asyncio.sleep(self.lease_period)

    async def _worker(self) -> None:
        while True:
            name = await self._queue.get()
            self._queued.discard(name)
            pod = self.pods.get_by_name(self.namespace, name)
            if pod is None:
                continue
            try:
                async with self._sem:
                    await self.handle(pod)
            except StatusError:
                pass

    async def handle(self, pod: dict) -> None:
        meta = pod["metadata"]
        node = (pod.get("spec") or {}).get("nodeName")
        if meta.get("deletionTimestamp"):
            if node in self.alive:
                await self.client.delete(self.pod_ri, self.namespace, meta["name"], {"gracePeriodSeconds": 0})
            return
        if self.paused:
            return
        if not node:
            alive = [n for n in self.nodes if n in self.alive]
            if not alive:
                return
            node = alive[next(self._rr) % len(alive)]
            await self.client.request("POST", self.client.path(self.pod_ri, self.namespace, meta["name"], "binding"),
                                      {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                                       "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
            return
        if node in self.alive and not is_ready(pod):
            if self.ready_delay:
                await asyncio.sleep(self.ready_delay)
            await self.client.patch(self.pod_ri, self.namespace, meta["name"], {"status": ready_status()},
                                    sub="status")

    def resume(self) -> None:
        self.paused = False
        for p in self.pods.list():
            self._enqueue(p)


async def eventually(cond, timeout: float = 20.0, interval: float = 0.05, msg: str = ""):
    """Poll an (async or sync) condition until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s {msg}")
        await asyncio.sleep(interval)
