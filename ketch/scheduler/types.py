"""What the scheduler knows about a pod and a node, parsed once from their Kubernetes JSON.

`PodInfo` holds a pod's requests, ports, tolerations and affinity terms; `NodeInfo` holds a
node's allocatable resources and the running aggregates (requested resources, used host ports,
placed pods) that filters and scores read, so a decision never re-parses or rescans pods.
"""

from __future__ import annotations

import math
from functools import lru_cache

from ..api.quantity import parse_quantity
from ..api.selectors import LabelSelector, SelectorError, label_selector_from_spec, make_requirement

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
# Requests assumed for scoring when a container sets none (kube-scheduler's non-zero defaults).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


@lru_cache(maxsize=4096)
def resource_amount(name: str, value: str) -> int:
    """A quantity as an integer: millicores for cpu, units (rounded up) for everything else."""
    try:
        q = parse_quantity(str(value))
    except (ValueError, ArithmeticError):
        return 0
    if name == CPU:
        return int(math.ceil(q * 1000))
    return int(math.ceil(q))


def _sum_requests(containers: list[dict], nonzero: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in containers:
        req = ((c.get("resources") or {}).get("requests")) or {}
        for k, v in req.items():
            out[k] = out.get(k, 0) + resource_amount(k, v)
        if nonzero:
            if CPU not in req:
                out[CPU] = out.get(CPU, 0) + DEFAULT_MILLI_CPU
            if MEMORY not in req:
                out[MEMORY] = out.get(MEMORY, 0) + DEFAULT_MEMORY
    return out


def pod_requests(spec: dict, nonzero: bool = False) -> dict[str, int]:
    """Effective requests: max(sum of containers, each init container) plus overhead.

    With `nonzero`, containers without cpu/memory requests count kube-scheduler's defaults
    (used by scores only, so best-effort pods still spread).
    """
    total = _sum_requests(spec.get("containers") or [], nonzero)
    for ic in spec.get("initContainers") or []:
        one = _sum_requests([ic], nonzero)
        for k, v in one.items():
            if v > total.get(k, 0):
                total[k] = v
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, 0) + resource_amount(k, v)
    return {k: v for k, v in total.items() if v}


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    """True when one of the tolerations tolerates the taint (v1 Toleration.ToleratesTaint)."""
    for t in tolerations:
        eff = t.get("effect") or ""
        if eff and eff != taint.get("effect"):
            continue
        key = t.get("key") or ""
        op = t.get("operator") or "Equal"
        if key and key != taint.get("key"):
            continue
        if op == "Exists":
            return True
        if op == "Equal" and key and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requirement_matches(expr: dict, value: str | None) -> bool:
    op = expr.get("operator")
    values = expr.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(values) != 1:
            return False
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_term_matches(term: dict, labels: dict[str, str], name: str) -> bool:
    """One NodeSelectorTerm: all its matchExpressions (labels) and matchFields (metadata.name)."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    for e in exprs:
        if not _requirement_matches(e, labels.get(e.get("key", ""))):
            return False
    for f in fields:
        if f.get("key") != "metadata.name" or not _requirement_matches(f, name):
            return False
    return True


def spread_selector(spec: dict | None, match_label_keys: list[str] | None, labels: dict[str, str]) -> LabelSelector:
    """A spread constraint's selector, narrowed by matchLabelKeys to the pod's own values."""
    try:
        sel = label_selector_from_spec(spec)
    except SelectorError:
        return label_selector_from_spec(None)
    extra = [make_requirement(k, "=", [labels[k]]) for k in match_label_keys or () if k in labels]
    return sel.add(*extra) if extra else sel


class AffinityTerm:
    """A pod (anti-)affinity term: a selector over pods in some namespaces, per topology key."""

    __slots__ = ("selector", "namespaces", "ns_selector", "topology_key", "weight")

    def __init__(self, term: dict, own_namespace: str, weight: int = 0):
        try:
            sel = label_selector_from_spec(term.get("labelSelector"))
        except SelectorError:
            sel = label_selector_from_spec(None)
        self.selector: LabelSelector = sel
        nss = list(term.get("namespaces") or [])
        self.ns_selector: LabelSelector | None = None
        if term.get("namespaceSelector") is not None:
            try:
                self.ns_selector = label_selector_from_spec(term.get("namespaceSelector"))
            except SelectorError:
                self.ns_selector = None
        if not nss and self.ns_selector is None:
            nss = [own_namespace]
        self.namespaces: frozenset[str] = frozenset(nss)
        self.topology_key: str = term.get("topologyKey") or ""
        self.weight = weight

    def matches(self, pod: PodInfo, ns_labels: dict[str, dict[str, str]] | None = None) -> bool:
        """Does `pod` fall under this term (namespace and label selector)?"""
        if pod.namespace not in self.namespaces:
            if self.ns_selector is None:
                return False
            if not self.ns_selector.matches((ns_labels or {}).get(pod.namespace) or {}):
                return False
        return self.selector.matches(pod.labels)


def _affinity_terms(aff: dict, kind: str, ns: str) -> tuple[list[AffinityTerm], list[AffinityTerm]]:
    block = aff.get(kind) or {}
    required = [AffinityTerm(t, ns) for t in block.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
    preferred = [AffinityTerm(w.get("podAffinityTerm") or {}, ns, int(w.get("weight") or 0))
                 for w in block.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    return required, preferred


class PodInfo:
    """A pod as the scheduler sees it; built once per pod version."""

    __slots__ = ("obj", "key", "namespace", "name", "uid", "labels", "priority", "requests", "nonzero",
                 "host_ports", "tolerations", "node_selector", "required_node_terms", "preferred_node_terms",
                 "affinity", "anti_affinity", "preferred_affinity", "preferred_anti_affinity",
                 "spread_constraints", "images", "node_name", "terminating", "preemption_policy",
                 "created", "has_pod_affinity")

    def __init__(self, obj: dict, priority: int | None = None):
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        self.obj = obj
        self.namespace: str = meta.get("namespace") or "default"
        self.name: str = meta.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = meta.get("uid") or ""
        self.labels: dict[str, str] = meta.get("labels") or {}
        self.created: str = meta.get("creationTimestamp") or ""
        self.priority: int = int(spec.get("priority") or 0) if priority is None else priority
        self.preemption_policy: str = spec.get("preemptionPolicy") or "PreemptLowerPriority"
        self.requests = pod_requests(spec)
        self.nonzero = pod_requests(spec, nonzero=True)
        self.node_name: str = spec.get("nodeName") or ""
        self.terminating = bool(meta.get("deletionTimestamp"))
        ports: list[tuple[str, str, int]] = []
        images: list[str] = []
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if c.get("image"):
                images.append(c["image"])
            for p in c.get("ports") or []:
                hp = p.get("hostPort")
                if hp:
                    ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
        self.host_ports = ports
        self.images = images
        self.tolerations: list[dict] = spec.get("tolerations") or []
        self.node_selector: dict[str, str] = spec.get("nodeSelector") or {}
        aff = spec.get("affinity") or {}
        na = aff.get("nodeAffinity") or {}
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.required_node_terms: list[dict] | None = (req.get("nodeSelectorTerms") or []) if req else None
        self.preferred_node_terms: list[dict] = na.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        self.affinity, self.preferred_affinity = _affinity_terms(aff, "podAffinity", self.namespace)
        self.anti_affinity, self.preferred_anti_affinity = _affinity_terms(aff, "podAntiAffinity", self.namespace)
        self.has_pod_affinity = bool(self.affinity or self.anti_affinity or self.preferred_affinity
                                     or self.preferred_anti_affinity)
        self.spread_constraints: list[dict] = spec.get("topologySpreadConstraints") or []

    def matches_node_affinity(self, node: NodeInfo) -> bool:
        """nodeSelector and required node affinity (either term may match)."""
        labels = node.labels
        for k, v in self.node_selector.items():
            if labels.get(k) != v:
                return False
        if self.required_node_terms is not None:
            return any(node_selector_term_matches(t, labels, node.name) for t in self.required_node_terms)
        return True


class NodeInfo:
    """A node plus the aggregates of the pods placed on it (bound or assumed)."""

    __slots__ = ("obj", "name", "labels", "allocatable", "requested", "nz_cpu", "nz_mem", "alloc_cpu", "alloc_mem", "pods",
                 "used_ports", "taints", "schedule_taints", "prefer_taints", "unschedulable", "images",
                 "affinity_pods", "generation")

    def __init__(self, obj: dict):
        self.pods: dict[str, PodInfo] = {}
        self.requested: dict[str, int] = {}
        # Requests with kube-scheduler's non-zero defaults, for the resource scores.
        self.nz_cpu = 0
        self.nz_mem = 0
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.affinity_pods: dict[str, PodInfo] = {}
        self.generation = 0
        self.set_node(obj)

    def set_node(self, obj: dict) -> None:
        """(Re)read the node object; the placed pods' aggregates are kept."""
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        self.obj = obj
        self.name: str = meta.get("name") or ""
        self.labels: dict[str, str] = meta.get("labels") or {}
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = {k: resource_amount(k, v) for k, v in alloc.items()}
        self.alloc_cpu = self.allocatable.get(CPU, 0)
        self.alloc_mem = self.allocatable.get(MEMORY, 0)
        self.unschedulable = bool(spec.get("unschedulable"))
        taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
        ready = "Unknown"
        for c in status.get("conditions") or []:
            if c.get("type") == "Ready":
                ready = c.get("status") or "Unknown"
        # A node that is not Ready is treated as tainted, as the node lifecycle controller would do.
        keys = {t.get("key") for t in taints if t.get("effect") == "NoSchedule"}
        if ready == "False" and NOT_READY_TAINT not in keys:
            taints.append({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
        elif ready not in ("True", "False") and UNREACHABLE_TAINT not in keys:
            taints.append({"key": UNREACHABLE_TAINT, "effect": "NoSchedule"})
        self.taints = taints
        self.schedule_taints = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")]
        self.prefer_taints = [t for t in taints if t.get("effect") == "PreferNoSchedule"]
        imgs: dict[str, int] = {}
        for im in status.get("images") or []:
            size = int(im.get("sizeBytes") or 0)
            for n in im.get("names") or []:
                imgs[n] = size
        self.images = imgs
        self.generation += 1

    def add_pod(self, pod: PodInfo) -> None:
        if pod.key in self.pods:
            self.remove_pod(pod.key)
        self.pods[pod.key] = pod
        req = self.requested
        for k, v in pod.requests.items():
            req[k] = req.get(k, 0) + v
        self.nz_cpu += pod.nonzero.get(CPU, 0)
        self.nz_mem += pod.nonzero.get(MEMORY, 0)
        for p in pod.host_ports:
            self.used_ports[p] = self.used_ports.get(p, 0) + 1
        if pod.has_pod_affinity:
            self.affinity_pods[pod.key] = pod
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        req = self.requested
        for k, v in pod.requests.items():
            req[k] = req.get(k, 0) - v
        self.nz_cpu -= pod.nonzero.get(CPU, 0)
        self.nz_mem -= pod.nonzero.get(MEMORY, 0)
        for p in pod.host_ports:
            n = self.used_ports.get(p, 0) - 1
            if n > 0:
                self.used_ports[p] = n
            else:
                self.used_ports.pop(p, None)
        self.affinity_pods.pop(key, None)
        self.generation += 1
        return pod

    def clone(self) -> NodeInfo:
        """A copy whose pods can be removed and re-added (for preemption's what-ifs)."""
        c = NodeInfo.__new__(NodeInfo)
        for s in NodeInfo.__slots__:
            setattr(c, s, getattr(self, s))
        c.pods = dict(self.pods)
        c.requested = dict(self.requested)
        c.used_ports = dict(self.used_ports)
        c.affinity_pods = dict(self.affinity_pods)
        return c
