"""Object-meta helpers shared by every component."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime

# Kubernetes' generateName alphabet (no vowels, no confusable digits).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    """The current time as Kubernetes writes metav1.Time (seconds precision, Z)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
    return str(uuid.uuid4())


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
