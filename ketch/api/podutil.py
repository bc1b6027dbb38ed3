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
