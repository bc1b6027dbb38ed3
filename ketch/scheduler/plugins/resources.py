"""Resource plugins: fit (filter), least allocated and balanced allocation (scores)."""

from __future__ import annotations

from ..framework import CycleState, Plugin
from ..types import CPU, MEMORY, PODS, NodeInfo, PodInfo


class NodeResourcesFit(Plugin):
    """Filter: the pod's requests fit the node's allocatable minus what is already placed there."""

    name = "NodeResourcesFit"
    preemption_helps = True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | list[str] | None:
        alloc = node.allocatable
        req = node.requested
        nominated = state.cache.nominated.get(node.name) if state.cache.nominated else None
        if not nominated:
            # Fast path: everything fits.
            if len(node.pods) < alloc.get(PODS, 0):
                for k, v in pod.requests.items():
                    if req.get(k, 0) + v > alloc.get(k, 0):
                        break
                else:
                    return None
        reasons: list[str] = []
        npods = len(node.pods) + 1
        if nominated:
            # Room promised to higher-priority pods that preempted here is not free.
            req = dict(req)
            for other in nominated.values():
                if other.priority >= pod.priority and other.key != pod.key and other.key not in node.pods:
                    npods += 1
                    for k, v in other.requests.items():
                        req[k] = req.get(k, 0) + v
        if npods > alloc.get(PODS, 0):
            reasons.append("Too many pods")
        if pod.requests:
            for k, v in pod.requests.items():
                if req.get(k, 0) + v > alloc.get(k, 0):
                    reasons.append(f"Insufficient {k}")
        return reasons or None

    def filter_nodes(self, state: CycleState, pod: PodInfo,
                     nodes: list[NodeInfo]) -> list[tuple[int, str | list[str]]]:
        nominated = state.cache.nominated
        items = list(pod.requests.items())
        out: list[tuple[int, str | list[str]]] = []
        for i, n in enumerate(nodes):
            a = n.allocatable
            if nominated and n.name in nominated or len(n.pods) >= a.get(PODS, 0):
                r = self.filter(state, pod, n)
                if r:
                    out.append((i, r))
                continue
            req = n.requested
            for k, v in items:
                if req.get(k, 0) + v > a.get(k, 0):
                    out.append((i, self.filter(state, pod, n) or []))
                    break
        return out


class NodeResourcesLeastAllocated(Plugin):
    """Score: prefer nodes with more free cpu and memory after placing the pod (spreads load)."""

    name = "NodeResourcesLeastAllocated"
    weight = 1

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        alloc = node.allocatable
        nz = node.nonzero_requested
        total = 0.0
        for r in (CPU, MEMORY):
            cap = alloc.get(r, 0)
            used = nz[r] + pod.nonzero.get(r, 0)
            if cap > 0 and used <= cap:
                total += (cap - used) * 100 / cap
        return total / 2

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
        pc, pm = pod.nonzero.get(CPU, 0), pod.nonzero.get(MEMORY, 0)
        out = []
        for n in nodes:
            a, nz = n.allocatable, n.nonzero_requested
            cc, cm = a.get(CPU, 0), a.get(MEMORY, 0)
            uc, um = nz[CPU] + pc, nz[MEMORY] + pm
            sc = (cc - uc) * 100 / cc if cc > 0 and uc <= cc else 0
            sm = (cm - um) * 100 / cm if cm > 0 and um <= cm else 0
            out.append((sc + sm) / 2)
        return out


class NodeResourcesBalancedAllocation(Plugin):
    """Score: prefer nodes whose cpu and memory use stay balanced after placing the pod."""

    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        alloc = node.allocatable
        nz = node.nonzero_requested
        cap_c, cap_m = alloc.get(CPU, 0), alloc.get(MEMORY, 0)
        if cap_c <= 0 or cap_m <= 0:
            return 0
        fc = min(1.0, (nz[CPU] + pod.nonzero.get(CPU, 0)) / cap_c)
        fm = min(1.0, (nz[MEMORY] + pod.nonzero.get(MEMORY, 0)) / cap_m)
        return (1 - abs(fc - fm) / 2) * 100

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
        pc, pm = pod.nonzero.get(CPU, 0), pod.nonzero.get(MEMORY, 0)
        out = []
        for n in nodes:
            a, nz = n.allocatable, n.nonzero_requested
            cc, cm = a.get(CPU, 0), a.get(MEMORY, 0)
            if cc <= 0 or cm <= 0:
                out.append(0)
                continue
            fc = min(1.0, (nz[CPU] + pc) / cc)
            fm = min(1.0, (nz[MEMORY] + pm) / cm)
            out.append((1 - abs(fc - fm) / 2) * 100)
        return out
