"""The scheduling queue: active (by priority, then age), back-off, and unschedulable pods.

A pod that fit nowhere waits in `unschedulable` until something changes in the cluster (a node
added or updated, a pod deleted), then goes through back-off (1s doubling to 10s per attempt)
back to active. Pods parked longer than `flush_after` are retried anyway.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
FLUSH_UNSCHEDULABLE_AFTER = 30.0


@dataclass
class QueuedPod:
    key: str
    priority: int
    added: float
    attempts: int = 0
    backoff_until: float = 0.0
    where: str = "active"  # active | backoff | unschedulable | inflight
    seq: int = 0
    parked_at: float = 0.0
    moved: bool = False  # the pod was updated while in flight
    moves_at_pop: int = 0


class SchedulingQueue:
    """Pods waiting to be scheduled, highest priority first."""

    def __init__(self, initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 flush_after: float = FLUSH_UNSCHEDULABLE_AFTER):
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.flush_after = flush_after
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._closed = False
        self._parked: dict[str, QueuedPod] = {}
        self._last_flush = 0.0
        self._moves = 0  # cluster changes so far; a pod in flight notes the count when popped

    def __len__(self) -> int:
        return len(self.pods)

    def has_active(self) -> bool:
        return bool(self._active)

    def counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "inflight": 0}
        for qp in self.pods.values():
            out[qp.where] += 1
        return out

    # -- entry moves ---------------------------------------------------------------------------
    def _activate(self, qp: QueuedPod) -> None:
        self._parked.pop(qp.key, None)
        qp.where = "active"
        qp.seq = next(self._seq)
        heapq.heappush(self._active, (-qp.priority, qp.added, qp.seq, qp.key))
        self._wake.set()

    def _to_backoff(self, qp: QueuedPod, now: float) -> None:
        if qp.backoff_until <= now:
            self._activate(qp)
            return
        self._parked.pop(qp.key, None)
        qp.where = "backoff"
        qp.seq = next(self._seq)
        heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp.key))
        self._wake.set()

    def add(self, key: str, priority: int) -> None:
        """A new or changed unscheduled pod."""
        qp = self.pods.get(key)
        if qp is None:
            self.pods[key] = qp = QueuedPod(key, priority, time.monotonic())
            self._activate(qp)
            return
        changed = qp.priority != priority
        qp.priority = priority
        if qp.where == "inflight":
            qp.moved = True
        elif qp.where == "unschedulable":
            self._to_backoff(qp, time.monotonic())
        elif qp.where == "active" and changed:
            self._activate(qp)

    def delete(self, key: str) -> None:
        self.pods.pop(key, None)
        self._parked.pop(key, None)

    def done(self, key: str) -> None:
        """The pod was placed (or is gone): stop tracking it."""
        self.delete(key)

    def unschedulable(self, key: str) -> None:
        """An attempt failed: park the pod until the cluster changes (or back off if it already did)."""
        qp = self.pods.get(key)
        if qp is None:
            return
        now = time.monotonic()
        qp.attempts += 1
        qp.backoff_until = now + min(self.max_backoff, self.initial_backoff * 2 ** (qp.attempts - 1))
        if qp.moved or qp.moves_at_pop != self._moves:
            qp.moved = False
            self._to_backoff(qp, now)
        else:
            qp.where = "unschedulable"
            qp.parked_at = now
            self._parked[key] = qp

    def retry(self, key: str) -> None:
        """An error that is not the pod's fault (binding failed): back off and try again."""
        qp = self.pods.get(key)
        if qp is not None:
            qp.attempts += 1
            now = time.monotonic()
            qp.backoff_until = now + min(self.max_backoff, self.initial_backoff * 2 ** (qp.attempts - 1))
            qp.moved = False
            self._to_backoff(qp, now)

    def move_all(self) -> None:
        """Something changed that may make parked pods fit: move them to back-off/active."""
        now = time.monotonic()
        for qp in list(self._parked.values()):
            self._to_backoff(qp, now)
        self._moves += 1

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    # -- popping -----------------------------------------------------------------------------
    def _flush(self, now: float) -> float | None:
        """Move due back-off entries to active; returns when the next one is due."""
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and qp.where == "backoff" and qp.seq == seq:
                self._activate(qp)
        if self.flush_after and self._parked:
            for qp in list(self._parked.values()):
                if now - qp.parked_at > self.flush_after:
                    self._to_backoff(qp, now)
        return self._backoff[0][0] if self._backoff else None

    def pop_nowait(self) -> str | None:
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            qp = self.pods.get(key)
            if qp is not None and qp.where == "active" and qp.seq == seq:
                qp.where = "inflight"
                qp.moved = False
                qp.moves_at_pop = self._moves
                return key
        return None

    async def pop(self) -> str | None:
        """The next pod to schedule; None once closed."""
        while not self._closed:
            now = time.monotonic()
            nxt = None
            if self._backoff and self._backoff[0][0] <= now or now - self._last_flush > 1.0:
                nxt = self._flush(now)
                self._last_flush = now
            elif self._backoff:
                nxt = self._backoff[0][0]
            key = self.pop_nowait()
            if key is not None:
                return key
            self._wake.clear()
            timeout = 1.0 if nxt is None else max(0.0, min(1.0, nxt - now))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        return None
