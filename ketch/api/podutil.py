"""Pod helpers shared by the apiserver, scheduler and node agent."""

from __future__ import annotations

from typing import Any


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, by Kubernetes' rules (cpu and memory only)."""
    from .quantity import parse_quantity

    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        for r in ("cpu", "memory"):
            if r in req or r in lim:
                any_set = True
            if r not in lim:
                guaranteed = False
                continue
            if r in req:
                try:
                    if parse_quantity(req[r]) != parse_quantity(lim[r]):
                        guaranteed = False
                except ValueError:
                    guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def referenced_objects(pod: dict) -> set[tuple[str, str]]:
    """(configmaps|secrets, name) of every object the pod's volumes and env read."""
    spec = pod.get("spec") or {}
    refs: set[tuple[str, str]] = set()
    for v in spec.get("volumes") or ():
        if "configMap" in v:
            refs.add(("configmaps", (v["configMap"] or {}).get("name") or ""))
        if "secret" in v:
            refs.add(("secrets", (v["secret"] or {}).get("secretName") or ""))
        for src in ((v.get("projected") or {}).get("sources") or ()):
            if "configMap" in src:
                refs.add(("configmaps", (src["configMap"] or {}).get("name") or ""))
            if "secret" in src:
                refs.add(("secrets", (src["secret"] or {}).get("name") or ""))
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for src in c.get("envFrom") or ():
            if src.get("configMapRef"):
                refs.add(("configmaps", src["configMapRef"].get("name") or ""))
            if src.get("secretRef"):
                refs.add(("secrets", src["secretRef"].get("name") or ""))
        for e in c.get("env") or ():
            vf = e.get("valueFrom") or {}
            if vf.get("configMapKeyRef"):
                refs.add(("configmaps", vf["configMapKeyRef"].get("name") or ""))
            if vf.get("secretKeyRef"):
                refs.add(("secrets", vf["secretKeyRef"].get("name") or ""))
    return refs
