"""The scheduler's view of the cluster: nodes and what is placed on each.

Pods are added when the watch shows them bound, or earlier when the scheduler assumes them
(right after choosing a node, before the binding call returns), so the next decision already
sees the slot taken. A failed binding forgets the assumed pod.
"""

from __future__ import annotations

from .types import NodeInfo, PodInfo


class Cache:
    """Nodes by name, placed pods by key and by namespace, and per-node aggregates."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pod_node: dict[str, str] = {}
        self.pods_by_ns: dict[str, dict[str, PodInfo]] = {}
        self.assumed: set[str] = set()
        self.image_nodes: dict[str, int] = {}
        # Pods placed on nodes we do not know (yet): kept until their node arrives.
        self._orphans: dict[str, dict[str, PodInfo]] = {}
        self.affinity_nodes: set[str] = set()
        # Pods that preempted on a node and wait for their victims to go: node -> key -> pod.
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self._nominated_node: dict[str, str] = {}
        self._list: list[NodeInfo] | None = None

    # -- nodes -------------------------------------------------------------------------------
    def node_list(self) -> list[NodeInfo]:
        if self._list is None:
            self._list = list(self.nodes.values())
        return self._list

    def _count_images(self, node: NodeInfo, delta: int) -> None:
        for name in node.images:
            n = self.image_nodes.get(name, 0) + delta
            if n > 0:
                self.image_nodes[name] = n
            else:
                self.image_nodes.pop(name, None)

    def set_node(self, obj: dict) -> NodeInfo:
        name = (obj.get("metadata") or {}).get("name") or ""
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(obj)
            self._list = None
            for pod in (self._orphans.pop(name, None) or {}).values():
                ni.add_pod(pod)
                if ni.affinity_pods:
                    self.affinity_nodes.add(name)
        else:
            self._count_images(ni, -1)
            ni.set_node(obj)
        self._count_images(ni, 1)
        return ni

    def remove_node(self, name: str) -> None:
        ni = self.nodes.pop(name, None)
        if ni is not None:
            self._list = None
            self._count_images(ni, -1)
            self.affinity_nodes.discard(name)
            if ni.pods:
                self._orphans[name] = dict(ni.pods)

    # -- pods --------------------------------------------------------------------------------
    def add_pod(self, pod: PodInfo, node_name: str) -> None:
        """Place (or re-place) a pod on a node."""
        old = self.pod_node.get(pod.key)
        if old is not None:
            self._unplace(pod.key, old)
        self.pod_node[pod.key] = node_name
        self.pods_by_ns.setdefault(pod.namespace, {})[pod.key] = pod
        ni = self.nodes.get(node_name)
        if ni is None:
            self._orphans.setdefault(node_name, {})[pod.key] = pod
            return
        ni.add_pod(pod)
        if pod.has_pod_affinity:
            self.affinity_nodes.add(node_name)

    def _unplace(self, key: str, node_name: str) -> PodInfo | None:
        ni = self.nodes.get(node_name)
        if ni is not None:
            pod = ni.remove_pod(key)
            if not ni.affinity_pods:
                self.affinity_nodes.discard(node_name)
            return pod
        orphans = self._orphans.get(node_name)
        return orphans.pop(key, None) if orphans else None

    def remove_pod(self, key: str) -> PodInfo | None:
        node_name = self.pod_node.pop(key, None)
        self.assumed.discard(key)
        if node_name is None:
            return None
        ns = key.partition("/")[0]
        by_ns = self.pods_by_ns.get(ns)
        if by_ns is not None:
            by_ns.pop(key, None)
            if not by_ns:
                del self.pods_by_ns[ns]
        return self._unplace(key, node_name)

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Count a pod on its chosen node before the binding is confirmed."""
        self.add_pod(pod, node_name)
        self.assumed.add(pod.key)

    def assumed_pod(self, key: str) -> PodInfo | None:
        if key not in self.assumed:
            return None
        node_name = self.pod_node.get(key)
        ni = self.nodes.get(node_name) if node_name else None
        return ni.pods.get(key) if ni is not None else None

    def forget(self, key: str) -> None:
        """Undo an assume whose binding failed."""
        if key in self.assumed:
            self.remove_pod(key)

    def confirm(self, pod: PodInfo) -> None:
        """The watch shows the pod bound: refresh its info (an assumed pod is now real)."""
        self.assumed.discard(pod.key)
        self.add_pod(pod, pod.node_name)

    def nominate(self, pod: PodInfo, node_name: str) -> None:
        self.unnominate(pod.key)
        self.nominated.setdefault(node_name, {})[pod.key] = pod
        self._nominated_node[pod.key] = node_name

    def unnominate(self, key: str) -> None:
        node_name = self._nominated_node.pop(key, None)
        if node_name is not None:
            d = self.nominated.get(node_name)
            if d is not None:
                d.pop(key, None)
                if not d:
                    del self.nominated[node_name]

    def is_placed(self, key: str) -> bool:
        return key in self.pod_node

    def placed_pods(self, namespaces: frozenset[str] | None = None):
        """(PodInfo, node name) of placed pods, in the given namespaces or all."""
        if namespaces is None:
            groups = list(self.pods_by_ns.values())
        else:
            groups = [g for ns in namespaces if (g := self.pods_by_ns.get(ns))]
        pod_node = self.pod_node
        for g in groups:
            for key, pod in g.items():
                yield pod, pod_node[key]
