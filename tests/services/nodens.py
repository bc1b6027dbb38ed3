"""A whole ketch node inside a network namespace the test creates: `ketch up` (containerd, proxy and
DNS by default) runs there through `nsenter --net` (only the network namespace changes: containerd
and runc need the host's /sys and cgroup mounts, which `ip netns exec` would hide), with its own CNI
bridge and pod subnet so it shares nothing with the host's `ketch0`.

The namespace has one address (a veth pair with both ends inside, and a default route on it): the
node address that NodePorts, LoadBalancer ingress and the cluster DNS use. The proxy programs only
the namespace's nftables. Everything is removed at the end: pods first (so no container outlives
the test), then `ketch up` (which stops its containerd), leftover processes of the namespace by
PID, the namespace, and the bridge's IPAM directory.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, KUBECTL

TOOL = str(Path(__file__).with_name("netns_tool.py"))
PY = str(BIN / "python")
IPAM_ROOT = "/var/lib/cni/ketch"


def requirements() -> None:
    """Root, nftables, nsenter and the containerd runtime's dependencies (fail, not skip, when missing as root)."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces and containerd need root")
    from ketch.node.containerd.daemon import missing
    lacks = missing() + [b for b in ("nsenter", "ip", "nft") if not shutil.which(b)]
    if lacks:
        pytest.fail(f"missing {', '.join(lacks)}: run scripts/ci-deps-containerd.sh and scripts/ci-deps-net.sh",
                    pytrace=False)


def sh(*args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def wait_for(cond, timeout: float, what: str, interval: float = 0.3):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class NodeNS:
    """One network namespace with a node address; `run`/`popen` execute commands inside it."""

    def __init__(self, tag: str | None = None):
        self.tag = tag or f"{random.randrange(16**6):06x}"
        self.name = f"svc-{self.tag}"
        a, b = random.randrange(100, 200), random.randrange(1, 250)
        self.node_ip = f"10.{a}.{b}.1"
        self.pod_cidr = f"10.{a}.{(b + 1) % 250 + 1}.0/24"
        self.bridge = f"svc{self.tag}"
        self.procs: list[subprocess.Popen] = []
        sh("ip", "netns", "add", self.name)
        try:
            sh("ip", "-n", self.name, "link", "set", "lo", "up")
            sh("ip", "-n", self.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
            sh("ip", "-n", self.name, "addr", "add", f"{self.node_ip}/24", "dev", "eth0")
            sh("ip", "-n", self.name, "link", "set", "eth0", "up")
            sh("ip", "-n", self.name, "link", "set", "eth0p", "up")
            sh("ip", "-n", self.name, "route", "add", "default", "dev", "eth0")
        except BaseException:
            sh("ip", "netns", "del", self.name, check=False)
            raise

    def cmd(self, *args: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.name}", *args]

    def run(self, *args: str, check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        return sh(*self.cmd(*args), check=check, timeout=timeout, input=input)

    def popen(self, args: list[str], log: Path | None = None, **kw) -> subprocess.Popen:
        out = open(log, "ab") if log else subprocess.PIPE
        p = subprocess.Popen(self.cmd(*args), stdout=out, stderr=subprocess.STDOUT if log else None, **kw)
        self.procs.append(p)
        return p

    def get(self, host: str, port: int, n: int) -> dict[str, int]:
        """n HTTP requests from the namespace (the node itself), each on a new connection: a tally of answers."""
        return json.loads(self.run(PY, TOOL, "get", host, str(port), str(n), timeout=120).stdout)

    def remove(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for pid in sh("ip", "netns", "pids", self.name, check=False).stdout.split():
            try:        # only processes inside our namespace: leftovers of this test
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "del", self.name, check=False)
        shutil.rmtree(os.path.join(IPAM_ROOT, self.bridge), ignore_errors=True)


class NodeCluster:
    """`ketch up` with its defaults (containerd, proxy, DNS) inside a NodeNS."""

    def __init__(self, node: NodeNS, data_dir: Path, extra: list[str] | None = None):
        self.node, self.data_dir = node, data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "ketch.log"
        self.proc = node.popen([str(BIN / "ketch"), "up", "--data-dir", str(data_dir), "--cni-bridge", node.bridge,
                                "--pod-cidr", node.pod_cidr, "--kubelet-port", "0", *(extra or [])], self.log)
        wait_for(lambda: self._alive() and b"cluster DNS on" in self.log.read_bytes()
                 and b"ketch proxy: " in self.log.read_bytes(), 60, "ketch up, its proxy and DNS")
        self.kubeconfig = str(data_dir / "kubeconfig")
        wait_for(lambda: self.kubectl("get", "node", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')]"
                                      ".status}", check=False).stdout.strip() == "True", 60, "the node Ready")

    def _alive(self) -> bool:
        assert self.proc.poll() is None, f"ketch up exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
        return True

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        return self.node.run("env", f"KUBECONFIG={self.kubeconfig}", f"HOME={self.data_dir}", KUBECTL, *args,
                             check=check, input=input, timeout=timeout)

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, obj: dict | str) -> None:
        self.kubectl("apply", "-f", "-", input=obj if isinstance(obj, str) else json.dumps(obj))

    def ready_pods(self, selector: str) -> list[dict]:
        return [p for p in self.json("pods", "-l", selector)["items"]
                if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or ())]

    def endpoints(self, name: str) -> list[str]:
        ep = self.json("endpoints", name)
        return sorted(a["ip"] for s in ep.get("subsets") or () for a in s.get("addresses") or ())

    def logs(self, pod: str, container: str = "") -> str:
        """The pod's output as plain lines (CRI log records are stripped of their prefix if present)."""
        out = self.kubectl("logs", pod, *(["-c", container] if container else [])).stdout
        return "\n".join(re.sub(r"^\S+ (stdout|stderr) [FP] ", "", line) for line in out.splitlines())

    def stop(self) -> None:
        self.kubectl("delete", "deployments,replicasets,pods", "--all", "-A", "--wait=false", check=False)
        self.kubectl("delete", "pods", "--all", "-A", "--timeout=90s", check=False)
        pods = self.data_dir / "agent" / "pods"       # the agent removes sandboxes after the API object
        try:
            wait_for(lambda: not pods.exists() or not any(pods.iterdir()), 60, "pod sandboxes removed")
        finally:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)

    def nft_tables(self) -> str:
        return self.node.run("nft", "list", "tables").stdout
