"""metadata.managedFields: which manager owns which fields (FieldsV1), recorded on every write.

An Update gives its manager the fields it changed and takes them from everyone else; an
Apply gives its manager exactly the fields it applied, and a changed field another manager
owns is a conflict (409) unless the apply is forced, which moves the ownership. Fields a
write removes leave every manager's set. The set arithmetic lives in `apply`.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .apply import (
    FieldSet,
    applied_set,
    compare,
    conflict_message,
    decode,
    encode,
    entry_matches,
    manager_label,
    object_fields_v1,
    object_set,
    path_string,
    root_node,
    strip,
)
from .meta import now_rfc3339


def valid_entries(entries: Any) -> bool:
    """True for a non-empty list of managedFields entries (a write that sets them keeps them)."""
    return isinstance(entries, list) and bool(entries) and \
        all(isinstance(e, dict) and isinstance(e.get("manager"), str) for e in entries)


def _under(p: tuple, removed: FieldSet) -> bool:
    return bool(removed) and any(p[:i] in removed for i in range(1, len(p) + 1))


def record(new: dict, old: dict | None, manager: str, operation: str, definition: str | None,
           applied: dict | None = None, subresource: str = "", force: bool = False) -> None:
    """Update new.metadata.managedFields for one write (in place); 409 on apply conflicts."""
    meta = new.setdefault("metadata", {})
    base = meta.get("managedFields")
    if not valid_entries(base) or subresource:
        base = ((old or {}).get("metadata") or {}).get("managedFields") or []
    entries = [dict(e) for e in base if isinstance(e, dict)]
    if old is None and operation != "Apply" and not entries:
        # A create: the manager owns every field of the new object (one pass, no path sets).
        fields = object_fields_v1(new, definition)
        if fields:
            e = {"manager": manager, "operation": operation, "apiVersion": new.get("apiVersion", ""),
                 "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields}
            if subresource:
                e["subresource"] = subresource
            meta["managedFields"] = [e]
        else:
            meta.pop("managedFields", None)
        return
    if old is None:
        changed, removed = object_set(new, definition), set()
    else:
        changed, removed = compare(strip(old), strip(new), root_node(definition))
    if operation != "Apply" and not changed and not removed:
        if entries:
            meta["managedFields"] = entries
        else:
            meta.pop("managedFields", None)
        return
    mine: FieldSet
    if operation == "Apply":
        mine = applied_set(applied or {}, definition, subresource)
        conflicts = []
        for e in entries:
            if entry_matches(e, manager, operation, subresource):
                continue
            conflicts.extend((e, p) for p in sorted(decode(e.get("fieldsV1")) & changed))
        if conflicts and not force:
            raise errors.StatusError(409, "Conflict", conflict_message(conflicts), {
                "causes": [{"reason": "FieldManagerConflict", "message": f"conflict with {manager_label(e)}",
                            "field": path_string(p)} for e, p in conflicts]})
    api_version = new.get("apiVersion", "")
    kept = []
    found = False
    for e in entries:
        fs = decode(e.get("fieldsV1"))
        if entry_matches(e, manager, operation, subresource):
            found = True
            if operation == "Apply":
                rest = mine
            else:
                rest = {p for p in fs | changed if not _under(p, removed)}
            if rest != fs or changed:
                e.update({"apiVersion": api_version, "time": now_rfc3339(), "fieldsType": "FieldsV1",
                          "fieldsV1": encode(rest)})
        else:
            rest = {p for p in fs - changed if not _under(p, removed)}
            if rest != fs:
                e["fieldsV1"] = encode(rest)
        if rest:
            kept.append(e)
    if not found:
        own = mine if operation == "Apply" else changed
        if own:
            e = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now_rfc3339(),
                 "fieldsType": "FieldsV1", "fieldsV1": encode(own)}
            if subresource:
                e["subresource"] = subresource
            kept.append(e)
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def manager_from_user_agent(ua: str) -> str:
    """Kubernetes' default field manager: the user agent up to its first '/'."""
    return (ua.split("/", 1)[0] or "unknown")[:128]
