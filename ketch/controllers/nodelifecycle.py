"""Node lifecycle: a node whose Lease stops being renewed goes Ready=Unknown and gets the
`node.kubernetes.io/unreachable:NoExecute` taint; pods that do not tolerate NoExecute taints are
evicted once their tolerationSeconds run out; a node that renews its Lease again loses the taint.

Lease freshness is judged by when this controller saw the renewTime change (not by the
renewTime itself, so clocks need not agree); after a restart every node gets a full grace period.
"""

from __future__ import annotations

import copy
import time

from ..api.errors import StatusError
from ..api.meta import now_rfc3339, parse_time
from ..client.informer import object_key
from .framework import Context, Controller

LEASE_NS = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def tolerates(toleration: dict, taint: dict) -> bool:
    """Whether one toleration matches one taint (Kubernetes' ToleratesTaint)."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return op == "Exists"
    if toleration.get("key") != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_time(pod: dict, taints: list[dict], default_seconds: int) -> float | None:
    """Epoch seconds at which the pod must go because of NoExecute taints; None to stay."""
    tols = (pod.get("spec") or {}).get("tolerations") or ()
    when: float | None = None
    for t in taints:
        if t.get("effect") != "NoExecute":
            continue
        added = parse_time(t.get("timeAdded")) or time.time()
        matching = [tol for tol in tols if tolerates(tol, t)]
        if not matching:
            # DefaultTolerationSeconds: pods tolerate not-ready/unreachable for a while by default
            secs: float | None = default_seconds if t.get("key") in (UNREACHABLE, NOT_READY) else 0
        elif any(tol.get("tolerationSeconds") is None for tol in matching):
            secs = None
        else:
            secs = max(0, min(int(tol["tolerationSeconds"]) for tol in matching))
        if secs is not None:
            at = added + secs
            when = at if when is None else min(when, at)
    return when


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, ctx: Context, workers: int | None = 2):
        super().__init__(ctx, workers)
        self.node_ri = self.client.resource("nodes")
        self.pod_ri = self.client.resource("pods")
        self.nodes = ctx.factory.informer("nodes")
        self.leases = ctx.factory.informer("leases", "coordination.k8s.io", namespace=LEASE_NS)
        self.pods = ctx.pods()
        self._seen: dict[str, tuple[str, float]] = {}   # node -> (last renewTime/heartbeat, when seen)
        self.nodes.add_handlers(self._node_changed, lambda o, n: self._node_changed(n),
                                lambda n: self._seen.pop(n["metadata"]["name"], None))
        self.leases.add_handlers(self._lease_changed, lambda o, n: self._lease_changed(n))
        self.pods.add_handlers(self._pod_changed, lambda o, n: self._pod_changed(n))

    def _observe(self, node: str, stamp: str) -> None:
        prev = self._seen.get(node)
        if prev is None or prev[0] != stamp:
            fresh = prev is not None
            self._seen[node] = (stamp, time.monotonic())
            if fresh:
                self.enqueue(node)

    def _lease_changed(self, lease: dict) -> None:
        self._observe(lease["metadata"]["name"], str((lease.get("spec") or {}).get("renewTime")))

    def _node_changed(self, node: dict) -> None:
        name = node["metadata"]["name"]
        ready = _ready_condition(node)
        if ready and ready.get("status") != "Unknown" and self.leases.get(f"{LEASE_NS}/{name}") is None:
            self._observe(name, str(ready.get("lastHeartbeatTime")))
        self.enqueue(name)

    def _pod_changed(self, pod: dict) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not pod["metadata"].get("deletionTimestamp"):
            n = self.nodes.get(node)
            if n is not None and any(t.get("effect") == "NoExecute" for t in (n.get("spec") or {}).get("taints") or ()):
                self.enqueue(node)

    async def started(self) -> None:
        for n in self.nodes.list():
            self.enqueue(object_key(n))

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        opts = self.ctx.options
        now = time.monotonic()
        if key not in self._seen:
            self._seen[key] = ("", now)
        elapsed = now - self._seen[key][1]
        healthy = elapsed < opts.node_monitor_grace_period
        node = copy.deepcopy(node)
        if not healthy:
            node = await self._mark_unknown(node)
        ready = _ready_condition(node)
        want_unreachable = not healthy or (ready is not None and ready.get("status") == "Unknown" and not healthy)
        want_not_ready = healthy and ready is not None and ready.get("status") == "False"
        node = await self._set_taints(node, want_unreachable, want_not_ready)
        requeue = (opts.node_monitor_grace_period - elapsed) if healthy else opts.node_monitor_period
        taints = [t for t in (node.get("spec") or {}).get("taints") or () if t.get("effect") == "NoExecute"]
        if taints:
            wall = time.time()
            for pod in self.pods.by_index("node", key):
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                at = eviction_time(pod, taints, opts.default_toleration_seconds)
                if at is None:
                    continue
                if at <= wall:
                    await self._evict(node, pod)
                else:
                    requeue = min(requeue, at - wall)
        return max(requeue, 0.05)

    async def _mark_unknown(self, node: dict) -> dict:
        st = node.setdefault("status", {})
        conds = st.get("conditions") or []
        now = now_rfc3339()
        changed = False
        types = {c.get("type") for c in conds}
        if "Ready" not in types:
            conds.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                          "message": "Kubelet never posted node status.", "lastHeartbeatTime": now,
                          "lastTransitionTime": now})
            changed = True
        for c in conds:
            if c.get("status") != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.", lastTransitionTime=now)
                changed = True
        if not changed:
            return node
        st["conditions"] = conds
        upd = await self.client.update(self.node_ri, node, "status")
        self.recorder.event(node, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady")
        return upd

    async def _set_taints(self, node: dict, unreachable: bool, not_ready: bool) -> dict:
        taints = list((node.get("spec") or {}).get("taints") or [])
        keys = {t.get("key") for t in taints if t.get("effect") == "NoExecute"}
        want = {UNREACHABLE: unreachable, NOT_READY: not_ready}
        new = [t for t in taints if not (t.get("effect") == "NoExecute" and t.get("key") in want and not want[t["key"]])]
        for k, on in want.items():
            if on and k not in keys:
                new.append({"key": k, "effect": "NoExecute", "timeAdded": now_rfc3339()})
        if new == taints:
            return node
        node.setdefault("spec", {})["taints"] = new or None
        if not new:
            node["spec"].pop("taints", None)
        return await self.client.update(self.node_ri, node)

    async def _evict(self, node: dict, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(self.pod_ri, meta["namespace"], meta["name"],
                                     {"preconditions": {"uid": meta["uid"]}})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
            return
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")


def _ready_condition(node: dict) -> dict | None:
    return next((c for c in (node.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None)
