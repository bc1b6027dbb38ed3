"""Strategic-merge-patch metadata for the built-in Kubernetes types.

A small type graph: for each OpenAPI definition name, the fields whose patch behaviour
differs from the default (maps merge, lists are replaced) or that lead to such fields.
Each entry is ``field -> PatchField(ref, strategy, merge_key)`` mirroring the Go struct
tags ``patchStrategy``/``patchMergeKey`` of k8s.io/api (the API reference shows them as
"Patch strategy: merge on key name"). Definitions or fields not listed fall back to
map-merge / list-replace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

MERGE = "merge"
REPLACE = "replace"
RETAIN_KEYS = "retainKeys"


class PatchField(NamedTuple):
    """Patch metadata of one field: child definition, patch strategy, merge key."""

    ref: str | None = None
    strategy: str = ""
    merge_key: str = ""

    @property
    def strategies(self) -> tuple[str, ...]:
        """The comma separated strategy split into its parts."""
        return tuple(s for s in self.strategy.split(",") if s)

    @property
    def is_merge(self) -> bool:
        """True when the field is a list merged element-wise (or as a set)."""
        return MERGE in self.strategies

    @property
    def is_replace(self) -> bool:
        """True when the field (a map) is replaced rather than merged."""
        return REPLACE in self.strategies


DEFAULT = PatchField()

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE = "io.k8s.api.core.v1."
_APPS = "io.k8s.api.apps.v1."
_BATCH = "io.k8s.api.batch.v1."

POD_SPEC = _CORE + "PodSpec"
POD_TEMPLATE_SPEC = _CORE + "PodTemplateSpec"
CONTAINER = _CORE + "Container"
EPHEMERAL_CONTAINER = _CORE + "EphemeralContainer"
JOB_SPEC = _BATCH + "JobSpec"


def _ref(ref: str) -> PatchField:
    return PatchField(ref)


def _merge(merge_key: str = "", ref: str | None = None, strategy: str = MERGE) -> PatchField:
    return PatchField(ref, strategy, merge_key)


def _object(spec: str | None = None, status: str | None = None, **extra: PatchField) -> dict[str, PatchField]:
    """Fields of a top-level object: metadata, optional spec/status, extra fields."""
    out = {"metadata": _ref(META)}
    if spec:
        out["spec"] = _ref(spec)
    if status:
        out["status"] = _ref(status)
    out.update(extra)
    return out


def _conditions_status(**extra: PatchField) -> dict[str, PatchField]:
    """A status whose `conditions` merge by `type`."""
    return {"conditions": _merge("type"), **extra}


_CONTAINER_FIELDS = {
    "ports": _merge("containerPort", _CORE + "ContainerPort"),
    "env": _merge("name", _CORE + "EnvVar"),
    "volumeMounts": _merge("mountPath", _CORE + "VolumeMount"),
    "volumeDevices": _merge("devicePath", _CORE + "VolumeDevice"),
    "resources": _ref(_CORE + "ResourceRequirements"),
    "securityContext": _ref(_CORE + "SecurityContext"),
}

_WITH_TEMPLATE = {"template": _ref(POD_TEMPLATE_SPEC)}

DEFINITIONS: dict[str, dict[str, PatchField]] = {
    # --- meta/v1
    META: {
        "ownerReferences": _merge("uid", "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"),
        "finalizers": _merge(),
    },
    # --- core/v1: pods and their parts
    _CORE + "Pod": _object(POD_SPEC, _CORE + "PodStatus"),
    POD_SPEC: {
        "volumes": _merge("name", _CORE + "Volume", "merge,retainKeys"),
        "initContainers": _merge("name", CONTAINER),
        "containers": _merge("name", CONTAINER),
        "ephemeralContainers": _merge("name", EPHEMERAL_CONTAINER),
        "imagePullSecrets": _merge("name", _CORE + "LocalObjectReference"),
        "hostAliases": _merge("ip", _CORE + "HostAlias"),
        "topologySpreadConstraints": _merge("topologyKey", _CORE + "TopologySpreadConstraint"),
        "schedulingGates": _merge("name", _CORE + "PodSchedulingGate"),
        "resourceClaims": _merge("name", _CORE + "PodResourceClaim", "merge,retainKeys"),
        # atomic lists (no patch strategy): tolerations, readinessGates
        "tolerations": PatchField(_CORE + "Toleration"),
        "readinessGates": PatchField(_CORE + "PodReadinessGate"),
        "securityContext": _ref(_CORE + "PodSecurityContext"),
        "affinity": _ref(_CORE + "Affinity"),
        "dnsConfig": _ref(_CORE + "PodDNSConfig"),
    },
    CONTAINER: dict(_CONTAINER_FIELDS),
    EPHEMERAL_CONTAINER: dict(_CONTAINER_FIELDS),
    _CORE + "Volume": {},
    _CORE + "ContainerPort": {},
    _CORE + "EnvVar": {},
    _CORE + "VolumeMount": {},
    _CORE + "ResourceRequirements": {},
    _CORE + "SecurityContext": {},
    _CORE + "PodSecurityContext": {},
    _CORE + "Affinity": {},
    _CORE + "Toleration": {},
    _CORE + "PodStatus": _conditions_status(
        podIPs=_merge("ip", _CORE + "PodIP"),
        hostIPs=_merge("ip", _CORE + "HostIP"),
        resourceClaimStatuses=_merge("name", None, "merge,retainKeys"),
    ),
    POD_TEMPLATE_SPEC: {"metadata": _ref(META), "spec": _ref(POD_SPEC)},
    _CORE + "PodTemplate": _object(template=_ref(POD_TEMPLATE_SPEC)),
    _CORE + "ReplicationController": _object(
        _CORE + "ReplicationControllerSpec", _CORE + "ReplicationControllerStatus"
    ),
    _CORE + "ReplicationControllerSpec": dict(_WITH_TEMPLATE),
    _CORE + "ReplicationControllerStatus": _conditions_status(),
    # --- core/v1: services, nodes, namespaces and the rest
    _CORE + "Service": _object(_CORE + "ServiceSpec", _CORE + "ServiceStatus"),
    _CORE + "ServiceSpec": {"ports": _merge("port", _CORE + "ServicePort")},
    _CORE + "ServicePort": {},
    _CORE + "ServiceStatus": _conditions_status(),
    _CORE + "Node": _object(_CORE + "NodeSpec", _CORE + "NodeStatus"),
    # taints carry no patch strategy: they are replaced wholesale
    _CORE + "NodeSpec": {"podCIDRs": _merge(), "taints": PatchField(_CORE + "Taint")},
    _CORE + "NodeStatus": _conditions_status(addresses=_merge("type", _CORE + "NodeAddress")),
    _CORE + "Namespace": _object(_CORE + "NamespaceSpec", _CORE + "NamespaceStatus"),
    _CORE + "NamespaceSpec": {},
    _CORE + "NamespaceStatus": _conditions_status(),
    _CORE + "ConfigMap": _object(),
    _CORE + "Secret": _object(),
    _CORE + "Endpoints": _object(),
    _CORE + "Event": _object(),
    _CORE + "ServiceAccount": _object(secrets=_merge("name", _CORE + "ObjectReference")),
    _CORE + "PersistentVolumeClaim": _object(
        _CORE + "PersistentVolumeClaimSpec", _CORE + "PersistentVolumeClaimStatus"
    ),
    _CORE + "PersistentVolumeClaimSpec": {},
    _CORE + "PersistentVolumeClaimStatus": _conditions_status(),
    _CORE + "LimitRange": _object(),
    _CORE + "ResourceQuota": _object(),
    # --- apps/v1
    _APPS + "Deployment": _object(_APPS + "DeploymentSpec", _APPS + "DeploymentStatus"),
    _APPS + "DeploymentSpec": {
        **_WITH_TEMPLATE,
        "strategy": PatchField(_APPS + "DeploymentStrategy", RETAIN_KEYS),
    },
    _APPS + "DeploymentStrategy": {},
    _APPS + "DeploymentStatus": _conditions_status(),
    _APPS + "ReplicaSet": _object(_APPS + "ReplicaSetSpec", _APPS + "ReplicaSetStatus"),
    _APPS + "ReplicaSetSpec": dict(_WITH_TEMPLATE),
    _APPS + "ReplicaSetStatus": _conditions_status(),
    _APPS + "StatefulSet": _object(_APPS + "StatefulSetSpec", _APPS + "StatefulSetStatus"),
    _APPS + "StatefulSetSpec": {
        **_WITH_TEMPLATE,
        "volumeClaimTemplates": PatchField(_CORE + "PersistentVolumeClaim"),
    },
    _APPS + "StatefulSetStatus": _conditions_status(),
    _APPS + "DaemonSet": _object(_APPS + "DaemonSetSpec", _APPS + "DaemonSetStatus"),
    _APPS + "DaemonSetSpec": dict(_WITH_TEMPLATE),
    _APPS + "DaemonSetStatus": _conditions_status(),
    _APPS + "ControllerRevision": _object(),
    # --- batch/v1
    _BATCH + "Job": _object(JOB_SPEC, _BATCH + "JobStatus"),
    JOB_SPEC: dict(_WITH_TEMPLATE),
    _BATCH + "JobStatus": _conditions_status(),
    _BATCH + "CronJob": _object(_BATCH + "CronJobSpec", _BATCH + "CronJobStatus"),
    _BATCH + "CronJobSpec": {"jobTemplate": _ref(_BATCH + "JobTemplateSpec")},
    _BATCH + "JobTemplateSpec": {"metadata": _ref(META), "spec": _ref(JOB_SPEC)},
    _BATCH + "CronJobStatus": {},
    # --- other groups: only metadata (and status conditions) matter
    "io.k8s.api.coordination.v1.Lease": _object(),
    "io.k8s.api.discovery.v1.EndpointSlice": _object(),
    "io.k8s.api.events.v1.Event": _object(),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler": _object(
        status="io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"
    ),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus": _conditions_status(),
    "io.k8s.api.policy.v1.PodDisruptionBudget": _object(status="io.k8s.api.policy.v1.PodDisruptionBudgetStatus"),
    "io.k8s.api.policy.v1.PodDisruptionBudgetStatus": _conditions_status(),
    "io.k8s.api.networking.v1.Ingress": _object(),
    "io.k8s.api.networking.v1.NetworkPolicy": _object(),
}


def is_known(definition: str | None) -> bool:
    """True when `definition` has patch metadata here."""
    return definition in DEFINITIONS


def fields(definition: str | None) -> Mapping[str, PatchField]:
    """The patch metadata of every special field of `definition` (empty if unknown)."""
    return DEFINITIONS.get(definition or "", {})


def lookup(definition: str | None, field: str) -> PatchField:
    """Patch metadata of `field` in `definition`; the default (merge maps, replace lists) if unknown."""
    return fields(definition).get(field, DEFAULT)
