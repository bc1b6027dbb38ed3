"""Node registration, Node status and Lease heartbeats for one or many (simulated) nodes.

The Lease in kube-node-lease is renewed every `lease_interval` seconds; the Node status itself is
written only when a condition changes or every `status_interval` seconds, as the kubelet does.
Renewals of many nodes go out together, a bounded number at a time.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..api.errors import StatusError
from ..api.meta import now_micro, now_rfc3339
from ..client.rest import Client

log = logging.getLogger("ketch.node")

LEASE_NS = "kube-node-lease"
LEASE_DURATION = 40

CONDITION_TEXT = {
    "MemoryPressure": ("KubeletHasInsufficientMemory", "KubeletHasSufficientMemory",
                       "kubelet has insufficient memory available", "kubelet has sufficient memory available"),
    "DiskPressure": ("KubeletHasDiskPressure", "KubeletHasNoDiskPressure",
                     "kubelet has disk pressure", "kubelet has no disk pressure"),
    "PIDPressure": ("KubeletHasInsufficientPID", "KubeletHasSufficientPID",
                    "kubelet has insufficient PID available", "kubelet has sufficient PID available"),
}


@dataclass
class NodeSpec:
    """What one node reports about itself."""

    name: str
    labels: dict[str, str]
    capacity: dict[str, str]
    allocatable: dict[str, str]
    addresses: list[dict[str, str]]
    node_info: dict[str, str]
    pressure: Callable[[], dict[str, bool]] | None = None   # None: never under pressure
    ready: Callable[[], tuple[bool, str]] | None = None     # None: always ready
    kubelet_port: int = 10250                                # where the agent's own API listens
    # bookkeeping
    node: dict | None = None
    lease: dict | None = None
    last_conditions: dict[str, str] = field(default_factory=dict)
    last_status_write: float = 0.0


def _conditions(spec: NodeSpec, old: list[dict] | None) -> list[dict]:
    now = now_rfc3339()
    prev = {c.get("type"): c for c in old or ()}
    press = spec.pressure() if spec.pressure else {}
    ready, why = spec.ready() if spec.ready else (True, "")
    out = []
    for ctype, (r_true, r_false, m_true, m_false) in CONDITION_TEXT.items():
        on = bool(press.get(ctype))
        out.append({"type": ctype, "status": "True" if on else "False", "reason": r_true if on else r_false,
                    "message": m_true if on else m_false})
    out.append({"type": "Ready", "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": "kubelet is posting ready status" if ready else why})
    for c in out:
        p = prev.get(c["type"])
        c["lastHeartbeatTime"] = now
        c["lastTransitionTime"] = p["lastTransitionTime"] if p and p.get("status") == c["status"] \
            and p.get("lastTransitionTime") else now
    return out


def _status(spec: NodeSpec, old: dict | None) -> dict:
    st = copy.deepcopy((old or {}).get("status") or {})
    st.update({"capacity": spec.capacity, "allocatable": spec.allocatable, "addresses": spec.addresses,
               "nodeInfo": spec.node_info, "conditions": _conditions(spec, st.get("conditions")),
               "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.kubelet_port}}})
    return st


class NodeManager:
    """Keeps a set of Node objects and their Leases alive."""

    def __init__(self, client: Client, nodes: list[NodeSpec], lease_interval: float = 10.0,
                 status_interval: float = 300.0, concurrency: int = 32):
        self.client = client
        self.nodes = nodes
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.node_ri = client.resource("nodes")
        self.lease_ri = client.resource("leases", "coordination.k8s.io")
        self.ns_ri = client.resource("namespaces")
        self._sem = asyncio.Semaphore(concurrency)

    async def _bounded(self, fn, spec: NodeSpec) -> None:
        async with self._sem:
            try:
                await fn(spec)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("node %s: %s", spec.name, e)

    async def _all(self, fn) -> None:
        await asyncio.gather(*(self._bounded(fn, s) for s in self.nodes))

    # -- node --------------------------------------------------------------------------------
    async def register(self, spec: NodeSpec) -> None:
        """Create the Node (or take over the existing one) with a fresh status."""
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": spec.name, "labels": spec.labels}, "spec": {}, "status": _status(spec, None)}
        try:
            node = await self.client.create(self.node_ri, None, body)
            if (node.get("status") or {}).get("conditions"):
                spec.node = node
                self._wrote(spec, node)
                return
        except StatusError as e:
            if e.code != 409:
                raise
            node = await self.client.get(self.node_ri, None, spec.name)
            labels = (node["metadata"].get("labels") or {})
            if any(labels.get(k) != v for k, v in spec.labels.items()):
                node["metadata"]["labels"] = {**labels, **spec.labels}
                node = await self.client.update(self.node_ri, node)
        spec.node = node
        await self.write_status(spec)

    def _wrote(self, spec: NodeSpec, node: dict) -> None:
        spec.last_conditions = {c["type"]: c["status"] for c in node["status"].get("conditions") or ()}
        spec.last_status_write = time.monotonic()

    async def write_status(self, spec: NodeSpec) -> None:
        """PUT the status with the resourceVersion read; on conflict, read again and retry."""
        for _ in range(5):
            node = copy.deepcopy(spec.node) if spec.node else await self.client.get(self.node_ri, None, spec.name)
            node["status"] = _status(spec, node)
            try:
                spec.node = await self.client.update(self.node_ri, node, sub="status")
                self._wrote(spec, spec.node)
                return
            except StatusError as e:
                if e.code == 404:
                    spec.node = None
                    await self.register(spec)
                    return
                if e.code != 409:
                    raise
                spec.node = None
        raise RuntimeError(f"node {spec.name}: status kept conflicting")

    async def check_status(self, spec: NodeSpec) -> None:
        """Write the status if a condition changed or the status interval has passed."""
        if spec.node is None:
            await self.register(spec)
            return
        if spec.pressure is not None or spec.ready is not None:
            now = {c["type"]: c["status"] for c in _conditions(spec, None)}
            if now != spec.last_conditions:
                await self.write_status(spec)
                return
        if time.monotonic() - spec.last_status_write >= self.status_interval:
            await self.write_status(spec)

    # -- lease -------------------------------------------------------------------------------
    async def renew_lease(self, spec: NodeSpec) -> None:
        for _ in range(3):
            lease = spec.lease
            try:
                if lease is None:
                    try:
                        lease = await self.client.get(self.lease_ri, LEASE_NS, spec.name)
                    except StatusError as e:
                        if e.code != 404:
                            raise
                        spec.lease = await self._create_lease(spec)
                        return
                lease = copy.deepcopy(lease)
                lease["spec"]["holderIdentity"] = spec.name
                lease["spec"]["leaseDurationSeconds"] = LEASE_DURATION
                lease["spec"]["renewTime"] = now_micro()
                spec.lease = await self.client.update(self.lease_ri, lease)
                return
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
                spec.lease = None
        raise RuntimeError(f"lease {spec.name}: renewal kept conflicting")

    async def _create_lease(self, spec: NodeSpec) -> dict:
        owner = []
        if spec.node:
            owner = [{"apiVersion": "v1", "kind": "Node", "name": spec.name, "uid": spec.node["metadata"]["uid"]}]
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": spec.name, "namespace": LEASE_NS, "ownerReferences": owner},
                "spec": {"holderIdentity": spec.name, "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": now_micro()}}
        try:
            return await self.client.create(self.lease_ri, LEASE_NS, body)
        except StatusError as e:
            if e.code != 404:
                raise
        try:   # the namespace is missing: create it (as the apiserver's system namespaces would)
            await self.client.create(self.ns_ri, None, {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": LEASE_NS}})
        except StatusError as e:
            if e.code != 409:
                raise
        return await self.client.create(self.lease_ri, LEASE_NS, body)

    # -- loop --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Register every node, then renew leases and refresh status until stopped."""
        await self._all(self.register)
        await self._all(self.renew_lease)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.lease_interval)
                return
            except TimeoutError:
                pass
            await self._all(self.renew_lease)
            await self._all(self.check_status)
