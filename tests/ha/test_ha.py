"""Two ketch servers over a 3-member etcd cluster: one cluster, any server.

Server A is `ketch up --no-agent` (apiserver, controllers, scheduler); server B is `ketch server
--no-controllers --no-scheduler` started on a copy of A's pki/ (same CA and tokens), as
docs/ha.md describes. Both serve TLS with token authentication.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ketch.client.rest import Client
from tests.conftest import BIN, KUBECTL, ROOT, free_port
from tests.ha.etcd_cluster import start_etcd

# `ketch server` through main(), whether or not cmd_server is listed in COMMANDS yet.
_SERVER = ("import sys, ketch.cli.main as m\n"
           "m.COMMANDS = tuple(m.COMMANDS) + (() if 'cmd_server' in m.COMMANDS else ('cmd_server',))\n"
           "sys.exit(m.main())")


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""


@dataclass
class Server:
    proc: subprocess.Popen
    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    def token(self) -> str:
        cfg = yaml.safe_load(Path(self.kubeconfig).read_text())
        return cfg["users"][0]["user"]["token"]

    def client(self) -> Client:
        return Client(self.url, token=self.token(), ca_file=str(self.data_dir / "pki" / "ca.crt"))

    def kubectl(self, *args: str, server: str | None = None, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess:
        extra = ["--server", server] if server else []
        r = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, *extra, *args], capture_output=True, input=input,
                           text=True, timeout=30, env=dict(os.environ, HOME=str(self.data_dir)))
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _start(cmd: list[str], data_dir: Path) -> Server:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "ketch.log"
    with open(log, "ab") as logf:
        proc = subprocess.Popen([*cmd, "--data-dir", str(data_dir), "--port", str(port)],
                                stdout=logf, stderr=subprocess.STDOUT, cwd=str(ROOT))
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        if b"is ready" in log.read_bytes():
            return Server(proc, data_dir, port, log)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server not ready in 30s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    base = tmp_path_factory.mktemp("ha")
    etcd = start_etcd(base / "etcd", size=3)
    servers: list[Server] = []
    try:
        a = _start([str(BIN / "ketch"), "up", "--datastore", etcd.url, "--no-agent", "--no-dns"], base / "a")
        servers.append(a)
        # The second server joins with the first one's CA, keys and tokens (docs/ha.md).
        shutil.copytree(a.data_dir / "pki", base / "b" / "pki")
        b = _start([sys.executable, "-c", _SERVER, "server", "--datastore", etcd.url,
                    "--no-controllers", "--no-scheduler", "--no-dns"], base / "b")
        servers.append(b)
        yield etcd, a, b
    finally:
        for s in servers:
            s.stop()
        etcd.stop()


def test_second_server_shares_ca_and_credentials(ha):
    _, a, b = ha
    assert a.token() == b.token()
    assert "store etcd" in b.log.read_text() and "store etcd" in a.log.read_text()
    # A's kubeconfig works against B as is (same CA, same token): any server serves the cluster.
    out = a.kubectl("get", "namespaces", "-o", "name", server=b.url).stdout
    assert "namespace/kube-system" in out
    assert b.kubectl("get", "namespaces", "-o", "name").stdout == out


async def test_write_on_one_server_is_read_and_watched_on_the_other(ha):
    _, a, b = ha
    ca, cb = a.client(), b.client()
    cm = ca.resource("configmaps")
    try:
        events: list[dict] = []
        listed = await cb.list(cm, "default")

        async def watch() -> None:
            async for ev in cb.watch(cm, "default", resource_version=listed["metadata"]["resourceVersion"]):
                if ev["type"] != "BOOKMARK":
                    events.append(ev)
        task = asyncio.create_task(watch())
        created = []
        for i in range(20):
            obj = await ca.create(cm, "default", {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
            created.append(obj)
            # a read on the other server right after the write sees it (consistent reads)
            got = await cb.get(cm, "default", f"cm-{i}")
            assert got["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
        upd = dict(created[0], data={"i": "changed"})
        upd = await cb.update(cm, upd)
        await ca.delete(cm, "default", "cm-1")
        t0 = time.monotonic()
        while len(events) < 22 and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.05)
        task.cancel()
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == \
            [("ADDED", f"cm-{i}") for i in range(20)] + [("MODIFIED", "cm-0"), ("DELETED", "cm-1")]
        assert [e["object"]["metadata"]["resourceVersion"] for e in events[:20]] == \
            [o["metadata"]["resourceVersion"] for o in created]
        # lists agree, item for item, at the same resourceVersion
        la, lb = await ca.list(cm, "default"), await cb.list(cm, "default")
        assert la["items"] == lb["items"] and len(la["items"]) == 19
        assert la["metadata"]["resourceVersion"] == lb["metadata"]["resourceVersion"]
        # a stale write through the other server is refused (optimistic concurrency across servers)
        stale = dict(created[0], data={"i": "stale"})
        with pytest.raises(Exception) as e:
            await ca.update(cm, stale)
        assert getattr(e.value, "code", None) == 409
    finally:
        await ca.close()
        await cb.close()


def test_controllers_on_one_server_reconcile_what_the_other_was_given(ha):
    _, a, b = ha
    b.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    deadline = time.time() + 20
    pods = ""
    while time.time() < deadline:
        pods = b.kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout
        if len(pods.split()) == 2:
            break
        time.sleep(0.2)
    assert len(pods.split()) == 2, pods
    assert a.kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout == pods


async def test_cluster_keeps_serving_when_an_etcd_member_dies(ha):
    etcd, a, b = ha
    ca, cb = a.client(), b.client()
    cm = ca.resource("configmaps")
    try:
        events: list[dict] = []
        listed = await cb.list(cm, "kube-public")

        async def watch() -> None:
            async for ev in cb.watch(cm, "kube-public", resource_version=listed["metadata"]["resourceVersion"]):
                if ev["type"] != "BOOKMARK":
                    events.append(ev)
        task = asyncio.create_task(watch())
        await ca.create(cm, "kube-public", {"metadata": {"name": "before"}})
        # both servers' store clients and watches talk to the first member first: kill it
        etcd.members[0].kill()
        names = []
        for i in range(10):
            c = ca if i % 2 else cb
            obj = await c.create(cm, "kube-public", {"metadata": {"name": f"after-{i}"}})
            names.append(obj["metadata"]["name"])
        assert (await ca.get(cm, "kube-public", "after-9"))["metadata"]["name"] == "after-9"
        t0 = time.monotonic()
        while len(events) < 11 and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.05)
        task.cancel()
        assert [e["object"]["metadata"]["name"] for e in events] == ["before", *names]
        assert a.proc.poll() is None and b.proc.poll() is None
    finally:
        await ca.close()
        await cb.close()
