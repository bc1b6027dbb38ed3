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
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
        pc, pm = pod.nonzero.get(CPU, 0), pod.nonzero.get(MEMORY, 0)
        out = []
        for n in nodes:
            cc, cm = n.alloc_cpu, n.alloc_mem
            uc, um = n.nz_cpu + pc, n.nz_mem + pm
            sc = (cc - uc) * 100 / cc if cc > 0 and uc <= cc else 0
            sm = (cm - um) * 100 / cm if cm > 0 and um <= cm else 0
            out.append((sc + sm) / 2)
        return out


class NodeResourcesBalancedAllocation(Plugin):
    """Score: prefer nodes whose cpu and memory use stay balanced after placing the pod."""

    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
        pc, pm = pod.nonzero.get(CPU, 0), pod.nonzero.get(MEMORY, 0)
        out = []
        for n in nodes:
            cc, cm = n.alloc_cpu, n.alloc_mem
            if cc <= 0 or cm <= 0:
                out.append(0)
                continue
            fc = (n.nz_cpu + pc) / cc
            fm = (n.nz_mem + pm) / cm
            if fc > 1:
                fc = 1.0
            if fm > 1:
                fm = 1.0
            d = fc - fm
            out.append(100 - (d if d > 0 else -d) * 50)
        return out
