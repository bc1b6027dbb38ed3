"""What every controller shares: a work-queue driven base, expectations, events, pod helpers.

A controller registers informer handlers that only enqueue keys; N workers pop keys and run
`reconcile(key)`, which reads the informer caches and the API and acts. Errors re-queue the
key with per-key exponential back-off; nothing is remembered that the API cannot give back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..aioutil import cancel_all
from ..api.errors import StatusError
from ..api.meta import now_rfc3339, parse_time
from ..client.events import EventRecorder
from ..client.informer import InformerFactory, index_by_node_name, index_by_owner_uid
from ..client.rest import Client
from ..client.workqueue import WorkQueue

log = logging.getLogger("ketch.controllers")


@dataclass
class Options:
    """Tunables of the controller-manager (kube-controller-manager's flags, in seconds)."""

    workers: int = 4
    node_monitor_grace_period: float = 40.0
    node_monitor_period: float = 1.0
    default_toleration_seconds: int = 300
    terminated_pod_gc_threshold: int = 12500
    pod_gc_period: float = 20.0
    orphan_pod_quarantine: float = 10.0
    extra: dict = field(default_factory=dict)


class Context:
    """What controllers share: one client, one informer factory, one event recorder, options."""

    def __init__(self, client: Client, options: Options | None = None):
        self.client = client
        self.options = options or Options()
        self.factory = InformerFactory(client)
        self.recorder = EventRecorder(client, "ketch-controller-manager")

    def pods(self):
        """The shared pod informer, indexed by owner uid and node name."""
        inf = self.factory.informer("pods")
        if "owner" not in inf.indexers:
            inf.add_indexer("owner", index_by_owner_uid)
            inf.add_indexer("node", index_by_node_name)
            inf.add_indexer("orphan", index_orphans_by_namespace)
        return inf

    def replicasets(self):
        """The shared ReplicaSet informer, indexed by owner uid."""
        inf = self.factory.informer("replicasets", "apps")
        if "owner" not in inf.indexers:
            inf.add_indexer("owner", index_by_owner_uid)
            inf.add_indexer("orphan", index_orphans_by_namespace)
        return inf


def index_orphans_by_namespace(obj: dict) -> list[str]:
    """Objects without a controller ownerReference, by namespace (candidates for adoption)."""
    meta = obj.get("metadata") or {}
    if any(r.get("controller") for r in meta.get("ownerReferences") or ()):
        return []
    return [meta.get("namespace") or ""]


class Controller:
    """A work queue of keys and N workers calling `reconcile`."""

    name = "controller"

    def __init__(self, ctx: Context, workers: int | None = None):
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.queue = WorkQueue()
        self.workers = workers or ctx.options.workers
        self.log = logging.getLogger(f"ketch.controllers.{self.name}")

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        """Converge one key; return seconds after which to look again, or None."""
        raise NotImplementedError

    async def started(self) -> None:
        """Hook run once the informers are synced, before the workers start."""

    async def run(self, stop: asyncio.Event) -> None:
        """Run the workers until `stop` is set (informers must be started by the manager)."""
        await self.started()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        try:
            await stop.wait()
        finally:
            self.queue.shutdown()
            await cancel_all(workers)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                after = await self.reconcile(key)
                self.queue.forget(key)
                if after is not None:
                    self.queue.add_after(key, max(after, 0.01))
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                lvl = logging.DEBUG if e.code in (404, 409) else logging.WARNING
                self.log.log(lvl, "%s %s: %s", self.name, key, e)
                self.queue.add_rate_limited(key)
            except Exception:
                self.log.exception("%s %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)


class Expectations:
    """Creates/deletes a controller has issued but not yet seen in its informer (client-go's
    ControllerExpectations): while some are outstanding, the controller does not act again on a
    stale cache. They expire so that a lost watch event cannot block a controller forever."""

    TTL = 300.0

    def __init__(self) -> None:
        self._items: dict[str, list[Any]] = {}

    def satisfied(self, key: str) -> bool:
        e = self._items.get(key)
        if e is None:
            return True
        adds, dels, ts = e
        return (adds <= 0 and not dels) or time.monotonic() - ts > self.TTL

    def expect(self, key: str, adds: int = 0, dels: set[str] | None = None) -> None:
        self._items[key] = [adds, set(dels or ()), time.monotonic()]

    def creation_observed(self, key: str, n: int = 1) -> None:
        e = self._items.get(key)
        if e is not None:
            e[0] -= n

    def deletion_observed(self, key: str, uid: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e[1].discard(uid)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


# -- pods ------------------------------------------------------------------------------------

def pod_condition(pod: dict, ctype: str) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def pod_ready(pod: dict) -> bool:
    c = pod_condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def pod_available_in(pod: dict, min_ready_seconds: int, now: float | None = None) -> float | None:
    """0 when available, seconds until available when ready but not for long enough, None if not ready."""
    c = pod_condition(pod, "Ready")
    if not c or c.get("status") != "True":
        return None
    if not min_ready_seconds:
        return 0.0
    since = parse_time(c.get("lastTransitionTime"))
    if since is None:
        return 0.0
    left = since + min_ready_seconds - (now if now is not None else time.time())
    return max(left, 0.0)


def pod_active(pod: dict) -> bool:
    """Not terminating, not terminated: what counts towards a ReplicaSet's replicas."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """Resolve an IntOrString like maxSurge: 3 or '25%' of total."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        v = int(s[:-1]) * total / 100
        return math.ceil(v) if round_up else math.floor(v)
    return int(s)


def set_condition(conditions: list[dict], ctype: str, status: str, reason: str, message: str,
                  now: str | None = None, update_time: bool = False) -> list[dict]:
    """Conditions with one set; lastTransitionTime only moves when the status changes."""
    now = now or now_rfc3339()
    out = [c for c in conditions if c.get("type") != ctype]
    old = next((c for c in conditions if c.get("type") == ctype), None)
    cond = {"type": ctype, "status": status, "reason": reason, "message": message}
    if old is not None and old.get("status") == status:
        cond["lastTransitionTime"] = old.get("lastTransitionTime") or now
        if "lastUpdateTime" in old or update_time:
            cond["lastUpdateTime"] = now if (update_time or old.get("reason") != reason) else old.get("lastUpdateTime")
    else:
        cond["lastTransitionTime"] = now
        if update_time or (old is not None and "lastUpdateTime" in old):
            cond["lastUpdateTime"] = now
    out.append(cond)
    return out


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name
