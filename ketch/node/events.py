"""Best-effort kubelet events (Started, Killing, BackOff, Unhealthy, Failed) about pods."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..api.meta import now_rfc3339
from ..client.rest import Client

log = logging.getLogger("ketch.node.events")


class EventRecorder:
    """Queues events and writes them one at a time; never blocks the caller, drops when far behind."""

    MAX_PENDING = 1000

    def __init__(self, client: Client, enabled: bool = True):
        self.client = client
        self.enabled = enabled
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    def event(self, pod: dict, node: str, etype: str, reason: str, message: str, field_path: str = "") -> None:
        if not self.enabled:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self._queue.qsize() < self.MAX_PENDING:
            self._queue.put_nowait((pod, node, etype, reason, message, field_path))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        assert self._queue is not None
        ri = self.client.resource("events")
        while True:
            pod, node, etype, reason, message, field_path = await self._queue.get()
            meta = pod["metadata"]
            now = now_rfc3339()
            involved = {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                        "namespace": meta.get("namespace"), "uid": meta.get("uid")}
            if field_path:
                involved["fieldPath"] = field_path
            ev = {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta.get("namespace")},
                  "involvedObject": involved, "reason": reason, "message": message, "type": etype,
                  "source": {"component": "kubelet", "host": node}, "firstTimestamp": now, "lastTimestamp": now,
                  "count": 1, "reportingComponent": "kubelet", "reportingInstance": node}
            try:
                await self.client.create(ri, meta.get("namespace"), ev)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("event %s on %s: %s", reason, meta["name"], e)
