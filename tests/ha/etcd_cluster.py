"""Start and stop real etcd members (Debian etcd-server) on loopback ports for tests."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

ETCD = "/usr/bin/etcd"


def require_etcd() -> None:
    """Skip without etcd on a developer machine; fail in CI, where scripts/ci-deps-etcd.sh installs it."""
    if os.access(ETCD, os.X_OK):
        return
    msg = f"{ETCD} missing: run scripts/ci-deps-etcd.sh (Debian etcd-server)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop this member by its PID."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@dataclass
class EtcdCluster:
    members: list[EtcdMember] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def url(self) -> str:
        """The --datastore URL naming every member."""
        return "etcd://" + ",".join(f"127.0.0.1:{m.client_port}" for m in self.members)

    def stop(self) -> None:
        for m in self.members:
            m.kill(signal.SIGTERM)


def start_etcd(base: Path, size: int = 1, timeout: float = 20.0) -> EtcdCluster:
    """A fresh etcd cluster of `size` members, each in base/<name>, ready to serve."""
    require_etcd()
    token = uuid.uuid4().hex[:12]
    members = [EtcdMember(f"m{i}", free_port(), free_port(), base / f"m{i}") for i in range(size)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    env = dict(os.environ)
    if platform.machine() in ("aarch64", "arm64"):
        env["ETCD_UNSUPPORTED_ARCH"] = "arm64"
    cluster = EtcdCluster(members)
    for m in members:
        m.data_dir.mkdir(parents=True, exist_ok=True)
        logf = open(m.data_dir.parent / f"{m.name}.log", "ab")
        m.proc = subprocess.Popen(
            [ETCD, "--name", m.name, "--data-dir", str(m.data_dir / "data"),
             "--listen-client-urls", m.endpoint, "--advertise-client-urls", m.endpoint,
             "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", token,
             "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn"],
            stdout=logf, stderr=subprocess.STDOUT, env=env)
        logf.close()
    deadline = time.time() + timeout
    while time.time() < deadline:
        dead = [m for m in members if m.proc.poll() is not None]
        if dead:
            cluster.stop()
            log = (base / f"{dead[0].name}.log").read_text()[-2000:]
            raise RuntimeError(f"etcd {dead[0].name} exited {dead[0].proc.returncode}:\n{log}")
        if all(m.healthy() for m in members):
            return cluster
        time.sleep(0.05)
    cluster.stop()
    raise RuntimeError(f"etcd cluster not healthy after {timeout:.0f}s")
