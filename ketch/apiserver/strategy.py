"""Per-kind behaviour the registry points at: status resets, generation, graceful deletion.

Kept as small functions keyed by kind so a new resource adds an entry, not a code path.
"""

from __future__ import annotations

from typing import Any

from ..api.podutil import qos_class

# Kinds whose metadata.generation tracks spec changes.
GENERATION_KINDS = {"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                    "HorizontalPodAutoscaler", "Service"}

# Kinds whose status is reset on create (the status subresource owns it).
RESET_STATUS_ON_CREATE = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service",
                          "HorizontalPodAutoscaler"}


_QOS: dict[int, tuple[dict, str]] = {}


def _qos_of(spec: dict[str, Any]) -> str:
    """qos_class, remembered for the pod specs that creates share (apply_defaults(shared=True) hands
    the pods of one workload the same spec object, never changed in place): keyed by identity, the
    spec kept alive by the entry so its id is not reused."""
    hit = _QOS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    q = qos_class(spec)
    if len(_QOS) >= 1024:
        _QOS.clear()
    _QOS[id(spec)] = (spec, q)
    return q


def prepare_for_create(kind: str, obj: dict[str, Any]) -> None:
    """Server-owned fields of a new object."""
    if kind in RESET_STATUS_ON_CREATE:
        obj["status"] = {}
        if kind == "Service":
            obj["status"] = {"loadBalancer": {}}
    elif kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": _qos_of(obj.get("spec") or {})}
    elif kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    if kind in GENERATION_KINDS:
        obj["metadata"]["generation"] = 1


def spec_of(obj: dict[str, Any]) -> Any:
    """What counts as 'spec' for generation bumps: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def default_grace_seconds(kind: str, obj: dict[str, Any]) -> int:
    """Grace period of a delete without gracePeriodSeconds (pods on a node wait for their kubelet)."""
    if kind != "Pod":
        return 0
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    g = spec.get("terminationGracePeriodSeconds")
    return 30 if g is None else int(g)


def graceful_kind(kind: str) -> bool:
    return kind == "Pod"
