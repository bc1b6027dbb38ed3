"""Embedded SQLite backend: one file in WAL mode, group commit, in-process watch fan-out.

Two tables: `kv` holds the live keys, `log` holds every change (the watch history) until
compaction. One writer thread applies queued writes in batches (one transaction, one fsync
for many writes); readers use their own connection and never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..metrics import Histogram
from .base import (
    DELETE,
    PUT,
    CompactedError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL,
  value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
  rev INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  type INTEGER NOT NULL,
  create_rev INTEGER NOT NULL,
  value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_CREATE, _UPDATE, _DELETE = 1, 2, 3
MAX_BATCH = 512
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(slots=True)
class _Op:
    kind: int
    key: str
    value: bytes | None
    expected: int
    obj: Any
    future: asyncio.Future = field(repr=False)


class _Watcher:
    __slots__ = ("prefix", "queue")

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue()


class SQLiteStore:
    """The etcd-style store contract over one SQLite file."""

    def __init__(self, path: str, synchronous: str = "FULL"):
        self.path = path
        self.synchronous = synchronous
        self._rev = 0
        self._compacted = 0
        self._queue: list[_Op] = []
        self._wake: asyncio.Event | None = None
        self._writer_task: asyncio.Task | None = None
        self._watchers: list[_Watcher] = []
        self._wexec = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._rexec = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._closed = False
        # Commit times (the WAL fsync with synchronous=FULL), for /metrics.
        self._commits = Histogram("ketch_store_commit_duration_seconds",
                                  "Time of each SQLite commit of a batch of writes (its WAL fsync).", COMMIT_BUCKETS)
        self._commit_writes = 0

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def start(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        self._wconn = self._connect()
        # Checkpoints run on their own thread so the writer never stalls copying WAL pages.
        self._wconn.execute("PRAGMA wal_autocheckpoint=0")
        self._wconn.executescript(_SCHEMA)
        row = self._wconn.execute(
            "SELECT max(coalesce((SELECT max(rev) FROM log),0),"
            " coalesce((SELECT max(mod_rev) FROM kv),0),"
            " coalesce((SELECT value FROM meta WHERE name='rev'),0))").fetchone()
        self._rev = int(row[0] or 0)
        row = self._wconn.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        self._compacted = int(row[0]) if row else 0
        self._wake = asyncio.Event()
        self._writer_task = asyncio.get_running_loop().create_task(self._writer())
        self._ckpt_stop = threading.Event()
        self._ckpt_thread = threading.Thread(target=self._checkpointer, name="sqlite-checkpoint", daemon=True)
        self._ckpt_thread.start()

    def _checkpointer(self, interval: float = 1.0) -> None:
        """Copy committed WAL pages into the database (PASSIVE: never blocks the writer)."""
        conn = self._connect()
        try:
            while not self._ckpt_stop.wait(interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer_task:
            self._wake.set()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._writer_task, 10)
        for w in self._watchers:
            w.queue.put_nowait([])
        self._ckpt_stop.set()
        await asyncio.get_running_loop().run_in_executor(None, self._ckpt_thread.join)
        self._wexec.submit(self._wconn.close).result()
        self._wexec.shutdown(wait=True)
        self._rexec.shutdown(wait=True)

    # -- reads -------------------------------------------------------------------------------
    async def current_revision(self) -> int:
        return self._rev

    def compacted_revision(self) -> int:
        return self._compacted

    async def get(self, key: str) -> KeyValue | None:
        def run() -> KeyValue | None:
            r = self._reader().execute(
                "SELECT key, value, create_rev, mod_rev FROM kv WHERE key=?", (key,)).fetchone()
            return KeyValue(r[0], r[1], r[2], r[3]) if r else None
        return await asyncio.get_running_loop().run_in_executor(self._rexec, run)

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        def run() -> tuple[list[KeyValue], int]:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                    (prefix, _prefix_end(prefix))).fetchall()
                rev = conn.execute(
                    "SELECT max(coalesce((SELECT max(rev) FROM log),0),"
                    " coalesce((SELECT value FROM meta WHERE name='rev'),0))").fetchone()[0]
            finally:
                conn.execute("COMMIT")
            return [KeyValue(*r) for r in rows], int(rev or 0)
        return await asyncio.get_running_loop().run_in_executor(self._rexec, run)

    # -- writes ------------------------------------------------------------------------------
    def _submit(self, kind: int, key: str, value: bytes | None, expected: int, obj: Any) -> asyncio.Future:
        if self._closed:
            raise RuntimeError("store is closed")
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Op(kind, key, value, expected, obj, fut))
        self._wake.set()
        return fut

    async def create(self, key: str, value: bytes, obj: Any = None) -> int:
        return (await self._submit(_CREATE, key, value, 0, obj))[0]

    async def update(self, key: str, value: bytes, expected_revision: int, obj: Any = None) -> int:
        return (await self._submit(_UPDATE, key, value, expected_revision, obj))[0]

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        return await self._submit(_DELETE, key, None, expected_revision, None)

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    results, events, rev = await loop.run_in_executor(self._wexec, self._apply, batch)
                except Exception as e:  # the whole transaction failed (disk full, I/O error)
                    for op in batch:
                        if not op.future.done():
                            op.future.set_exception(e)
                    continue
                self._rev = rev
                if events:
                    self._dispatch(events)
                for op, res in zip(batch, results, strict=True):
                    if op.future.done():
                        continue
                    if isinstance(res, Exception):
                        op.future.set_exception(res)
                    else:
                        op.future.set_result(res)
            if self._closed and not self._queue:
                return

    def _apply(self, batch: list[_Op]) -> tuple[list[Any], list[Event], int]:
        """Runs in the writer thread: apply a batch in one transaction."""
        conn = self._wconn
        rev = self._rev
        results: list[Any] = []
        events: list[Event] = []
        log_rows: list[tuple] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            # One query for the current state of every key the batch touches: each sqlite call
            # costs a GIL hand-off with the event loop thread, so calls per batch are kept few.
            current: dict[str, tuple[int, int, bytes]] = {}
            keys = list({op.key for op in batch})
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                rows = conn.execute(
                    f"SELECT key, create_rev, mod_rev, value FROM kv WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
                for k, c, m, v in rows:
                    current[k] = (c, m, v)
            # Keys touched earlier in this batch: their state is not in the table yet.
            pending: dict[str, tuple[int, int, bytes] | None] = {}
            for op in batch:
                cur = pending[op.key] if op.key in pending else current.get(op.key)
                if op.kind == _CREATE:
                    if cur is not None:
                        results.append(KeyExistsError(op.key))
                        continue
                    rev += 1
                    pending[op.key] = (rev, rev, op.value)
                    log_rows.append((rev, op.key, _CREATE, rev, op.value))
                    events.append(Event(PUT, op.key, rev, op.value, rev, op.obj))
                    results.append((rev,))
                    continue
                if cur is None:
                    results.append(KeyNotFoundError(op.key))
                    continue
                if op.expected and op.expected != cur[1]:
                    results.append(RevisionMismatchError(op.key, op.expected, cur[1]))
                    continue
                rev += 1
                if op.kind == _UPDATE:
                    pending[op.key] = (cur[0], rev, op.value)
                    log_rows.append((rev, op.key, _UPDATE, cur[0], op.value))
                    events.append(Event(PUT, op.key, rev, op.value, cur[0], op.obj))
                    results.append((rev,))
                else:
                    pending[op.key] = None
                    log_rows.append((rev, op.key, _DELETE, cur[0], cur[2]))
                    events.append(Event(DELETE, op.key, rev, cur[2], cur[0]))
                    results.append((rev, KeyValue(op.key, cur[2], cur[0], cur[1])))
            if log_rows:
                _insert_rows(conn, "INSERT INTO log(rev, key, type, create_rev, value) VALUES ", 5, log_rows)
                puts = [(k, v[0], v[1], v[2]) for k, v in pending.items() if v is not None]
                dels = [k for k, v in pending.items() if v is None]
                if puts:
                    _insert_rows(conn, "INSERT INTO kv(key, create_rev, mod_rev, value) VALUES ", 4, puts,
                                 " ON CONFLICT(key) DO UPDATE SET create_rev=excluded.create_rev, "
                                 "mod_rev=excluded.mod_rev, value=excluded.value")
                for i in range(0, len(dels), 500):
                    chunk = dels[i:i + 500]
                    conn.execute(f"DELETE FROM kv WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            t = time.perf_counter()
            conn.execute("COMMIT")
            self._commits.observe(time.perf_counter() - t)
            self._commit_writes += len(batch)
            committed = time.monotonic()
            for e in events:
                e.committed = committed
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results, events, rev

    def metrics_lines(self) -> list[str]:
        """Prometheus text: a histogram of commit times, so a slow disk shows as what it is."""
        return [*self._commits.lines(),
                "# HELP ketch_store_committed_writes_total Writes committed (a commit holds a batch of them).",
                "# TYPE ketch_store_committed_writes_total counter",
                f"ketch_store_committed_writes_total {self._commit_writes}"]

    # -- watch -------------------------------------------------------------------------------
    def _dispatch(self, events: list[Event]) -> None:
        for w in self._watchers:
            if w.prefix == "/":
                w.queue.put_nowait(events)
                continue
            mine = [e for e in events if e.key.startswith(w.prefix)]
            if mine:
                w.queue.put_nowait(mine)

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        if after_revision and after_revision < self._compacted:
            raise CompactedError(after_revision, self._compacted)
        w = _Watcher(prefix)
        self._watchers.append(w)
        try:
            upto = self._rev
            if after_revision < upto:
                history = await asyncio.get_running_loop().run_in_executor(
                    self._rexec, self._history, prefix, after_revision, upto)
                if history:
                    yield history
            while not self._closed:
                events = await w.queue.get()
                if not events:
                    return
                events = [e for e in events if e.revision > upto]
                if events:
                    yield events
        finally:
            self._watchers.remove(w)

    def _history(self, prefix: str, after: int, upto: int) -> list[Event]:
        rows = self._reader().execute(
            "SELECT rev, key, type, create_rev, value FROM log WHERE rev > ? AND rev <= ? "
            "AND key >= ? AND key < ? ORDER BY rev", (after, upto, prefix, _prefix_end(prefix))).fetchall()
        if after < self._compacted:
            raise CompactedError(after, self._compacted)
        return [Event(DELETE if t == _DELETE else PUT, k, r, v, c) for r, k, t, c, v in rows]

    async def compact(self, revision: int) -> None:
        """Forget history at and before `revision` (watches from older revisions get 410)."""
        revision = min(revision, self._rev)
        if revision <= self._compacted:
            return

        def run() -> None:
            conn = self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM log WHERE rev <= ?", (revision,))
                conn.execute("INSERT INTO meta(name, value) VALUES('compacted', ?) "
                             "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (revision,))
                conn.execute("INSERT INTO meta(name, value) VALUES('rev', ?) "
                             "ON CONFLICT(name) DO UPDATE SET value=max(value, excluded.value)", (self._rev,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        await asyncio.get_running_loop().run_in_executor(self._wexec, run)
        self._compacted = revision


def _insert_rows(conn: sqlite3.Connection, head: str, ncols: int, rows: list[tuple], tail: str = "",
                 per_statement: int = 200) -> None:
    """Many rows in one multi-row INSERT statement per `per_statement` rows: executemany steps once
    per row, and each step gives the GIL back to the event loop thread and waits to get it again."""
    group = "(" + ",".join("?" * ncols) + ")"
    for i in range(0, len(rows), per_statement):
        chunk = rows[i:i + per_statement]
        conn.execute(head + ",".join([group] * len(chunk)) + tail, [x for row in chunk for x in row])


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"
