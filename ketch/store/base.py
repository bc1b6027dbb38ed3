"""The store contract (etcd's): one global revision, guarded writes, watch from a revision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

PUT = "PUT"
DELETE = "DELETE"


class StoreError(Exception):
    """Base class of store failures."""


class KeyExistsError(StoreError):
    """create() of a key that is already present."""

    def __init__(self, key: str):
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    """update()/delete() of a key that is absent."""

    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatchError(StoreError):
    """A guarded write whose expected modification revision is not the key's current one."""

    def __init__(self, key: str, expected: int, actual: int):
        super().__init__(f"revision mismatch on {key}: expected {expected}, have {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class CompactedError(StoreError):
    """A watch or read from a revision that compaction removed."""

    def __init__(self, requested: int, compacted: int):
        super().__init__(f"revision {requested} is compacted (oldest available {compacted})")
        self.requested = requested
        self.compacted = compacted


@dataclass(slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(slots=True)
class Event:
    """One change. For DELETE, `value` is the last value the key had."""

    type: str
    key: str
    revision: int
    value: bytes
    create_revision: int
    # The decoded object when the writer still has it (saves a decode); never mutate it.
    obj: Any = None
    # time.monotonic() when the change became durable (SQLite: its commit returned; etcd: its
    # watch response arrived); 0 for history read back from the store.
    committed: float = 0.0


class Store(Protocol):
    """What the apiserver needs from a backend (SQLite embedded, etcd)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> KeyValue | None: ...

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All live keys under prefix (ordered by key) and the revision of that snapshot."""
        ...

    async def create(self, key: str, value: bytes, obj: Any = None) -> int:
        """Store a new key; returns its revision. KeyExistsError if present."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int, obj: Any = None) -> int:
        """Replace a key whose mod revision is expected_revision (0: unconditional)."""
        ...

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete a key (guarded unless expected_revision is 0); returns (revision, last value)."""
        ...

    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        """Batches of events with revision > after_revision, in order; CompactedError if too old."""
        ...

    async def compact(self, revision: int) -> None: ...

    def compacted_revision(self) -> int: ...
