"""resource.Quantity: parse and canonically format Kubernetes quantities ("100m", "1Gi", "1e3")."""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["QUANTITY_REGEX", "parse_quantity", "format_quantity", "canonical_quantity", "quantity_format"]

# The message Kubernetes gives for a malformed quantity (resource.ErrFormatWrong).
QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"

_RE = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}


def quantity_format(s: str | int | float) -> str:
    """The format a quantity is written in: "BinarySI", "DecimalSI" or "DecimalExponent"."""
    if not isinstance(s, str):
        return "DecimalSI"
    m = _RE.match(s.strip())
    suffix = (m.group(3) or "") if m else ""
    if suffix in _BINARY:
        return "BinarySI"
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return "DecimalExponent"
    return "DecimalSI"


def parse_quantity(s: str | int | float | Decimal) -> Decimal:
    """The exact value of a quantity; ValueError when it is not one."""
    if type(s) is str:
        return _parse_quantity_str(s)
    return _parse_quantity(s)


@functools.lru_cache(maxsize=4096)
def _parse_quantity_str(s: str) -> Decimal:
    return _parse_quantity(s)


def _parse_quantity(s: str | int | float | Decimal) -> Decimal:
    if isinstance(s, bool):
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_REGEX}'")
    if isinstance(s, Decimal):
        return s
    if isinstance(s, int):
        return Decimal(s)
    if isinstance(s, float):
        if not math.isfinite(s):
            raise ValueError(f"quantities must match the regular expression '{QUANTITY_REGEX}'")
        return Decimal(repr(s))
    if not isinstance(s, str):
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_REGEX}'")
    m = _RE.match(s)
    if not m:
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_REGEX}'")
    sign, num, suffix = m.group(1), m.group(2), m.group(3) or ""
    try:
        value = Decimal(num)
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_REGEX}'") from None
    if suffix in _BINARY:
        value *= Decimal(1024) ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value = value.scaleb(_DECIMAL[suffix])
    else:
        value = value.scaleb(int(suffix[1:]))
    return -value if sign == "-" else value


def _round_up_nano(value: Decimal) -> int:
    """value in units of 1e-9, rounded up (Kubernetes keeps at most nano precision)."""
    scaled = value.scaleb(9)
    i = int(scaled)
    if Decimal(i) != scaled and scaled > 0:
        i += 1
    return i


def format_quantity(value: Decimal | int | float | str, fmt: str = "DecimalSI") -> str:
    """Canonical string of a value, as Quantity.String() writes it ("1500m", "1Gi", "15k", "1e3")."""
    value = parse_quantity(value) if not isinstance(value, Decimal) else value
    if value == 0:
        return "0"
    if fmt == "BinarySI":
        if value == value.to_integral_value() and abs(value) >= 1024:
            n = int(value)
            exp = 0
            while exp < 6 and n % 1024 == 0:
                n //= 1024
                exp += 1
            if exp:
                return f"{n}{_BINARY_SUFFIX[exp]}"
        fmt = "DecimalSI"
    nano = _round_up_nano(value)
    exp = -9
    while exp < 18 and nano % 1000 == 0:
        nano //= 1000
        exp += 3
    if fmt == "DecimalExponent":
        return f"{nano}" if exp == 0 else f"{nano}e{exp}"
    return f"{nano}{_DECIMAL_SUFFIX[exp]}"


def canonical_quantity(s: str | int | float) -> str:
    """A quantity as the apiserver echoes it back: "1000m" -> "1", "1024Mi" -> "1Gi", "0.5" -> "500m"."""
    return format_quantity(parse_quantity(s), quantity_format(s))
