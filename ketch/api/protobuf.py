"""Decode Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) to JSON form.

kubectl's generator commands (``create deployment|configmap|secret|...``, ``autoscale``,
``auth can-i``, ``auth whoami``) POST protobuf.  The body is the magic ``k8s\\0`` followed by a
``runtime.Unknown`` {1: TypeMeta{1 apiVersion, 2 kind}, 2: raw object, 3: contentEncoding,
4: contentType}; the raw object is the kind's message.  Decoding is driven by a table of field
numbers generated from the Kubernetes ``generated.proto`` files (``tools/gen_protobuf_schema.py``
-> ``ketch/api/data/protobuf_schema.json``), and yields the object as the JSON serializer would
print it: zero scalars dropped (except pointer fields where zero is meaningful), nested structs
kept (``resources: {}``), embedded structs inlined, Time/MicroTime as RFC 3339 strings,
IntOrString as int or str, Quantity as its string, RawExtension/FieldsV1 as embedded JSON,
bytes as base64 and maps as dicts.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from pathlib import Path
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_DATA = Path(__file__).resolve().parent / "data" / "protobuf_schema.json"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME = _META + "Time"
_MICRO_TIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDS_V1 = _META + "FieldsV1"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

# field kinds of the compiled table
_K_STRING, _K_BYTES, _K_INT, _K_BOOL, _K_MESSAGE, _K_MAP, _K_SINT, _K_FIXED32, _K_FIXED64 = range(9)
_SCALAR_KINDS = {"string": _K_STRING, "bytes": _K_BYTES, "int32": _K_INT, "int64": _K_INT,
                 "uint32": _K_INT, "uint64": _K_INT, "bool": _K_BOOL, "sint32": _K_SINT,
                 "sint64": _K_SINT, "fixed32": _K_FIXED32, "sfixed32": _K_FIXED32,
                 "fixed64": _K_FIXED64, "sfixed64": _K_FIXED64}
_SIGNED = {"int32", "int64", "sfixed32", "sfixed64"}


class ProtobufError(ValueError):
    """A protobuf body that cannot be decoded; the message names what (kind, message, field)."""


class _Field:
    __slots__ = ("name", "kind", "repeated", "ref", "inline", "keep_zero", "signed", "map_key", "map_val")

    def __init__(self, name: str, kind: int, repeated: bool, ref: Any, flags: int, signed: bool) -> None:
        self.name = name
        self.kind = kind
        self.repeated = repeated
        self.ref = ref
        self.inline = bool(flags & 1)
        self.keep_zero = bool(flags & 2)
        self.signed = signed
        self.map_key: tuple[int, bool] | None = None
        self.map_val: tuple[int, Any, bool] | None = None


_messages: dict[str, dict[int, _Field]] | None = None
_kinds: dict[str, str] = {}


def _load() -> dict[str, dict[int, _Field]]:
    global _messages, _kinds
    if _messages is None:
        table = json.loads(_DATA.read_text())
        compiled: dict[str, dict[int, _Field]] = {}
        for mname, fields in table["messages"].items():
            out: dict[int, _Field] = {}
            for num, (jname, ftype, repeated, ref, flags) in fields.items():
                if ftype == "message":
                    f = _Field(jname, _K_MESSAGE, bool(repeated), ref, flags, False)
                elif ftype == "map":
                    f = _Field(jname, _K_MAP, False, None, flags, False)
                    ktype, vtype = ref
                    f.map_key = (_SCALAR_KINDS[ktype], ktype in _SIGNED)
                    if vtype in _SCALAR_KINDS:
                        f.map_val = (_SCALAR_KINDS[vtype], None, vtype in _SIGNED)
                    else:
                        f.map_val = (_K_MESSAGE, vtype, False)
                else:
                    f = _Field(jname, _SCALAR_KINDS[ftype], bool(repeated), None, flags, ftype in _SIGNED)
                out[int(num)] = f
            compiled[mname] = out
        _kinds = table["kinds"]
        _messages = compiled
    return _messages


def supported_kinds() -> list[str]:
    """'apiVersion/Kind' of every kind decode_request can decode."""
    _load()
    return sorted(_kinds)


# ---------------------------------------------------------------------------------------------
# wire format


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if i >= end:
            raise IndexError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def _fields(buf: bytes, start: int, end: int):
    """Yield (field number, wire type, value) where value is an int or a (start, end) slice."""
    i = start
    while i < end:
        key = buf[i]
        if key < 0x80:
            i += 1
        else:
            key, i = _varint(buf, i, end)
        num, wt = key >> 3, key & 7
        if wt == 2:
            if i >= end:
                raise IndexError("truncated length")
            n = buf[i]
            if n < 0x80:
                i += 1
            else:
                n, i = _varint(buf, i, end)
            if i + n > end:
                raise IndexError("length past end of message")
            yield num, 2, (i, i + n)
            i += n
        elif wt == 0:
            if i < end and buf[i] < 0x80:
                v = buf[i]
                i += 1
            else:
                v, i = _varint(buf, i, end)
            yield num, 0, v
        elif wt == 5:
            if i + 4 > end:
                raise IndexError("truncated fixed32")
            yield num, 5, int.from_bytes(buf[i:i + 4], "little")
            i += 4
        elif wt == 1:
            if i + 8 > end:
                raise IndexError("truncated fixed64")
            yield num, 1, int.from_bytes(buf[i:i + 8], "little")
            i += 8
        else:
            raise ValueError(f"unsupported wire type {wt}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(kind: int, signed: bool, wt: int, v: Any, buf: bytes) -> Any:
    if kind == _K_STRING:
        s, e = v
        return buf[s:e].decode("utf-8")
    if kind == _K_BYTES:
        s, e = v
        return base64.b64encode(buf[s:e]).decode("ascii")
    if kind == _K_INT:
        return _signed64(v) if signed else v
    if kind == _K_BOOL:
        return bool(v)
    if kind == _K_SINT:
        return (v >> 1) ^ -(v & 1)
    if kind == _K_FIXED32:
        return v - (1 << 32) if signed and v >= 1 << 31 else v
    if kind == _K_FIXED64:
        return _signed64(v) if signed else v
    raise ValueError(f"bad scalar kind {kind}")


def _packed(kind: int, signed: bool, buf: bytes, s: int, e: int) -> list:
    out = []
    i = s
    while i < e:
        if kind in (_K_FIXED32, _K_FIXED64):
            size = 4 if kind == _K_FIXED32 else 8
            v = int.from_bytes(buf[i:i + size], "little")
            i += size
        else:
            v, i = _varint(buf, i, e)
        out.append(_scalar(kind, signed, 0, v, buf))
    return out


# ---------------------------------------------------------------------------------------------
# special types


def _timestamp(buf: bytes, s: int, e: int, micro: bool) -> str | None:
    seconds = nanos = 0
    for num, wt, v in _fields(buf, s, e):
        if num == 1 and wt == 0:
            seconds = _signed64(v)
        elif num == 2 and wt == 0:
            nanos = _signed64(v)
    if seconds == 0 and nanos == 0:
        return None
    t = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=seconds)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                whole, frac = divmod(ns, size)
                digits = len(str(size)) - 1
                tail = f"{frac:0{digits}d}".rstrip("0") if digits else ""
                return f"{sign}{whole}{'.' + tail if tail else ''}{unit}"
    secs, frac = divmod(ns, 1_000_000_000)
    h, rem = divmod(secs, 3600)
    m, sec = divmod(rem, 60)
    tail = f"{frac:09d}".rstrip("0")
    out = f"{sec}{'.' + tail if tail else ''}s"
    if h:
        out = f"{h}h{m}m{out}"
    elif m:
        out = f"{m}m{out}"
    return sign + out


def _int_or_string(buf: bytes, s: int, e: int) -> int | str:
    typ = 0
    ival = 0
    sval = ""
    for num, wt, v in _fields(buf, s, e):
        if num == 1 and wt == 0:
            typ = v
        elif num == 2 and wt == 0:
            ival = _signed64(v)
        elif num == 3 and wt == 2:
            sval = buf[v[0]:v[1]].decode("utf-8")
    return sval if typ == 1 else ival


def _quantity(buf: bytes, s: int, e: int) -> str:
    for num, wt, v in _fields(buf, s, e):
        if num == 1 and wt == 2:
            return buf[v[0]:v[1]].decode("utf-8") or "0"
    return "0"


def _raw_json(buf: bytes, s: int, e: int, what: str) -> Any:
    raw = b""
    for num, wt, v in _fields(buf, s, e):
        if num == 1 and wt == 2:
            raw = buf[v[0]:v[1]]
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode_request(raw)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProtobufError(f"{what} does not hold JSON: {exc}") from None


_SPECIAL = {
    _TIME: lambda buf, s, e: _timestamp(buf, s, e, False),
    _MICRO_TIME: lambda buf, s, e: _timestamp(buf, s, e, True),
    _INT_OR_STRING: _int_or_string,
    _QUANTITY: _quantity,
    _RAW_EXTENSION: lambda buf, s, e: _raw_json(buf, s, e, "RawExtension"),
    _FIELDS_V1: lambda buf, s, e: _raw_json(buf, s, e, "FieldsV1"),
    _DURATION: lambda buf, s, e: _go_duration(next((_signed64(v) for n, w, v in _fields(buf, s, e)
                                                     if n == 1 and w == 0), 0)),
}


# ---------------------------------------------------------------------------------------------
# messages


def _value(mname: str, buf: bytes, s: int, e: int) -> Any:
    special = _SPECIAL.get(mname)
    if special is not None:
        return special(buf, s, e)
    return _message(mname, buf, s, e)


def _map_entry(f: _Field, buf: bytes, s: int, e: int) -> tuple[Any, Any]:
    kkind, ksigned = f.map_key
    vkind, vref, vsigned = f.map_val
    key: Any = "" if kkind == _K_STRING else 0
    val: Any = None
    for num, wt, v in _fields(buf, s, e):
        if num == 1:
            key = _scalar(kkind, ksigned, wt, v, buf)
        elif num == 2:
            if vkind == _K_MESSAGE:
                val = _value(vref, buf, v[0], v[1])
            else:
                val = _scalar(vkind, vsigned, wt, v, buf)
    if val is None:
        if vkind == _K_MESSAGE:
            val = _value(vref, buf, e, e)
        elif vkind == _K_STRING or vkind == _K_BYTES:
            val = ""
        elif vkind == _K_BOOL:
            val = False
        else:
            val = 0
    return key, val


def _message(mname: str, buf: bytes, s: int, e: int) -> dict:
    table = _messages.get(mname)
    if table is None:
        raise ProtobufError(f"no protobuf schema for message {mname}")
    out: dict = {}
    for num, wt, v in _fields(buf, s, e):
        f = table.get(num)
        if f is None:
            continue  # a field newer than the table: skipped, as the Go decoder does
        kind = f.kind
        try:
            if kind == _K_MESSAGE:
                if wt != 2:
                    raise ProtobufError(f"wrong wire type {wt}")
                val = _value(f.ref, buf, v[0], v[1])
                if f.repeated:
                    lst = out.get(f.name)
                    if lst is None:
                        lst = out[f.name] = []
                    lst.append(val)
                elif f.inline:
                    out.update(val)
                elif val is not None:
                    out[f.name] = val
            elif kind == _K_MAP:
                if wt != 2:
                    raise ProtobufError(f"wrong wire type {wt}")
                key, val = _map_entry(f, buf, v[0], v[1])
                d = out.get(f.name)
                if d is None:
                    d = out[f.name] = {}
                d[key] = val
            elif f.repeated:
                lst = out.get(f.name)
                if lst is None:
                    lst = out[f.name] = []
                if wt == 2 and kind not in (_K_STRING, _K_BYTES):
                    lst.extend(_packed(kind, f.signed, buf, v[0], v[1]))
                else:
                    lst.append(_scalar(kind, f.signed, wt, v, buf))
            else:
                if (wt == 2) != (kind in (_K_STRING, _K_BYTES)):
                    raise ProtobufError(f"wrong wire type {wt}")
                val = _scalar(kind, f.signed, wt, v, buf)
                if val or f.keep_zero:
                    out[f.name] = val
                else:
                    out.pop(f.name, None)
        except ProtobufError as exc:
            if str(exc).startswith("cannot decode"):
                raise
            raise ProtobufError(f"cannot decode {mname.rsplit('.', 1)[1]}.{f.name}: {exc}") from None
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ProtobufError(f"cannot decode {mname.rsplit('.', 1)[1]}.{f.name}: {exc}") from None
    return out


def decode_object(api_version: str, kind: str, raw: bytes) -> dict:
    """Decode one object's protobuf message (no envelope) to its JSON form."""
    _load()
    mname = _kinds.get(f"{api_version}/{kind}")
    if mname is None:
        raise ProtobufError(f"cannot decode protobuf body of kind {kind!r} (apiVersion {api_version!r}): "
                            f"not a kind ketch reads as protobuf; send it as application/json")
    try:
        body = _message(mname, raw, 0, len(raw))
    except (ValueError, IndexError) as exc:  # ProtobufError is a ValueError
        raise ProtobufError(f"cannot decode {kind} ({api_version}): {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **body}


def decode_request(raw: bytes) -> dict:
    """A protobuf request body (k8s\\0 + runtime.Unknown) -> the object as Kubernetes JSON."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ProtobufError("protobuf body must be bytes")
    raw = bytes(raw)
    if not raw.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body: missing the k8s\\x00 prefix")
    api_version = kind = encoding = ""
    obj: tuple[int, int] | None = None
    end = len(raw)
    try:
        for num, wt, v in _fields(raw, 4, end):
            if wt != 2:
                continue
            if num == 1:
                for tnum, twt, tv in _fields(raw, v[0], v[1]):
                    if twt == 2 and tnum == 1:
                        api_version = raw[tv[0]:tv[1]].decode("utf-8")
                    elif twt == 2 and tnum == 2:
                        kind = raw[tv[0]:tv[1]].decode("utf-8")
            elif num == 2:
                obj = v
            elif num == 3:
                encoding = raw[v[0]:v[1]].decode("utf-8")
    except (ValueError, IndexError) as exc:
        raise ProtobufError(f"cannot decode the runtime.Unknown envelope: {exc}") from None
    if not kind or not api_version:
        raise ProtobufError("protobuf envelope carries no apiVersion/kind")
    if encoding:
        raise ProtobufError(f"cannot decode {kind}: unsupported contentEncoding {encoding!r}")
    body = raw[obj[0]:obj[1]] if obj else b""
    return decode_object(api_version, kind, body)
