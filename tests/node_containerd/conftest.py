"""containerd runtime tests: `ketch up --no-agent` plus `ketch agent --runtime containerd`, driven by the real kubectl.

They need root and containerd, runc, the CNI plugins, iptables and busybox-static
(scripts/ci-deps-containerd.sh). Without root they are skipped; as root with a dependency
missing they fail, so CI cannot pass without really running them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, Cluster, start_cluster
from tests.node.conftest import get_json, wait_for

NODE = "ctd-node"


def _requirements() -> None:
    if os.geteuid() != 0:
        pytest.skip("the containerd runtime needs root")
    from ketch.node.containerd.daemon import missing
    from ketch.node.images import find_busybox
    lacks = missing()
    try:
        find_busybox()
    except FileNotFoundError:
        lacks.append("busybox-static")
    if lacks:
        pytest.fail(f"missing {', '.join(lacks)}: run scripts/ci-deps-containerd.sh", pytrace=False)


def _kubelet_port() -> list[str]:
    """An agent with a node API listens on any free port here (the flag exists once that API is in)."""
    out = subprocess.run([str(BIN / "ketch"), "agent", "--help"], capture_output=True, text=True).stdout
    return ["--kubelet-port", "0"] if "--kubelet-port" in out else []


class Node:
    """A `ketch agent --runtime containerd` process that tests can stop and start again."""

    def __init__(self, cluster: Cluster, data_dir: Path, extra: list[str] | None = None):
        self.cluster, self.data_dir = cluster, data_dir
        self.extra = list(extra or ())
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> float:
        """Start the agent; seconds until its Node is Ready."""
        self.starts += 1
        log = open(self.data_dir.parent / f"agent{self.starts}.log", "wb")
        t0 = time.time()
        self.proc = subprocess.Popen([str(BIN / "ketch"), "agent", "--kubeconfig", self.cluster.kubeconfig,
                                      "--runtime", "containerd", "--node-name", NODE, "--data-dir", str(self.data_dir),
                                      "--crash-backoff", "1", "--no-proxy", *_kubelet_port(), *self.extra],
                                     stdout=log, stderr=subprocess.STDOUT)

        def ready():
            assert self.proc.poll() is None, (self.data_dir.parent / f"agent{self.starts}.log").read_text()
            r = self.cluster.kubectl("get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                                     check=False)
            return r.returncode == 0 and r.stdout.strip() == "True"

        wait_for(ready, timeout=30, interval=0.05, what="node Ready")
        return time.time() - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(20) == 0
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()


@contextlib.contextmanager
def node_cluster(base: Path, node_extra: list[str] | None = None, before_start=None):
    """`ketch up --no-agent` and one containerd agent under `base`, yielding (cluster, node); at the end
    every pod is deleted and its sandbox, cgroups and logs are seen removed by the agent (no container
    outlives the tests), then both stop. `before_start(cluster, node)` runs before the agent starts."""
    c = start_cluster(base / "cluster", extra=["--no-agent"])
    node = Node(c, base / "agent", extra=node_extra)
    try:
        if before_start is not None:
            before_start(c, node)
        node.start()
        yield c, node
        c.kubectl("delete", "pods", "--all", "--timeout=40s", check=False)
        pods = base / "agent" / "pods"     # the agent removes sandboxes, cgroups and logs after the API object
        wait_for(lambda: not pods.exists() or not any(pods.iterdir()), timeout=60, what="pods removed")
    finally:
        node.stop()
        c.stop()


@pytest.fixture(scope="module")
def ctd(tmp_path_factory):
    _requirements()
    with node_cluster(tmp_path_factory.mktemp("ketch-ctd")) as cn:
        yield cn


def container_status(c: Cluster, name: str) -> dict:
    return ((get_json(c, "pod", name).get("status") or {}).get("containerStatuses") or [{}])[0]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A local registry (Debian docker-registry, distribution 2.8) on 127.0.0.1; yields its host:port."""
    import shutil

    from tests.conftest import free_port
    _requirements()
    lacks = [b for b in ("docker-registry", "skopeo") if not shutil.which(b)]
    if lacks:
        pytest.fail(f"missing {', '.join(lacks)}: run scripts/ci-deps-containerd.sh", pytrace=False)
    d = tmp_path_factory.mktemp("registry")
    port = free_port()
    (d / "config.yml").write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                                  f"    rootdirectory: {d}/data\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=open(d / "log", "wb"),
                            stderr=subprocess.STDOUT)
    import socket

    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    try:
        wait_for(up, timeout=10, interval=0.05, what="registry listening")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
