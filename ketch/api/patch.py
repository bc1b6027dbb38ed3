"""PATCH semantics: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch.

All functions are pure: they never mutate their arguments and raise `PatchError`
(carrying the HTTP status to answer) for patches that cannot be applied.

Strategic merge patch follows Kubernetes (k8s.io/apimachinery strategicpatch, as used
by the apiserver with parallel-list merging on and unmatched nulls ignored): maps merge
recursively, ``null`` deletes, lists merge by their ``patchMergeKey`` when the field has
``patchStrategy: merge`` (see `ketch.api.patchmeta`), other lists are replaced, and the
directives ``$patch``, ``$retainKeys``, ``$setElementOrder/<f>`` and
``$deleteFromPrimitiveList/<f>`` are honoured and never left in the result.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ketch.api import patchmeta
from ketch.api.patchmeta import PatchField

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]


class PatchError(ValueError):
    """A patch that cannot be applied.

    ``code`` is the HTTP status the apiserver should answer: 400 for a malformed patch,
    422 for a failed ``test`` op, a path that does not exist or an invalid result.
    """

    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code


def _short(value: Any, limit: int = 200) -> str:
    """Compact JSON rendering of `value` for error messages."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_equal(a: Any, b: Any) -> bool:
    """JSON value equality (numbers by value, booleans distinct from numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------------------
# JSON patch (RFC 6902)

_OPS = {"add", "remove", "replace", "move", "copy", "test"}
_INDEX = re.compile(r"0|[1-9][0-9]*")


def _parse_pointer(pointer: Any, what: str = "path") -> list[str]:
    """Split an RFC 6901 JSON pointer into unescaped reference tokens."""
    if not isinstance(pointer, str):
        raise PatchError(f"invalid JSON patch: {what} must be a string, got {_short(pointer)}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'invalid JSON pointer {pointer!r}: must be empty or start with "/"')
    tokens = []
    for raw in pointer[1:].split("/"):
        if re.search(r"~(?![01])", raw):
            raise PatchError(f"invalid JSON pointer {pointer!r}: bad escape in {raw!r}")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _missing(op: str, path: str) -> PatchError:
    return PatchError(f'{op} operation does not apply: doc is missing path: "{path}"', 422)


def _list_index(container: list, token: str, op: str, path: str, allow_end: bool = False) -> int:
    """Resolve `token` to an index of `container` (len() allowed for inserts)."""
    if token == "-" and allow_end:
        return len(container)
    if not _INDEX.fullmatch(token):
        raise PatchError(f'{op} operation does not apply: invalid array index "{token}" in path "{path}"', 422)
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f'{op} operation does not apply: array index {idx} out of bounds in path "{path}"', 422)
    return idx


def _walk(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    """The value `tokens` point at in `doc`; 422 when it does not exist."""
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise _missing(op, path)
            cur = cur[token]
        elif isinstance(cur, list):
            if token == "-" or not _INDEX.fullmatch(token) or int(token) >= len(cur):
                raise _missing(op, path)
            cur = cur[int(token)]
        else:
            raise _missing(op, path)
    return cur


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    parent = _walk(doc, tokens[:-1], op, path)
    if not isinstance(parent, (dict, list)):
        raise _missing(op, path)
    return parent


def _add(doc: Any, tokens: list[str], value: Any, op: str, path: str) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, op, path), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_list_index(parent, last, op, path, allow_end=True), value)
    return doc


def _remove(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    """Remove the value at `tokens`, returning it."""
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document", 422)
    parent, last = _parent(doc, tokens, op, path), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _missing(op, path)
        return parent.pop(last)
    if last == "-" or not _INDEX.fullmatch(last) or int(last) >= len(parent):
        raise _missing(op, path)
    return parent.pop(int(last))


def _check_op(index: int, op: Any) -> dict:
    """Validate the shape of one operation (400 when malformed)."""
    if not isinstance(op, dict):
        raise PatchError(f"invalid JSON patch: operation {index} is not an object: {_short(op)}")
    name = op.get("op")
    if name not in _OPS:
        raise PatchError(f"invalid JSON patch: operation {index} has unknown op {_short(name)}")
    if "path" not in op:
        raise PatchError(f'invalid JSON patch: operation {index} ({name}) is missing "path"')
    parsed = {"op": name, "path": op["path"], "tokens": _parse_pointer(op["path"])}
    if name in ("add", "replace", "test"):
        if "value" not in op:
            raise PatchError(f'invalid JSON patch: operation {index} ({name}) is missing "value"')
        parsed["value"] = op["value"]
    if name in ("move", "copy"):
        if "from" not in op:
            raise PatchError(f'invalid JSON patch: operation {index} ({name}) is missing "from"')
        parsed["from"] = op["from"]
        parsed["from_tokens"] = _parse_pointer(op["from"], "from")
    return parsed


def _apply_op(doc: Any, op: dict) -> Any:
    name, path, tokens = op["op"], op["path"], op["tokens"]
    if name == "add":
        return _add(doc, tokens, copy.deepcopy(op["value"]), name, path)
    if name == "remove":
        _remove(doc, tokens, name, path)
        return doc
    if name == "replace":
        if not tokens:
            return copy.deepcopy(op["value"])
        parent, last = _parent(doc, tokens, name, path), tokens[-1]
        if isinstance(parent, dict):
            if last not in parent:
                raise _missing(name, path)
            parent[last] = copy.deepcopy(op["value"])
        else:
            parent[_list_index(parent, last, name, path)] = copy.deepcopy(op["value"])
        return doc
    if name == "test":
        actual = _walk(doc, tokens, name, path)
        if not _json_equal(actual, op["value"]):
            raise PatchError(
                f'test operation failed: value at "{path}" is {_short(actual)}, expected {_short(op["value"])}', 422
            )
        return doc
    from_tokens = op["from_tokens"]
    if name == "copy":
        value = copy.deepcopy(_walk(doc, from_tokens, name, op["from"]))
        return _add(doc, tokens, value, name, path)
    # move
    if from_tokens == tokens:
        _walk(doc, from_tokens, name, op["from"])
        return doc
    if tokens[: len(from_tokens)] == from_tokens:
        raise PatchError(f'move operation does not apply: "{op["from"]}" cannot be moved into its own child "{path}"', 422)
    if not from_tokens:
        raise PatchError("move operation does not apply: cannot move the whole document", 422)
    value = _remove(doc, from_tokens, name, op["from"])
    return _add(doc, tokens, value, name, path)


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations) to a copy of `doc`."""
    if not isinstance(ops, list):
        raise PatchError(f"invalid JSON patch: expected a JSON array of operations, got {_short(ops)}")
    parsed = [_check_op(i, op) for i, op in enumerate(ops)]
    result = copy.deepcopy(doc)
    for op in parsed:
        result = _apply_op(result, op)
    return result


# ---------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)


def _merge_into(target: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            cur = target.get(key)
            target[key] = _merge_into(cur if isinstance(cur, dict) else {}, value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch to a copy of `doc` (null deletes, lists replace)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    return _merge_into(copy.deepcopy(doc) if isinstance(doc, dict) else {}, patch)


# ---------------------------------------------------------------------------------------
# Strategic merge patch

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

_MISSING = object()


def strategic_merge_patch(doc: dict, patch: dict, definition: str) -> dict:
    """Apply a Kubernetes strategic merge patch to a copy of `doc`.

    `definition` is the OpenAPI definition name of the top-level type (e.g.
    ``io.k8s.api.apps.v1.Deployment``); unknown definitions merge maps and replace lists.
    """
    if not isinstance(patch, dict):
        raise PatchError(f"invalid strategic merge patch: expected a JSON object, got {_short(patch)}")
    if not isinstance(doc, dict):
        raise PatchError(f"cannot apply a strategic merge patch to a non-object: {_short(doc)}", 422)
    return _merge_map(copy.deepcopy(doc), copy.deepcopy(patch), definition)


def _same(a: Any, b: Any) -> bool:
    """Merge-key / primitive equality."""
    return _json_equal(a, b)


def _merge_map(original: dict | None, patch: dict, definition: str | None) -> dict:
    """Merge `patch` into `original` (both owned copies; both may be mutated)."""
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive not in ("delete", "replace", "merge"):
            raise PatchError(f"unknown patch type: {_short(directive)} in map: {_short(patch)}")
        del patch[DIRECTIVE]
        if directive == "delete":
            return {}
        if directive == "replace":
            return _merge_map({}, patch, definition)
    if not isinstance(original, dict):
        original = {}
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, definition)
    deletions = []
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            deletions.append((key, value))
            continue
        if value is None:
            original.pop(key, None)
            continue
        field = patchmeta.lookup(definition, key)
        cur = original.get(key, _MISSING)
        if isinstance(cur, dict) and isinstance(value, dict):
            original[key] = _merge_map({}, value, field.ref) if field.is_replace else _merge_map(cur, value, field.ref)
        elif isinstance(cur, list) and isinstance(value, list):
            original[key] = _merge_list_field(cur, value, field)
        else:
            original[key] = _fresh(value, field)
    for key, value in deletions:
        target = key[len(DELETE_FROM_PRIMITIVE_LIST):]
        if not target:
            raise PatchError(f"invalid patch: bad directive key {key!r}")
        if not isinstance(value, list):
            raise PatchError(f"invalid patch: {key} must be a list, got {_short(value)}")
        cur = original.get(target)
        if isinstance(cur, list):
            original[target] = [v for v in cur if not any(_same(v, d) for d in value)]
    return original


def _fresh(value: Any, field: PatchField) -> Any:
    """A patch value that has nothing to merge with, cleaned of directives and nulls."""
    if isinstance(value, dict):
        return _merge_map({}, value, field.ref)
    if isinstance(value, list):
        return _merge_list_field([], value, field)
    return value


def _apply_retain_keys(original: dict, patch: dict) -> None:
    """Honour ``$retainKeys``: drop original keys not listed; patch keys must be listed."""
    if RETAIN_KEYS not in patch:
        return
    keys = patch.pop(RETAIN_KEYS)
    if not isinstance(keys, list):
        raise PatchError(f"invalid patch format of retainKeys: {_short(keys)}")
    retained = {k for k in keys if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in retained:
            raise PatchError(f"invalid patch format of retainKeys: field {key!r} is not in $retainKeys {_short(keys)}")
    for key in [k for k in original if k not in retained]:
        del original[key]


def _merge_list_field(cur: list, patch: list, field: PatchField) -> list:
    if field.is_merge:
        return _merge_list(cur, patch, field)
    # replace: the patch list wins, cleaned of directives
    out = []
    for item in patch:
        if isinstance(item, dict):
            if item.get(DIRECTIVE) == "delete" or set(item) == {DIRECTIVE}:
                continue
            item = _merge_map({}, {k: v for k, v in item.items() if k != DIRECTIVE}, field.ref)
        out.append(item)
    return out


def _element_kind(*lists: list) -> str:
    """'map' or 'scalar' for the elements of `lists` (400/422 on mixed or nested lists)."""
    kind = None
    for items in lists:
        for item in items:
            if isinstance(item, list):
                raise PatchError("lists of lists are not supported", 422)
            this = "map" if isinstance(item, dict) else "scalar"
            if kind is None:
                kind = this
            elif kind != this:
                raise PatchError(f"list element types are not identical: {_short(lists)}")
    return kind or "scalar"


def _merge_list(cur: list, patch: list, field: PatchField) -> list:
    """Merge two lists of a field with ``patchStrategy: merge``."""
    if not cur and not patch:
        return []
    kind = _element_kind(cur, patch)
    if kind == "scalar":
        merged = _dedupe(cur + patch)
        in_patch, server_only = _partition(merged, patch, "")
        return _normalize_order(in_patch, server_only, patch, cur, "")
    key = field.merge_key
    if not key:
        raise PatchError(f"cannot merge lists without merge key: {_short(patch)}")
    cur, patch, replace = _special_elements(cur, patch, key)
    if replace:  # the patch list (without directives) replaces the live one
        cur, patch = [_merge_map({}, item, field.ref) for item in patch], []
    merged = list(cur)
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {_short(item)} does not contain declared merge key: {key}")
        idx = _find(merged, key, item[key])
        if idx >= 0:
            merged[idx] = _merge_map(merged[idx], item, field.ref)
        else:
            merged.append(_merge_map({}, item, field.ref))
    in_patch, server_only = _partition(merged, patch, key)
    return _normalize_order(in_patch, server_only, patch, cur, key)


def _special_elements(cur: list, patch: list, key: str) -> tuple[list, list, bool]:
    """Apply ``$patch`` list elements; return (original, plain patch items, replace?)."""
    plain = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if key not in item:
                raise PatchError(f"map: {_short(item)} does not contain declared merge key: {key}")
            cur = [c for c in cur if not (isinstance(c, dict) and key in c and _same(c[key], item[key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            rest = {k: v for k, v in item.items() if k != DIRECTIVE}
            if rest:
                plain.append(rest)
        else:
            raise PatchError(f"unknown patch type: {_short(directive)} in list element: {_short(item)}")
    return cur, plain, replace


def _find(items: list, key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if isinstance(item, dict) and key in item and _same(item[key], value):
            return i
    return -1


def _dedupe(items: list) -> list:
    out: list = []
    for item in items:
        if not any(_same(item, seen) for seen in out):
            out.append(item)
    return out


def _index(order: list, item: Any, key: str) -> int:
    """Position of `item` in `order` (by merge key for maps), -1 when absent."""
    if key:
        value = item.get(key, _MISSING) if isinstance(item, dict) else _MISSING
        if value is _MISSING:
            return -1
        return _find(order, key, value)
    for i, other in enumerate(order):
        if _same(other, item):
            return i
    return -1


def _partition(merged: list, by: list, key: str) -> tuple[list, list]:
    """Split `merged` into (items present in `by`, the others), keeping order."""
    present, absent = [], []
    for item in merged:
        (present if _index(by, item, key) >= 0 else absent).append(item)
    return present, absent


def _sort_by(items: list, order: list, key: str) -> list:
    """Stable sort of `items` by their position in `order` (absent ones last)."""
    positions = [_index(order, item, key) for item in items]
    ranked = sorted(range(len(items)), key=lambda i: (positions[i] < 0, positions[i]))
    return [items[i] for i in ranked]


def _normalize_order(in_patch: list, server_only: list, patch_order: list, server_order: list, key: str) -> list:
    """Order patch items by `patch_order`, server-only items by `server_order`, then interleave.

    Server-only items are placed before a patch item only when both appear in the live
    list and the server-only one came first there; otherwise patch items go first.
    """
    right = _sort_by(in_patch, patch_order, key)
    left = _sort_by(server_only, server_order, key)
    out = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li, ri = _index(server_order, left[i], key), _index(server_order, right[j], key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _validate_order(patch_list: list, order: list, key: str) -> None:
    """Patch list items must appear in ``$setElementOrder`` and in the same relative order."""
    if not patch_list or not order:
        return
    items = [p for p in patch_list if not (isinstance(p, dict) and DIRECTIVE in p)]
    if key:
        for entry in items + order:
            if not isinstance(entry, dict) or key not in entry:
                raise PatchError(f"map: {_short(entry)} does not contain declared merge key: {key}")
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        a, b = items[pi], order[oi]
        if _same(a[key], b[key]) if key else _same(a, b):
            pi += 1
        oi += 1
    if pi < len(items):
        raise PatchError(
            f"invalid patch: the order in patch list {_short(patch_list)} doesn't match "
            f"$setElementOrder list {_short(order)}"
        )


def _live_order_after_merge(cur: list, patch_list: list, field: PatchField) -> list:
    """The live list as Kubernetes sees it when ordering a ``$setElementOrder`` merge.

    Kubernetes merges the live list in place: ``$patch: delete`` shifts the remaining
    items left and new items are appended into the freed slots, and that same (fixed
    length) view of the live list then serves as the reference order. Mirroring it keeps
    the position of server-only items identical to a real apiserver.
    """
    key = field.merge_key
    if not (field.is_merge and key) or not all(isinstance(c, dict) for c in cur):
        return list(cur)
    view, length = list(cur), len(cur)
    items = [p for p in patch_list if isinstance(p, dict)]
    for item in items:
        if item.get(DIRECTIVE) == "delete" and key in item:
            while (idx := _find(view[:length], key, item[key])) >= 0:
                view[idx:length - 1] = view[idx + 1:length]
                length -= 1
    if any(item.get(DIRECTIVE) == "replace" for item in items):
        return view
    for item in items:
        if DIRECTIVE in item or key not in item or _find(view[:length], key, item[key]) >= 0:
            continue
        if length >= len(view):
            break
        view[length] = item
        length += 1
    return view


def _apply_set_element_order(original: dict, patch: dict, definition: str | None) -> None:
    """Merge every list that has a ``$setElementOrder/<field>`` and order it accordingly."""
    for directive_key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        target = directive_key[len(SET_ELEMENT_ORDER):]
        if not target or not isinstance(order, list):
            raise PatchError(f"invalid patch format of setElementOrder list: {directive_key}")
        field = patchmeta.lookup(definition, target)
        key = field.merge_key
        cur = original.get(target)
        value = patch.get(target, _MISSING)
        if value is not _MISSING and not isinstance(value, list):
            continue  # e.g. the list is being deleted with null: nothing to order
        has_cur = isinstance(cur, list)
        if value is not _MISSING:
            _validate_order(value, order, key)
            server_order = _live_order_after_merge(cur, value, field) if has_cur else []
            merged = _merge_list_field(cur if has_cur else [], value, field)
            del patch[target]
        elif has_cur:
            server_order, merged = list(cur), list(cur)
        else:
            continue
        if key:
            for entry in order:
                if not isinstance(entry, dict) or key not in entry:
                    raise PatchError(f"map: {_short(entry)} does not contain declared merge key: {key}")
        in_order, server_only = _partition(merged, order, key)
        original[target] = _normalize_order(in_order, server_only, order, server_order, key)
