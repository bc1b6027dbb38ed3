"""Pod GC: deletes terminated pods beyond a threshold (oldest first), pods bound to nodes that no
longer exist, and terminating pods that were never scheduled."""

from __future__ import annotations

import asyncio
import time

from ..api.errors import StatusError
from ..api.meta import parse_time
from .framework import Context, Controller


class PodGCController(Controller):
    name = "podgc"

    def __init__(self, ctx: Context, workers: int | None = 1):
        super().__init__(ctx, workers)
        self.pod_ri = self.client.resource("pods")
        self.node_ri = self.client.resource("nodes")
        self.pods = ctx.pods()
        self.nodes = ctx.factory.informer("nodes")
        self.nodes.add_handlers(on_delete=lambda n: self.enqueue("gc"))
        self._missing_since: dict[str, float] = {}

    async def started(self) -> None:
        self.enqueue("gc")

    async def _force_delete(self, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(self.pod_ri, meta["namespace"], meta["name"],
                                     {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def reconcile(self, key: str) -> float | None:
        opts = self.ctx.options
        pods = self.pods.list()
        # 1. terminated pods beyond the threshold, oldest first
        terminated = [p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
        extra = len(terminated) - opts.terminated_pod_gc_threshold
        victims: list[dict] = []
        if extra > 0:
            terminated.sort(key=lambda p: parse_time(p["metadata"].get("creationTimestamp")) or 0)
            victims.extend(terminated[:extra])
        # 2. pods bound to a node that does not exist (confirmed after a quarantine period)
        now = time.monotonic()
        missing_now: dict[str, float] = {}
        for node in {(p.get("spec") or {}).get("nodeName") for p in pods} - {None, ""}:
            if self.nodes.get(node) is not None:
                continue
            since = self._missing_since.get(node, now)
            missing_now[node] = since
            if now - since < opts.orphan_pod_quarantine:
                continue
            try:
                await self.client.get(self.node_ri, None, node)
                continue
            except StatusError as e:
                if e.code != 404:
                    raise
            victims.extend(self.pods.by_index("node", node))
        self._missing_since = missing_now
        # 3. terminating pods that were never scheduled
        victims.extend(p for p in pods if p["metadata"].get("deletionTimestamp")
                       and not (p.get("spec") or {}).get("nodeName"))
        for i in range(0, len(victims), 50):
            await asyncio.gather(*(self._force_delete(p) for p in victims[i:i + 50]))
        period = opts.pod_gc_period
        if missing_now:
            period = min(period, opts.orphan_pod_quarantine / 2)
        return period
