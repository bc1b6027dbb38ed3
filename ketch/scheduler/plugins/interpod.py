"""Inter-pod affinity and anti-affinity: required terms filter, preferred terms score.

Counts are by topology domain (topologyKey, value of that label on the pod's node), computed once
per attempt from the placed pods the terms can match (by namespace), never per node.
"""

from __future__ import annotations

from ..framework import CycleState, Plugin
from ..types import AffinityTerm, NodeInfo, PodInfo

Domain = tuple[str, str]
HARD_POD_AFFINITY_WEIGHT = 1


def _candidates(state: CycleState, term: AffinityTerm):
    ns = None if term.ns_selector is not None else term.namespaces
    return state.cache.placed_pods(ns)


def _domains_matching(state: CycleState, term: AffinityTerm) -> set[Domain]:
    """Domains holding at least one pod the term matches."""
    out: set[Domain] = set()
    nodes = state.cache.nodes
    tk = term.topology_key
    for other, node_name in _candidates(state, term):
        node = nodes.get(node_name)
        if node is None or tk not in node.labels or other.terminating:
            continue
        if term.matches(other):
            out.add((tk, node.labels[tk]))
    return out


def _existing_terms(state: CycleState):
    """(existing pod, its node) for every placed pod that has (anti-)affinity terms."""
    nodes = state.cache.nodes
    for name in state.cache.affinity_nodes:
        node = nodes.get(name)
        if node is None:
            continue
        for other in node.affinity_pods.values():
            yield other, node


class InterPodAffinity(Plugin):
    """Filter: required pod (anti-)affinity, both the pod's and existing pods'. Score: preferred."""

    name = "InterPodAffinity"
    weight = 2
    preemption_helps = True

    def prefilter(self, state: CycleState, pod: PodInfo) -> bool:
        if not state.cache.affinity_nodes and not pod.affinity and not pod.anti_affinity:
            return False
        forbidden: set[Domain] = set()
        for other, node in _existing_terms(state):
            for term in other.anti_affinity:
                tk = term.topology_key
                if tk in node.labels and term.matches(pod):
                    forbidden.add((tk, node.labels[tk]))
        affinity = [_domains_matching(state, t) for t in pod.affinity]
        # The first pod of a group that selects itself may go anywhere (Kubernetes' special case).
        if pod.affinity and not any(affinity) and all(t.matches(pod) for t in pod.affinity):
            affinity = []
        anti = [_domains_matching(state, t) for t in pod.anti_affinity]
        if not forbidden and not pod.affinity and not pod.anti_affinity:
            return False
        state.data["interpod"] = (forbidden, affinity, anti)
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        forbidden, affinity, anti = state.data["interpod"]
        labels = node.labels
        for tk, v in forbidden:
            if labels.get(tk) == v:
                return "node(s) didn't satisfy existing pods anti-affinity rules"
        for term, domains in zip(pod.affinity, affinity, strict=False):
            tk = term.topology_key
            if tk not in labels or (tk, labels[tk]) not in domains:
                return "node(s) didn't match pod affinity rules"
        for term, domains in zip(pod.anti_affinity, anti, strict=False):
            tk = term.topology_key
            if tk in labels and (tk, labels[tk]) in domains:
                return "node(s) didn't match pod anti-affinity rules"
        return None

    def prescore(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        if not state.cache.affinity_nodes and not pod.preferred_affinity and not pod.preferred_anti_affinity:
            return False
        scores: dict[Domain, float] = {}

        def add(tk: str, node: NodeInfo, w: float) -> None:
            if tk in node.labels:
                d = (tk, node.labels[tk])
                scores[d] = scores.get(d, 0) + w

        nodes_by_name = state.cache.nodes
        for terms, sign in ((pod.preferred_affinity, 1), (pod.preferred_anti_affinity, -1)):
            for term in terms:
                for other, node_name in _candidates(state, term):
                    node = nodes_by_name.get(node_name)
                    if node is not None and term.matches(other):
                        add(term.topology_key, node, sign * term.weight)
        for other, node in _existing_terms(state):
            for term in other.affinity:
                if term.matches(pod):
                    add(term.topology_key, node, HARD_POD_AFFINITY_WEIGHT)
            for term in other.preferred_affinity:
                if term.matches(pod):
                    add(term.topology_key, node, term.weight)
            for term in other.preferred_anti_affinity:
                if term.matches(pod):
                    add(term.topology_key, node, -term.weight)
        if not scores:
            return False
        state.data["interpod-score"] = scores
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        scores = state.data["interpod-score"]
        return sum(w for (tk, v), w in scores.items() if node.labels.get(tk) == v)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[float]) -> None:
        lo, hi = min(scores, default=0), max(scores, default=0)
        if hi == lo:
            scores[:] = [0] * len(scores)
            return
        for i, s in enumerate(scores):
            scores[i] = 100 * (s - lo) / (hi - lo)
