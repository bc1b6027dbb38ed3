"""Shared fixtures: a real `ketch up` on a loopback port with a temporary data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    proc: subprocess.Popen
    data_dir: Path
    port: int
    log_path: Path
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
                env: dict | None = None) -> subprocess.CompletedProcess:
        e = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=str(self.data_dir / "home"))
        if env:
            e.update(env)
        r = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, timeout=timeout, env=e)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_cluster(data_dir: Path, port: int | None = None, extra: list[str] | None = None,
                  secure: bool = False) -> Cluster:
    """A real `ketch up`. Plain HTTP on loopback unless secure (TLS + tokens, the default of ketch up):
    the HTTP-level tests talk to it without credentials; tests/apiserver/test_auth.py covers TLS."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "home").mkdir(exist_ok=True)
    log_path = data_dir / "ketch.log"
    logf = open(log_path, "ab")
    offset = logf.tell()
    flags = [] if secure else ["--http"]
    if not any(f.startswith("--runtime") for f in extra or []):
        # No node agent unless a test asks for one: the process runtime would run the tests'
        # pods as host processes, and tests that play kubelet themselves need no real node.
        flags.append("--no-agent")
    # No service proxy and no cluster DNS unless a test asks for them: the proxy would program the
    # host's nftables, and DNS would listen on the host's address (tests that want them run in netns).
    if not any(f in ("--proxy", "--no-proxy") for f in extra or []):
        flags.append("--no-proxy")
    if not any(f.startswith("--cluster-dns") or f == "--no-dns" for f in extra or []):
        flags.append("--no-dns")
    proc = subprocess.Popen([str(BIN / "ketch"), "up", "--data-dir", str(data_dir), "--port", str(port), *flags,
                             *(extra or [])],
                            stdout=logf, stderr=subprocess.STDOUT, cwd=str(ROOT))
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ketch up exited {proc.returncode}:\n{log_path.read_text()}")
        if b"ready" in log_path.read_bytes()[offset:]:
            return Cluster(proc, data_dir, port, log_path, secure)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"ketch up not ready in 30s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("ketch"))
    yield c
    rc = c.stop()
    assert rc == 0, f"ketch up did not stop cleanly ({rc}):\n{c.log_path.read_text()[-3000:]}"
