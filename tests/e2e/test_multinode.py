"""More nodes for real: three "hosts" made of network namespaces on one bridge; the server runs in
one, a joined agent in each of the two others. Pods land on both nodes, talk across them, a service
over them answers on both hosts (each agent runs its node's proxy in its own namespace), and when
one host dies its pods are replaced on the other.

Everything lives in namespaces this test creates (addresses inside them only) and is removed at
the end; every process it starts is stopped by PID.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import BIN, KUBECTL

TOOL = str(Path(__file__).resolve().parent.parent / "services" / "netns_tool.py")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.stderr}")
    return r


@dataclass
class Hosts:
    tag: str
    subnet: str
    base: str = ""
    names: dict[str, str] = field(default_factory=dict)     # role -> netns
    ips: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def netns(self, role: str) -> str:
        return self.names[role]

    def start(self, role: str, args: list[str], log: Path) -> subprocess.Popen:
        f = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.names[role], *args], stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def kill_host(self, role: str) -> None:
        """The host dies: every process in its namespace, by PID."""
        for pid in sh("ip", "netns", "pids", self.names[role], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def make_hosts(roles: list[str]) -> Hosts:
    tag = f"{random.randrange(16**6):06x}"
    h = Hosts(tag, f"10.{random.randrange(100, 200)}.{random.randrange(1, 250)}")
    bridge_ns = f"kt-{tag}-net"
    sh("ip", "netns", "add", bridge_ns)
    h.names["net"] = bridge_ns
    sh("ip", "-n", bridge_ns, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", bridge_ns, "link", "set", "br0", "up")
    for i, role in enumerate(roles, 1):
        ns = f"kt-{tag}-{role}"
        sh("ip", "netns", "add", ns)
        h.names[role] = ns
        ip = f"{h.subnet}.{i}"
        h.ips[role] = ip
        sh("ip", "link", "add", f"kv{tag}{i}", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", bridge_ns)
        sh("ip", "-n", ns, "link", "set", f"kv{tag}{i}", "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "default", "dev", "eth0")
        sh("ip", "-n", bridge_ns, "link", "set", f"p{i}", "master", "br0")
        sh("ip", "-n", bridge_ns, "link", "set", f"p{i}", "up")
    return h


def remove_hosts(h: Hosts) -> None:
    for p in h.procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    for role in list(h.names):
        if role != "net":
            h.kill_host(role)
    for ns in h.names.values():
        sh("ip", "netns", "del", ns, check=False)


def wait_for(cond, timeout: float, what: str):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    base = tmp_path_factory.mktemp("multinode")
    h = make_hosts(["srv", "a", "b"])
    h.base = str(base)
    try:
        srv_dir = base / "srv"
        srv_dir.mkdir()
        log = srv_dir / "ketch.log"
        h.start("srv", [str(BIN / "ketch"), "up", "--data-dir", str(srv_dir), "--address", h.ips["srv"],
                        "--port", "6443", "--no-agent", "--node-monitor-grace-period", "3",
                        "--pod-eviction-timeout", "1"], log)
        wait_for(lambda: b"is ready" in log.read_bytes(), 30, "the server")
        token = re.search(r"join token for more nodes: (\S+)", log.read_text()).group(1)
        for role in ("a", "b"):
            d = base / role
            d.mkdir()
            h.start(role, [str(BIN / "ketch"), "agent", "--server", f"https://{h.ips['srv']}:6443", "--token", token,
                           "--node-name", f"host-{role}", "--runtime", "process", "--data-dir", str(d),
                           "--lease-interval", "1"], d / "agent.log")

        def kubectl(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
            env = dict(os.environ, KUBECONFIG=str(srv_dir / "kubeconfig"), HOME=str(srv_dir))
            r = subprocess.run(["ip", "netns", "exec", h.names["srv"], KUBECTL, *args], capture_output=True,
                               text=True, timeout=60, input=input, env=env)
            if check and r.returncode != 0:
                raise AssertionError(f"kubectl {' '.join(args)}: {r.stdout}{r.stderr}")
            return r
        yield h, kubectl
    finally:
        remove_hosts(h)


def _nodes_ready(kubectl) -> dict[str, str]:
    out = json.loads(kubectl("get", "nodes", "-o", "json").stdout)
    return {n["metadata"]["name"]: next((c["status"] for c in n["status"].get("conditions", [])
                                         if c["type"] == "Ready"), "?") for n in out["items"]}


def _pods(kubectl, selector: str) -> list[dict]:
    return json.loads(kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


TOLERATE_FAST = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                  "tolerationSeconds": 1},
                 {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                  "tolerationSeconds": 1}]


def _deployment(name: str, command: list[str], replicas: int = 2) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "terminationGracePeriodSeconds": 1, "tolerations": TOLERATE_FAST,
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                    "whenUnsatisfiable": "DoNotSchedule",
                                                    "labelSelector": {"matchLabels": {"app": name}}}],
                     "containers": [{"name": "c", "image": "host", "command": command}]}}}})


# Answers with the address the request reached: which host's pod served it.
WHO = ("import http.server\n"
       "class H(http.server.BaseHTTPRequestHandler):\n"
       "    def do_GET(self):\n"
       "        body = self.connection.getsockname()[0].encode()\n"
       "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
       "        self.wfile.write(body)\n"
       "    def log_message(self, *a): pass\n"
       "http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()\n")


def test_a_joined_node_gets_the_configmaps_and_secrets_of_its_pods_and_their_updates(cluster3, tmp_path):
    """A joined agent (node credentials) may read only what its pods reference, one object per watch."""
    h, kubectl = cluster3
    wait_for(lambda: _nodes_ready(kubectl) == {"host-a": "True", "host-b": "True"}, 30, "both nodes Ready")
    kubectl("create", "configmap", "mn-cfg", "--from-literal=greeting=hello")
    kubectl("create", "secret", "generic", "mn-sec", "--from-literal=password=s3cret")
    m, out = tmp_path / "mnt", tmp_path / "seen"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mn-files"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "host-a"}, "terminationGracePeriodSeconds": 1,
                 "volumes": [{"name": "cfg", "configMap": {"name": "mn-cfg"}}],
                 "containers": [{"name": "c", "image": "host",
                                 "command": ["sh", "-c", f"echo $PASSWORD > {out}; exec sleep 600"],
                                 "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "mn-sec",
                                                                                              "key": "password"}}}],
                                 "volumeMounts": [{"name": "cfg", "mountPath": str(m)}]}]}}))

    def read(p) -> str:
        try:
            return p.read_text().strip()
        except OSError:
            return ""
    wait_for(lambda: read(out) == "s3cret", 30, "the secret in the env")
    assert read(m / "greeting") == "hello"
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "mn-cfg"}, "data": {"greeting": "bonjour"}}))
    wait_for(lambda: read(m / "greeting") == "bonjour", 30, "the configMap update in the volume")
    kubectl("delete", "pod", "mn-files", "--timeout=30s")
    denied = [line for line in (Path(h.base) / "a" / "agent.log").read_text().splitlines()
              if "forbidden" in line.lower() and ("secrets" in line or "configmaps" in line)]
    assert not denied, denied


def test_two_joined_nodes_run_pods_that_talk_across_hosts_and_survive_a_host_loss(cluster3):
    h, kubectl = cluster3
    wait_for(lambda: _nodes_ready(kubectl) == {"host-a": "True", "host-b": "True"}, 30, "both nodes Ready")
    # the joined agents act as their nodes only
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert {n["status"]["addresses"][0]["address"] for n in nodes} == {h.ips["a"], h.ips["b"]}

    # 1. pods on both nodes
    kubectl("apply", "-f", "-", input=_deployment("web", [sys.executable, "-c", WHO]))

    def web_running():
        pods = _pods(kubectl, "app=web")
        ok = [p for p in pods if p["status"].get("phase") == "Running" and
              any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        return sorted(p["spec"]["nodeName"] for p in ok) == ["host-a", "host-b"] and ok
    web = wait_for(web_running, 40, "web pods Running on both nodes")
    ip_b = next(p["status"]["podIP"] for p in web if p["spec"]["nodeName"] == "host-b")
    assert ip_b == h.ips["b"]

    # 2. pod-to-pod traffic across hosts: a pod on host-a fetches from the web pod on host-b
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
             "spec": {"nodeName": "host-a", "restartPolicy": "Never", "containers": [{
                 "name": "c", "image": "host",
                 "command": [sys.executable, "-c",
                             f"import urllib.request; urllib.request.urlopen('http://{ip_b}:8080/', timeout=5)"]}]}}
    kubectl("apply", "-f", "-", input=json.dumps(probe))
    phase = wait_for(lambda: (json.loads(kubectl("get", "pod", "probe", "-o", "json").stdout)["status"].get("phase")
                              in ("Succeeded", "Failed")) and
                     json.loads(kubectl("get", "pod", "probe", "-o", "json").stdout)["status"]["phase"],
                     30, "the probe pod to finish")
    assert phase == "Succeeded"

    # 3. a service over both pods answers on both hosts: each agent's proxy programs its own namespace
    for role in ("a", "b"):
        log = (Path(h.base) / role / "agent.log").read_text()
        assert "proxy on, nftables table ip ketch-" in log, log
    kubectl("expose", "deployment", "web", "--port", "80", "--target-port", "8080")
    wait_for(lambda: len(json.loads(kubectl("get", "endpoints", "web", "-o", "json").stdout).get("subsets", [{}])[0]
                         .get("addresses") or []) == 2, 30, "two endpoints")
    ip = json.loads(kubectl("get", "service", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    for role in ("a", "b"):
        def tally(role=role):
            r = sh("ip", "netns", "exec", h.names[role], sys.executable, TOOL, "get", ip, "80", "40")
            t = json.loads(r.stdout)
            return set(t) == {h.ips["a"], h.ips["b"]} and t
        wait_for(tally, 30, f"the ClusterIP reaching both hosts' pods from host-{role}")
    kubectl("delete", "service", "web")
    kubectl("delete", "deployment", "web", "--wait=false")
    wait_for(lambda: not _pods(kubectl, "app=web"), 30, "web pods gone")

    # 4. host-b dies: its pods are replaced on host-a
    kubectl("apply", "-f", "-", input=_deployment("sleeper", ["sleep", "3600"]).replace(
        '"DoNotSchedule"', '"ScheduleAnyway"'))
    wait_for(lambda: sorted(p["spec"].get("nodeName", "") for p in _pods(kubectl, "app=sleeper")
                            if p["status"].get("phase") == "Running") == ["host-a", "host-b"], 40,
             "sleepers Running on both nodes")
    h.kill_host("b")
    wait_for(lambda: _nodes_ready(kubectl).get("host-b") == "Unknown", 30, "host-b to be marked unreachable")

    def replaced():
        live = [p for p in _pods(kubectl, "app=sleeper") if not p["metadata"].get("deletionTimestamp")]
        running = [p for p in live if p["status"].get("phase") == "Running"]
        return len(running) == 2 and all(p["spec"]["nodeName"] == "host-a" for p in running)
    wait_for(replaced, 60, "the sleeper from host-b to run again on host-a")
    kubectl("delete", "deployment", "sleeper", "--wait=false")
    kubectl("delete", "pod", "probe", "--wait=false")
    wait_for(lambda: not [p for p in _pods(kubectl, "app=sleeper") if p["spec"].get("nodeName") == "host-a"],
             30, "host-a's sleepers stopped")
