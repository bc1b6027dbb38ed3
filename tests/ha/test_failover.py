"""Two full ketch servers over one etcd: kill -9 the leader of the controllers/scheduler, and kill -9 a
server in the middle of a write load."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import time

import aiohttp
import pytest

from tests.ha.etcd_cluster import start_etcd
from tests.ha.test_ha import _SERVER, DEPLOYMENT, _start


@pytest.fixture
def pair(tmp_path):
    etcd = start_etcd(tmp_path / "etcd", size=1)
    servers = []
    try:
        a = _start([sys.executable, "-c", _SERVER, "server", "--datastore", etcd.url, "--no-dns"], tmp_path / "a")
        servers.append(a)
        shutil.copytree(a.data_dir / "pki", tmp_path / "b" / "pki")
        b = _start([sys.executable, "-c", _SERVER, "server", "--datastore", etcd.url, "--no-dns"], tmp_path / "b")
        servers.append(b)
        yield a, b
    finally:
        for s in servers:
            s.stop()
        etcd.stop()


def _holder(server, lease: str) -> str:
    out = server.kubectl("get", "lease", lease, "-n", "kube-system", "-o", "json").stdout
    return json.loads(out)["spec"]["holderIdentity"]


def _wait(cond, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_killing_the_leader_hands_controllers_and_scheduler_to_the_other_server(pair):
    a, b = pair
    _wait(lambda: b.kubectl("get", "lease", "ketch-controller-manager", "-n", "kube-system", check=False).returncode == 0
          and b.kubectl("get", "lease", "ketch-scheduler", "-n", "kube-system", check=False).returncode == 0, 20)
    cm_holder = _holder(a, "ketch-controller-manager")
    assert _owns(a, cm_holder) or _owns(b, cm_holder), cm_holder
    leader, other = (a, b) if _owns(a, cm_holder) else (b, a)
    other.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    _wait(lambda: len(other.kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout.split()) == 2, 20)
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(5)
    t0 = time.time()
    other.kubectl("scale", "deployment", "web", "--replicas=4")
    # the survivor takes both leases within their duration (15 s) and finishes the scale-up
    _wait(lambda: len(other.kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout.split()) == 4, 30)
    took = time.time() - t0
    assert _holder(other, "ketch-controller-manager") != cm_holder
    assert took < 30, took


def _owns(server, identity: str) -> bool:
    import hashlib
    return hashlib.sha256(str(server.data_dir.resolve()).encode()).hexdigest()[:10] in identity


async def _load(url: str, token: str, ca: str, acked: list[str], stop_at: float) -> None:
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async def writer(w: int) -> None:
            i = 0
            while time.time() < stop_at:
                name = f"w{w}-{i}"
                i += 1
                try:
                    async with s.post(f"{url}/api/v1/namespaces/default/configmaps", ssl=ctx,
                                      json={"metadata": {"name": name}, "data": {"v": "x" * 100}}) as r:
                        if r.status == 201:
                            acked.append(name)
                except (aiohttp.ClientError, OSError):
                    return
        await asyncio.gather(*(writer(w) for w in range(8)))


def test_kill_9_of_a_server_mid_write_load_loses_no_acknowledged_write(pair):
    a, b = pair
    acked: list[str] = []

    async def main() -> None:
        load = asyncio.create_task(_load(a.url, a.token(), str(a.data_dir / "pki" / "ca.crt"), acked,
                                         time.time() + 30))
        while len(acked) < 150:
            await asyncio.sleep(0.02)
        a.proc.send_signal(signal.SIGKILL)
        await load
    asyncio.run(main())
    a.proc.wait(5)
    names = set(b.kubectl("get", "configmaps", "-n", "default", "-o", "name").stdout.split())
    missing = [n for n in acked if f"configmap/{n}" not in names]
    assert len(acked) >= 150 and missing == [], missing[:10]
