"""Label and field selectors with Kubernetes semantics.

Label selectors follow k8s.io/apimachinery/pkg/labels (the string grammar of
``?labelSelector=``) and metav1.LabelSelector (``matchLabels``/``matchExpressions``
in object specs).  Field selectors follow k8s.io/apimachinery/pkg/fields plus the
per-kind field label support of kube-apiserver.

Two "empty" semantics exist in Kubernetes and both are exposed here:

* ``EVERYTHING`` -- the empty selector (``""`` or ``{}``); matches every object.
* ``NOTHING`` -- what a *nil* metav1.LabelSelector converts to; matches no object.
  ``label_selector_from_spec(None)`` returns it unless ``none_matches_everything=True``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "SelectorError",
    "Requirement",
    "LabelSelector",
    "EVERYTHING",
    "NOTHING",
    "parse_label_selector",
    "label_selector_from_spec",
    "selector_spec_to_string",
    "format_labels",
    "format_label_selector",
    "FieldSelector",
    "parse_field_selector",
    "supported_field_labels",
    "field_values",
    "escape_field_value",
]


class SelectorError(ValueError):
    """An unparsable or invalid label/field selector (HTTP 400 BadRequest)."""


# --------------------------------------------------------------------------- validation

_NAME_FMT = "[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]|[A-Za-z0-9]"
_NAME_RE = re.compile(rf"^(?:{_NAME_FMT})$")
_NAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
             "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
             "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric character "
                          "(e.g. 'example.com', regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_QUALIFIED_MSG = ("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
                  "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                  "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
                  "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                    "'my_value',  or '12345', regex used for validation is "
                    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def qualified_name_errors(value: str) -> list[str]:
    """Problems with a label key (validation.IsQualifiedName); empty when valid."""
    return list(_qualified_name_errors(value))


@functools.lru_cache(maxsize=8192)
def _qualified_name_errors(value: str) -> tuple[str, ...]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if not _DNS1123_SUBDOMAIN_RE.match(prefix):
                errs.append("prefix part " + _DNS1123_SUBDOMAIN_MSG)
    else:
        return (_QUALIFIED_MSG,)
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _NAME_RE.match(name):
        errs.append(_NAME_MSG)
    return tuple(errs)


def label_value_errors(value: str) -> list[str]:
    """Problems with a label value (validation.IsValidLabelValue); empty when valid."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if value and not _NAME_RE.match(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def _invalid(path: str, value: str, errs: list[str]) -> SelectorError:
    return SelectorError(f"{path}: Invalid value: {_go_quote(value)}: {'; '.join(errs)}")


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- label selectors

# operator spellings as Kubernetes' selection.Operator
_OPS = {"=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"}
_OP_STR = {"=": "=", "==": "==", "!=": "!=", "gt": ">", "lt": "<"}


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key op values``.

    ``op`` is one of ``=``, ``==``, ``!=``, ``in``, ``notin``, ``exists``, ``!`` (does not
    exist), ``gt``, ``lt``; ``values`` is sorted and de-duplicated.
    """

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a label map satisfies this requirement."""
        op = self.op
        if op in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("gt", "lt"):
            if self.key not in labels:
                return False
            try:
                have = int(labels[self.key])
            except ValueError:
                return False
            want = int(self.values[0])
            return have > want if op == "gt" else have < want
        return False

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{_OP_STR[self.op]}{self.values[0] if self.values else ''}"


def make_requirement(key: str, op: str, values: Iterable[str] = (), path: str = "") -> Requirement:
    """Validate and build a Requirement (labels.NewRequirement)."""
    if op not in _OPS:
        raise SelectorError(f"operator: Unsupported value: {_go_quote(op)}")
    vals = list(values)
    errs = qualified_name_errors(key)
    if errs:
        raise _invalid(f"{path}key", key, errs)
    if op in ("in", "notin"):
        if not vals:
            raise SelectorError(f"{path}values: Invalid value: []: for 'in', 'notin' operators, "
                                "values set can't be empty")
    elif op in ("=", "==", "!="):
        if len(vals) != 1:
            raise SelectorError(f"{path}values: Invalid value: {vals}: exact-match compatibility "
                                "requires one single value")
    elif op in ("exists", "!"):
        if vals:
            raise SelectorError(f"{path}values: Invalid value: {vals}: values set must be empty "
                                "for exists and does not exist")
    elif op in ("gt", "lt"):
        if len(vals) != 1:
            raise SelectorError(f"{path}values: Invalid value: {vals}: for 'Gt', 'Lt' operators, "
                                "exactly one value is required")
        try:
            int(vals[0])
        except ValueError:
            raise SelectorError(f"{path}values[0]: Invalid value: {_go_quote(vals[0])}: for 'Gt', 'Lt' "
                                "operators, the value must be an integer") from None
    for i, v in enumerate(vals):
        if op in ("gt", "lt"):
            continue
        verrs = label_value_errors(v)
        if verrs:
            raise _invalid(f"{path}values[{i}][{key}]", v, verrs)
    return Requirement(key, op, tuple(sorted(set(vals))))


class LabelSelector:
    """An immutable, hashable label selector: a conjunction of requirements."""

    __slots__ = ("_reqs", "_nothing", "_str")

    def __init__(self, requirements: Iterable[Requirement] = (), nothing: bool = False):
        reqs = sorted(requirements, key=lambda r: r.key)  # Kubernetes sorts by key (ByKey)
        self._reqs: tuple[Requirement, ...] = () if nothing else tuple(reqs)
        self._nothing = nothing
        self._str = "" if nothing else ",".join(str(r) for r in self._reqs)

    @classmethod
    def everything(cls) -> LabelSelector:
        """The selector that matches every object."""
        return EVERYTHING

    @classmethod
    def nothing(cls) -> LabelSelector:
        """The selector that matches no object (a nil metav1.LabelSelector)."""
        return NOTHING

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """The requirements, sorted by key."""
        return self._reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        """Whether an object's labels satisfy every requirement."""
        if self._nothing:
            return False
        lab = labels or {}
        return all(r.matches(lab) for r in self._reqs)

    def empty(self) -> bool:
        """True for the match-everything selector."""
        return not self._nothing and not self._reqs

    def matches_nothing(self) -> bool:
        """True for the match-nothing selector (from a nil spec)."""
        return self._nothing

    def exact_pairs(self) -> dict[str, str]:
        """``key=value`` requirements (``=``, ``==``, single-valued ``in``), for index lookups."""
        out: dict[str, str] = {}
        for r in self._reqs:
            if r.op in ("=", "==") or (r.op == "in" and len(r.values) == 1):
                out[r.key] = r.values[0]
        return out

    def add(self, *requirements: Requirement) -> LabelSelector:
        """A new selector with extra requirements."""
        if self._nothing:
            return self
        return LabelSelector(self._reqs + tuple(requirements))

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        if self._nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({self._str!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._nothing == other._nothing and self._reqs == other._reqs

    def __hash__(self) -> int:
        return hash((self._nothing, self._reqs))

    def __bool__(self) -> bool:
        return True


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)

# ---- the string grammar (labels.Parse)

_SPECIAL = "!=(),<>"
_WS = " \t\r\n"


def _lex(s: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is 'id', 'in', 'notin', or the operator/punctuation itself."""
    toks: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _WS:
            i += 1
            continue
        if c in _SPECIAL:
            two = s[i:i + 2]
            if two in ("!=", "=="):
                toks.append((two, two))
                i += 2
            else:
                toks.append((c, c))
                i += 1
            continue
        j = i
        while j < n and s[j] not in _SPECIAL and s[j] not in _WS:
            j += 1
        word = s[i:j]
        toks.append((word if word in ("in", "notin") else "id", word))
        i = j
    toks.append(("eos", ""))
    return toks


class _Parser:
    def __init__(self, s: str):
        self.toks = _lex(s)
        self.pos = 0

    def peek(self, values: bool = False) -> tuple[str, str]:
        kind, lit = self.toks[self.pos]
        if values and kind in ("in", "notin"):
            kind = "id"
        return kind, lit

    def take(self, values: bool = False) -> tuple[str, str]:
        tok = self.peek(values)
        if tok[0] != "eos":
            self.pos += 1
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, lit = self.peek(values=True)
            if kind == "eos":
                return reqs
            if kind not in ("id", "!"):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            reqs.append(self.requirement())
            kind, lit = self.take()
            if kind == "eos":
                return reqs
            if kind != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            if self.peek(values=True)[0] not in ("id", "!"):
                raise SelectorError(f"found '{self.peek(values=True)[1]}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negate = False
        if self.peek()[0] == "!":
            self.take()
            negate = True
        kind, key = self.take(values=True)
        if kind != "id":
            raise SelectorError(f"found '{key}', expected: identifier")
        nxt = self.peek()[0]
        if nxt in ("eos", ","):
            return make_requirement(key, "!" if negate else "exists")
        if negate:
            raise SelectorError(f"found '{self.peek()[1]}', expected: ',' or 'end of string'")
        kind, lit = self.take()
        ops = {"=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt", "in": "in", "notin": "notin"}
        if kind not in ops:
            raise SelectorError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        op = ops[kind]
        if op in ("in", "notin"):
            values = self.set_values()
        else:
            values = [self.exact_value()]
        return make_requirement(key, op, values)

    def exact_value(self) -> str:
        kind, lit = self.peek(values=True)
        if kind in ("eos", ","):
            return ""
        if kind == "id":
            self.take(values=True)
            return lit
        raise SelectorError(f"found '{lit}', expected: identifier")

    def set_values(self) -> list[str]:
        kind, lit = self.take(values=True)
        if kind != "(":
            raise SelectorError(f"found '{lit}', expected: '('")
        kind, lit = self.peek(values=True)
        if kind == ")":
            self.take(values=True)
            return [""]
        if kind not in ("id", ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values: list[str] = []
        expect_value = True
        while True:
            kind, lit = self.peek(values=True)
            if kind == "id":
                if not expect_value:
                    raise SelectorError(f"found '{lit}', expected: ',' or ')'")
                self.take(values=True)
                values.append(lit)
                expect_value = False
            elif kind == ",":
                self.take(values=True)
                if expect_value:
                    values.append("")  # "(,a)" / "(a,,b)" carry an empty value, as Kubernetes
                expect_value = True
            elif kind == ")":
                self.take(values=True)
                if expect_value:
                    values.append("")
                return values
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")


def parse_label_selector(s: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` string; ``None``/empty matches everything."""
    if s is None or not s.strip():
        return EVERYTHING
    try:
        reqs = _Parser(s).parse()
    except SelectorError as e:
        raise SelectorError(f"unable to parse requirement: {e}") from None
    return LabelSelector(reqs)


_SPEC_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_spec(spec: dict | None, none_matches_everything: bool = False) -> LabelSelector:
    """Convert a metav1.LabelSelector dict (metav1.LabelSelectorAsSelector).

    ``None`` -> ``NOTHING`` (Kubernetes: a nil selector selects nothing), or ``EVERYTHING``
    when ``none_matches_everything``; ``{}`` -> ``EVERYTHING``.
    """
    if spec is None:
        return EVERYTHING if none_matches_everything else NOTHING
    if not isinstance(spec, dict):
        raise SelectorError("label selector must be an object")
    match_labels = spec.get("matchLabels") or {}
    exprs = spec.get("matchExpressions") or []
    if not match_labels and not exprs:
        return EVERYTHING
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        reqs.append(make_requirement(str(k), "=", [str(v) if v is not None else ""]))
    for i, e in enumerate(exprs):
        if not isinstance(e, dict):
            raise SelectorError(f"matchExpressions[{i}]: must be an object")
        op = e.get("operator")
        if op not in _SPEC_OPS:
            raise SelectorError(f"{_go_quote(str(op))} is not a valid label selector operator")
        vals = [str(v) for v in (e.get("values") or [])]
        reqs.append(make_requirement(str(e.get("key", "")), _SPEC_OPS[op], vals))
    return LabelSelector(reqs)


def selector_spec_to_string(spec: dict | None) -> str:
    """String form of a metav1.LabelSelector, e.g. Scale ``status.selector`` ('app=web,tier in (a,b)')."""
    return str(label_selector_from_spec(spec))


def format_label_selector(spec: dict | None) -> str:
    """metav1.FormatLabelSelector: the string form, ``<none>`` when empty, ``<error>`` when invalid."""
    try:
        s = str(label_selector_from_spec(spec))
    except SelectorError:
        return "<error>"
    return s or "<none>"


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted ``k=v`` pairs joined by ',', ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


# --------------------------------------------------------------------------- field selectors

def _dig(obj: dict, path: str) -> object:
    cur: object = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _s(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _path(p: str, default: str = "") -> Callable[[dict], str]:
    def get(obj: dict) -> str:
        v = _dig(obj, p)
        return default if v is None else _s(v)
    return get


def _pod_ip(obj: dict) -> str:
    status = obj.get("status") or {}
    ips = status.get("podIPs") or []
    if ips and isinstance(ips[0], dict) and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return _s(status.get("podIP"))


_COMMON_FIELDS: dict[str, Callable[[dict], str]] = {
    "metadata.name": _path("metadata.name"),
    "metadata.namespace": _path("metadata.namespace"),
}

_EVENT_FIELDS: dict[str, Callable[[dict], str]] = {
    "involvedObject.kind": _path("involvedObject.kind"),
    "involvedObject.namespace": _path("involvedObject.namespace"),
    "involvedObject.name": _path("involvedObject.name"),
    "involvedObject.uid": _path("involvedObject.uid"),
    "involvedObject.apiVersion": _path("involvedObject.apiVersion"),
    "involvedObject.resourceVersion": _path("involvedObject.resourceVersion"),
    "involvedObject.fieldPath": _path("involvedObject.fieldPath"),
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source.component"),
    "type": _path("type"),
}

_KIND_FIELDS: dict[str, dict[str, Callable[[dict], str]]] = {
    "Pod": {
        "spec.nodeName": _path("spec.nodeName"),
        "spec.restartPolicy": _path("spec.restartPolicy"),
        "spec.schedulerName": _path("spec.schedulerName"),
        "spec.serviceAccountName": _path("spec.serviceAccountName"),
        "spec.hostNetwork": _path("spec.hostNetwork", "false"),
        "status.phase": _path("status.phase"),
        "status.podIP": _pod_ip,
        "status.nominatedNodeName": _path("status.nominatedNodeName"),
    },
    "Event": _EVENT_FIELDS,
    "Secret": {"type": _path("type")},
    "Node": {"spec.unschedulable": _path("spec.unschedulable", "false")},
    "Namespace": {"status.phase": _path("status.phase")},
    "ReplicaSet": {"status.replicas": _path("status.replicas", "0")},
    "ReplicationController": {"status.replicas": _path("status.replicas", "0")},
    "Job": {"status.successful": _path("status.succeeded", "0")},
    "CertificateSigningRequest": {"spec.signerName": _path("spec.signerName")},
}


def supported_field_labels(kind: str) -> list[str]:
    """The field labels kube-apiserver accepts in ``fieldSelector`` for a kind."""
    return list(_COMMON_FIELDS) + list(_KIND_FIELDS.get(kind, {}))


def field_values(kind: str, obj: dict) -> dict[str, str]:
    """All selectable field values of an object (its fields.Set), e.g. for watch-cache indexing."""
    table = {**_COMMON_FIELDS, **_KIND_FIELDS.get(kind, {})}
    return {k: f(obj) for k, f in table.items()}


def escape_field_value(v: str) -> str:
    """fields.EscapeValue: escape ``\\``, ``,`` and ``=`` for use in a field selector."""
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(s: str) -> str:
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    slash = False
    for c in s:
        if slash:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            slash = False
        elif c == "\\":
            slash = True
        elif c in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {c}")
        else:
            out.append(c)
    if slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    """Split on commas not escaped by a backslash."""
    terms: list[str] = []
    cur: list[str] = []
    slash = False
    for c in s:
        if slash:
            cur.append(c)
            slash = False
        elif c == "\\":
            cur.append(c)
            slash = True
        elif c == ",":
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    terms.append("".join(cur))
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    slash = False
    for i, c in enumerate(term):
        if slash:
            slash = False
            continue
        if c == "\\":
            slash = True
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms for one kind."""

    __slots__ = ("_reqs", "_getters")

    def __init__(self, requirements: Iterable[tuple[str, str, str]], kind: str = ""):
        self._reqs = tuple(requirements)
        table = {**_COMMON_FIELDS, **_KIND_FIELDS.get(kind, {})}
        self._getters = {f: table.get(f) or _path(f) for f, _, _ in self._reqs}

    def requirements(self) -> list[tuple[str, str, str]]:
        """``(field, op, value)`` with op ``=`` or ``!=``, in sorted term order."""
        return list(self._reqs)

    def empty(self) -> bool:
        """True when the selector matches everything."""
        return not self._reqs

    def exact(self, field: str) -> str | None:
        """The value required by a ``field=value`` term, if any (e.g. metadata.name)."""
        for f, op, v in self._reqs:
            if f == field and op == "=":
                return v
        return None

    def matches(self, obj: dict) -> bool:
        """Whether an object satisfies every term."""
        for f, op, v in self._reqs:
            have = self._getters[f](obj)
            if (have == v) != (op == "="):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in self._reqs)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self._reqs == other._reqs

    def __hash__(self) -> int:
        return hash(self._reqs)


def parse_field_selector(s: str | None, kind: str) -> FieldSelector:
    """Parse a ``fieldSelector`` for a kind; unsupported fields raise 'field label not supported: x'."""
    if s is None or not s.strip():
        return FieldSelector((), kind)
    supported = set(supported_field_labels(kind))
    reqs: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(s)):
        if not part.strip():
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        field = lhs.strip()
        value = _unescape(rhs.strip())
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append((field, "!=" if op == "!=" else "=", value))
    return FieldSelector(reqs, kind)
