"""Validation of the built-in kinds, with Kubernetes' field paths, cause types and messages.

`validate(obj)` checks a new object, `validate(obj, old)` an update (adding immutability rules).
Both return a list of `FieldError`; empty means valid.  Objects are expected to be defaulted
(`ketch.api.defaults.apply_defaults`) first, as the apiserver does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .defaults import VOLUME_SOURCES
from .quantity import QUANTITY_REGEX, canonical_quantity, parse_quantity
from .selectors import label_value_errors as _label_value_errors
from .selectors import qualified_name_errors as _qualified_name_errors


def _valid_memo(fn: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """fn, remembering the values it found valid: most values are, and they repeat (label keys,
    env names, image names), so each create need not run the same regular expressions again."""
    ok: set[str] = set()

    @functools.wraps(fn)
    def check(value: str) -> list[str]:
        try:
            if value in ok:
                return []
        except TypeError:
            return fn(value)
        errs = fn(value)
        if not errs and len(ok) < 16384:
            ok.add(value)
        return errs
    return check


label_value_errors = _valid_memo(_label_value_errors)
qualified_name_errors = _valid_memo(_qualified_name_errors)

__all__ = [
    "FieldError",
    "validate",
    "validate_name",
    "validate_object_meta",
    "validate_pod_spec",
    "validate_label_selector",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "dns1035_label_errors",
    "format_errors",
]

# --------------------------------------------------------------------------- errors

_TYPES = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueNotFound": "Not found",
}


@dataclass
class FieldError:
    """One validation failure (field.Error): path, cause type and the full message."""

    field: str
    reason: str
    message: str

    @property
    def body(self) -> str:
        """The message without the leading field path (what a Status cause's message holds)."""
        prefix = self.field + ": "
        return self.message[len(prefix):] if self.message.startswith(prefix) else self.message

    def __str__(self) -> str:
        return self.message


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _fmt(value: Any) -> str:
    """A bad value as Go's field.Error prints it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return "map[string]string{" + ", ".join(f"{_go_quote(k)}:{_go_quote(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(_go_quote(v) for v in value) + "}"
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _err(path: str, reason: str, body: str) -> FieldError:
    return FieldError(path, reason, f"{path}: {body}")


def _detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def required(path: str, detail: str = "") -> FieldError:
    return _err(path, "FieldValueRequired", _detail("Required value", detail))


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return _err(path, "FieldValueInvalid", _detail(f"Invalid value: {_fmt(value)}", detail))


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(_go_quote(s) for s in supported) if supported else ""
    return _err(path, "FieldValueNotSupported", _detail(f"Unsupported value: {_fmt(value)}", detail))


def duplicate(path: str, value: Any) -> FieldError:
    return _err(path, "FieldValueDuplicate", f"Duplicate value: {_fmt(value)}")


def forbidden(path: str, detail: str) -> FieldError:
    return _err(path, "FieldValueForbidden", _detail("Forbidden", detail))


def too_long(path: str, max_len: int) -> FieldError:
    return _err(path, "FieldValueTooLong", f"Too long: may not be more than {max_len} bytes")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return _err(path, "FieldValueTooMany", f"Too many: {actual}: must have at most {max_items} items")


def not_found(path: str, value: Any) -> FieldError:
    return _err(path, "FieldValueNotFound", f"Not found: {_fmt(value)}")


def format_errors(errs: list[FieldError]) -> str:
    """The aggregate message Kubernetes puts after 'X "name" is invalid: '."""
    msgs = [e.message for e in errs]
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


# --------------------------------------------------------------------------- string formats

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
                      "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
                      "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL_FMT}(\.{_DNS1123_LABEL_FMT})*$")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                          "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                          "regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_DNS1035_LABEL_RE = re.compile("^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                      "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                      "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_ENV_VAR_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_ENV_VAR_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
                "'.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
                "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                   "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
_PERCENT_RE = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
                "'93%', regex used for validation is '[0-9]+%')")
_PORT_NAME_CHARS_RE = re.compile(r"^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE = re.compile(r"[a-z]")
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_IMMUTABLE = "field is immutable"
_MAX_INT32 = 2147483647


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


@_valid_memo
def dns1123_label_errors(value: str) -> list[str]:
    """validation.IsDNS1123Label."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(_DNS1123_LABEL_MSG)
    return errs


@_valid_memo
def dns1123_subdomain_errors(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_DNS1123_SUBDOMAIN_MSG)
    return errs


@_valid_memo
def dns1035_label_errors(value: str) -> list[str]:
    """validation.IsDNS1035Label."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(_DNS1035_LABEL_MSG)
    return errs


def path_segment_errors(value: str) -> list[str]:
    """path.IsValidPathSegmentName."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


@_valid_memo
def port_name_errors(value: str) -> list[str]:
    """validation.IsValidPortName (an IANA_SVC_NAME)."""
    errs = []
    if len(value) < 1 or len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS_RE.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and not _PORT_NAME_LETTER_RE.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


@_valid_memo
def env_var_name_errors(value: str) -> list[str]:
    errs = [] if _ENV_VAR_RE.match(value) else [_ENV_VAR_MSG]
    return errs + _dot_errors(value)


@_valid_memo
def config_key_errors(value: str) -> list[str]:
    """validation.IsConfigMapKey."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY_RE.match(value):
        errs.append(_CONFIG_KEY_MSG)
    return errs + _dot_errors(value)


def _dot_errors(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _special_ip_errors(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """ValidateNonSpecialIP."""
    if ip.is_unspecified:
        return ["may not be unspecified (0.0.0.0, ::)"]
    if ip.is_loopback:
        return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    if ip.is_link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    if ip in ipaddress.ip_network("224.0.0.0/24") or (ip.version == 6 and ip in ipaddress.ip_network("ff02::/16")):
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    return []


def _names(fn: Callable[[str], list[str]]) -> Callable[[str, bool], list[str]]:
    def check(name: str, prefix: bool = False) -> list[str]:
        if prefix and name.endswith("-"):
            name = name[:-1] + "a"  # maskTrailingDash: generateName prefixes may end in '-'
        return fn(name)
    return check


_NAME_RULES: dict[str, Callable[[str, bool], list[str]]] = {
    "Namespace": _names(dns1123_label_errors),
    "Service": _names(dns1035_label_errors),
    "Role": _names(path_segment_errors),
    "ClusterRole": _names(path_segment_errors),
    "RoleBinding": _names(path_segment_errors),
    "ClusterRoleBinding": _names(path_segment_errors),
}
_SUBDOMAIN = _names(dns1123_subdomain_errors)


def _name_errors(kind: str, name: str, prefix: bool = False) -> list[str]:
    errs = _NAME_RULES.get(kind, _SUBDOMAIN)(name, prefix)
    if kind == "CronJob" and not prefix and len(name) > 52:
        errs = errs + [_max_len(52)]
    return errs


def validate_name(kind: str, name: str) -> str | None:
    """Why `name` is not a valid name for `kind` (None when it is)."""
    errs = _name_errors(kind, name)
    return "; ".join(errs) if errs else None


# --------------------------------------------------------------------------- helpers


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _nonneg(errs: list[FieldError], path: str, value: Any) -> None:
    """ValidateNonnegativeField (absent values are fine)."""
    if value is None:
        return
    if not _is_int(value):
        errs.append(invalid(path, value, "must be an integer"))
    elif value < 0:
        errs.append(invalid(path, value, "must be greater than or equal to 0"))


def _port_num(errs: list[FieldError], path: str, value: Any) -> None:
    if not _is_int(value) or not 1 <= value <= 65535:
        errs.append(invalid(path, value, _PORT_RANGE_MSG))


def _port_num_or_name(errs: list[FieldError], path: str, value: Any) -> None:
    """ValidatePortNumOrName (an IntOrString)."""
    if isinstance(value, str):
        errs.extend(invalid(path, value, m) for m in port_name_errors(value))
    elif _is_int(value):
        _port_num(errs, path, value)
    else:
        errs.append(invalid(path, value, "must be an int or a string"))


def _enum(errs: list[FieldError], path: str, value: Any, allowed: list[str], required_: bool = True) -> None:
    if value in (None, ""):
        if required_:
            errs.append(required(path))
    elif value not in allowed:
        errs.append(not_supported(path, value, allowed))


def _labels(errs: list[FieldError], path: str, labels: Any) -> None:
    """ValidateLabels: qualified-name keys, label-value values."""
    if labels is None:
        return
    if not isinstance(labels, dict):
        errs.append(invalid(path, labels, "must be a map of string keys to string values"))
        return
    for k, v in labels.items():
        msgs = qualified_name_errors(k if type(k) is str else str(k))
        if msgs:
            errs.extend(invalid(path, k, m) for m in msgs)
        if not isinstance(v, str):
            errs.append(invalid(path, v, "must be a string"))
            continue
        msgs = label_value_errors(v)
        if msgs:
            errs.extend(invalid(path, v, m) for m in msgs)


def _qualified(errs: list[FieldError], path: str, value: str) -> None:
    errs.extend(invalid(path, value, m) for m in qualified_name_errors(value))


def _dns_label(errs: list[FieldError], path: str, value: Any) -> None:
    errs.extend(invalid(path, value, m) for m in dns1123_label_errors(_str(value)))


def _dns_subdomain(errs: list[FieldError], path: str, value: Any) -> None:
    errs.extend(invalid(path, value, m) for m in dns1123_subdomain_errors(_str(value)))


def _norm(v: Any) -> Any:
    """Drop nulls and empty containers so semantically equal objects compare equal."""
    if isinstance(v, dict):
        out = {k: _norm(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def _immutable(errs: list[FieldError], path: str, new: Any, old: Any) -> None:
    if _norm(new) != _norm(old):
        errs.append(invalid(path, new, _IMMUTABLE))


# --------------------------------------------------------------------------- object meta

_ANNOTATIONS_MAX = 256 * 1024


def validate_object_meta(meta: Any, kind: str, namespaced: bool | None, path: str = "metadata",
                         check_name: bool = True) -> list[FieldError]:
    """ValidateObjectMeta: name/generateName, namespace, labels, annotations, owners, finalizers."""
    errs: list[FieldError] = []
    if not isinstance(meta, dict):
        return [required(path)]
    name = meta.get("name")
    gen = meta.get("generateName")
    if gen:
        errs.extend(invalid(f"{path}.generateName", gen, m) for m in _name_errors(kind, _str(gen), prefix=True))
    if check_name:
        if not name and not gen:
            errs.append(required(f"{path}.name", "name or generateName is required"))
        elif name:
            errs.extend(invalid(f"{path}.name", name, m) for m in _name_errors(kind, _str(name)))
    ns = meta.get("namespace")
    if namespaced is True and ns:
        errs.extend(invalid(f"{path}.namespace", ns, m) for m in dns1123_label_errors(_str(ns)))
    elif namespaced is False and ns:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    gen_no = meta.get("generation")
    _nonneg(errs, f"{path}.generation", gen_no)
    _labels(errs, f"{path}.labels", meta.get("labels"))
    errs.extend(_annotations(meta.get("annotations"), f"{path}.annotations"))
    refs = meta.get("ownerReferences")
    controller = ""
    for ref in _list(refs):
        ref = _dict(ref)
        rp = f"{path}.ownerReferences"
        api_version = _str(ref.get("apiVersion"))
        if not api_version.rpartition("/")[2]:
            errs.append(invalid(f"{rp}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(invalid(f"{rp}.{key}", _str(ref.get(key)), "must not be empty"))
        if ref.get("controller") is True:
            this = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                errs.append(invalid(rp, refs, "Only one reference can have Controller set to true. "
                                    f'Found "true" in references for {controller} and {this}'))
            else:
                controller = this
    finalizers = _list(meta.get("finalizers"))
    for f in finalizers:
        _qualified(errs, f"{path}.finalizers", _str(f))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(invalid(f"{path}.finalizers", finalizers,
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def _annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if annotations is None:
        return errs
    if not isinstance(annotations, dict):
        return [invalid(path, annotations, "must be a map of string keys to string values")]
    total = 0
    for k, v in annotations.items():
        errs.extend(invalid(path, k, m) for m in qualified_name_errors(str(k).lower()))
        if not isinstance(v, str):
            errs.append(invalid(path, v, "must be a string"))
            v = str(v)
        total += len(str(k)) + len(v)
    if total > _ANNOTATIONS_MAX:
        errs.append(too_long(path, _ANNOTATIONS_MAX))
    return errs


def _meta_update(new: dict, old: dict) -> list[FieldError]:
    """ValidateObjectMetaUpdate: identity fields never change."""
    errs: list[FieldError] = []
    nm, om = _dict(new.get("metadata")), _dict(old.get("metadata"))
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if nm.get(key) and om.get(key) and nm.get(key) != om.get(key):
            errs.append(invalid(f"metadata.{key}", nm.get(key), _IMMUTABLE))
    return errs


# --------------------------------------------------------------------------- label selectors

_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    """ValidateLabelSelector (metav1.LabelSelector)."""
    errs: list[FieldError] = []
    if sel is None:
        return errs
    if not isinstance(sel, dict):
        return [invalid(path, sel, "must be an object")]
    _labels(errs, f"{path}.matchLabels", sel.get("matchLabels"))
    for i, expr in enumerate(_list(sel.get("matchExpressions"))):
        ip = f"{path}.matchExpressions[{i}]"
        expr = _dict(expr)
        op = expr.get("operator")
        values = _list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{ip}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(f"{ip}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{ip}.operator", op, "not a valid selector operator"))
        _qualified(errs, f"{ip}.key", _str(expr.get("key")))
        for j, v in enumerate(values):
            errs.extend(invalid(f"{ip}.values[{j}]", v, m) for m in label_value_errors(_str(v)))
    return errs


def _selector_empty(sel: dict) -> bool:
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def _selector_matches(sel: dict, labels: dict) -> bool:
    for k, v in _dict(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for expr in _list(sel.get("matchExpressions")):
        expr = _dict(expr)
        key, op, values = expr.get("key"), expr.get("operator"), _list(expr.get("values"))
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_valid(sel: Any) -> bool:
    """Whether LabelSelectorAsSelector would convert it (so matching the template makes sense)."""
    if not isinstance(sel, dict):
        return False
    for e in _list(sel.get("matchExpressions")):
        op, values = _dict(e).get("operator"), _list(_dict(e).get("values"))
        if op not in _SELECTOR_OPS or (op in ("In", "NotIn")) != bool(values):
            return False
    return True


# --------------------------------------------------------------------------- pods

_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_TERMINATION_MSG_POLICIES = ["File", "FallbackToLogsOnError"]
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]
_ENV_FIELD_PATHS = ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"]
_VOLUME_FIELD_PATHS = ["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"]
_RESOURCE_FIELD_REFS = ["limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                        "requests.ephemeral-storage", "requests.memory"]
_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_SUBSCRIPT_RE = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


@dataclass
class _PodCtx:
    volumes: set[str]
    host_network: bool
    template: bool


def _relative_path(errs: list[FieldError], path: str, value: str, reserved: bool = False) -> None:
    if value.startswith("/"):
        errs.append(invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(invalid(path, value, "must not contain '..'"))
    if reserved and value.startswith(".."):
        errs.append(invalid(path, value, "must not start with '..'"))


def _file_mode(errs: list[FieldError], path: str, mode: Any) -> None:
    if mode is not None and (not _is_int(mode) or not 0 <= mode <= 0o777):
        errs.append(invalid(path, mode, _FILE_MODE_MSG))


def _key_to_paths(errs: list[FieldError], path: str, items: Any) -> None:
    for i, item in enumerate(_list(items)):
        ip = f"{path}[{i}]"
        item = _dict(item)
        if not item.get("key"):
            errs.append(required(f"{ip}.key"))
        if not item.get("path"):
            errs.append(required(f"{ip}.path"))
        _relative_path(errs, f"{ip}.path", _str(item.get("path")), reserved=True)
        _file_mode(errs, f"{ip}.mode", item.get("mode"))


def _field_selector(errs: list[FieldError], path: str, ref: dict, allowed: list[str]) -> None:
    """validateObjectFieldSelector."""
    if not ref.get("apiVersion"):
        errs.append(required(f"{path}.apiVersion"))
        return
    fp = _str(ref.get("fieldPath"))
    if not fp:
        errs.append(required(f"{path}.fieldPath"))
        return
    m = _SUBSCRIPT_RE.match(fp)
    if m:
        key = m.group(2)
        _qualified(errs, path, key.lower() if m.group(1) == "metadata.annotations" else key)
    elif fp not in allowed:
        errs.append(not_supported(f"{path}.fieldPath", fp, allowed))


def _resource_field_ref(errs: list[FieldError], path: str, ref: dict) -> None:
    res = _str(ref.get("resource"))
    if not res:
        errs.append(required(f"{path}.resource"))
    elif res not in _RESOURCE_FIELD_REFS and not res.startswith(("limits.hugepages-", "requests.hugepages-")):
        errs.append(not_supported(f"{path}.resource", res, _RESOURCE_FIELD_REFS))
    if ref.get("divisor") is not None:
        _quantity(errs, f"{path}.divisor", ref.get("divisor"))


_QUANTITIES: dict[str, Any] = {}


def _quantity(errs: list[FieldError], path: str, value: Any) -> Any:
    if type(value) is str:
        q = _QUANTITIES.get(value)
        if q is not None:
            return q
    try:
        q = parse_quantity(value)
        if type(value) is str and len(_QUANTITIES) < 4096:
            _QUANTITIES[value] = q
        return q
    except ValueError:
        errs.append(invalid(path, value, f"quantities must match the regular expression '{QUANTITY_REGEX}'"))
        return None


def _downward_items(errs: list[FieldError], path: str, items: Any) -> None:
    for i, item in enumerate(_list(items)):
        ip = f"{path}[{i}]"
        item = _dict(item)
        p = _str(item.get("path"))
        if not p:
            errs.append(required(f"{ip}.path"))
        _relative_path(errs, f"{ip}.path", p, reserved=True)
        _file_mode(errs, f"{ip}.mode", item.get("mode"))
        if item.get("fieldRef") is not None and item.get("resourceFieldRef") is not None:
            errs.append(invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
        elif item.get("fieldRef") is not None:
            _field_selector(errs, f"{ip}.fieldRef", _dict(item["fieldRef"]), _VOLUME_FIELD_PATHS)
        elif item.get("resourceFieldRef") is not None:
            _resource_field_ref(errs, f"{ip}.resourceFieldRef", _dict(item["resourceFieldRef"]))
        else:
            errs.append(required(ip, "one of fieldRef and resourceFieldRef is required"))


def _volume_source(errs: list[FieldError], source: str, v: dict, path: str) -> None:
    if source == "emptyDir":
        if v.get("sizeLimit") is not None:
            q = _quantity(errs, f"{path}.sizeLimit", v["sizeLimit"])
            if q is not None and q < 0:
                errs.append(invalid(f"{path}.sizeLimit", v["sizeLimit"], "must be greater than or equal to 0"))
    elif source == "hostPath":
        if not v.get("path"):
            errs.append(required(f"{path}.path"))
        if v.get("type") is not None and v.get("type") not in _HOST_PATH_TYPES:
            errs.append(not_supported(f"{path}.type", v.get("type"), _HOST_PATH_TYPES))
    elif source == "secret":
        if not v.get("secretName"):
            errs.append(required(f"{path}.secretName"))
        _file_mode(errs, f"{path}.defaultMode", v.get("defaultMode"))
        _key_to_paths(errs, f"{path}.items", v.get("items"))
    elif source == "configMap":
        if not v.get("name"):
            errs.append(required(f"{path}.name"))
        _file_mode(errs, f"{path}.defaultMode", v.get("defaultMode"))
        _key_to_paths(errs, f"{path}.items", v.get("items"))
    elif source == "persistentVolumeClaim":
        if not v.get("claimName"):
            errs.append(required(f"{path}.claimName"))
    elif source == "nfs":
        if not v.get("server"):
            errs.append(required(f"{path}.server"))
        p = _str(v.get("path"))
        if not p:
            errs.append(required(f"{path}.path"))
        elif not p.startswith("/"):
            errs.append(invalid(f"{path}.path", p, "must be an absolute path"))
    elif source == "downwardAPI":
        _file_mode(errs, f"{path}.defaultMode", v.get("defaultMode"))
        _downward_items(errs, f"{path}.items", v.get("items"))
    elif source == "projected":
        _file_mode(errs, f"{path}.defaultMode", v.get("defaultMode"))
        kinds = ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
        for i, src in enumerate(_list(v.get("sources"))):
            sp = f"{path}.sources[{i}]"
            src = _dict(src)
            present = [k for k in kinds if src.get(k) is not None]
            if not present:
                errs.append(required(sp, "must specify exactly 1 of: " + ", ".join(kinds)))
            for k in present[1:]:
                errs.append(forbidden(f"{sp}.{k}", "may not specify more than 1 volume type per source"))
            tok = _dict(src.get("serviceAccountToken"))
            if src.get("serviceAccountToken") is not None:
                exp = tok.get("expirationSeconds")
                if _is_int(exp) and exp < 600:
                    errs.append(invalid(f"{sp}.serviceAccountToken.expirationSeconds", exp,
                                        "may not specify a duration less than 10 minutes"))
                if not tok.get("path"):
                    errs.append(required(f"{sp}.serviceAccountToken.path"))
            for k in ("secret", "configMap"):
                if src.get(k) is not None:
                    _key_to_paths(errs, f"{sp}.{k}.items", _dict(src[k]).get("items"))
            if src.get("downwardAPI") is not None:
                _downward_items(errs, f"{sp}.downwardAPI.items", _dict(src["downwardAPI"]).get("items"))
    elif source == "csi":
        if not v.get("driver"):
            errs.append(required(f"{path}.driver"))
    elif source == "ephemeral":
        if not isinstance(v.get("volumeClaimTemplate"), dict):
            errs.append(required(f"{path}.volumeClaimTemplate"))
    elif source == "image":
        if not v.get("reference"):
            errs.append(required(f"{path}.reference"))


def _volumes(errs: list[FieldError], path: str, volumes: Any) -> set[str]:
    names: set[str] = set()
    for i, vol in enumerate(_list(volumes)):
        ip = f"{path}[{i}]"
        if not isinstance(vol, dict):
            errs.append(invalid(ip, vol, "must be an object"))
            continue
        sources = [s for s in VOLUME_SOURCES if vol.get(s) is not None]
        if not sources:
            errs.append(required(ip, "must specify a volume type"))
        else:
            _volume_source(errs, sources[0], _dict(vol[sources[0]]), f"{ip}.{sources[0]}")
            for s in sources[1:]:
                errs.append(forbidden(f"{ip}.{s}", "may not specify more than 1 volume type"))
        name = vol.get("name")
        if not name:
            errs.append(required(f"{ip}.name"))
        else:
            _dns_label(errs, f"{ip}.name", name)
        if name in names:
            errs.append(duplicate(f"{ip}.name", name))
        elif isinstance(name, str):
            names.add(name)
    return names


def _handler(errs: list[FieldError], path: str, h: dict, kinds: tuple[str, ...]) -> None:
    """validateHandler: exactly one handler type."""
    count = 0
    for kind in kinds:
        if h.get(kind) is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        body = _dict(h[kind])
        kp = f"{path}.{kind}"
        if kind == "exec":
            if not _list(body.get("command")):
                errs.append(required(f"{kp}.command"))
        elif kind == "httpGet":
            if not body.get("path"):
                errs.append(required(f"{kp}.path"))
            _port_num_or_name(errs, f"{kp}.port", body.get("port"))
            if body.get("scheme") not in (None, "HTTP", "HTTPS"):
                errs.append(not_supported(f"{kp}.scheme", body.get("scheme"), ["HTTP", "HTTPS"]))
        elif kind == "tcpSocket":
            _port_num_or_name(errs, f"{kp}.port", body.get("port"))
        elif kind == "grpc":
            _port_num(errs, f"{kp}.port", body.get("port"))
        elif kind == "sleep":
            secs = body.get("seconds")
            if not _is_int(secs) or secs < 0:
                errs.append(invalid(f"{kp}.seconds", secs, "must be non-negative"))
    if not count:
        errs.append(required(path, "must specify a handler type"))


def _probe(errs: list[FieldError], path: str, probe: Any) -> None:
    if probe is None:
        return
    p = _dict(probe)
    _handler(errs, path, p, ("exec", "httpGet", "tcpSocket", "grpc"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        _nonneg(errs, f"{path}.{key}", p.get(key))
    tgps = p.get("terminationGracePeriodSeconds")
    if tgps is not None and (not _is_int(tgps) or tgps <= 0):
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than 0"))


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native_resource(name) and not name.startswith("hugepages-")


def _container_resource_name(errs: list[FieldError], path: str, name: str) -> None:
    before = len(errs)
    _qualified(errs, path, name)
    if len(errs) != before:
        return
    if "/" not in name:
        if name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native_resource(name) and name.startswith("requests."):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))


def _resources(errs: list[FieldError], path: str, res: Any) -> None:
    """ValidateResourceRequirements: names, non-negative quantities, requests <= limits."""
    res = _dict(res)
    limits = _dict(res.get("limits"))
    requests = _dict(res.get("requests"))
    parsed_limits: dict[str, Any] = {}
    for kind, values, parsed in (("limits", limits, parsed_limits), ("requests", requests, {})):
        for name, value in values.items():
            kp = f"{path}.{kind}[{name}]"
            _container_resource_name(errs, kp, str(name))
            q = _quantity(errs, kp, value)
            if q is None:
                continue
            parsed[name] = q
            if q < 0:
                errs.append(invalid(kp, canonical_quantity(value), "must be greater than or equal to 0"))
            elif not _is_native_resource(str(name)) and q != q.to_integral_value():
                errs.append(invalid(kp, canonical_quantity(value), "must be an integer"))
            if kind != "requests":
                continue
            if name in parsed_limits:
                lim = parsed_limits[name]
                if q != lim and not _overcommit_allowed(str(name)):
                    errs.append(invalid(f"{path}.requests", canonical_quantity(value),
                                        f"must be equal to {name} limit of {canonical_quantity(limits[name])}"))
                elif q > lim:
                    errs.append(invalid(f"{path}.requests", canonical_quantity(value),
                                        f"must be less than or equal to {name} limit of {canonical_quantity(limits[name])}"))
            elif name not in limits and not _overcommit_allowed(str(name)):
                errs.append(required(f"{path}.limits", "Limit must be set for non overcommitable resources"))


def _env(errs: list[FieldError], path: str, env: Any) -> None:
    for i, ev in enumerate(_list(env)):
        ip = f"{path}[{i}]"
        ev = _dict(ev)
        name = ev.get("name")
        if not name:
            errs.append(required(f"{ip}.name"))
        else:
            errs.extend(invalid(f"{ip}.name", name, m) for m in env_var_name_errors(_str(name)))
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf = _dict(vf)
        vp = f"{ip}.valueFrom"
        count = 0
        if vf.get("fieldRef") is not None:
            count += 1
            _field_selector(errs, f"{vp}.fieldRef", _dict(vf["fieldRef"]), _ENV_FIELD_PATHS)
        if vf.get("resourceFieldRef") is not None:
            count += 1
            _resource_field_ref(errs, f"{vp}.resourceFieldRef", _dict(vf["resourceFieldRef"]))
        for key in ("configMapKeyRef", "secretKeyRef"):
            if vf.get(key) is None:
                continue
            count += 1
            ref = _dict(vf[key])
            _dns_subdomain(errs, f"{vp}.{key}.name", _str(ref.get("name")))
            k = ref.get("key")
            if not k:
                errs.append(required(f"{vp}.{key}.key"))
            else:
                errs.extend(invalid(f"{vp}.{key}.key", k, m) for m in config_key_errors(_str(k)))
        if count == 0:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                                        "or `secretKeyRef`"))
        elif ev.get("value"):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif count > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))


def _env_from(errs: list[FieldError], path: str, env_from: Any) -> None:
    for i, ef in enumerate(_list(env_from)):
        ip = f"{path}[{i}]"
        ef = _dict(ef)
        prefix = ef.get("prefix")
        if prefix:
            errs.extend(invalid(f"{ip}.prefix", prefix, m) for m in env_var_name_errors(_str(prefix)))
        count = 0
        for key in ("configMapRef", "secretRef"):
            if ef.get(key) is not None:
                count += 1
                _dns_subdomain(errs, f"{ip}.{key}.name", _str(_dict(ef[key]).get("name")))
        if count == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))


def _volume_mounts(errs: list[FieldError], path: str, mounts: Any, volumes: set[str]) -> None:
    seen: set[str] = set()
    for i, m in enumerate(_list(mounts)):
        ip = f"{path}[{i}]"
        m = _dict(m)
        name = m.get("name")
        if not name:
            errs.append(required(f"{ip}.name"))
        elif name not in volumes:
            errs.append(not_found(f"{ip}.name", name))
        mp = m.get("mountPath")
        if not mp:
            errs.append(required(f"{ip}.mountPath"))
        elif mp in seen:
            errs.append(invalid(f"{ip}.mountPath", mp, "must be unique"))
        else:
            seen.add(mp)
        for key in ("subPath", "subPathExpr"):
            if m.get(key):
                _relative_path(errs, f"{ip}.{key}", _str(m[key]))
        if m.get("subPath") and m.get("subPathExpr"):
            errs.append(invalid(f"{ip}.subPathExpr", m["subPathExpr"], "subPathExpr and subPath are mutually exclusive"))
        prop = m.get("mountPropagation")
        if prop is not None and prop not in ("None", "HostToContainer", "Bidirectional"):
            errs.append(not_supported(f"{ip}.mountPropagation", prop, ["Bidirectional", "HostToContainer", "None"]))


def _security_context(errs: list[FieldError], path: str, sc: Any) -> None:
    sc = _dict(sc)
    for key in ("runAsUser", "runAsGroup"):
        v = sc.get(key)
        if v is not None and (not _is_int(v) or not 0 <= v <= _MAX_INT32):
            errs.append(invalid(f"{path}.{key}", v, f"must be between 0 and {_MAX_INT32}, inclusive"))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        errs.append(invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))


def _container(errs: list[FieldError], path: str, c: dict, ctx: _PodCtx, kind: str) -> None:
    """validateContainerCommon plus the per-kind (regular/init/ephemeral) rules."""
    if c.get("image") in (None, ""):
        errs.append(required(f"{path}.image"))
    elif not isinstance(c["image"], str):
        errs.append(invalid(f"{path}.image", c["image"], "must be a string"))
    elif c["image"].strip() != c["image"] and not ctx.template:
        errs.append(invalid(f"{path}.image", c["image"], "must not have leading or trailing whitespace"))
    _enum(errs, f"{path}.imagePullPolicy", c.get("imagePullPolicy"), _PULL_POLICIES)
    _enum(errs, f"{path}.terminationMessagePolicy", c.get("terminationMessagePolicy"), _TERMINATION_MSG_POLICIES)
    port_names: set[str] = set()
    if kind == "ephemeral" and c.get("ports"):
        errs.append(forbidden(f"{path}.ports", "cannot be set for an Ephemeral Container"))
    for i, port in enumerate(_list(c.get("ports"))):
        pp = f"{path}.ports[{i}]"
        port = _dict(port)
        pname = port.get("name")
        if pname:
            msgs = port_name_errors(_str(pname))
            if msgs:
                errs.extend(invalid(f"{pp}.name", pname, m) for m in msgs)
            elif pname in port_names:
                errs.append(duplicate(f"{pp}.name", pname))
            else:
                port_names.add(pname)
        cp = port.get("containerPort")
        if cp in (None, 0):
            errs.append(required(f"{pp}.containerPort"))
        else:
            _port_num(errs, f"{pp}.containerPort", cp)
        hp = port.get("hostPort")
        if hp not in (None, 0):
            _port_num(errs, f"{pp}.hostPort", hp)
            if ctx.host_network and hp != cp:
                errs.append(invalid(f"{pp}.hostPort", hp, "must match `containerPort` when `hostNetwork` is true"))
        _enum(errs, f"{pp}.protocol", port.get("protocol"), _PROTOCOLS)
    _env(errs, f"{path}.env", c.get("env"))
    _env_from(errs, f"{path}.envFrom", c.get("envFrom"))
    _volume_mounts(errs, f"{path}.volumeMounts", c.get("volumeMounts"), ctx.volumes)
    _resources(errs, f"{path}.resources", c.get("resources"))
    _security_context(errs, f"{path}.securityContext", c.get("securityContext"))
    restart = c.get("restartPolicy")
    sidecar = kind == "init" and restart == "Always"
    if restart is not None:
        if kind == "init":
            if restart != "Always":
                errs.append(not_supported(f"{path}.restartPolicy", restart, ["Always"]))
        else:
            errs.append(forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    probes = ("livenessProbe", "readinessProbe", "startupProbe")
    if kind == "ephemeral" or (kind == "init" and not sidecar):
        what = "an Ephemeral Container" if kind == "ephemeral" else "init containers without restartPolicy=Always"
        for key in (*probes, "lifecycle"):
            if c.get(key) is not None:
                errs.append(forbidden(f"{path}.{key}", f"may not be set for {what}"))
        return
    for key in probes:
        _probe(errs, f"{path}.{key}", c.get(key))
    for key in ("livenessProbe", "startupProbe"):
        st = _dict(c.get(key)).get("successThreshold")
        if c.get(key) is not None and st is not None and st != 1:
            errs.append(invalid(f"{path}.{key}.successThreshold", st, "must be 1"))
    lifecycle = c.get("lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            if _dict(lifecycle).get(hook) is not None:
                _handler(errs, f"{path}.lifecycle.{hook}", _dict(lifecycle[hook]),
                         ("exec", "httpGet", "tcpSocket", "sleep"))


def _tolerations(errs: list[FieldError], path: str, tolerations: Any) -> None:
    for i, t in enumerate(_list(tolerations)):
        ip = f"{path}[{i}]"
        t = _dict(t)
        key = _str(t.get("key"))
        op = t.get("operator") or ""
        effect = t.get("effect") or ""
        if key:
            _qualified(errs, f"{ip}.key", key)
        if not key and op != "Exists":
            errs.append(invalid(f"{ip}.operator", op, 'operator must be Exists when `key` is empty, which means '
                                                     '"match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(f"{ip}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        value = _str(t.get("value"))
        if op in ("Equal", ""):
            msgs = label_value_errors(value)
            if msgs:
                errs.append(invalid(f"{ip}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(invalid(f"{ip}.operator", t, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(f"{ip}.operator", op, ["Equal", "Exists"]))
        if effect:
            _enum(errs, f"{ip}.effect", effect, _TAINT_EFFECTS)


_VALID_SPECS: set[tuple] = set()


def validate_pod_spec(spec: Any, path: str = "spec", template: bool = False,
                      check_restart_policy: bool = True) -> list[FieldError]:
    """ValidatePodSpec, skipped for a spec found valid before (the pods of one workload share theirs)."""
    try:
        key = (orjson.dumps(spec), path, template, check_restart_policy)
    except TypeError:
        return _validate_pod_spec(spec, path, template, check_restart_policy)
    if key in _VALID_SPECS:
        return []
    errs = _validate_pod_spec(spec, path, template, check_restart_policy)
    if not errs:
        if len(_VALID_SPECS) >= 2048:
            _VALID_SPECS.clear()
        _VALID_SPECS.add(key)
    return errs


def _validate_pod_spec(spec: Any, path: str, template: bool, check_restart_policy: bool) -> list[FieldError]:
    """ValidatePodSpec: volumes, containers, policies, scheduling fields."""
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    volumes = _volumes(errs, f"{path}.volumes", spec.get("volumes"))
    ctx = _PodCtx(volumes, spec.get("hostNetwork") is True, template)
    names: set[str] = set()
    containers = spec.get("containers")
    if not _list(containers):
        errs.append(required(f"{path}.containers"))
    for key, kind in (("containers", "regular"), ("initContainers", "init"), ("ephemeralContainers", "ephemeral")):
        for i, c in enumerate(_list(spec.get(key))):
            cp = f"{path}.{key}[{i}]"
            if not isinstance(c, dict):
                errs.append(invalid(cp, c, "must be an object"))
                continue
            name = c.get("name")
            if not name:
                errs.append(required(f"{cp}.name"))
            else:
                _dns_label(errs, f"{cp}.name", name)
                if name in names:
                    errs.append(duplicate(f"{cp}.name", name))
                elif isinstance(name, str):
                    names.add(name)
            _container(errs, cp, c, ctx, kind)
    if check_restart_policy:
        _enum(errs, f"{path}.restartPolicy", spec.get("restartPolicy"), _RESTART_POLICIES)
    _enum(errs, f"{path}.dnsPolicy", spec.get("dnsPolicy"), _DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and not spec.get("dnsConfig"):
        errs.append(required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
    for i, ns in enumerate(_list(_dict(spec.get("dnsConfig")).get("nameservers"))):
        if _ip(ns) is None:
            errs.append(invalid(f"{path}.dnsConfig.nameservers[{i}]", ns, _IP_MSG))
    _labels(errs, f"{path}.nodeSelector", spec.get("nodeSelector"))
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        if spec.get(key):
            _dns_subdomain(errs, f"{path}.{key}", spec[key])
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            _dns_label(errs, f"{path}.{key}", spec[key])
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not _is_int(ads) or not 1 <= ads <= _MAX_INT32):
        errs.append(invalid(f"{path}.activeDeadlineSeconds", ads, f"must be between 1 and {_MAX_INT32}, inclusive"))
    tgps = spec.get("terminationGracePeriodSeconds")
    if tgps is not None and not _is_int(tgps):
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be an integer"))
    _tolerations(errs, f"{path}.tolerations", spec.get("tolerations"))
    _security_context(errs, f"{path}.securityContext", spec.get("securityContext"))
    seen_spread: set[tuple[str, str]] = set()
    for i, tsc in enumerate(_list(spec.get("topologySpreadConstraints"))):
        tp = f"{path}.topologySpreadConstraints[{i}]"
        tsc = _dict(tsc)
        skew = tsc.get("maxSkew")
        if not _is_int(skew) or skew <= 0:
            errs.append(invalid(f"{tp}.maxSkew", skew, "must be greater than zero"))
        if not tsc.get("topologyKey"):
            errs.append(required(f"{tp}.topologyKey", "can not be empty"))
        _enum(errs, f"{tp}.whenUnsatisfiable", tsc.get("whenUnsatisfiable"), ["DoNotSchedule", "ScheduleAnyway"])
        pair = (str(tsc.get("topologyKey")), str(tsc.get("whenUnsatisfiable")))
        if pair in seen_spread:
            errs.append(duplicate(f"{tp}.{{topologyKey, whenUnsatisfiable}}", f"{{{pair[0]}, {pair[1]}}}"))
        seen_spread.add(pair)
    for i, s in enumerate(_list(spec.get("imagePullSecrets"))):
        if not _dict(s).get("name"):
            errs.append(required(f"{path}.imagePullSecrets[{i}].name"))
    return errs


def _pod_template(errs: list[FieldError], path: str, template: Any, check_restart_policy: bool = True) -> None:
    """ValidatePodTemplateSpec."""
    if not isinstance(template, dict):
        errs.append(required(path))
        return
    meta = _dict(template.get("metadata"))
    _labels(errs, f"{path}.metadata.labels", meta.get("labels"))
    errs.extend(_annotations(meta.get("annotations"), f"{path}.metadata.annotations"))
    spec = template.get("spec")
    errs.extend(validate_pod_spec(spec, f"{path}.spec", template=True, check_restart_policy=check_restart_policy))
    if _list(_dict(spec).get("ephemeralContainers")):
        errs.append(forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))


def _validate_pod(obj: dict, old: dict | None) -> list[FieldError]:
    if old is not None:
        return _pod_update(obj, old)
    errs = validate_object_meta(obj.get("metadata"), "Pod", True)
    spec = obj.get("spec")
    errs += validate_pod_spec(spec)
    if _list(_dict(spec).get("ephemeralContainers")):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errs


_POD_UPDATE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                   "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                   "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                   "(allow it to be set to 1 if it was previously negative)")


def _pod_update(new: dict, old: dict) -> list[FieldError]:
    """ValidatePodUpdate: the spec is immutable but for a few fields."""
    errs = validate_object_meta(new.get("metadata"), "Pod", True, check_name=False) + _meta_update(new, old)
    ns, os_ = _dict(new.get("spec")), _dict(old.get("spec"))
    munged = json.loads(json.dumps(ns))
    for key in ("containers", "initContainers"):
        nc, oc = _list(ns.get(key)), _list(os_.get(key))
        if len(nc) != len(oc):
            errs.append(forbidden(f"spec.{key}", "pod updates may not add or remove containers"))
            return errs
        for i, c in enumerate(nc):
            image = _dict(c).get("image")
            if not image:
                errs.append(required(f"spec.{key}[{i}].image"))
            elif isinstance(image, str) and image.strip() != image:
                errs.append(invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace"))
            if isinstance(munged[key][i], dict):
                munged[key][i]["image"] = _dict(oc[i]).get("image")
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        if not _is_int(nads) or not 0 <= nads <= _MAX_INT32:
            errs.append(invalid("spec.activeDeadlineSeconds", nads, f"must be between 0 and {_MAX_INT32}, inclusive"))
            return errs
        if _is_int(oads) and oads < nads:
            errs.append(invalid("spec.activeDeadlineSeconds", nads, "must be less than or equal to previous value"))
            return errs
    elif oads is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    munged.pop("activeDeadlineSeconds", None)
    if oads is not None:
        munged["activeDeadlineSeconds"] = oads
    # Only additions to tolerations (an existing one may change only its tolerationSeconds).
    new_tol = [_dict(t) for t in _list(ns.get("tolerations"))]
    for ot in _list(os_.get("tolerations")):
        ot = {k: v for k, v in _dict(ot).items() if k != "tolerationSeconds"}
        if not any(_norm({k: v for k, v in t.items() if k != "tolerationSeconds"}) == _norm(ot) for t in new_tol):
            errs.append(forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
            break
    _tolerations(errs, "spec.tolerations", ns.get("tolerations"))
    munged["tolerations"] = os_.get("tolerations")
    # Scheduling gates may only be removed.
    old_gates = [_dict(g).get("name") for g in _list(os_.get("schedulingGates"))]
    new_gates = [_dict(g).get("name") for g in _list(ns.get("schedulingGates"))]
    if any(g not in old_gates for g in new_gates):
        errs.append(forbidden("spec.schedulingGates", "only deletion is allowed, but found new scheduling gate "
                              f"'{next(g for g in new_gates if g not in old_gates)}'"))
    munged["schedulingGates"] = os_.get("schedulingGates")
    otg, ntg = os_.get("terminationGracePeriodSeconds"), ns.get("terminationGracePeriodSeconds")
    if _is_int(otg) and otg < 0 and ntg == 1:
        munged["terminationGracePeriodSeconds"] = otg
    if old_gates:
        # A gated pod may gain nodeSelector entries and node affinity.
        old_sel = _dict(os_.get("nodeSelector"))
        new_sel = _dict(ns.get("nodeSelector"))
        if all(new_sel.get(k) == v for k, v in old_sel.items()):
            munged["nodeSelector"] = os_.get("nodeSelector")
        munged["affinity"] = os_.get("affinity")
    if _norm(munged) != _norm(os_):
        changed = sorted(k for k in set(munged) | set(os_) if _norm(munged.get(k)) != _norm(os_.get(k)))
        diff = "\n".join(f"  spec.{k}: {_fmt(os_.get(k))} -> {_fmt(ns.get(k))}" for k in changed)
        errs.append(forbidden("spec", f"{_POD_UPDATE_MSG}\n{diff}"))
    return errs


# --------------------------------------------------------------------------- workloads


def _int_or_percent(v: Any) -> int:
    if isinstance(v, str):
        if _PERCENT_RE.match(v):
            return int(v[:-1])
        return int(v) if v.isdigit() else 0
    return v if _is_int(v) else 0


def _positive_int_or_percent(errs: list[FieldError], path: str, v: Any) -> None:
    if isinstance(v, str):
        if not _PERCENT_RE.match(v):
            errs.append(invalid(path, v, _PERCENT_MSG))
    elif _is_int(v):
        _nonneg(errs, path, v)
    elif v is not None:
        errs.append(invalid(path, v, "must be an integer or percentage (e.g '5%')"))


def _not_over_100(errs: list[FieldError], path: str, v: Any) -> None:
    if isinstance(v, str) and _PERCENT_RE.match(v) and int(v[:-1]) > 100:
        errs.append(invalid(path, v, "must not be greater than 100%"))


def _selector_and_template(errs: list[FieldError], spec: dict, what: str, required_: bool = True) -> None:
    """Selector present, valid, non-empty, matching the template labels; the template validated."""
    sel = spec.get("selector")
    if sel is None:
        if required_:
            errs.append(required("spec.selector"))
    else:
        errs.extend(validate_label_selector(sel, "spec.selector"))
        if isinstance(sel, dict) and _selector_empty(sel):
            errs.append(invalid("spec.selector", sel, f"empty selector is invalid for {what}"))
    template = spec.get("template")
    if isinstance(sel, dict) and _selector_valid(sel) and not _selector_empty(sel):
        labels = _dict(_dict(_dict(template).get("metadata")).get("labels"))
        if not _selector_matches(sel, labels):
            errs.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))


def _replica_template(errs: list[FieldError], spec: dict, kind: str) -> None:
    """ValidatePodTemplateSpecForReplicaSet: the template of an always-running workload."""
    template = spec.get("template")
    _pod_template(errs, "spec.template", template)
    tspec = _dict(_dict(template).get("spec"))
    rp = tspec.get("restartPolicy")
    if isinstance(template, dict) and rp not in (None, "", "Always"):
        errs.append(not_supported("spec.template.spec.restartPolicy", rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"))


def _validate_deployment(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Deployment", True)
    spec = _dict(obj.get("spec"))
    _nonneg(errs, "spec.replicas", spec.get("replicas"))
    _selector_and_template(errs, spec, "deployment")
    _replica_template(errs, spec, "ReplicaSet")
    strategy = _dict(spec.get("strategy"))
    stype = strategy.get("type")
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            errs.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            ru = _dict(ru)
            p = "spec.strategy.rollingUpdate"
            _positive_int_or_percent(errs, f"{p}.maxUnavailable", ru.get("maxUnavailable"))
            _positive_int_or_percent(errs, f"{p}.maxSurge", ru.get("maxSurge"))
            if _int_or_percent(ru.get("maxUnavailable")) == 0 and _int_or_percent(ru.get("maxSurge")) == 0:
                errs.append(invalid(f"{p}.maxUnavailable", ru.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0"))
            _not_over_100(errs, f"{p}.maxUnavailable", ru.get("maxUnavailable"))
    else:
        errs.append(not_supported("spec.strategy.type", stype, ["Recreate", "RollingUpdate"]))
    mrs = spec.get("minReadySeconds")
    _nonneg(errs, "spec.minReadySeconds", mrs)
    _nonneg(errs, "spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    _nonneg(errs, "spec.progressDeadlineSeconds", pds)
    if _is_int(pds) and pds <= (mrs if _is_int(mrs) else 0):
        errs.append(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        errs += _meta_update(obj, old)
        _immutable(errs, "spec.selector", spec.get("selector"), _dict(old.get("spec")).get("selector"))
    return errs


def _validate_replica_set(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "ReplicaSet", True)
    spec = _dict(obj.get("spec"))
    _nonneg(errs, "spec.replicas", spec.get("replicas"))
    _nonneg(errs, "spec.minReadySeconds", spec.get("minReadySeconds"))
    _selector_and_template(errs, spec, "deployment")
    _replica_template(errs, spec, "ReplicaSet")
    if old is not None:
        errs += _meta_update(obj, old)
        _immutable(errs, "spec.selector", spec.get("selector"), _dict(old.get("spec")).get("selector"))
    return errs


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def _validate_stateful_set(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "StatefulSet", True)
    spec = _dict(obj.get("spec"))
    pmp = spec.get("podManagementPolicy")
    if not pmp:
        errs.append(required("spec.podManagementPolicy"))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _dict(spec.get("updateStrategy"))
    stype = strategy.get("type")
    if not stype:
        errs.append(required("spec.updateStrategy"))
    elif stype == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            errs.append(invalid("spec.updateStrategy.rollingUpdate", strategy["rollingUpdate"],
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif stype == "RollingUpdate":
        ru = _dict(strategy.get("rollingUpdate"))
        _nonneg(errs, "spec.updateStrategy.rollingUpdate.partition", ru.get("partition"))
        if ru.get("maxUnavailable") is not None:
            _positive_int_or_percent(errs, "spec.updateStrategy.rollingUpdate.maxUnavailable", ru["maxUnavailable"])
            if _int_or_percent(ru["maxUnavailable"]) == 0:
                errs.append(invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", ru["maxUnavailable"],
                                    "must be greater than 0"))
    else:
        errs.append(invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    policy = _dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        if policy.get(key) is not None:
            _enum(errs, f"spec.persistentVolumeClaimRetentionPolicy.{key}", policy[key], ["Retain", "Delete"])
    _nonneg(errs, "spec.ordinals.start", _dict(spec.get("ordinals")).get("start"))
    _nonneg(errs, "spec.replicas", spec.get("replicas"))
    _nonneg(errs, "spec.minReadySeconds", spec.get("minReadySeconds"))
    _selector_and_template(errs, spec, "statefulset")
    _replica_template(errs, spec, "StatefulSet")
    if spec.get("serviceName"):
        _dns_label(errs, "spec.serviceName", spec["serviceName"])
    for i, pvc in enumerate(_list(spec.get("volumeClaimTemplates"))):
        meta = _dict(_dict(pvc).get("metadata"))
        if not meta.get("name"):
            errs.append(required(f"spec.volumeClaimTemplates[{i}].metadata.name"))
    if old is not None:
        errs += _meta_update(obj, old)
        ospec = _dict(old.get("spec"))
        rest_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        rest_old = {k: v for k, v in ospec.items() if k not in _STS_MUTABLE}
        if _norm(rest_new) != _norm(rest_old):
            errs.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                  "'template', 'updateStrategy', 'revisionHistoryLimit', "
                                  "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
    return errs


def _validate_daemon_set(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "DaemonSet", True)
    spec = _dict(obj.get("spec"))
    _selector_and_template(errs, spec, "daemonset")
    _replica_template(errs, spec, "DaemonSet")
    _nonneg(errs, "spec.minReadySeconds", spec.get("minReadySeconds"))
    _nonneg(errs, "spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    strategy = _dict(spec.get("updateStrategy"))
    stype = strategy.get("type")
    if stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        p = "spec.updateStrategy.rollingUpdate"
        if ru is None:
            errs.append(required(p))
        else:
            ru = _dict(ru)
            for key in ("maxUnavailable", "maxSurge"):
                _positive_int_or_percent(errs, f"{p}.{key}", ru.get(key))
                _not_over_100(errs, f"{p}.{key}", ru.get(key))
            unavailable = _int_or_percent(ru.get("maxUnavailable")) != 0
            surge = _int_or_percent(ru.get("maxSurge")) != 0
            if unavailable and surge:
                errs.append(invalid(f"{p}.maxSurge", ru.get("maxSurge"), "may not be set when maxUnavailable is non-zero"))
            elif not unavailable and not surge:
                errs.append(required(f"{p}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif stype != "OnDelete":
        errs.append(not_supported("spec.updateStrategy.type", stype, ["RollingUpdate", "OnDelete"]))
    if old is not None:
        errs += _meta_update(obj, old)
        _immutable(errs, "spec.selector", spec.get("selector"), _dict(old.get("spec")).get("selector"))
    return errs


# --------------------------------------------------------------------------- batch

_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}),
                (1, 12, {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                                          "sep", "oct", "nov", "dec"))}),
                (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}))
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def cron_schedule_error(schedule: str) -> str | None:
    """Why a CronJob schedule does not parse (robfig/cron's standard parser), or None."""
    spec = schedule.strip()
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        parts = spec.split(None, 1)
        spec = parts[1] if len(parts) > 1 else ""
    if spec.startswith("@"):
        if spec.startswith("@every "):
            dur = spec[len("@every "):].strip()
            return None if _DURATION_RE.match(dur) else f"failed to parse duration {spec}: time: invalid duration {_go_quote(dur)}"
        return None if spec in _CRON_DESCRIPTORS else f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for i, (field, (lo, hi, names)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        for expr in field.split(","):
            msg = _cron_range(expr, lo, hi, names, i in (2, 4))
            if msg:
                return msg
    return None


def _cron_range(expr: str, lo: int, hi: int, names: dict[str, int], question: bool) -> str | None:
    range_step = expr.split("/")
    if len(range_step) > 2:
        return f"too many slashes: {expr}"
    low_high = range_step[0].split("-")
    if len(low_high) > 2:
        return f"too many hyphens: {expr}"

    def value(s: str) -> tuple[int | None, str | None]:
        if s.lower() in names:
            return names[s.lower()], None
        if not s.isdigit():
            return None, f'failed to parse int from {s}: strconv.Atoi: parsing {_go_quote(s)}: invalid syntax'
        return int(s), None

    if low_high[0] == "*" or (question and low_high[0] == "?"):
        start, end = lo, hi
        if len(low_high) > 1:
            return f"too many hyphens: {expr}"
    else:
        start, err = value(low_high[0])
        if err:
            return err
        end = start
        if len(low_high) == 2:
            end, err = value(low_high[1])
            if err:
                return err
    if len(range_step) == 2:
        step, err = value(range_step[1])
        if err:
            return err
        if step == 0:
            return f"step of range should be a positive number: {expr}"
    assert start is not None and end is not None
    if start < lo:
        return f"beginning of range ({start}) below minimum ({lo}): {expr}"
    if end > hi:
        return f"end of range ({end}) above maximum ({hi}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def _job_spec(errs: list[FieldError], spec: dict, path: str) -> None:
    """validateJobSpec (selector handled by the callers)."""
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                "backoffLimitPerIndex", "maxFailedIndexes"):
        _nonneg(errs, f"{path}.{key}", spec.get(key))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
        elif mode == "Indexed" and spec.get("completions") is None:
            errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None and prp not in ("TerminatingOrFailed", "Failed"):
        errs.append(not_supported(f"{path}.podReplacementPolicy", prp, ["TerminatingOrFailed", "Failed"]))
    template = spec.get("template")
    tp = f"{path}.template"
    _pod_template(errs, tp, template, check_restart_policy=False)
    rp = _dict(_dict(template).get("spec")).get("restartPolicy")
    if rp in (None, "", "Always"):
        errs.append(required(f"{tp}.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        errs.append(not_supported(f"{tp}.spec.restartPolicy", rp, ["OnFailure", "Never"]))


def _validate_job(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Job", True)
    spec = _dict(obj.get("spec"))
    _job_spec(errs, spec, "spec")
    sel = spec.get("selector")
    if sel is None:
        if spec.get("manualSelector") is True:
            errs.append(required("spec.selector"))
    else:
        errs.extend(validate_label_selector(sel, "spec.selector"))
        if _selector_valid(sel):
            labels = _dict(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))
            if not _selector_matches(sel, labels):
                errs.append(invalid("spec.template.metadata.labels", labels,
                                    "`selector` does not match template `labels`"))
    if old is not None:
        errs += _meta_update(obj, old)
        ospec = _dict(old.get("spec"))
        elastic = (spec.get("completionMode") == "Indexed" and spec.get("completions") == spec.get("parallelism"))
        if not elastic:
            _immutable(errs, "spec.completions", spec.get("completions"), ospec.get("completions"))
        for key in ("selector", "completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy",
                    "successPolicy", "podReplacementPolicy"):
            _immutable(errs, f"spec.{key}", spec.get(key), ospec.get(key))
        if not ospec.get("suspend"):
            _immutable(errs, "spec.template", spec.get("template"), ospec.get("template"))
    return errs


def _validate_cron_job(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "CronJob", True)
    spec = _dict(obj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule"))
    elif not isinstance(schedule, str):
        errs.append(invalid("spec.schedule", schedule, "must be a string"))
    else:
        msg = cron_schedule_error(schedule)
        if msg:
            errs.append(invalid("spec.schedule", schedule, msg))
        old_schedule = _str(_dict(_dict(old).get("spec")).get("schedule"))
        if "TZ" in schedule and "TZ" not in old_schedule:
            errs.append(invalid("spec.schedule", schedule,
                                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    tz = spec.get("timeZone")
    if tz is not None:
        if not isinstance(tz, str) or not tz or " " in tz or tz.startswith(("/", ".")):
            errs.append(invalid("spec.timeZone", tz, "unknown time zone " + _str(tz)))
    _nonneg(errs, "spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    _enum(errs, "spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ["Allow", "Forbid", "Replace"])
    _nonneg(errs, "spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit"))
    _nonneg(errs, "spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit"))
    jt = spec.get("jobTemplate")
    if not isinstance(jt, dict):
        errs.append(required("spec.jobTemplate"))
    else:
        jspec = _dict(jt.get("spec"))
        _job_spec(errs, jspec, "spec.jobTemplate.spec")
        if jspec.get("selector") is not None:
            errs.append(invalid("spec.jobTemplate.spec.selector", jspec["selector"], "`selector` will be auto-generated"))
        if jspec.get("manualSelector") is True:
            errs.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
        _labels(errs, "spec.jobTemplate.metadata.labels", _dict(jt.get("metadata")).get("labels"))
    if old is not None:
        errs += _meta_update(obj, old)
    return errs


# --------------------------------------------------------------------------- services & endpoints

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_NODE_PORT_RANGE = (30000, 32767)


def _validate_service(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Service", True)
    spec = _dict(obj.get("spec"))
    stype = spec.get("type")
    cluster_ip = spec.get("clusterIP")
    cluster_ips = _list(spec.get("clusterIPs")) or ([cluster_ip] if cluster_ip else [])
    headless = bool(cluster_ips) and cluster_ips[0] == "None"
    ports = _list(spec.get("ports"))
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports"))
    if stype in ("LoadBalancer", "NodePort") and headless:
        errs.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {stype} services"))
    if stype == "LoadBalancer":
        for i, p in enumerate(ports):
            if _dict(p).get("port") == 10250:
                errs.append(invalid(f"spec.ports[{i}]", 10250,
                                    "may not expose port 10250 externally since it is used by kubelet"))
    if stype == "ExternalName":
        if cluster_ips and cluster_ips != [""]:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = _str(spec.get("externalName")).removesuffix(".")
        if cname:
            _dns_subdomain(errs, "spec.externalName", cname)
        else:
            errs.append(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        pp = f"spec.ports[{i}]"
        port = _dict(port)
        pname = port.get("name")
        if len(ports) > 1 and not pname:
            errs.append(required(f"{pp}.name"))
        elif pname:
            _dns_label(errs, f"{pp}.name", pname)
            if pname in names:
                errs.append(duplicate(f"{pp}.name", pname))
            elif isinstance(pname, str):
                names.add(pname)
        _port_num(errs, f"{pp}.port", port.get("port"))
        _enum(errs, f"{pp}.protocol", port.get("protocol"), _PROTOCOLS)
        _port_num_or_name(errs, f"{pp}.targetPort", port.get("targetPort"))
        if port.get("appProtocol"):
            _qualified(errs, f"{pp}.appProtocol", _str(port["appProtocol"]))
        np_ = port.get("nodePort")
        if np_ not in (None, 0):
            if stype == "ClusterIP":
                errs.append(forbidden(f"{pp}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif not _is_int(np_) or not _NODE_PORT_RANGE[0] <= np_ <= _NODE_PORT_RANGE[1]:
                errs.append(invalid(f"{pp}.nodePort", np_, "provided port is not in the valid range. The range of "
                                    f"valid ports is {_NODE_PORT_RANGE[0]}-{_NODE_PORT_RANGE[1]}"))
    if spec.get("selector") is not None:
        _labels(errs, "spec.selector", spec.get("selector"))
    affinity = spec.get("sessionAffinity")
    _enum(errs, "spec.sessionAffinity", affinity, ["ClientIP", "None"])
    if affinity == "ClientIP":
        timeout = _dict(_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        if not _is_int(timeout) or not 0 < timeout <= 86400:
            errs.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                "must be greater than 0 and less than 86400"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    # clusterIP / clusterIPs / ipFamilies
    if spec.get("clusterIPs") and cluster_ip and cluster_ip != spec["clusterIPs"][0]:
        errs.append(invalid("spec.clusterIPs", spec["clusterIPs"], "first value must match `clusterIP`"))
    if stype != "ExternalName":
        for i, ip in enumerate(cluster_ips):
            if i == 0 and ip == "None":
                if len(cluster_ips) > 1:
                    errs.append(invalid("spec.clusterIPs", cluster_ips, "'None' must be the first and only value"))
                continue
            if ip != "" and _ip(ip) is None:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, _IP_MSG))
    families = _list(spec.get("ipFamilies"))
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, ["IPv4", "IPv6"]))
        elif fam in families[:i]:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
    if len(families) > 2:
        errs.append(invalid("spec.ipFamilies", families, "may specify no more than one IP for each IP family"))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None:
        _enum(errs, "spec.ipFamilyPolicy", policy, ["PreferDualStack", "RequireDualStack", "SingleStack"])
        if policy == "SingleStack" and len(families) > 1:
            errs.append(invalid("spec.ipFamilyPolicy", policy,
                                "must be RequireDualStack or PreferDualStack when multiple IP families are specified"))
    for i, ip in enumerate(_list(spec.get("externalIPs"))):
        addr = _ip(ip)
        if addr is None:
            errs.append(invalid(f"spec.externalIPs[{i}]", ip, _IP_MSG))
        else:
            errs.extend(invalid(f"spec.externalIPs[{i}]", ip, m) for m in _special_ip_errors(addr))
    _enum(errs, "spec.type", stype, _SERVICE_TYPES)
    node_ports: set[tuple[Any, Any]] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = _dict(port)
        if port.get("nodePort") not in (None, 0):
            key = (port.get("protocol"), port.get("nodePort"))
            if key in node_ports:
                errs.append(duplicate(f"spec.ports[{i}].nodePort", port.get("nodePort")))
            node_ports.add(key)
        key = (port.get("protocol"), port.get("port"))
        if key in seen_ports:
            errs.append(duplicate(f"spec.ports[{i}]", {"port": key[1], "protocol": key[0]}))
        seen_ports.add(key)
    for i, cidr in enumerate(_list(spec.get("loadBalancerSourceRanges"))):
        try:
            ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            errs.append(invalid(f"spec.loadBalancerSourceRanges[{i}]", cidr, _CIDR_MSG))
    etp = spec.get("externalTrafficPolicy")
    if stype in ("NodePort", "LoadBalancer"):
        _enum(errs, "spec.externalTrafficPolicy", etp, ["Cluster", "Local"])
    elif etp:
        errs.append(invalid("spec.externalTrafficPolicy", etp, "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
    hc = spec.get("healthCheckNodePort")
    if hc not in (None, 0) and not (stype == "LoadBalancer" and etp == "Local"):
        errs.append(invalid("spec.healthCheckNodePort", hc,
                            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is not None or stype in ("ClusterIP", "NodePort", "LoadBalancer"):
        _enum(errs, "spec.internalTrafficPolicy", itp, ["Cluster", "Local"])
    if old is not None:
        errs += _meta_update(obj, old)
        ospec = _dict(old.get("spec"))
        if stype != "ExternalName" and ospec.get("type") != "ExternalName":
            old_ips = _list(ospec.get("clusterIPs")) or ([ospec["clusterIP"]] if ospec.get("clusterIP") else [])
            # An update without clusterIP keeps the allocated one (the server copies it over).
            for i in range(min(2, len(old_ips), len(cluster_ips))):
                if old_ips[i] and cluster_ips[i] and old_ips[i] != cluster_ips[i]:
                    errs.append(invalid(f"spec.clusterIPs[{i}]", cluster_ips, "may not change once set"))
            old_fams = _list(ospec.get("ipFamilies"))
            if old_fams and families and old_fams[0] != families[0]:
                errs.append(invalid("spec.ipFamilies[0]", families[0], "may not change once set"))
    return errs


def _validate_endpoints(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Endpoints", True)
    for i, subset in enumerate(_list(obj.get("subsets"))):
        sp = f"subsets[{i}]"
        subset = _dict(subset)
        if not _list(subset.get("addresses")) and not _list(subset.get("notReadyAddresses")):
            errs.append(required(sp, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(_list(subset.get(key))):
                ap = f"{sp}.{key}[{j}]"
                addr = _dict(addr)
                ip = _ip(addr.get("ip"))
                if ip is None:
                    errs.append(invalid(f"{ap}.ip", addr.get("ip"), _IP_MSG))
                else:
                    errs.extend(invalid(f"{ap}.ip", addr.get("ip"), m) for m in _special_ip_errors(ip))
                if addr.get("hostname"):
                    _dns_label(errs, f"{ap}.hostname", addr["hostname"])
                if addr.get("nodeName") is not None:
                    _dns_subdomain(errs, f"{ap}.nodeName", addr["nodeName"])
        ports = _list(subset.get("ports"))
        for j, port in enumerate(ports):
            pp = f"{sp}.ports[{j}]"
            port = _dict(port)
            if len(ports) > 1 and not port.get("name"):
                errs.append(required(f"{pp}.name"))
            elif port.get("name"):
                _dns_label(errs, f"{pp}.name", port["name"])
            _port_num(errs, f"{pp}.port", port.get("port"))
            _enum(errs, f"{pp}.protocol", port.get("protocol"), _PROTOCOLS)
    if old is not None:
        errs += _meta_update(obj, old)
    return errs


_ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _validate_endpoint_slice(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "EndpointSlice", True)
    addr_type = obj.get("addressType")
    endpoints = _list(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
        endpoints = []
    for i, ep in enumerate(endpoints):
        ep = _dict(ep)
        ap = f"endpoints[{i}].addresses"
        addrs = _list(ep.get("addresses"))
        if not addrs:
            errs.append(required(ap, "must contain at least 1 address"))
        elif len(addrs) > 100:
            errs.append(too_many(ap, len(addrs), 100))
        for j, a in enumerate(addrs):
            ip = _ip(a)
            if addr_type in ("IPv4", "IPv6"):
                if ip is None or ip.version != int(addr_type[-1]):
                    errs.append(invalid(f"{ap}[{j}]", a, f"must be a valid {addr_type} address"))
                else:
                    errs.extend(invalid(f"{ap}[{j}]", a, m) for m in _special_ip_errors(ip))
            elif addr_type == "FQDN":
                s = _str(a)
                msgs = dns1123_subdomain_errors(s)
                if not msgs and len(s.split(".")) < 2:
                    msgs = ["should be a domain with at least two segments separated by dots"]
                errs.extend(invalid(f"{ap}[{j}]", a, m) for m in msgs)
        if ep.get("nodeName") is not None:
            _dns_subdomain(errs, f"endpoints[{i}].nodeName", ep["nodeName"])
        if ep.get("hostname") is not None:
            _dns_label(errs, f"endpoints[{i}].hostname", ep["hostname"])
        _labels(errs, f"endpoints[{i}].deprecatedTopology", ep.get("deprecatedTopology"))
    ports = _list(obj.get("ports"))
    if len(ports) > 100:
        errs.append(too_many("ports", len(ports), 100))
        ports = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        pp = f"ports[{i}]"
        port = _dict(port)
        name = _str(port.get("name"))
        if name:
            _dns_label(errs, f"{pp}.name", name)
        if name in names:
            errs.append(duplicate(f"{pp}.name", name))
        names.add(name)
        _enum(errs, f"{pp}.protocol", port.get("protocol"), _PROTOCOLS)
        if port.get("port") is not None:
            _port_num(errs, f"{pp}.port", port["port"])
        if port.get("appProtocol"):
            _qualified(errs, f"{pp}.appProtocol", _str(port["appProtocol"]))
    if old is None:
        _enum(errs, "addressType", addr_type, _ADDRESS_TYPES)
    else:
        errs += _meta_update(obj, old)
        _immutable(errs, "addressType", addr_type, old.get("addressType"))
    return errs


# --------------------------------------------------------------------------- config

_MAX_DATA = 1024 * 1024


def _decoded_len(errs: list[FieldError], path: str, value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        errs.append(invalid(path, "<value redacted>", "must be a base64-encoded string"))
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        errs.append(invalid(path, "<value redacted>", "illegal base64 data: must be a base64-encoded string"))
        return 0


def _immutable_data(errs: list[FieldError], obj: dict, old: dict, keys: tuple[str, ...]) -> None:
    if old.get("immutable") is not True:
        return
    msg = "field is immutable when `immutable` is set"
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", msg))
    for key in keys:
        if _norm(obj.get(key) or {}) != _norm(old.get(key) or {}):
            errs.append(forbidden(key, msg))


def _validate_config_map(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "ConfigMap", True)
    data = obj.get("data")
    binary = obj.get("binaryData")
    total = 0
    for key, value in _dict(data).items():
        errs.extend(invalid(f"data[{key}]", key, m) for m in config_key_errors(str(key)))
        if key in _dict(binary):
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        if not isinstance(value, str):
            errs.append(invalid(f"data[{key}]", value, "must be a string"))
            continue
        total += len(value.encode())
    for key, value in _dict(binary).items():
        errs.extend(invalid(f"binaryData[{key}]", key, m) for m in config_key_errors(str(key)))
        total += _decoded_len(errs, f"binaryData[{key}]", value)
    if total > _MAX_DATA:
        errs.append(too_long("data", _MAX_DATA))
    if old is not None:
        errs += _meta_update(obj, old)
        _immutable_data(errs, obj, old, ("data", "binaryData"))
    return errs


def _validate_secret(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Secret", True)
    data = _dict(obj.get("data"))
    # stringData is merged into data by defaulting; tolerate an undefaulted object too.
    string_data = _dict(obj.get("stringData"))
    total = 0
    decoded: dict[str, bytes] = {}
    for key, value in data.items():
        errs.extend(invalid(f"data[{key}]", key, m) for m in config_key_errors(str(key)))
        total += _decoded_len(errs, f"data[{key}]", value)
        if isinstance(value, str):
            try:
                decoded[key] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                pass
    for key, value in string_data.items():
        errs.extend(invalid(f"stringData[{key}]", key, m) for m in config_key_errors(str(key)))
        decoded[key] = str(value).encode()
        total += len(decoded[key])
    if total > _MAX_DATA:
        errs.append(too_long("data", _MAX_DATA))
    stype = obj.get("type") or "Opaque"
    present = set(data) | set(string_data)
    annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
    if stype == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in present:
            errs.append(required(f"data[{key}]"))
        elif key in decoded:
            try:
                json.loads(decoded[key] or b"")
            except ValueError as e:
                errs.append(invalid(f"data[{key}]", "<secret contents redacted>", str(e)))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in present and "password" not in present:
            errs.append(required("data[username]"))
            errs.append(required("data[password]"))
    elif stype == "kubernetes.io/ssh-auth":
        if not decoded.get("ssh-privatekey"):
            errs.append(required("data[ssh-privatekey]"))
    elif stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in present:
                errs.append(required(f"data[{key}]"))
    if len(stype) > 253 or not isinstance(obj.get("type", ""), str):
        errs.append(invalid("type", obj.get("type"), _max_len(253)))
    if old is not None:
        errs += _meta_update(obj, old)
        _immutable(errs, "type", obj.get("type") or "Opaque", old.get("type") or "Opaque")
        _immutable_data(errs, obj, old, ("data",))
    return errs


def _validate_service_account(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "ServiceAccount", True)
    for i, s in enumerate(_list(obj.get("imagePullSecrets"))):
        if not _dict(s).get("name"):
            errs.append(required(f"imagePullSecrets[{i}].name"))
    if old is not None:
        errs += _meta_update(obj, old)
    return errs


# --------------------------------------------------------------------------- cluster-scoped


def _validate_namespace(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Namespace", False)
    for f in _list(_dict(obj.get("spec")).get("finalizers")):
        f = _str(f)
        before = len(errs)
        _qualified(errs, "spec.finalizers", f)
        if len(errs) == before and "/" not in f and f not in ("kubernetes", "orphan", "foregroundDeletion"):
            errs.append(invalid("spec.finalizers", f, "name is neither a standard finalizer name nor is it fully qualified"))
    phase = _dict(obj.get("status")).get("phase")
    if phase is not None:
        _enum(errs, "status.phase", phase, ["Active", "Terminating"])
    if old is not None:
        errs += _meta_update(obj, old)
    return errs


def _taints(errs: list[FieldError], path: str, taints: Any) -> None:
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(_list(taints)):
        ip = f"{path}[{i}]"
        t = _dict(t)
        key = _str(t.get("key"))
        _qualified(errs, f"{ip}.key", key)
        msgs = label_value_errors(_str(t.get("value")))
        if msgs:
            errs.append(invalid(f"{ip}.value", t.get("value"), ";".join(msgs)))
        _enum(errs, f"{ip}.effect", t.get("effect"), _TAINT_EFFECTS)
        pair = (key, _str(t.get("effect")))
        if pair in seen:
            e = duplicate(ip, t)
            errs.append(FieldError(e.field, e.reason, e.message + ": taints must be unique by key and effect pair"))
        seen.add(pair)


def _pod_cidrs(spec: dict) -> list:
    return _list(spec.get("podCIDRs")) or ([spec["podCIDR"]] if spec.get("podCIDR") else [])


def _validate_node(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Node", False)
    spec = _dict(obj.get("spec"))
    _taints(errs, "spec.taints", spec.get("taints"))
    cidrs = _pod_cidrs(spec)
    nets = []
    for i, c in enumerate(cidrs):
        try:
            nets.append(ipaddress.ip_network(str(c), strict=False))
        except ValueError:
            errs.append(invalid(f"spec.podCIDRs[{i}]", c, _CIDR_MSG))
    if len(cidrs) > 2 or (len(nets) == 2 and nets[0].version == nets[1].version):
        errs.append(invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
    status = _dict(obj.get("status"))
    for key in ("capacity", "allocatable"):
        for name, value in _dict(status.get(key)).items():
            q = _quantity(errs, f"status.{key}.{name}", value)
            if q is not None and q < 0:
                errs.append(invalid(f"status.{key}.{name}", value, "must be greater than or equal to 0"))
    if old is not None:
        errs += _meta_update(obj, old)
        ospec = _dict(old.get("spec"))
        old_cidrs = _pod_cidrs(ospec)
        if old_cidrs and old_cidrs != cidrs:
            errs.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
        if ospec.get("providerID") and ospec.get("providerID") != spec.get("providerID"):
            errs.append(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    return errs


# --------------------------------------------------------------------------- coordination & events


def _micro_time(errs: list[FieldError], path: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
        errs.append(invalid(path, value, "must be an RFC 3339 timestamp"))


def _validate_lease(obj: dict, old: dict | None) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), "Lease", True)
    spec = _dict(obj.get("spec"))
    lds = spec.get("leaseDurationSeconds")
    if lds is not None and (not _is_int(lds) or lds <= 0):
        errs.append(invalid("spec.leaseDurationSeconds", lds, "must be greater than 0"))
    lt = spec.get("leaseTransitions")
    if lt is not None and (not _is_int(lt) or lt < 0):
        errs.append(invalid("spec.leaseTransitions", lt, "must be greater than or equal to 0"))
    for key in ("acquireTime", "renewTime"):
        _micro_time(errs, f"spec.{key}", spec.get(key))
    strategy = spec.get("strategy")
    if strategy is not None:
        _enum(errs, "spec.strategy", strategy, ["OldestEmulationVersion"])
    if spec.get("preferredHolder") and not strategy:
        errs.append(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    if old is not None:
        errs += _meta_update(obj, old)
    return errs


def _event_namespace(errs: list[FieldError], path: str, event_ns: str, involved: dict, new_style: bool) -> None:
    ins = _str(involved.get("namespace"))
    if not new_style:
        if not ins:
            if event_ns not in ("", "default"):
                errs.append(invalid(path, ins, "does not match event.namespace"))
        elif event_ns != ins:
            errs.append(invalid(path, ins, "does not match event.namespace"))
    elif not ins and event_ns not in ("default", "kube-system"):
        errs.append(invalid(path, ins, "does not match event.namespace"))


def _validate_core_event(obj: dict, old: dict | None) -> list[FieldError]:
    """legacyValidateEvent (core/v1 events are validated leniently)."""
    meta = _dict(obj.get("metadata"))
    errs = validate_object_meta(meta, "Event", True, check_name=False)
    if not meta.get("name") and not meta.get("generateName"):
        errs.append(required("metadata.name", "name or generateName is required"))
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict) or not involved:
        errs.append(required("involvedObject"))
        involved = {}
    new_style = bool(obj.get("eventTime"))
    _event_namespace(errs, "involvedObject.namespace", _str(meta.get("namespace")), involved, new_style)
    if new_style:
        _event_reporting(errs, obj, "reportingComponent", "message")
    if old is not None:
        errs += _meta_update(obj, old)
    return errs


def _event_reporting(errs: list[FieldError], obj: dict, controller_field: str, note_field: str) -> None:
    controller = _str(obj.get(controller_field))
    if not controller:
        errs.append(required(controller_field))
    else:
        _qualified(errs, controller_field, controller)
    instance = _str(obj.get("reportingInstance"))
    if not instance:
        errs.append(required("reportingInstance"))
    elif len(instance) > 128:
        errs.append(invalid("reportingInstance", "", "can have at most 128 characters"))
    for key in ("action", "reason"):
        value = _str(obj.get(key))
        if not value:
            errs.append(required(key))
        elif len(value) > 128:
            errs.append(invalid(key, "", "can have at most 128 characters"))
    if len(_str(obj.get(note_field))) > 1024:
        errs.append(invalid(note_field, "", "can have at most 1024 characters"))


_EVENT_IMMUTABLE = ("regarding", "related", "reason", "note", "type", "action", "reportingController",
                    "reportingInstance", "eventTime", "deprecatedSource", "deprecatedFirstTimestamp",
                    "deprecatedLastTimestamp", "deprecatedCount")


def _validate_events_event(obj: dict, old: dict | None) -> list[FieldError]:
    """events.k8s.io/v1 Event: the strict validation of new-style events."""
    meta = _dict(obj.get("metadata"))
    errs = validate_object_meta(meta, "Event", True)
    _event_namespace(errs, "regarding.namespace", _str(meta.get("namespace")), _dict(obj.get("regarding")), True)
    _event_reporting(errs, obj, "reportingController", "note")
    if not obj.get("eventTime"):
        errs.append(required("eventTime"))
    else:
        _micro_time(errs, "eventTime", obj.get("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {_str(obj.get('type'))}"))
    for key in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"):
        if obj.get(key) and old is None:
            errs.append(invalid(key, "", "needs to be unset"))
    src = _dict(obj.get("deprecatedSource"))
    if (src.get("component") or src.get("host")) and old is None:
        errs.append(invalid("deprecatedSource", "", "needs to be unset"))
    series = obj.get("series")
    if series is not None:
        series = _dict(series)
        count = series.get("count")
        if not _is_int(count) or count < 2:
            errs.append(invalid("series.count", "", f"should be at least 2, got {count}"))
        if not series.get("lastObservedTime"):
            errs.append(required("series.lastObservedTime"))
    if old is not None:
        errs += _meta_update(obj, old)
        if old.get("apiVersion") == obj.get("apiVersion"):
            for key in _EVENT_IMMUTABLE:
                _immutable(errs, key, obj.get(key), old.get(key))
    return errs


# --------------------------------------------------------------------------- dispatch

_VALIDATORS: dict[tuple[str, str], Callable[[dict, dict | None], list[FieldError]]] = {
    ("v1", "Pod"): _validate_pod,
    ("v1", "Service"): _validate_service,
    ("v1", "Endpoints"): _validate_endpoints,
    ("v1", "ConfigMap"): _validate_config_map,
    ("v1", "Secret"): _validate_secret,
    ("v1", "ServiceAccount"): _validate_service_account,
    ("v1", "Namespace"): _validate_namespace,
    ("v1", "Node"): _validate_node,
    ("v1", "Event"): _validate_core_event,
    ("apps/v1", "Deployment"): _validate_deployment,
    ("apps/v1", "ReplicaSet"): _validate_replica_set,
    ("apps/v1", "StatefulSet"): _validate_stateful_set,
    ("apps/v1", "DaemonSet"): _validate_daemon_set,
    ("batch/v1", "Job"): _validate_job,
    ("batch/v1", "CronJob"): _validate_cron_job,
    ("coordination.k8s.io/v1", "Lease"): _validate_lease,
    ("discovery.k8s.io/v1", "EndpointSlice"): _validate_endpoint_slice,
    ("events.k8s.io/v1", "Event"): _validate_events_event,
}


def validate(obj: dict, old: dict | None = None) -> list[FieldError]:
    """Field errors of `obj` (a create when `old` is None, else an update of `old`); unknown kinds pass."""
    if not isinstance(obj, dict):
        return [invalid("", obj, "must be an object")]
    fn = _VALIDATORS.get((obj.get("apiVersion"), obj.get("kind")))  # type: ignore[arg-type]
    if fn is None:
        return []
    return fn(obj, old if isinstance(old, dict) else None)
