"""The one table of resources that drives routing, discovery, OpenAPI, tables and the CLI.

Adding a resource is one `ResourceInfo` entry here (plus, where it needs them, its
defaulting/validation in `defaults.py`/`validation.py` and columns in `tables.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    """One API resource: where it lives, what it is called, what it supports."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # subresource name -> response kind (status returns the kind itself, scale returns Scale ...)
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # True when spec changes bump metadata.generation (objects with a spec / template)
    has_status: bool = True
    # The kind's OpenAPI definition name, e.g. io.k8s.api.core.v1.Pod
    definition: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def key_prefix(self) -> str:
        """Store key prefix: /registry/<group-qualified plural>/."""
        name = self.plural if not self.group or self.group in _LEGACY_GROUPS else f"{self.group}/{self.plural}"
        return f"/registry/{name}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def prefix(self, namespace: str | None = None) -> str:
        if self.namespaced and namespace:
            return f"{self.key_prefix}{namespace}/"
        return self.key_prefix


# Groups whose resources are stored without the group in the key (as Kubernetes does).
_LEGACY_GROUPS = {"apps", "authentication.k8s.io", "authorization.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "batch",
                  "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                  "storage.k8s.io", "scheduling.k8s.io", "node.k8s.io"}


def _def(group: str, version: str, kind: str) -> str:
    if not group:
        pkg = "core"
    else:
        pkg = group.split(".")[0]
        if group == "events.k8s.io":
            pkg = "events"
    return f"io.k8s.api.{pkg}.{version}.{kind}"


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool, **kw) -> ResourceInfo:
    kw.setdefault("definition", _def(group, version, kind))
    return ResourceInfo(group=group, version=version, kind=kind, plural=plural, namespaced=namespaced, **kw)


RESOURCES: list[ResourceInfo] = [
    # core/v1
    _r("", "v1", "Namespace", "namespaces", False, short_names=("ns",), subresources=("status", "finalize")),
    _r("", "v1", "Pod", "pods", True, short_names=("po",), categories=("all",),
       subresources=("status", "binding", "eviction", "log", "exec", "attach", "portforward", "ephemeralcontainers")),
    _r("", "v1", "Service", "services", True, short_names=("svc",), categories=("all",), subresources=("status",)),
    _r("", "v1", "Endpoints", "endpoints", True, short_names=("ep",), has_status=False),
    _r("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",), has_status=False),
    _r("", "v1", "Secret", "secrets", True, has_status=False),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",), has_status=False,
       subresources=("token",)),
    _r("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("status",)),
    _r("", "v1", "Event", "events", True, short_names=("ev",), has_status=False),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", True, short_names=("deploy",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, short_names=("rs",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, short_names=("sts",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, short_names=("ds",), categories=("all",),
       subresources=("status",)),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", True, has_status=False),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", True, categories=("all",), subresources=("status",)),
    _r("batch", "v1", "CronJob", "cronjobs", True, short_names=("cj",), categories=("all",),
       subresources=("status",)),
    # autoscaling/v2
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, short_names=("hpa",),
       categories=("all",), subresources=("status",)),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases", True, has_status=False),
    # Reviews: create-only questions answered from authentication/authorization, never stored.
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",),
       has_status=False, extra={"virtual": "selfsubjectreview"}),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
       verbs=("create",), has_status=False, extra={"virtual": "selfsubjectaccessreview"}),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
       verbs=("create",), has_status=False, extra={"virtual": "selfsubjectrulesreview"}),
    # metrics.k8s.io/v1beta1: resource usage read from the node agents on request, never stored.
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=("get", "list"), has_status=False,
       extra={"virtual": "nodemetrics"}),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=("get", "list"), has_status=False,
       extra={"virtual": "podmetrics"}),
    # scheduling.k8s.io/v1
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short_names=("pc",), has_status=False),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, has_status=False),
    # events.k8s.io/v1 (same storage as core events)
    _r("events.k8s.io", "v1", "Event", "events", True, short_names=("ev",), has_status=False,
       extra={"storage": "/registry/events/", "convert": "events"}),
]


class Registry:
    """Lookup tables over RESOURCES."""

    def __init__(self, resources: list[ResourceInfo]):
        self.resources = list(resources)
        self._by_gvr = {(r.group, r.version, r.plural): r for r in self.resources}
        self._by_gvk: dict[tuple[str, str, str], ResourceInfo] = {}
        for r in self.resources:
            self._by_gvk.setdefault((r.group, r.version, r.kind), r)

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions, in registry order (core group is '')."""
        out: dict[str, list[str]] = {}
        for r in self.resources:
            vs = out.setdefault(r.group, [])
            if r.version not in vs:
                vs.append(r.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return [r for r in self.resources if r.group == group and r.version == version]


REGISTRY = Registry(RESOURCES)
