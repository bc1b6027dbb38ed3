"""metadata.managedFields: which manager set which fields (FieldsV1 sets), recorded on every write.

A field set is a nested dict in the FieldsV1 shape: `f:<name>` for fields and map keys,
`k:{"name":"c"}` for items of lists merged by key, `v:"x"` for items of set-like lists,
`.` for a container that is itself owned. Updates give a manager the fields its write
changed (taking them from other managers); an apply gives it exactly the fields it applied.
This is the bookkeeping only: apply's conflict detection and field removal come with
server-side apply proper.
"""

from __future__ import annotations

from typing import Any

import orjson

from .meta import now_rfc3339
from .patchmeta import fields, lookup

FieldSet = dict[str, Any]
_SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
              "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
_TOP_SKIP = {"apiVersion", "kind"}


def _item_key(item: Any, merge_key: str) -> str | None:
    if merge_key and isinstance(item, dict) and merge_key in item:
        return f'k:{{"{merge_key}":{orjson.dumps(item[merge_key]).decode()}}}'
    return None


_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# definition -> field -> (child definition, merged list?, merge key), built once per definition
_compiled: dict[str | None, dict[str, tuple[str | None, bool, str]]] = {}


def _fields_of(definition: str | None) -> dict[str, tuple[str | None, bool, str]]:
    c = _compiled.get(definition)
    if c is None:
        c = _compiled[definition] = {k: (pf.ref, pf.is_merge, pf.merge_key) for k, pf in fields(definition).items()}
    return c


def field_set(obj: Any, definition: str | None, top: bool = True) -> FieldSet:
    """Every field set in obj, as a FieldsV1 set."""
    if not isinstance(obj, dict):
        return {}
    if not top:
        return _fs(obj, definition)
    out: FieldSet = {}
    rest = {}
    for k, v in obj.items():
        if k in _TOP_SKIP:
            continue
        if k == "metadata" and isinstance(v, dict):
            sub = _fs({mk: mv for mk, mv in v.items() if mk not in _SKIP_META}, _META_DEF)
            for mk in ("f:labels", "f:annotations"):
                if mk in sub:
                    sub[mk]["."] = {}
            if sub:
                out["f:metadata"] = sub
            continue
        rest[k] = v
    out.update(_fs(rest, definition))
    return out


def _fs(obj: dict, definition: str | None) -> FieldSet:
    meta = _fields_of(definition)
    out: FieldSet = {}
    for k, v in obj.items():
        t = type(v)
        if t is dict:
            info = meta.get(k)
            out["f:" + k] = _fs(v, info[0] if info else None)
        elif t is list and (info := meta.get(k)) is not None and info[1]:
            ref, _, mk = info
            items: FieldSet = {}
            for item in v:
                key = _item_key(item, mk)
                if key is not None:
                    child = _fs(item, ref)
                    child["."] = {}
                    items[key] = child
                elif not isinstance(item, dict | list):
                    items["v:" + orjson.dumps(item).decode()] = {}
            out["f:" + k] = items
        else:
            out["f:" + k] = {}
    return out


def changed_set(old: Any, new: Any, definition: str | None, top: bool = True) -> FieldSet:
    """The fields whose value in `new` differs from `old` (added or changed)."""
    if not isinstance(new, dict):
        return {}
    if not isinstance(old, dict):
        return field_set(new, definition, top)
    out: FieldSet = {}
    for k, v in new.items():
        if top and k in _TOP_SKIP:
            continue
        ov = old.get(k)
        if ov == v:
            continue
        if top and k == "metadata":
            meta_new = {mk: mv for mk, mv in v.items() if mk not in _SKIP_META}
            meta_old = {mk: mv for mk, mv in (ov or {}).items() if mk not in _SKIP_META}
            sub = changed_set(meta_old, meta_new, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", top=False)
            if sub:
                out["f:metadata"] = sub
            continue
        pf = lookup(definition, k)
        if isinstance(v, dict) and isinstance(ov, dict):
            sub = changed_set(ov, v, pf.ref, top=False)
            if sub:
                out[f"f:{k}"] = sub
        elif isinstance(v, list) and isinstance(ov, list) and pf.is_merge and pf.merge_key:
            olds = {_item_key(i, pf.merge_key): i for i in ov}
            items: FieldSet = {}
            for item in v:
                key = _item_key(item, pf.merge_key)
                if key is None:
                    continue
                sub = changed_set(olds.get(key), item, pf.ref, top=False)
                if sub:
                    if key not in olds:
                        sub["."] = {}
                    items[key] = sub
            if items:
                out[f"f:{k}"] = items
        else:
            out[f"f:{k}"] = field_set(v, pf.ref, top=False) if isinstance(v, dict) else {}
    return out


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    out = dict(a)
    for k, v in b.items():
        out[k] = union(out[k], v) if k in out else v
    return out


def subtract(a: FieldSet, b: FieldSet) -> FieldSet:
    """a without the leaves in b (a container stays while it has other members)."""
    out: FieldSet = {}
    for k, v in a.items():
        if k not in b:
            out[k] = v
            continue
        if not v or not b[k]:
            continue        # a leaf owned by b
        rest = subtract(v, b[k])
        if rest and set(rest) != {"."}:
            out[k] = rest
    return out


def record(new: dict, old: dict | None, manager: str, operation: str, definition: str | None,
           applied: dict | None = None, subresource: str = "") -> None:
    """Update new.metadata.managedFields for one write (in place)."""
    meta = new.setdefault("metadata", {})
    entries = [dict(e) for e in (old or {}).get("metadata", {}).get("managedFields") or []] if old else []
    if applied is not None:
        mine = field_set(applied, definition)
    elif old is None:
        mine = field_set(new, definition)
    else:
        mine = changed_set(old, new, definition)
        if not mine:
            meta["managedFields"] = entries or meta.get("managedFields") or []
            if not meta["managedFields"]:
                meta.pop("managedFields")
            return
    api_version = new.get("apiVersion", "")
    kept = []
    found = False
    for e in entries:
        if e.get("manager") == manager and e.get("operation") == operation and \
                e.get("subresource", "") == subresource:
            fs = mine if applied is not None else union(e.get("fieldsV1") or {}, mine)
            e.update({"apiVersion": api_version, "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fs})
            found = True
            kept.append(e)
            continue
        rest = subtract(e.get("fieldsV1") or {}, mine)
        if rest:
            e["fieldsV1"] = rest
            kept.append(e)
    if not found:
        e = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now_rfc3339(),
             "fieldsType": "FieldsV1", "fieldsV1": mine}
        if subresource:
            e["subresource"] = subresource
        kept.append(e)
    meta["managedFields"] = kept


def manager_from_user_agent(ua: str) -> str:
    """Kubernetes' default field manager: the user agent up to its first '/'."""
    return (ua.split("/", 1)[0] or "unknown")[:128]
