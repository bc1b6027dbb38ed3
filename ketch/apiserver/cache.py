"""The watch cache: every live object in memory, encoded once, plus a window of recent events.

Gets, lists and watches are served from here, so thousands of watchers never touch the
store. Each change is encoded once (`Entry.raw`) and the same watch-event bytes are fanned
out to every watcher that matches it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..metrics import Histogram
from ..store.base import DELETE, CompactedError, Event

log = logging.getLogger("ketch.apiserver.cache")

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
EVENT_WINDOW = 20000       # events kept per resource for watches from an old resourceVersion
WATCHER_BACKLOG = 50000    # a watcher further behind than this is closed (the client re-lists)
DISPATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 1.0)


class Entry:
    """One object at one revision: the decoded dict (never mutate) and its JSON bytes."""

    __slots__ = ("key", "obj", "raw", "rev")

    def __init__(self, key: str, obj: dict, raw: bytes, rev: int):
        self.key = key
        self.obj = obj
        self.raw = raw
        self.rev = rev

    def copy(self) -> dict:
        """A private deep copy of the object, for read-modify-write."""
        return orjson.loads(self.raw)


def make_entry(key: str, obj: dict, rev: int, value: bytes | None = None) -> Entry:
    """The cache entry of obj at rev. `value`, when given, is orjson.dumps(obj) as it was written
    (without a resourceVersion): the version is then spliced into those bytes instead of encoding
    the whole object again."""
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if value is not None and meta and "resourceVersion" not in meta:
        raw = _splice_rv(obj, value, rev)
        meta["resourceVersion"] = str(rev)
        if raw is not None:
            return Entry(key, obj, raw, rev)
    meta["resourceVersion"] = str(rev)
    return Entry(key, obj, orjson.dumps(obj), rev)


_META_KEY = b'"metadata":{'


def _splice_rv(obj: dict, value: bytes, rev: int) -> bytes | None:
    """value with "resourceVersion" as the first field of the top-level metadata, or None when the
    metadata object cannot be found for certain (a container value is serialized before it)."""
    for k, v in obj.items():
        if k == "metadata":
            break
        if type(v) is dict or type(v) is list:
            return None
    # Inside JSON strings a quote is escaped, so this pattern only matches a key; every value
    # before the top-level metadata is a scalar, so the first match is that metadata.
    i = value.find(_META_KEY)
    if i < 0:
        return None
    i += len(_META_KEY)
    return b"".join((value[:i], b'"resourceVersion":"', str(rev).encode(), b'",', value[i:]))


class CachedEvent:
    """A change as watchers see it; the JSON line per event type is built once, on demand."""

    __slots__ = ("rev", "key", "entry", "prev", "deleted", "_lines")

    def __init__(self, rev: int, key: str, entry: Entry, prev: Entry | None, deleted: bool):
        self.rev = rev
        self.key = key
        self.entry = entry      # new state; for deletes the last state with the delete revision
        self.prev = prev
        self.deleted = deleted
        self._lines: dict[str, bytes] = {}

    def line(self, etype: str, entry: Entry | None = None) -> bytes:
        if entry is not None and entry is not self.entry:
            return b'{"type":"' + etype.encode() + b'","object":' + entry.raw + b"}\n"
        b = self._lines.get(etype)
        if b is None:
            b = self._lines[etype] = b'{"type":"' + etype.encode() + b'","object":' + self.entry.raw + b"}\n"
        return b


class Watcher:
    """A client's watch: a predicate, and a buffer its handler drains."""

    __slots__ = ("namespace", "predicate", "encode", "buffer", "waiter", "closed", "rev", "index", "sink")

    def __init__(self, namespace: str | None, predicate: Callable[[dict], bool] | None,
                 encode: Callable[[str, Entry, CachedEvent | None], bytes] | None = None,
                 index: tuple[str, str] | None = None):
        self.namespace = namespace
        # (field, value) this watcher only ever matches, e.g. ("spec.nodeName", "node-1"):
        # the cache then offers it only the changes of objects with that value.
        self.index = index
        self.predicate = predicate
        self.encode = encode
        self.buffer: list[bytes] = []
        # The handler's pending wait (one future, woken by push/close): an asyncio.Event plus
        # wait_for would cost a Task and a timer per event per watcher.
        self.waiter: asyncio.Future | None = None
        # Set by the handler while it waits with nothing buffered: writes an event straight to the
        # connection (True) or declines (False: slow client, closing), so the common case costs
        # no task wake-up at all.
        self.sink: Callable[[bytes], bool] | None = None
        self.closed = False
        self.rev = 0            # revision of the last event queued (for bookmarks)

    def matches(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        if self.namespace and (entry.obj.get("metadata") or {}).get("namespace") != self.namespace:
            return False
        return self.predicate is None or self.predicate(entry.obj)

    def push(self, etype: str, entry: Entry, ev: CachedEvent | None) -> None:
        if self.closed:
            return
        if self.encode is not None:
            data = self.encode(etype, entry, ev)
        elif ev is not None:
            data = ev.line(etype, entry)
        else:
            data = b'{"type":"' + etype.encode() + b'","object":' + entry.raw + b"}\n"
        sink = self.sink
        if sink is not None and not self.buffer and sink(data):
            return
        self.buffer.append(data)
        if len(self.buffer) > WATCHER_BACKLOG:
            self.close()
        self.wake()

    def offer(self, ev: CachedEvent) -> None:
        """Queue whatever this change means to this watcher (ADDED/MODIFIED/DELETED or nothing)."""
        if ev.deleted:
            if self.matches(ev.entry):
                self.push(DELETED, ev.entry, ev)
        else:
            now = self.matches(ev.entry)
            before = self.matches(ev.prev)
            if now:
                self.push(MODIFIED if before else ADDED, ev.entry, ev)
            elif before:
                # No longer selected: the client sees it leave, with the revision of the change.
                gone = make_entry(ev.key, ev.prev.copy(), ev.rev)
                self.push(DELETED, gone, None)
        self.rev = ev.rev

    def close(self) -> None:
        self.closed = True
        self.wake()

    def wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, timeout: float, sink: Callable[[bytes], bool] | None = None) -> None:
        """Until something is buffered or the watcher closed, at most `timeout` seconds; meanwhile
        events go to `sink` when it takes them."""
        if self.buffer or self.closed:
            return
        loop = asyncio.get_running_loop()
        w = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, w)
        self.sink = sink
        try:
            await w
        finally:
            self.sink = None
            timer.cancel()
            self.waiter = None

    def take(self) -> list[bytes]:
        out, self.buffer = self.buffer, []
        return out


def _expire(w: asyncio.Future) -> None:
    if not w.done():
        w.set_result(None)


INDEXED_FIELDS = {
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName") or "",
    "metadata.name": lambda o: (o.get("metadata") or {}).get("name") or "",
    "metadata.namespace": lambda o: (o.get("metadata") or {}).get("namespace") or "",
}


class ResourceCache:
    """Live objects and recent events of one storage prefix (one resource)."""

    def __init__(self, prefix: str, start_rev: int):
        self.prefix = prefix
        self.items: dict[str, Entry] = {}
        self._sorted: list[str] | None = None
        self.events: deque[CachedEvent] = deque()
        self.window_start = start_rev       # every change after this revision is in `events`
        self.watchers: set[Watcher] = set()          # offered every change
        self.indexed: dict[str, dict[str, set[Watcher]]] = {}   # field -> value -> watchers

    def add_watcher(self, w: Watcher) -> None:
        if w.index is None:
            self.watchers.add(w)
        else:
            self.indexed.setdefault(w.index[0], {}).setdefault(w.index[1], set()).add(w)

    def remove_watcher(self, w: Watcher) -> None:
        if w.index is None:
            self.watchers.discard(w)
            return
        by_value = self.indexed.get(w.index[0], {})
        ws = by_value.get(w.index[1])
        if ws is not None:
            ws.discard(w)
            if not ws:
                del by_value[w.index[1]]

    def all_watchers(self) -> list[Watcher]:
        out = list(self.watchers)
        for by_value in self.indexed.values():
            for ws in by_value.values():
                out.extend(ws)
        return out

    def _offer(self, ev: CachedEvent) -> None:
        for w in tuple(self.watchers):
            w.offer(ev)
        for field, by_value in self.indexed.items():
            if not by_value:
                continue
            get = INDEXED_FIELDS[field]
            v_new = get(ev.entry.obj)
            targets = set(by_value.get(v_new, ()))
            if ev.prev is not None:
                v_old = get(ev.prev.obj)
                if v_old != v_new:
                    targets |= by_value.get(v_old, set())
            for w in targets:
                w.offer(ev)

    def sorted_keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.items)
        return self._sorted

    def keys_with_prefix(self, prefix: str) -> list[str]:
        keys = self.sorted_keys()
        if prefix == self.prefix:
            return keys
        lo = bisect.bisect_left(keys, prefix)
        hi = bisect.bisect_left(keys, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        return keys[lo:hi]

    def apply(self, e: Event) -> CachedEvent:
        prev = self.items.get(e.key)
        if e.type == DELETE:
            obj = prev.copy() if prev is not None else orjson.loads(e.value)
            entry = make_entry(e.key, obj, e.revision)
            self.items.pop(e.key, None)
            self._sorted = None
            ev = CachedEvent(e.revision, e.key, entry, prev, True)
        else:
            if e.obj is not None:
                entry = make_entry(e.key, e.obj, e.revision, e.value)
            else:
                entry = make_entry(e.key, orjson.loads(e.value), e.revision)
            if prev is None:
                self._sorted = None
            self.items[e.key] = entry
            ev = CachedEvent(e.revision, e.key, entry, prev, False)
        self.events.append(ev)
        if len(self.events) > EVENT_WINDOW:
            self.window_start = self.events.popleft().rev
        self._offer(ev)
        return ev

    def events_after(self, rev: int) -> Iterable[CachedEvent]:
        if rev < self.window_start:
            raise CompactedError(rev, self.window_start)
        # events are in revision order: skip from the left
        evs = self.events
        if not evs or evs[-1].rev <= rev:
            return ()
        lo, hi = 0, len(evs)
        while lo < hi:
            mid = (lo + hi) // 2
            if evs[mid].rev <= rev:
                lo = mid + 1
            else:
                hi = mid
        return [evs[i] for i in range(lo, len(evs))]


class WatchCache:
    """All resources' caches, fed by one store watch on /registry/."""

    def __init__(self, store: Any, prefixes: Iterable[str]):
        self.store = store
        self.prefixes = set(prefixes)
        self.resources: dict[str, ResourceCache] = {}
        self.rev = 0
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()
        # Kubernetes' watch latency SLI: from the moment a change is stored to its event being
        # ready to be sent to all watchers (here: written to, or queued for, every matching one).
        self.dispatch = Histogram(
            "ketch_watch_dispatch_seconds",
            "From a change's durable commit in the store to its event handed to every matching watcher.",
            DISPATCH_BUCKETS)

    async def start(self) -> None:
        kvs, rev = await self.store.range("/registry/")
        self.rev = rev
        for p in self.prefixes:
            self.resources[p] = ResourceCache(p, rev)
        for kv in kvs:
            rc = self._resource_for(kv.key)
            if rc is None:
                continue
            try:
                obj = orjson.loads(kv.value)
            except orjson.JSONDecodeError:
                log.error("undecodable value at %s; skipped", kv.key)
                continue
            rc.items[kv.key] = make_entry(kv.key, obj, kv.mod_revision)
        self._task = asyncio.get_running_loop().create_task(self._run(rev))
        self.ready.set()

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for rc in self.resources.values():
            for w in rc.all_watchers():
                w.close()

    def _resource_for(self, key: str) -> ResourceCache | None:
        # /registry/<plural>/... or /registry/<group>/<plural>/...
        i = key.find("/", 10)
        rc = self.resources.get(key[: i + 1])
        if rc is None and i > 0:
            j = key.find("/", i + 1)
            rc = self.resources.get(key[: j + 1])
        return rc

    async def _run(self, rev: int) -> None:
        while True:
            try:
                async for batch in self.store.watch("/registry/", rev):
                    for e in batch:
                        rc = self._resource_for(e.key)
                        if rc is not None:
                            rc.apply(e)
                            if e.committed:
                                self.dispatch.observe(time.monotonic() - e.committed)
                        rev = e.revision
                    self.rev = rev
                    self._wake()
                return
            except CompactedError:
                log.error("watch cache fell behind compaction; re-listing")
                await self._relist()
                rev = self.rev
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("store watch failed; retrying")
                await asyncio.sleep(1)

    async def _relist(self) -> None:
        kvs, rev = await self.store.range("/registry/")
        for rc in self.resources.values():
            for w in rc.all_watchers():
                w.close()
        self.resources = {p: ResourceCache(p, rev) for p in self.prefixes}
        for kv in kvs:
            rc = self._resource_for(kv.key)
            if rc is not None:
                rc.items[kv.key] = make_entry(kv.key, orjson.loads(kv.value), kv.mod_revision)
        self.rev = rev
        self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return
        keep = []
        for want, fut in self._waiters:
            if want <= self.rev:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((want, fut))
        self._waiters = keep

    async def wait_for(self, rev: int, timeout: float = 3.0) -> bool:
        """Wait until the cache has applied revision `rev`; False on timeout."""
        if rev <= self.rev:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((rev, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False

    async def sync(self) -> None:
        """Make the cache at least as fresh as the store (a consistent read)."""
        await self.wait_for(await self.store.current_revision())

    def resource(self, prefix: str) -> ResourceCache:
        return self.resources[prefix]
