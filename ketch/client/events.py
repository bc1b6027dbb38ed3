"""Recording core/v1 Events through the API, as client-go's recorder does.

Events are best effort: queued without blocking the caller, written one at a time, dropped when
the API is far behind. A repeat of the same (object, type, reason, message, field path) bumps
`count` on the Event already written instead of creating another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..api.errors import StatusError
from ..api.meta import now_rfc3339
from .rest import Client

log = logging.getLogger("ketch.client.events")


class EventRecorder:
    """Events from one component (e.g. `deployment-controller`, `kubelet`)."""

    MAX_PENDING = 2000
    MAX_REMEMBERED = 10000

    def __init__(self, client: Client, component: str, enabled: bool = True):
        self.client = client
        self.component = component
        self.enabled = enabled
        self._queue: asyncio.Queue | None = None
        self._seen: dict[tuple, tuple[str, str, int]] = {}
        self._task: asyncio.Task | None = None

    def event(self, obj: dict, etype: str, reason: str, message: str, field_path: str = "",
              host: str = "") -> None:
        """Queue an event about `obj` (never blocks). `host` names the node for node-local components."""
        if not self.enabled:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self._queue.qsize() < self.MAX_PENDING:
            self._queue.put_nowait((obj, etype, reason, message, field_path, host))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                await self._emit(*item)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # events are best effort
                log.debug("event %s on %s: %s", item[2], (item[0].get("metadata") or {}).get("name"), e)

    async def _emit(self, obj: dict, etype: str, reason: str, message: str, field_path: str, host: str) -> None:
        ri = self.client.resource("events")
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        key = (meta.get("uid"), etype, reason, message, field_path)
        now = now_rfc3339()
        seen = self._seen.get(key)
        if seen is not None:
            ev_ns, ev_name, count = seen
            try:
                await self.client.patch(ri, ev_ns, ev_name, {"count": count + 1, "lastTimestamp": now})
                self._seen[key] = (ev_ns, ev_name, count + 1)
                return
            except StatusError as e:
                if e.code != 404:
                    raise
        involved = {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj.get("kind") or "Pod",
                    "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")}
        if meta.get("resourceVersion"):
            involved["resourceVersion"] = meta["resourceVersion"]
        if field_path:
            involved["fieldPath"] = field_path
        source = {"component": self.component}
        if host:
            source["host"] = host
        name = f"{meta.get('name')}.{time.time_ns():x}"
        await self.client.create(ri, ns, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message, "type": etype, "source": source,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": host or self.component})
        if len(self._seen) > self.MAX_REMEMBERED:
            self._seen.clear()
        self._seen[key] = (ns, name, 1)
