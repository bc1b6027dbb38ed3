"""Conversion between core/v1 Event (the stored shape) and events.k8s.io/v1 Event."""

from __future__ import annotations

from typing import Any

# events.k8s.io/v1 field -> core/v1 field (same value)
_RENAMED = {"regarding": "involvedObject", "note": "message", "reportingController": "reportingComponent",
            "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
            "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def to_events_v1(core: dict[str, Any]) -> dict[str, Any]:
    """A stored core/v1 Event as events.k8s.io/v1 shows it."""
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for k in _SAME:
        if k in core:
            out[k] = core[k]
    for new, old in _RENAMED.items():
        if core.get(old) not in (None, {}, ""):
            out[new] = core[old]
    return out


def to_core(ev: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in the stored core/v1 shape."""
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "v1"}
    for k in _SAME:
        if k in ev:
            out[k] = ev[k]
    for new, old in _RENAMED.items():
        if new in ev:
            out[old] = ev[new]
    out.setdefault("involvedObject", {})
    return out
