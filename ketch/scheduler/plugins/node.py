"""Node-level plugins: schedulable, taints, node affinity, host ports, image locality."""

from __future__ import annotations

from ..framework import CycleState, Plugin, normalize_by_max
from ..types import UNSCHEDULABLE_TAINT, NodeInfo, PodInfo, node_selector_term_matches, tolerates

_UNSCHEDULABLE = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}


class NodeUnschedulable(Plugin):
    """Filter: nodes cordoned with spec.unschedulable take no pods (unless tolerated)."""

    name = "NodeUnschedulable"

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        if node.unschedulable and not tolerates(pod.tolerations, _UNSCHEDULABLE):
            return "node(s) were unschedulable"
        return None

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[tuple[int, str]]:
        return [(i, r) for i, n in enumerate(nodes) if n.unschedulable and (r := self.filter(state, pod, n))]


class TaintToleration(Plugin):
    """Filter: NoSchedule/NoExecute taints need a toleration. Score: fewer PreferNoSchedule taints."""

    name = "TaintToleration"
    weight = 3

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        for t in node.schedule_taints:
            if not tolerates(pod.tolerations, t):
                return f"node(s) had untolerated taint {{{t.get('key', '')}: {t.get('value', '')}}}"
        return None

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[tuple[int, str]]:
        return [(i, r) for i, n in enumerate(nodes) if n.schedule_taints and (r := self.filter(state, pod, n))]

    def prescore(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        return any(n.prefer_taints for n in nodes)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        tols = [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return sum(1 for t in node.prefer_taints if not tolerates(tols, t))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[float]) -> None:
        normalize_by_max(scores, reverse=True)


class NodeAffinity(Plugin):
    """Filter: nodeSelector and required node affinity. Score: weights of matching preferred terms."""

    name = "NodeAffinity"
    weight = 2

    def prefilter(self, state: CycleState, pod: PodInfo) -> bool:
        return bool(pod.node_selector) or pod.required_node_terms is not None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        if not pod.matches_node_affinity(node):
            return "node(s) didn't match Pod's node affinity/selector"
        return None

    def prescore(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        return bool(pod.preferred_node_terms)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        total = 0
        for t in pod.preferred_node_terms:
            if node_selector_term_matches(t.get("preference") or {}, node.labels, node.name):
                total += int(t.get("weight") or 0)
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[float]) -> None:
        normalize_by_max(scores)


class NodePorts(Plugin):
    """Filter: a host port (protocol, port, host IP) can be used by one pod per node."""

    name = "NodePorts"
    preemption_helps = True

    def prefilter(self, state: CycleState, pod: PodInfo) -> bool:
        return bool(pod.host_ports)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        used = node.used_ports
        if not used:
            return None
        for ip, proto, port in pod.host_ports:
            for uip, uproto, uport in used:
                if uport == port and uproto == proto and (ip == uip or "0.0.0.0" in (ip, uip)):
                    return "node(s) didn't have free ports for the requested pod ports"
        return None


MB = 1024 * 1024
MIN_IMAGE_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def _image_names(image: str) -> tuple[str, ...]:
    last = image.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        return (image,)
    return (image, image + ":latest")


class ImageLocality(Plugin):
    """Score: nodes that already have the pod's images (weighted by how widely they are spread)."""

    name = "ImageLocality"
    weight = 1

    def prescore(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        have = state.cache.image_nodes
        if not have or not pod.images:
            return False
        return any(n in have for im in pod.images for n in _image_names(im))

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        have = state.cache.image_nodes
        total_nodes = max(1, len(state.cache.nodes))
        s = 0.0
        for im in pod.images:
            for n in _image_names(im):
                size = node.images.get(n)
                if size is not None:
                    s += size * have.get(n, 0) / total_nodes
                    break
        hi = MAX_CONTAINER_THRESHOLD * max(1, len(pod.images))
        s = min(max(s, MIN_IMAGE_THRESHOLD), hi)
        return 100 * (s - MIN_IMAGE_THRESHOLD) / (hi - MIN_IMAGE_THRESHOLD)
