"""Server-side apply: field sets, merge by list/map semantics, pruning and conflicts.

Schemas come from the built-in OpenAPI definitions (`x-kubernetes-list-type`,
`x-kubernetes-list-map-keys`, patch merge keys); a definition ketch does not know is
treated as a granular map whose lists are atomic. Field sets are Python sets of paths,
each path a tuple of FieldsV1 elements (`f:name`, `k:{"name":"x"}`, `v:"a"`); a path in
the set is owned. `encode`/`decode` convert to and from the FieldsV1 JSON shape.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from .openapi import get_definition

Path = tuple[str, ...]
FieldSet = set[Path]

_SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
              "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
_TOP_SKIP = {"apiVersion", "kind"}
META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Structs Kubernetes marks `+structType=atomic` (the bundled schemas omit x-kubernetes-map-type).
_ATOMIC_STRUCTS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
}
# Defaults of list-map key fields (a key left out of an applied item takes its default).
_KEY_DEFAULTS = {"protocol": "TCP"}


@dataclass
class Node:
    """The merge semantics of one schema position."""

    kind: str                                  # struct | map | list | scalar | atomic
    definition: str | None = None              # struct: its definition (fields resolved lazily)
    elem: Node | None = None                   # map values / list items
    list_type: str = "atomic"                  # list: map | set | atomic
    keys: tuple[str, ...] = ()
    _fields: dict[str, Node] | None = field(default=None, repr=False)

    def child(self, name: str) -> Node:
        """The node of field or map key `name`."""
        if self.kind == "map":
            return self.elem or ANY
        if self.kind != "struct":
            return ANY
        if self._fields is None:
            self._fields = _struct_fields(self.definition)
        return self._fields.get(name) or ANY


ANY = Node("map")                               # unknown: granular map, atomic lists
ANY.elem = ANY
_nodes: dict[str, Node] = {}


def _ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    if ref is None:
        for s in schema.get("allOf") or ():
            if "$ref" in s:
                ref = s["$ref"]
    return ref.rsplit("/", 1)[-1] if ref else None


def node_for(definition: str | None) -> Node:
    """The node of a whole definition (ANY when unknown)."""
    if not definition:
        return ANY
    n = _nodes.get(definition)
    if n is None:
        schema = get_definition(definition)
        if schema is None:
            n = ANY
        elif definition in _ATOMIC_STRUCTS or schema.get("x-kubernetes-map-type") == "atomic":
            n = Node("atomic")
        elif schema.get("properties"):
            n = Node("struct", definition)
        elif schema.get("type") == "object" and not schema.get("additionalProperties"):
            n = ANY
        else:
            n = _node(schema)
        _nodes[definition] = n
    return n


def _node(schema: dict) -> Node:
    name = _ref_name(schema)
    if name:
        return node_for(name)
    typ = schema.get("type")
    if typ == "array":
        items = _node(schema.get("items") or {})
        lt = schema.get("x-kubernetes-list-type")
        keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        if lt is None:
            strategy = schema.get("x-kubernetes-patch-strategy", "")
            mk = schema.get("x-kubernetes-patch-merge-key")
            if "merge" in strategy.split(","):
                lt, keys = ("map", (mk,)) if mk else ("set", ())
            else:
                lt = "atomic"
        if lt == "map" and not keys:
            lt = "atomic"
        return Node("list", elem=items, list_type=lt, keys=keys)
    if typ == "object" or "additionalProperties" in schema:
        if schema.get("x-kubernetes-map-type") == "atomic":
            return Node("atomic")
        ap = schema.get("additionalProperties")
        return Node("map", elem=_node(ap) if isinstance(ap, dict) else ANY)
    return Node("scalar")


def _struct_fields(definition: str | None) -> dict[str, Node]:
    schema = get_definition(definition or "") or {}
    return {k: _node(v) for k, v in (schema.get("properties") or {}).items()}


# -- path elements ------------------------------------------------------------------------------

def item_key(item: Any, node: Node) -> str | None:
    """The FieldsV1 element of one list item (None when it cannot be keyed)."""
    if node.list_type == "set":
        return None if isinstance(item, dict | list) else "v:" + orjson.dumps(item).decode()
    if node.list_type != "map" or not isinstance(item, dict):
        return None
    key = {}
    for k in node.keys:
        if k in item:
            key[k] = item[k]
        elif k in _KEY_DEFAULTS:
            key[k] = _KEY_DEFAULTS[k]
    if not key:
        return None
    return "k:" + orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


def path_string(path: Path) -> str:
    """A path as Kubernetes prints it: `.spec.template.spec.containers[name="nginx"].image`."""
    out = []
    for pe in path:
        kind, val = pe[:2], pe[2:]
        if kind == "f:":
            out.append("." + val)
        elif kind == "k:":
            key = orjson.loads(val)
            out.append("[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in key.items()) + "]")
        elif kind == "v:":
            out.append("[=" + val + "]")
        else:
            out.append("[" + val + "]")
    return "".join(out)


# -- FieldsV1 encoding --------------------------------------------------------------------------

def decode(fields: Any) -> FieldSet:
    """A FieldsV1 dict as a set of owned paths."""
    out: FieldSet = set()

    def walk(d: dict, prefix: Path) -> None:
        for k, v in d.items():
            if k == ".":
                out.add(prefix)
                continue
            p = prefix + (k,)
            if isinstance(v, dict) and v:
                walk(v, p)
            else:
                out.add(p)
    if isinstance(fields, dict):
        walk(fields, ())
    out.discard(())
    return out


def encode(fs: FieldSet) -> dict:
    """A set of owned paths in the FieldsV1 shape (`.` marks an owned container)."""
    root: dict = {}
    for p in sorted(fs, key=len):
        d = root
        for pe in p[:-1]:
            nxt = d.get(pe)
            if nxt is None:
                nxt = d[pe] = {}
            elif not nxt and pe in d:
                # an owned leaf that turns out to have children
                nxt["."] = {}
            d = nxt
        last = p[-1]
        if last in d:
            if d[last]:
                d[last]["."] = {}
        else:
            d[last] = {}
    return _sorted(root)


def _sorted(d: dict) -> dict:
    return {k: _sorted(d[k]) for k in sorted(d, key=lambda k: (k != ".", k))}


# -- field sets of values -----------------------------------------------------------------------

def strip(obj: dict) -> dict:
    """obj without the fields nobody owns (apiVersion, kind, server-set metadata)."""
    out = {k: v for k, v in obj.items() if k not in _TOP_SKIP}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _SKIP_META}
        if meta:
            out["metadata"] = meta
        else:
            out.pop("metadata")
    return out


def to_set(value: Any, node: Node, prefix: Path = ()) -> FieldSet:
    """Every path set in value (the applied configuration's field set)."""
    out: FieldSet = set()
    _collect(value, node, prefix, out)
    out.discard(())
    return out


def _collect(v: Any, node: Node, path: Path, out: FieldSet) -> None:
    if v is None:
        return
    if isinstance(v, dict) and node.kind in ("struct", "map"):
        if not v or node.kind == "map":
            out.add(path)
        for k, cv in v.items():
            _collect(cv, node.child(k), path + ("f:" + k,), out)
        return
    if isinstance(v, list) and node.kind == "list" and node.list_type != "atomic":
        if not v:
            out.add(path)
        elem = node.elem or ANY
        for item in v:
            key = item_key(item, node)
            if key is None:
                continue
            out.add(path + (key,))
            if node.list_type == "map":
                _collect_fields(item, elem, path + (key,), out)
        return
    out.add(path)


def _collect_fields(item: dict, node: Node, path: Path, out: FieldSet) -> None:
    for k, cv in item.items():
        _collect(cv, node.child(k), path + ("f:" + k,), out)


def object_set(obj: dict, definition: str | None) -> FieldSet:
    """The field set of a whole object (metadata and type fields left out as Kubernetes does)."""
    return to_set(strip(obj), root_node(definition))


def root_node(definition: str | None) -> Node:
    """The node of a top-level object: its struct, with metadata typed as ObjectMeta."""
    n = node_for(definition)
    return n if n.kind == "struct" else Node("struct", definition)


def compare(old: Any, new: Any, node: Node, path: Path = ()) -> tuple[FieldSet, FieldSet]:
    """(changed or added paths, removed paths) going from old to new."""
    changed: FieldSet = set()
    removed: FieldSet = set()
    _cmp(old, new, node, path, changed, removed)
    changed.discard(())
    removed.discard(())
    return changed, removed


def _cmp(old: Any, new: Any, node: Node, path: Path, changed: FieldSet, removed: FieldSet) -> None:
    if old == new:
        return
    if old is None:
        _collect(new, node, path, changed)
        return
    if new is None:
        _collect(old, node, path, removed)
        return
    if isinstance(old, dict) and isinstance(new, dict) and node.kind in ("struct", "map"):
        for k, nv in new.items():
            _cmp(old.get(k), nv, node.child(k), path + ("f:" + k,), changed, removed)
        for k, ov in old.items():
            if k not in new:
                _collect(ov, node.child(k), path + ("f:" + k,), removed)
        if not new:
            changed.add(path)       # now an empty (owned) container
        return
    if isinstance(old, list) and isinstance(new, list) and node.kind == "list" and node.list_type != "atomic":
        elem = node.elem or ANY
        olds = {item_key(i, node): i for i in old}
        news = {item_key(i, node): i for i in new}
        olds.pop(None, None)
        news.pop(None, None)
        for k, ni in news.items():
            p = path + (k,)
            if k not in olds:
                changed.add(p)
                if node.list_type == "map":
                    _collect_fields(ni, elem, p, changed)
            elif node.list_type == "map":
                _cmp(olds[k], ni, elem, p, changed, removed)
        for k, oi in olds.items():
            if k not in news:
                p = path + (k,)
                removed.add(p)
                if node.list_type == "map":
                    _collect_fields(oi, elem, p, removed)
        return
    changed.add(path)


# -- merge and prune ----------------------------------------------------------------------------

def merge(live: Any, config: Any, node: Node) -> Any:
    """live with config merged in by the schema's list and map semantics."""
    if config is None:
        return None
    if isinstance(config, dict) and isinstance(live, dict) and node.kind in ("struct", "map"):
        out = dict(live)
        for k, cv in config.items():
            if cv is None:
                out.pop(k, None)
            else:
                out[k] = merge(live.get(k), cv, node.child(k))
        return out
    if isinstance(config, list) and isinstance(live, list) and node.kind == "list" and node.list_type != "atomic":
        elem = node.elem or ANY
        lives = {}
        for i in live:
            k = item_key(i, node)
            if k is not None:
                lives[k] = i
        out_list = []
        seen = set()
        for item in config:
            k = item_key(item, node)
            if k is not None and k in seen:
                continue
            seen.add(k)
            if k is not None and k in lives and node.list_type == "map":
                out_list.append(merge(lives[k], item, elem))
            else:
                out_list.append(copy.deepcopy(item))
        for i in live:
            k = item_key(i, node)
            if k is None or k not in seen:
                out_list.append(i)
        return out_list
    return copy.deepcopy(config)


def owned_below(sets: list[FieldSet], path: Path) -> bool:
    """True when one of sets owns path or something under it."""
    n = len(path)
    return any(p[:n] == path for s in sets for p in s)


def remove_path(obj: Any, path: Path, node: Node) -> bool:
    """Delete the value at path from obj (in place); True when something was removed."""
    if not path:
        return False
    pe, rest = path[0], path[1:]
    if isinstance(obj, dict) and pe.startswith("f:"):
        name = pe[2:]
        if name not in obj:
            return False
        if not rest:
            del obj[name]
            return True
        child = obj[name]
        done = remove_path(child, rest, node.child(name))
        if done and isinstance(child, dict | list) and not child:
            del obj[name]
        return done
    if isinstance(obj, list) and node.kind == "list":
        for i, item in enumerate(obj):
            if item_key(item, node) == pe:
                if not rest:
                    del obj[i]
                    return True
                return remove_path(item, rest, node.elem or ANY)
    return False


def prune(obj: dict, last: FieldSet, applied: FieldSet, others: list[FieldSet], node: Node) -> dict:
    """Remove what the manager applied last time, omits now, and nobody else owns."""
    keep = [applied, *others]
    for p in sorted(last - applied, key=len):
        if not owned_below(keep, p):
            remove_path(obj, p, node)
    return obj


# -- one apply ----------------------------------------------------------------------------------

def applied_set(config: dict, definition: str | None, subresource: str = "") -> FieldSet:
    """The fields an apply request sets, without the ones its endpoint resets."""
    fs = object_set(config, definition)
    if subresource == "status":
        return {p for p in fs if p[0] == "f:status"}
    if "status" in (_struct_fields(definition) if definition else {}):
        return {p for p in fs if p[0] != "f:status"}
    return fs


def entry_matches(e: dict, manager: str, operation: str, subresource: str) -> bool:
    """True when a managedFields entry is this manager's entry for this operation."""
    return e.get("manager") == manager and e.get("operation") == operation and \
        (e.get("subresource") or "") == subresource


def apply_config(live: dict, config: dict, manager: str, definition: str | None,
                 subresource: str = "") -> dict:
    """live with the applied config merged in and the manager's dropped fields pruned."""
    config = dict(config)
    meta = dict(config.get("metadata") or {})
    meta.pop("managedFields", None)
    config["metadata"] = meta
    node = root_node(definition)
    merged = merge(live, config, node)
    entries = (live.get("metadata") or {}).get("managedFields") or []
    last: FieldSet = set()
    others: list[FieldSet] = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        if entry_matches(e, manager, "Apply", subresource):
            last = decode(e.get("fieldsV1"))
        else:
            others.append(decode(e.get("fieldsV1")))
    if last:
        prune(merged, last, applied_set(config, definition, subresource), others, node)
    return merged


def manager_label(e: dict) -> str:
    """How Kubernetes names a manager in a conflict message."""
    s = orjson.dumps(e.get("manager", "")).decode()
    if e.get("subresource"):
        s += f' with subresource {orjson.dumps(e["subresource"]).decode()}'
    if e.get("operation") == "Update":
        s += f' using {e.get("apiVersion", "")}'
    return s


def conflict_message(conflicts: list[tuple[dict, Path]]) -> str:
    """`Apply failed with N conflicts: ...` as the Kubernetes apiserver words it."""
    if len(conflicts) == 1:
        e, p = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager_label(e)}: {path_string(p)}"
    by: dict[str, list[Path]] = {}
    for e, p in conflicts:
        by.setdefault(manager_label(e), []).append(p)
    lines = []
    for m in sorted(by):
        lines.append(f"conflicts with {m}:")
        lines.extend(f"- {path_string(p)}" for p in by[m])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def object_fields_v1(obj: dict, definition: str | None) -> dict:
    """encode(object_set(obj, definition)), built in one pass (the hot path of every create).

    The entries of large top-level values (a pod's spec) are remembered by their encoding: the
    pods of one workload share their spec, so most creates find theirs already computed."""
    node = root_node(definition)
    fields = node._fields
    if fields is None:
        fields = node._fields = _struct_fields(node.definition)
    children: dict = {}
    for k, v in strip(obj).items():
        t = type(v)
        if t is dict or t is list:
            e = _entry(v, fields.get(k) or ANY) if k == "metadata" else _memo_entry(definition, k, v,
                                                                                   fields.get(k) or ANY)
            if e is None:
                continue
        elif v is None:
            continue
        else:
            e = {}
        children["f:" + k] = e
    if len(children) > 1:
        children = {k: children[k] for k in sorted(children)}
    return children


_SUBTREES: dict[tuple, dict | None] = {}
_SUBTREE_MIN = 256          # bytes: smaller values are walked faster than looked up
_SUBTREE_MAX_ENTRIES = 2048
_MISSING = object()


def _memo_entry(definition: str | None, field: str, v: Any, node: Node) -> dict | None:
    """_entry of a top-level value, remembered by its encoding. The entry is shared by every object
    it is computed for (copying it costs as much as computing it): like the objects of the watch
    cache it holds, it is never changed in place — writers change copies (Entry.copy)."""
    try:
        raw = orjson.dumps(v)
    except TypeError:
        return _entry(v, node)
    if len(raw) < _SUBTREE_MIN:
        return _entry(v, node)
    key = (definition, field, raw)
    e = _SUBTREES.get(key, _MISSING)
    if e is not _MISSING:
        return e    # type: ignore[return-value]
    e = _entry(v, node)
    if len(_SUBTREES) >= _SUBTREE_MAX_ENTRIES:
        _SUBTREES.clear()
    _SUBTREES[key] = e
    return e


def _entry(v: Any, node: Node) -> dict | None:
    """The FieldsV1 entry of one value: None when it contributes nothing.

    Scalars are handled in the loops of their parent (no call, no schema lookup): they are most
    of an object's fields, and this runs on every create.
    """
    t = type(v)
    kind = node.kind
    children: dict | None = None
    if t is dict and (kind == "struct" or kind == "map"):
        if kind == "map":
            owned = True
            elem = node.elem or ANY
            fields = None
        else:
            owned = not v
            elem = ANY
            fields = node._fields
            if fields is None:
                fields = node._fields = _struct_fields(node.definition)
        for k, cv in v.items():
            ct = type(cv)
            if ct is dict or ct is list:
                e = _entry(cv, elem if fields is None else (fields.get(k) or ANY))
                if e is None:
                    continue
            elif cv is None:
                continue
            else:
                e = {}
            if children is None:
                children = {}
            children["f:" + k] = e
    elif t is list and kind == "list" and node.list_type != "atomic":
        owned = not v
        elem = node.elem or ANY
        is_map = node.list_type == "map"
        for item in v:
            key = item_key(item, node)
            if key is None:
                continue
            if children is None:
                children = {}
            if is_map:
                e = _entry(item, elem if elem.kind == "struct" or elem.kind == "map" else ANY)
                if e:
                    e.pop(".", None)
                children[key] = {".": {}, **e} if e else {}
            else:
                children[key] = {}
    else:
        return {}
    if children is None:
        return {} if owned else None
    if len(children) > 1:
        children = {k: children[k] for k in sorted(children)}
    return {".": {}, **children} if owned else children
