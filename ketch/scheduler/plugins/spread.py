"""Pod topology spread: DoNotSchedule constraints filter, ScheduleAnyway constraints score."""

from __future__ import annotations

import math

from ..framework import CycleState, Plugin
from ..types import NodeInfo, PodInfo, spread_selector, tolerates


class _Constraint:
    __slots__ = ("max_skew", "topology_key", "hard", "selector", "min_domains", "honor_affinity",
                 "honor_taints", "counts", "self_match")

    def __init__(self, c: dict, pod: PodInfo):
        self.max_skew = int(c.get("maxSkew") or 1)
        self.topology_key = c.get("topologyKey") or ""
        self.hard = (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
        self.selector = spread_selector(c.get("labelSelector"), c.get("matchLabelKeys"), pod.labels)
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"
        self.counts: dict[str, int] = {}
        self.self_match = 1 if self.selector.matches(pod.labels) else 0

    def eligible(self, pod: PodInfo, node: NodeInfo) -> bool:
        if self.topology_key not in node.labels:
            return False
        if self.honor_affinity and not pod.matches_node_affinity(node):
            return False
        if self.honor_taints and any(not tolerates(pod.tolerations, t) for t in node.schedule_taints):
            return False
        return True


def _count(state: CycleState, pod: PodInfo, constraints: list[_Constraint]) -> None:
    """Matching pods per domain, over the nodes each constraint considers (domains start at 0)."""
    nodes = state.cache.nodes
    eligible: list[dict[str, bool]] = [{} for _ in constraints]
    for c, elig in zip(constraints, eligible, strict=True):
        for node in nodes.values():
            ok = c.eligible(pod, node)
            elig[node.name] = ok
            if ok:
                c.counts.setdefault(node.labels[c.topology_key], 0)
    for other, node_name in state.cache.placed_pods(frozenset([pod.namespace])):
        if other.terminating or other.key == pod.key:
            continue
        node = nodes.get(node_name)
        if node is None:
            continue
        for c, elig in zip(constraints, eligible, strict=True):
            if elig.get(node_name) and c.selector.matches(other.labels):
                v = node.labels[c.topology_key]
                c.counts[v] = c.counts.get(v, 0) + 1


class PodTopologySpread(Plugin):
    """Keep matching pods evenly spread over topology domains (zones, hosts, ...)."""

    name = "PodTopologySpread"
    weight = 2
    preemption_helps = True

    def prefilter(self, state: CycleState, pod: PodInfo) -> bool:
        hard = [_Constraint(c, pod) for c in pod.spread_constraints
                if (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"]
        if not hard:
            return False
        _count(state, pod, hard)
        state.data["spread"] = hard
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        for c in state.data["spread"]:
            v = node.labels.get(c.topology_key)
            if v is None:
                return "node(s) didn't match pod topology spread constraints (missing required label)"
            lowest = min(c.counts.values(), default=0) if len(c.counts) >= c.min_domains else 0
            if c.counts.get(v, 0) + c.self_match - lowest > c.max_skew:
                return "node(s) didn't match pod topology spread constraints"
        return None

    def prescore(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        soft = [_Constraint(c, pod) for c in pod.spread_constraints
                if (c.get("whenUnsatisfiable") or "DoNotSchedule") == "ScheduleAnyway"]
        if not soft:
            return False
        _count(state, pod, soft)
        state.data["spread-soft"] = soft
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        total = 0.0
        for c in state.data["spread-soft"]:
            v = node.labels.get(c.topology_key)
            if v is None:
                return -1  # nodes without the label rank last
            weight = math.log(len(c.counts) + 2)
            total += (c.counts.get(v, 0) + c.max_skew - 1) * weight
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[float]) -> None:
        valid = [s for s in scores if s >= 0]
        hi, lo = max(valid, default=0), min(valid, default=0)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif hi == 0:
                scores[i] = 100
            else:
                scores[i] = 100 * (hi + lo - s) / hi
