"""Leader election over Leases against a real apiserver: one leader, hand-over on stop, on kill -9
(within the lease duration, not before), and a leader that loses its Lease stops working."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from ketch.client.leaderelection import LeaderElectionConfig, LeaderElector, run_with_leader_election
from ketch.client.rest import Client
from tests.conftest import ROOT, start_cluster

FAST = LeaderElectionConfig(lease_duration=2.0, renew_deadline=1.5, retry_period=0.25)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("le"), extra=["--no-agent", "--no-controllers", "--no-scheduler"])
    yield c
    c.stop()


class Contender:
    """One in-process contender that records when it starts and stops leading."""

    def __init__(self, client: Client, ident: str, lease: str):
        self.ident = ident
        self.stop = asyncio.Event()
        self.leading = False
        self.started: list[float] = []
        self.stopped: list[float] = []
        self.task = asyncio.ensure_future(run_with_leader_election(
            client, lease, "kube-system", ident, self._run, self.stop, FAST))

    async def _run(self, lost: asyncio.Event) -> None:
        self.leading = True
        self.started.append(time.monotonic())
        try:
            await lost.wait()
        finally:
            self.leading = False
            self.stopped.append(time.monotonic())

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


async def _until(cond, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def _lease(client: Client, name: str) -> dict:
    return await client.get(client.resource("leases", "coordination.k8s.io"), "kube-system", name)


async def test_one_leader_and_hand_over_on_stop(api):
    client = Client(api.url)
    try:
        a = Contender(client, "a", "le-stop")
        await _until(lambda: a.leading, 5)
        b = Contender(client, "b", "le-stop")
        await asyncio.sleep(FAST.lease_duration + 0.5)  # b keeps trying, and never leads while a renews
        assert a.leading and not b.leading and not b.started
        lease = await _lease(client, "le-stop")
        assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 2
        assert lease["spec"]["renewTime"] > lease["spec"]["acquireTime"]
        transitions = lease["spec"].get("leaseTransitions", 0)
        # a clean stop releases the lease: b takes over at its next retry, well within the duration
        t0 = time.monotonic()
        await a.shutdown()
        assert a.stopped and not a.leading
        await _until(lambda: b.leading, 3)
        assert time.monotonic() - t0 < FAST.lease_duration
        lease = await _lease(client, "le-stop")
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == transitions + 1
        await b.shutdown()
    finally:
        await client.close()


_CONTENDER = """
import asyncio, sys
from ketch.client.leaderelection import LeaderElectionConfig, run_with_leader_election
from ketch.client.rest import Client

async def main():
    client = Client(sys.argv[1])
    async def run(lost):
        print("LEADING", flush=True)
        await lost.wait()
    cfg = LeaderElectionConfig(lease_duration=2.0, renew_deadline=1.5, retry_period=0.25)
    await run_with_leader_election(client, "le-kill", "kube-system", "proc", run, asyncio.Event(), cfg)
asyncio.run(main())
"""


async def test_kill_9_leader_other_takes_over_within_lease_duration(api):
    proc = subprocess.Popen([sys.executable, "-c", _CONTENDER, api.url], stdout=subprocess.PIPE, cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    client = Client(api.url)
    try:
        line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline), 15)
        assert line.strip() == b"LEADING"
        b = Contender(client, "b", "le-kill")
        await asyncio.sleep(1.0)
        assert not b.leading
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        killed = time.monotonic()
        await _until(lambda: b.leading, FAST.lease_duration + 2)
        took = time.monotonic() - killed
        # not before the lease ran out as b observed it, and soon after
        assert took <= FAST.lease_duration + 2 * FAST.retry_period + 0.5
        assert b.started[0] - killed > 0.3
        lease = await _lease(client, "le-kill")
        assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] >= 1
        await b.shutdown()
    finally:
        if proc.poll() is None:
            proc.kill()
        await client.close()


async def test_leader_that_loses_its_lease_stops_running(api):
    client = Client(api.url)
    try:
        a = Contender(client, "a", "le-steal")
        await _until(lambda: a.leading, 5)
        # an intruder overwrites the lease (as if a's renewals had not reached the apiserver)
        lease = await _lease(client, "le-steal")
        lease["spec"]["holderIdentity"] = "intruder"
        lease["spec"]["leaseDurationSeconds"] = 60
        await client.update(client.resource("leases", "coordination.k8s.io"), lease)
        await _until(lambda: not a.leading, FAST.renew_deadline + 1)
        assert a.stopped
        await asyncio.sleep(1.0)
        assert not a.leading  # and it does not take the lease back while the intruder's is valid
        await a.shutdown()
    finally:
        await client.close()


async def test_config_is_validated_and_elector_reports_leadership(api):
    with pytest.raises(ValueError):
        LeaderElectionConfig(lease_duration=5, renew_deadline=6, retry_period=1)
    client = Client(api.url)
    try:
        seen: list[str] = []
        e1 = LeaderElector(client, "le-direct", "kube-system", "one", FAST, on_new_leader=seen.append)
        e2 = LeaderElector(client, "le-direct", "kube-system", "two", FAST)
        assert await e1.try_acquire_or_renew() and e1.is_leader()
        assert not await e2.try_acquire_or_renew() and e2.leader == "one"
        assert await e1.try_acquire_or_renew()  # renew
        await e1.release()
        assert await e2.try_acquire_or_renew() and e2.is_leader()
        assert seen == ["one"]
    finally:
        await client.close()
