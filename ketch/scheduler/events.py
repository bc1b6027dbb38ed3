"""Events and status writes off the scheduling path: a bounded queue drained by a few workers.

Repeats of the same (object, reason, message) within the aggregation window update the
existing Event's count instead of creating a new one, as client-go's recorder does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable

from ..api.errors import StatusError
from ..api.meta import now_rfc3339
from ..client.rest import Client

log = logging.getLogger("ketch.scheduler.events")
MAX_PENDING = 20000
AGGREGATE_WINDOW = 600.0
BUSY_PAUSE = 0.05


class BackgroundWriter:
    """Runs writes (events, pod status patches) with bounded concurrency; drops when overloaded."""

    def __init__(self, client: Client, component: str = "default-scheduler", workers: int = 4,
                 busy: Callable[[], bool] | None = None):
        self.client = client
        self.component = component
        self.instance = f"{component}-{os.uname().nodename}"
        self.workers = workers
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue(MAX_PENDING)
        self._seen: dict[tuple[str, str, str], tuple[str, int, float]] = {}
        self._tasks: list[asyncio.Task] = []
        self.dropped = 0
        # While `busy()` (pods waiting to be scheduled), writes trickle so they never slow decisions.
        self.busy = busy or (lambda: False)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until queued writes are done (tests, shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    def submit(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            self._queue.put_nowait(fn)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _work(self) -> None:
        while True:
            fn = await self._queue.get()
            if self.busy() and self._queue.qsize() < MAX_PENDING // 2:
                await asyncio.sleep(BUSY_PAUSE)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                log.debug("background write failed: %s", e)
            except Exception as e:
                log.debug("background write failed: %r", e)
            finally:
                self._queue.task_done()

    # -- events ------------------------------------------------------------------------------
    def event(self, obj: dict, etype: str, reason: str, message: str, action: str = "") -> None:
        """Record a core/v1 Event about `obj` (a pod)."""
        self.submit(lambda: self._write_event(obj, etype, reason, message, action))

    async def _write_event(self, obj: dict, etype: str, reason: str, message: str, action: str) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        uid = meta.get("uid") or ""
        now = now_rfc3339()
        key = (uid, reason, message)
        seen = self._seen.get(key)
        t = time.monotonic()
        if seen is not None and t - seen[2] < AGGREGATE_WINDOW:
            name, count, _ = seen
            self._seen[key] = (name, count + 1, t)
            with contextlib.suppress(StatusError):
                await self.client.request("PATCH", f"/api/v1/namespaces/{ns}/events/{name}",
                                          {"count": count + 1, "lastTimestamp": now}, None,
                                          "application/merge-patch+json")
                return
        if len(self._seen) > 50000:
            self._seen.clear()
        name = f"{meta.get('name')}.{time.time_ns():x}"
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": obj.get("kind") or "Pod", "namespace": ns,
                               "name": meta.get("name"), "uid": uid,
                               "resourceVersion": meta.get("resourceVersion") or ""},
            "reason": reason, "message": message, "type": etype, "count": 1,
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": self.component, "reportingInstance": self.instance,
        }
        if action:
            ev["action"] = action
        await self.client.request("POST", f"/api/v1/namespaces/{ns}/events", ev)
        self._seen[key] = (name, 1, t)
