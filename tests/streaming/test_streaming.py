"""logs, exec, attach, port-forward and top through the apiserver to the node agent, with the real kubectl."""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import KUBECTL, free_port
from tests.node.conftest import apply, get_json, running_ready, wait_for


def pod(name: str, command: list[str], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": command}],
                     "terminationGracePeriodSeconds": 1, **spec}}


def start(c, name: str, command: list[str], **spec) -> dict:
    apply(c, pod(name, command, **spec))
    return wait_for(lambda: running_ready(c, name), what=f"{name} Running")


def popen(c, *args: str) -> subprocess.Popen:
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home"))
    return subprocess.Popen([KUBECTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def agent_health(c) -> str:
    """The agent's /healthz, called with the apiserver's client certificate (as only the apiserver may)."""
    port = get_json(c, "node", "stream-node")["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    pki = c.data_dir / "pki"
    ctx.load_cert_chain(pki / "kubelet-client.crt", pki / "kubelet-client.key")
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=5) as r:
        return r.read().decode()


def host_processes(*argv: str) -> list[int]:
    """Processes whose command line is exactly `argv` (not kubectl's, whose command line holds it too)."""
    want = b"".join(a.encode() + b"\0" for a in argv)
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == want:
                    out.append(int(pid))
        except OSError:
            pass
    return out


def test_logs_tail_timestamps_limit_and_follow(stream_cluster):
    c = stream_cluster
    start(c, "counter", ["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.2; done"])
    wait_for(lambda: "line 3" in c.kubectl("logs", "counter").stdout, what="4 lines")
    assert c.kubectl("logs", "counter", "--tail=2").stdout.count("\n") == 2
    stamped = c.kubectl("logs", "counter", "--tail=1", "--timestamps").stdout
    assert stamped.split(" ", 1)[0].endswith("Z") and " line " in stamped
    assert c.kubectl("logs", "counter", "--limit-bytes=5").stdout == "line "
    f = popen(c, "logs", "-f", "counter", "--tail=1")
    try:
        first = int(f.stdout.readline().split()[1])
        later = [int(f.stdout.readline().split()[1]) for _ in range(3)]
        assert later == [first + 1, first + 2, first + 3]     # new lines arrive as they are written
    finally:
        f.kill()
        f.wait()
    assert c.kubectl("logs", "counter", "-c", "nope", check=False).returncode != 0
    assert c.kubectl("logs", "counter", "--since=1h").stdout.startswith("line 0")
    time.sleep(3)
    recent = c.kubectl("logs", "counter", "--since=1s").stdout.splitlines()
    assert recent and not recent[0].startswith("line 0") and len(recent) <= 10     # a line every 0.2 s
    stamped = c.kubectl("logs", "counter", "--tail=11", "--timestamps").stdout.splitlines()
    first, last = (datetime.datetime.fromisoformat(x.split()[0][:26]) for x in (stamped[0], stamped[-1]))
    assert 1.0 <= (last - first).total_seconds() <= 3.5      # each line has its own time (10 lines, 0.2 s apart)


def test_logs_previous_after_restart(stream_cluster):
    c = stream_cluster
    apply(c, pod("restarts", ["sh", "-c", "echo run at $(date +%s%N); sleep 1; exit 1"]))
    wait_for(lambda: (get_json(c, "pod", "restarts").get("status", {}).get("containerStatuses") or [{}])[0]
             .get("restartCount", 0) >= 1, what="a restart")
    prev = c.kubectl("logs", "restarts", "--previous").stdout
    assert prev.startswith("run at ")
    wait_for(lambda: c.kubectl("logs", "restarts", check=False).stdout.startswith("run at "), what="current log")
    assert c.kubectl("logs", "restarts").stdout != prev
    r = c.kubectl("logs", "counter", "--previous", check=False)
    assert r.returncode != 0 and "previous terminated container" in r.stderr


def test_logs_of_deployment_and_selector_all_containers(stream_cluster):
    c = stream_cluster
    ctrs = [{"name": n, "image": "busybox", "command": ["sh", "-c", f"echo hello from {n}; sleep 600"]}
            for n in ("a", "b")]
    apply(c, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "multi"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "multi"}},
                       "template": {"metadata": {"labels": {"app": "multi"}},
                                    "spec": {"containers": ctrs, "terminationGracePeriodSeconds": 1}}}})
    wait_for(lambda: "hello from b" in c.kubectl("logs", "-l", "app=multi", "--all-containers", check=False).stdout,
             what="logs of both containers")
    out = c.kubectl("logs", "-l", "app=multi", "--all-containers", "--prefix").stdout
    assert "hello from a" in out and "hello from b" in out and "/a]" in out
    assert c.kubectl("logs", "deploy/multi", "-c", "b").stdout == "hello from b\n"
    c.kubectl("delete", "deployment", "multi", "--wait=false")


def test_exec_output_exit_code_and_stdin(stream_cluster):
    c = stream_cluster
    start(c, "shell", ["sleep", "600"], )
    r = c.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; pwd; exit 3", check=False)
    assert r.returncode == 3 and r.stdout.startswith("out\n") and "err" in r.stderr
    assert "command terminated with exit code 3" in r.stderr
    assert c.kubectl("exec", "-i", "shell", "--", "cat", input="hi\nthere\n").stdout == "hi\nthere\n"
    assert c.kubectl("exec", "shell", "--", "sh", "-c", "echo $HOSTNAME").stdout == "shell\n"
    big = c.kubectl("exec", "shell", "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x").stdout
    assert len(big) == 3000000


def test_exec_bad_input(stream_cluster):
    c = stream_cluster
    r = c.kubectl("exec", "shell", "-c", "nope", "--", "ls", check=False)
    assert r.returncode != 0 and "container nope is not valid for pod shell" in r.stderr
    r = c.kubectl("exec", "shell", "--", "/no/such/binary", check=False)
    assert r.returncode != 0 and "no such file" in r.stderr.lower()
    r = c.kubectl("exec", "ghost", "--", "ls", check=False)
    assert r.returncode != 0 and 'pods "ghost" not found' in r.stderr
    apply(c, pod("finished", ["sh", "-c", "echo bye"], restartPolicy="Never"))
    wait_for(lambda: get_json(c, "pod", "finished").get("status", {}).get("phase") == "Succeeded", what="Succeeded")
    r = c.kubectl("exec", "finished", "--", "ls", check=False)
    assert r.returncode != 0 and "completed pod" in r.stderr
    assert c.kubectl("logs", "finished").stdout == "bye\n"      # logs of a terminated container


def test_python_client_exec_tty_and_attach(stream_cluster):
    from kubernetes import client, config
    from kubernetes.stream import stream
    c = stream_cluster
    config.load_kube_config(c.kubeconfig)
    v1 = client.CoreV1Api()
    r = stream(v1.connect_get_namespaced_pod_exec, "shell", "default", command=["sh", "-c", "echo a; exit 4"],
               stderr=True, stdout=True, stdin=False, tty=False, _preload_content=False)
    r.run_forever(timeout=10)
    assert r.read_stdout() == "a\n" and r.returncode == 4
    out = stream(v1.connect_get_namespaced_pod_exec, "shell", "default", command=["tty"],
                 stderr=True, stdout=True, stdin=False, tty=True)
    assert out.startswith("/dev/pts/")
    a = popen(c, "attach", "counter")
    try:
        assert a.stdout.readline().startswith("line ")
    finally:
        a.kill()
        a.wait()


def _http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_kubectl_port_forward_parallel_and_closed_port(stream_cluster):
    c = stream_cluster
    port = free_port()
    start(c, "web", ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],)
    wait_for(lambda: c.kubectl("exec", "web", "--", "python3", "-c",
                               f"import socket; socket.create_connection(('127.0.0.1', {port}))",
                               check=False).returncode == 0, what="http server up")
    local = free_port()
    pf = popen(c, "port-forward", "pod/web", f"{local}:{port}")
    try:
        assert "Forwarding from 127.0.0.1" in pf.stdout.readline()
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            pages = list(ex.map(lambda _: _http_get(local), range(20)))
        assert all(p.startswith(b"HTTP/1.0 200") and b"Directory listing" in p for p in pages)
    finally:
        pf.terminate()
        pf.wait()
    closed, local = free_port(), free_port()
    pf = popen(c, "port-forward", "pod/web", f"{local}:{closed}")
    try:
        pf.stdout.readline()
        _http_get(local)
        err = pf.communicate(timeout=10)[1]
        assert f"failed to connect to localhost:{closed}" in err and "Connection refused" in err
    finally:
        pf.kill()
        pf.wait()


def test_python_client_port_forward(stream_cluster):
    from kubernetes import client, config
    from kubernetes.stream import portforward
    c = stream_cluster
    config.load_kube_config(c.kubeconfig)
    v1 = client.CoreV1Api()
    port = int(get_json(c, "pod", "web")["spec"]["containers"][0]["command"][3])

    def fetch(_):
        pf = portforward(v1.connect_get_namespaced_pod_portforward, "web", "default", ports=str(port))
        s = pf.socket(port)
        s.setblocking(True)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        pf.close()
        return data
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        assert all(p.startswith(b"HTTP/1.0 200") for p in ex.map(fetch, range(20)))
    closed = free_port()
    pf = portforward(v1.connect_get_namespaced_pod_portforward, "web", "default", ports=str(closed))
    s = pf.socket(closed)
    s.setblocking(True)
    assert s.recv(10) == b""
    assert "Connection refused" in pf.error(closed)
    pf.close()


def test_top_nodes_and_pods(stream_cluster):
    c = stream_cluster
    start(c, "burner", ["python3", "-c", "x = bytearray(64 << 20)\nwhile True: pass"])
    time.sleep(1)
    nodes = c.kubectl("top", "nodes").stdout.splitlines()
    assert nodes[0].split()[:2] == ["NAME", "CPU(cores)"] and nodes[1].startswith("stream-node")
    assert int(nodes[1].split()[1].rstrip("m")) > 0
    row = [ln.split() for ln in c.kubectl("top", "pods").stdout.splitlines() if ln.startswith("burner")][0]
    assert int(row[1].rstrip("m")) > 50 and int(row[2].rstrip("Mi")) >= 64
    one = json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner").stdout)
    assert one["kind"] == "PodMetrics" and one["containers"][0]["name"] == "main"
    r = c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/nope", check=False)
    assert r.returncode != 0 and "not found" in r.stderr
    c.kubectl("delete", "pod", "burner", "--wait=false")


def test_dropped_clients_leave_nothing_behind(stream_cluster):
    c = stream_cluster
    marker = "31337.25"
    ex = popen(c, "exec", "shell", "--", "sleep", marker)
    wait_for(lambda: host_processes("sleep", marker), what="exec'd process")
    f = popen(c, "logs", "-f", "shell")
    time.sleep(0.5)
    assert "active streams: 2" in agent_health(c)
    for p in (ex, f):
        p.send_signal(signal.SIGKILL)
        p.wait()
    wait_for(lambda: not host_processes("sleep", marker), what="the exec'd process to be killed")
    wait_for(lambda: "active streams: 0" in agent_health(c), what="no stream left on the agent")


def test_agent_api_refuses_callers_without_the_apiserver_certificate(stream_cluster):
    c = stream_cluster
    port = get_json(c, "node", "stream-node")["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/containerLogs/default/shell/main", context=ctx, timeout=5)
        raise AssertionError("the agent answered a caller without a client certificate")
    except (ssl.SSLError, ConnectionError, urllib.error.URLError):
        pass


KUBECTL_120 = "/opt/kubectl120/kubectl"     # scripts/ci-deps-kubectl120.sh


@pytest.mark.skipif(not os.path.exists(KUBECTL_120), reason="kubectl 1.20 not installed (scripts/ci-deps-kubectl120.sh)")
def test_kubectl_120_exec_over_spdy(stream_cluster):
    c = stream_cluster
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home120"))

    def k120(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL_120, *args], input=input, capture_output=True, text=True, timeout=30, env=env)
    start(c, "logs120", ["sh", "-c", "echo hello from 1.20; sleep 600"])
    wait_for(lambda: k120("logs", "logs120").stdout == "hello from 1.20\n", what="kubectl 1.20 logs")
    r = k120("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3 and r.stdout == "out\n" and "err" in r.stderr
    assert k120("exec", "-i", "shell", "--", "cat", input="piped\n").stdout == "piped\n"
    r = k120("exec", "shell", "-c", "nope", "--", "ls")
    assert r.returncode == 1 and "container nope is not valid for pod shell" in r.stderr
    marker = "31338.25"
    p = subprocess.Popen([KUBECTL_120, "exec", "shell", "--", "sleep", marker], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: host_processes("sleep", marker), what="exec'd process")
    p.kill()
    p.wait()
    wait_for(lambda: not host_processes("sleep", marker), what="the exec'd process to be killed")


@pytest.mark.skipif(not os.path.exists(KUBECTL_120), reason="kubectl 1.20 not installed (scripts/ci-deps-kubectl120.sh)")
def test_kubectl_120_port_forward_over_spdy(stream_cluster):
    c = stream_cluster
    port = int(get_json(c, "pod", "web")["spec"]["containers"][0]["command"][3])
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home120"))
    local = free_port()
    pf = subprocess.Popen([KUBECTL_120, "port-forward", "pod/web", f"{local}:{port}"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from 127.0.0.1" in pf.stdout.readline()
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            assert all(p.startswith(b"HTTP/1.0 200") for p in ex.map(lambda _: _http_get(local), range(20)))
    finally:
        pf.terminate()
        pf.wait()
