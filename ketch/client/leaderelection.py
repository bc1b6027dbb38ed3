"""Leader election over a coordination.k8s.io/v1 Lease, with client-go's semantics.

Contenders try to acquire the Lease every `retry_period`; a Lease is free when it has no
holder or when its record has not changed for `lease_duration` as observed on the local
clock (never trusting another machine's clock). The leader renews every `retry_period`
and gives up when it could not renew for `renew_deadline`, so it stops working before
anyone else may take over. Writes carry the resourceVersion read, so two contenders can
never both win the same round (optimistic concurrency).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..api.errors import StatusError
from .rest import Client

log = logging.getLogger(__name__)

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
JITTER = 1.2


def default_identity() -> str:
    """hostname_uuid, like the Kubernetes components."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElectionConfig:
    """Timings in seconds (Kubernetes' defaults: 15, 10, 2)."""

    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > JITTER * self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > 1.2 * retry_period > 0")


class LeaderElector:
    """One contender for one Lease."""

    def __init__(self, client: Client, name: str, namespace: str, identity: str,
                 config: LeaderElectionConfig | None = None,
                 on_new_leader: Callable[[str], None] | None = None):
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.config = config or LeaderElectionConfig()
        self.on_new_leader = on_new_leader
        self._ri = client.resource("leases", "coordination.k8s.io")
        self._observed: dict[str, Any] | None = None  # the last lease spec seen
        self._observed_at = 0.0  # local monotonic time it was seen to change
        self._observed_rv = ""
        self.leader = ""  # holder last seen

    def is_leader(self) -> bool:
        return bool(self._observed) and self._observed.get("holderIdentity") == self.identity

    def _observe(self, spec: dict[str, Any], rv: str) -> None:
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = time.monotonic()
        self._observed_rv = rv
        holder = spec.get("holderIdentity") or ""
        if holder != self.leader:
            self.leader = holder
            if holder:
                log.info("lease %s/%s: new leader %s", self.namespace, self.name, holder)
            if self.on_new_leader is not None and holder:
                self.on_new_leader(holder)

    def _spec(self, acquire: bool, transitions: int, acquire_time: str | None) -> dict[str, Any]:
        now = _now_micro()
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(round(self.config.lease_duration)),
                "acquireTime": now if acquire else acquire_time, "renewTime": now,
                "leaseTransitions": transitions}

    async def try_acquire_or_renew(self) -> bool:
        """One round: True if this contender holds the Lease afterwards."""
        try:
            lease = await self.client.get(self._ri, self.namespace, self.name)
        except StatusError as e:
            if e.code != 404:
                raise
            spec = self._spec(True, 0, None)
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            try:
                created = await self.client.create(self._ri, self.namespace, body)
            except StatusError as e2:
                if e2.code in (409, 404):  # someone created it first / no such namespace yet
                    return False
                raise
            self._observe(created.get("spec") or {}, created["metadata"]["resourceVersion"])
            return True
        spec = lease.get("spec") or {}
        self._observe(spec, lease["metadata"]["resourceVersion"])
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        if holder and holder != self.identity and self._observed_at + duration > time.monotonic():
            return False  # held by someone else and not expired
        mine = holder == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(not mine, transitions, spec.get("acquireTime"))
        try:
            updated = await self.client.update(self._ri, lease)
        except StatusError as e:
            if e.code == 409:  # another contender wrote first
                return False
            raise
        self._observe(updated.get("spec") or {}, updated["metadata"]["resourceVersion"])
        return True

    async def release(self) -> None:
        """Give the Lease up now (a clean shutdown): the next contender need not wait it out."""
        try:
            lease = await self.client.get(self._ri, self.namespace, self.name)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = _now_micro()
            lease["spec"] = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                             "acquireTime": now, "renewTime": now}
            await self.client.update(self._ri, lease)
            self._observed = None
        except Exception as e:  # best effort: the lease expires anyway
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, e)

    async def _round(self, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("lease %s/%s: %s", self.namespace, self.name, e)
            return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this contender leads (True) or `stop` is set (False)."""
        cfg = self.config
        while not stop.is_set():
            if await self._round(cfg.renew_deadline):
                log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
                return True
            await _sleep_or_stop(stop, cfg.retry_period * (1 + random.random() * (JITTER - 1)))
        return False

    async def keep_renewing(self, stop: asyncio.Event) -> None:
        """Renew until renewals fail for renew_deadline, another holder shows up, or `stop` is set."""
        cfg = self.config
        last_renew = time.monotonic()
        while not stop.is_set():
            await _sleep_or_stop(stop, cfg.retry_period)
            if stop.is_set():
                return
            left = cfg.renew_deadline - (time.monotonic() - last_renew)
            if left > 0 and await self._round(max(left, 0.05)):
                last_renew = time.monotonic()
                continue
            if self._observed and self._observed.get("holderIdentity") not in (self.identity, None, ""):
                log.warning("lease %s/%s taken over by %s", self.namespace, self.name, self.leader)
                return
            if time.monotonic() - last_renew >= cfg.renew_deadline:
                log.warning("lease %s/%s: no renewal for %.0fs; leadership lost",
                            self.namespace, self.name, cfg.renew_deadline)
                return


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_with_leader_election(client: Client, name: str, namespace: str, identity: str,
                                   run: Callable[[asyncio.Event], Awaitable[Any]], stop: asyncio.Event,
                                   config: LeaderElectionConfig | None = None,
                                   on_new_leader: Callable[[str], None] | None = None,
                                   stop_grace: float = 10.0) -> None:
    """Run `run(leading)` only while holding Lease namespace/name, until `stop` is set.

    When leadership is lost, `leading` is set and `run` gets `stop_grace` seconds to return
    before it is cancelled; then this contender competes again. On `stop` the Lease is
    released so another contender takes over at once.
    """
    elector = LeaderElector(client, name, namespace, identity, config, on_new_leader)
    while not stop.is_set():
        if not await elector.acquire(stop):
            return
        leading = asyncio.Event()
        task = asyncio.ensure_future(run(leading))
        renewer = asyncio.ensure_future(elector.keep_renewing(stop))
        try:
            done, _ = await asyncio.wait({task, renewer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            leading.set()
            renewer.cancel()
            await _finish(task, stop_grace)
            raise
        leading.set()
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        finished_itself = task in done
        await _finish(task, stop_grace)
        if stop.is_set() or finished_itself:
            if elector.config.release_on_cancel and elector.is_leader():
                await elector.release()
            if finished_itself and not task.cancelled():
                task.result()  # re-raise what made `run` fail
            return
        log.warning("lease %s/%s: %s stopped leading", namespace, name, identity)


async def _finish(task: asyncio.Future, grace: float) -> None:
    """Let a task that was told to stop return; cancel it after `grace` seconds."""
    if not task.done():
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), grace)
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def identity_from_env(component: str) -> str:
    """A stable-enough identity: $KETCH_IDENTITY, else hostname_uuid."""
    return os.environ.get("KETCH_IDENTITY") or f"{default_identity()}-{component}"


def stable_identity(args: object, component: str) -> str:
    """The identity of a component inside `ketch up`/`ketch server`: the same across restarts of
    the same data directory, so a server restarted after a crash takes its Lease back at once."""
    import hashlib
    data_dir = os.path.abspath(getattr(args, "data_dir", None) or ".")
    digest = hashlib.sha256(data_dir.encode()).hexdigest()[:10]
    return os.environ.get("KETCH_IDENTITY") or f"{socket.gethostname()}_{digest}-{component}"
