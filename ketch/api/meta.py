"""Object-meta helpers shared by every component."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime

# Kubernetes' generateName alphabet (no vowels, no confusable digits).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


_last_second = [0, ""]


def now_rfc3339() -> str:
    """The current time as Kubernetes writes metav1.Time (seconds precision, Z); formatted once a second."""
    t = int(time.time())
    last = _last_second
    if t != last[0]:
        last[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        last[0] = t
    return last[1]


def now_micro() -> str:
    """metav1.MicroTime."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> float | None:
    """RFC 3339 timestamp -> epoch seconds (None if absent or unparseable)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def new_uid() -> str:
    """A random (version 4) UUID as text, like str(uuid.uuid4()) at half its cost."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choices(_NAME_ALPHABET, k=5))


def namespace_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None
