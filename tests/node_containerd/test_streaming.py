"""logs, exec, attach, port-forward and top on the containerd runtime, through the apiserver and the
agent's node API, with the real kubectl (1.37 and 1.20) and the Python client."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import fcntl
import json
import os
import pty
import queue
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time
import urllib.request

import pytest

from ketch.node import images
from tests.conftest import KUBECTL, free_port
from tests.node.conftest import apply, get_json, running_ready, wait_for

from .conftest import NODE, container_status

IMAGE = images.TEST_IMAGE
KUBECTL_120 = "/opt/kubectl120/kubectl"     # scripts/ci-deps-kubectl120.sh
STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z ")


def pod(name: str, command: list[str], **spec) -> dict:
    ctr = {"name": "main", "image": IMAGE, "command": command, **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [ctr], "terminationGracePeriodSeconds": 1, **spec}}


def start(c, name: str, command: list[str], **spec) -> dict:
    apply(c, pod(name, command, **spec))
    return wait_for(lambda: running_ready(c, name), timeout=60, what=f"{name} Running")


def popen(c, *args: str, kubectl: str = KUBECTL) -> subprocess.Popen:
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home"))
    return subprocess.Popen([kubectl, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def popen_tty(c, *args: str) -> tuple[subprocess.Popen, int]:
    """kubectl on a terminal of its own (a pty), so that `-t` really asks for one; (process, pty master)."""
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home"))
    master, slave = pty.openpty()
    p = subprocess.Popen([KUBECTL, *args], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    return p, master


def agent_health(c) -> str:
    """The agent's /healthz, called with the apiserver's client certificate (as only the apiserver may)."""
    port = get_json(c, "node", NODE)["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    pki = c.data_dir / "pki"
    ctx.load_cert_chain(pki / "kubelet-client.crt", pki / "kubelet-client.key")
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=10) as r:
        return r.read().decode()


def host_processes(*argv: str) -> list[int]:
    """Processes (the containers' ones included: they are host processes too) whose command line is
    exactly `argv` (not kubectl's, whose command line holds it too)."""
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


def to_container_stdout(c, name: str, script: str) -> None:
    """Make the container's main process print something: write to its stdout from an exec."""
    c.kubectl("exec", name, "--", "sh", "-c", f"({script}) > /proc/1/fd/1")


@pytest.fixture(scope="module")
def kc(ctd):
    """The ctd cluster with its agent trusted by the apiserver: `ketch up --no-agent` plus a separate
    `ketch agent --kubeconfig` share no CA, so give both the cluster CA as `ketch up` does for its own
    agent (the apiserver's client certificate and the agent's serving one), then restart the agent."""
    from ketch.cli.cmd_agent import _issue_serving_cert
    c, node = ctd
    node.stop()
    _issue_serving_cert(str(c.data_dir), str(node.data_dir))
    node.start()
    return c


@pytest.fixture(scope="module")
def shell(kc):
    c = kc
    start(c, "shell", ["sh", "-c", "echo hello; sleep 0.2; echo oops >&2; exec sleep 3600"],
          container={"env": [{"name": "GREETING", "value": "from the pod spec"}]})
    return c


def test_logs_text_only_timestamps_tail_limit_since(shell):
    c = shell
    wait_for(lambda: c.kubectl("logs", "shell").stdout == "hello\noops\n", what="the first lines")
    long = "x" * 40000          # containerd splits lines over 16 KiB into partial (P) records
    to_container_stdout(c, "shell", "printf 'no newline yet'; sleep 0.3; echo ' now'; "
                                    "head -c 40000 /dev/zero | tr '\\0' x; echo")
    text = wait_for(lambda: (t := c.kubectl("logs", "shell").stdout).count("\n") == 4 and t,
                    what="four lines")
    assert text == f"hello\noops\nno newline yet now\n{long}\n", text[:200]
    stamped = c.kubectl("logs", "shell", "--timestamps").stdout.encode().splitlines(keepends=True)
    assert len(stamped) == 4 and all(STAMP.match(line) for line in stamped)
    assert [STAMP.sub(b"", line) for line in stamped] == [b"hello\n", b"oops\n", b"no newline yet now\n",
                                                          long.encode() + b"\n"]
    assert c.kubectl("logs", "shell", "--tail=2").stdout == f"no newline yet now\n{long}\n"
    assert c.kubectl("logs", "shell", "--tail=0").stdout == ""
    assert c.kubectl("logs", "shell", "--limit-bytes=8").stdout == "hello\noo"
    assert c.kubectl("logs", "shell", "--since=1h").stdout == text
    # --since-time (kubectl sends whole seconds) against the records' own times, from containerd
    second = STAMP.match(stamped[2]).group(0)[:19].decode() + "Z"
    expect = b"".join(STAMP.sub(b"", line) for line in stamped if line[:19].decode() + "Z" >= second)
    assert c.kubectl("logs", "shell", f"--since-time={second}").stdout.encode() == expect
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert c.kubectl("logs", "shell", f"--since-time={future}").stdout == ""


def test_logs_follow_sees_new_lines(shell):
    c = shell
    f = popen(c, "logs", "-f", "--tail=1", "shell")
    try:
        first = f.stdout.readline()
        assert first and not first.startswith("hello")
        to_container_stdout(c, "shell", "echo fresh line; sleep 0.2; echo to stderr > /proc/1/fd/2")
        assert f.stdout.readline() == "fresh line\n"
        assert f.stdout.readline() == "to stderr\n"
    finally:
        f.kill()
        f.wait()


def test_logs_across_rotation(kc, ctd):
    c, node = kc, ctd[1]
    p = start(c, "chatty", ["sh", "-c", "echo first; exec sleep 3600"])
    f = popen(c, "logs", "-f", "chatty")
    got: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [got.put(line) for line in f.stdout], daemon=True).start()
    try:
        assert got.get(timeout=60) == "first\n"
        log_dir = node.data_dir / "pods" / f"default_chatty_{p['metadata']['uid']}" / "main"
        inode = (log_dir / "0.log").stat().st_ino
        # 11000 lines of 1000 bytes: past the agent's 10 MiB rotation size
        to_container_stdout(c, "chatty", "head -c 10989000 /dev/zero | tr '\\0' x | fold -w 999; echo")
        # rotated, and the path reopened (between the rename and the reopen 0.log does not exist)
        wait_for(lambda: (log_dir / "0.log.1").exists() and (log_dir / "0.log").exists(), timeout=60,
                 interval=0.5, what="the log rotated")
        # renamed, and containerd reopened the path (ReopenContainerLog), as the kubelet rotates
        assert (log_dir / "0.log.1").stat().st_ino == inode != (log_dir / "0.log").stat().st_ino
        to_container_stdout(c, "chatty", "echo after rotation")

        def followed_on():
            with contextlib.suppress(queue.Empty):
                while True:
                    if got.get(timeout=1) == "after rotation\n":
                        return True
            return False
        wait_for(followed_on, timeout=60, interval=0, what="the follower to see the line after the rotation")
    finally:
        f.kill()
        f.wait()
    text = c.kubectl("logs", "chatty").stdout      # the rotated file and the current one, in order
    lines = text.splitlines()
    assert len(lines) == 11002 and lines[0] == "first" and lines[-1] == "after rotation"
    assert set(lines[1:-1]) == {"x" * 999}
    assert c.kubectl("logs", "chatty", "--tail=2").stdout == "x" * 999 + "\nafter rotation\n"
    c.kubectl("delete", "pod", "chatty", "--wait=false")


def test_logs_previous_after_restart(kc):
    c = kc
    script = "if [ -f /data/ran ]; then echo second run; exec sleep 3600; fi; touch /data/ran; echo first run; exit 1"
    m = pod("again", ["sh", "-c", script], volumes=[{"name": "data", "emptyDir": {}}],
            container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]})
    apply(c, m)
    wait_for(lambda: (container_status(c, "again").get("restartCount") or 0) >= 1 and running_ready(c, "again"),
             timeout=60, what="a restart")
    assert c.kubectl("logs", "again", "--previous").stdout == "first run\n"
    wait_for(lambda: c.kubectl("logs", "again").stdout == "second run\n", what="the current attempt's log")
    r = c.kubectl("logs", "shell", "--previous", check=False)
    assert r.returncode != 0 and "previous terminated container" in r.stderr
    c.kubectl("delete", "pod", "again", "--wait=false")


def test_exec_runs_inside_the_container(shell):
    c = shell
    r = c.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3 and r.stdout == "out\n" and "err" in r.stderr
    assert "command terminated with exit code 3" in r.stderr
    assert c.kubectl("exec", "-i", "shell", "--", "cat", input="hi\nthere\n").stdout == "hi\nthere\n"
    # the container's PID namespace (PID 1 is its sleep), hostname, filesystem and environment
    assert c.kubectl("exec", "shell", "--", "cat", "/proc/1/cmdline").stdout == "sleep\x003600\x00"
    assert c.kubectl("exec", "shell", "--", "hostname").stdout == "shell\n"
    assert c.kubectl("exec", "shell", "--", "cat", "/www/index.html").stdout == "hello from ketch\n"
    assert c.kubectl("exec", "shell", "--", "sh", "-c", "echo $GREETING").stdout == "from the pod spec\n"
    big = c.kubectl("exec", "shell", "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x").stdout
    assert len(big) == 3000000 and set(big) == {"x"}
    r = c.kubectl("exec", "shell", "--", "sh", "-c", "kill -9 $$", check=False)
    assert r.returncode == 137


def test_python_client_exec_tty_resize_and_stdin(shell):
    from kubernetes import client, config
    from kubernetes.stream import stream
    c = shell
    config.load_kube_config(c.kubeconfig)
    v1 = client.CoreV1Api()
    r = stream(v1.connect_get_namespaced_pod_exec, "shell", "default", command=["sh", "-c", "echo a; exit 4"],
               stderr=True, stdout=True, stdin=False, tty=False, _preload_content=False)
    r.run_forever(timeout=30)
    assert r.read_stdout() == "a\n" and r.returncode == 4
    out = stream(v1.connect_get_namespaced_pod_exec, "shell", "default", command=["tty"],
                 stderr=True, stdout=True, stdin=False, tty=True)
    assert out.startswith("/dev/pts/")
    sh = stream(v1.connect_get_namespaced_pod_exec, "shell", "default", command=["sh"],
                stderr=True, stdout=True, stdin=True, tty=True, _preload_content=False)
    try:
        sh.write_channel(4, json.dumps({"Width": 123, "Height": 45}))
        seen = ""

        def sized():
            nonlocal seen
            sh.write_stdin("stty size\n")
            sh.update(timeout=2)
            seen += sh.read_stdout() if sh.peek_stdout() else ""
            return "45 123" in seen
        try:
            wait_for(sized, timeout=30, interval=0.2, what="the resized terminal")
        except AssertionError as e:
            raise AssertionError(f"{e}; the terminal showed {seen[-300:]!r}") from None
        sh.write_stdin("exit 5\n")
        sh.run_forever(timeout=30)
        assert sh.returncode == 5
    finally:
        sh.close()


def test_attach_streams_the_containers_output(kc):
    c = kc
    start(c, "counter", ["sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; echo err $i >&2; sleep 0.2; done"])
    a = popen(c, "attach", "counter")
    try:
        assert re.fullmatch(r"line \d+\n", a.stdout.readline())       # the CRI record prefix stripped
        errs = [a.stderr.readline() for _ in range(3)]   # kubectl's own notice comes first
        assert any(re.fullmatch(r"err \d+\n", e) for e in errs), errs           # stderr records on stderr
    finally:
        a.kill()
        a.wait()
    c.kubectl("delete", "pod", "counter", "--wait=false")


def test_attach_with_stdin(kc):
    c = kc
    start(c, "reader", ["sh", "-c", "echo ready; while read l; do echo got $l; done"], container={"stdin": True})
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home"))
    a = subprocess.Popen([KUBECTL, "attach", "-i", "reader"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    try:
        for word in ("hello", "again"):
            a.stdin.write(word + "\n")
            a.stdin.flush()
            assert a.stdout.readline() == f"got {word}\n"     # through the container's stdin
    finally:
        a.kill()
        a.wait()
    wait_for(lambda: "active streams: 0" in agent_health(c), timeout=60, what="the dropped attach ended on the agent")
    # without stdinOnce, the end of the input ends the attach and leaves the container's stdin open
    # (containerd then stops the attach's output at once, so the answer may or may not come back)
    a = subprocess.Popen([KUBECTL, "attach", "-i", "reader"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    try:
        out, err = a.communicate("bye\n", timeout=90)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert a.returncode == 0 and out in ("", "got bye\n"), (out, err)
    wait_for(lambda: "got bye\n" in c.kubectl("logs", "reader").stdout, what="the input in the container")
    st = container_status(c, "reader")
    assert "running" in st["state"] and st["restartCount"] == 0, st
    # the Python client (v4 WebSocket)
    from kubernetes import client, config
    from kubernetes.stream import stream
    config.load_kube_config(c.kubeconfig)
    v1 = client.CoreV1Api()
    py = stream(v1.connect_get_namespaced_pod_attach, "reader", "default", stdin=True, stdout=True, stderr=True,
                tty=False, _preload_content=False)
    try:
        py.write_stdin("from python\n")
        seen = ""

        def answered():
            nonlocal seen
            py.update(timeout=1)
            seen += py.read_stdout() if py.peek_stdout() else ""
            return "got from python\n" in seen
        wait_for(answered, timeout=30, interval=0, what="the Python client's attach")
    finally:
        py.close()
    expect = "ready\ngot hello\ngot again\ngot bye\ngot from python\n"
    if os.path.exists(KUBECTL_120):     # SPDY, translated by the apiserver
        env120 = dict(env, HOME=str(c.data_dir / "home120"))
        a = subprocess.Popen([KUBECTL_120, "attach", "-i", "reader"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env120, text=True)
        try:
            a.stdin.write("from 1.20\n")
            a.stdin.flush()
            assert a.stdout.readline() == "got from 1.20\n"
        finally:
            a.kill()
            a.wait()
        expect += "got from 1.20\n"
    assert c.kubectl("logs", "reader").stdout == expect
    c.kubectl("delete", "pod", "reader", "--wait=false")


@pytest.mark.parametrize("kubectl", [KUBECTL, KUBECTL_120], ids=["kubectl-1.37", "kubectl-1.20"])
def test_attach_passes_the_stdin_close_on(kc, kubectl):
    """`echo hi | kubectl attach -i` to a `cat` with stdinOnce: `hi` comes back, the end of the input
    closes the container's stdin (a v5 close from 1.37, a SPDY FIN from 1.20 that the apiserver
    turns into one), `cat` exits 0 and attach returns, as with a real kubelet."""
    c = kc
    name = "catonce" if kubectl == KUBECTL else "catonce120"
    start(c, name, ["cat"], container={"stdin": True, "stdinOnce": True}, restartPolicy="Never")
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / ("home" if kubectl == KUBECTL else "home120")))
    a = subprocess.Popen([kubectl, "attach", "-i", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    data = "hi\n"
    try:
        out, err = a.communicate(data, timeout=90)     # ends only if the container's stdin is closed
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert out == data, (len(out), out[:100], err)
    assert a.returncode == 0, err

    def terminated():
        st = container_status(c, name)
        return st if (st.get("state") or {}).get("terminated") else None
    st = wait_for(terminated, timeout=60, what=f"{name}'s cat terminated")
    assert st["state"]["terminated"]["exitCode"] == 0 and st["restartCount"] == 0, st
    assert wait_for(lambda: get_json(c, "pod", name)["status"].get("phase") == "Succeeded", timeout=60,
                    what=f"{name} Succeeded")
    assert c.kubectl("logs", name).stdout == data
    c.kubectl("delete", "pod", name, "--wait=false")


def test_attach_large_output(kc):
    """A few MB of output through the attach (no flow control to stall on), all of it. (The container
    stays up: containerd 1.6 can lose the last ~100 KB of a container that exits right after a burst of
    output, from its log file too, attach or not; see docs/containerd.md.)"""
    c = kc
    start(c, "seqonce", ["sh", "-c", "read x; seq 1 300000; exec sleep 3600"],
          container={"stdin": True, "stdinOnce": True})
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home"))
    a = subprocess.Popen([KUBECTL, "attach", "-i", "seqonce"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    got: list[str] = []

    def read() -> None:
        for line in a.stdout:
            got.append(line)
            if line == "300000\n":
                return
    try:
        a.stdin.write("go\n")
        a.stdin.close()
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(120)
    finally:
        a.kill()
        a.wait()
    assert "".join(got) == "".join(f"{i}\n" for i in range(1, 300001)), (len(got), got[-3:])
    c.kubectl("delete", "pod", "seqonce", "--wait=false")


def test_attach_tty_and_resize(kc):
    """`kubectl attach -it` to a shell on a terminal: kubectl's terminal size reaches the container's
    terminal (at the start and after a SIGWINCH), and `exit` ends the container and the attach."""
    c = kc
    start(c, "ttyshell", ["sh"], container={"stdin": True, "stdinOnce": True, "tty": True}, restartPolicy="Never")
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home"))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    a = subprocess.Popen([KUBECTL, "attach", "-i", "-t", "ttyshell"], stdin=slave, stdout=slave, stderr=slave,
                         env=env, start_new_session=True)
    os.close(slave)
    try:
        seen = b""

        def shows(text: bytes, send: bytes = b"") -> bool:
            nonlocal seen
            if send:
                os.write(master, send)
            while select.select([master], [], [], 0.5)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            return text in seen
        wait_for(lambda: shows(b"33 101", b"stty size\n"), timeout=60, interval=0.5, what="the first size")
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        a.send_signal(signal.SIGWINCH)        # (its terminal is not its controlling one: tell it)
        wait_for(lambda: shows(b"40 120", b"stty size\n"), timeout=60, interval=0.5, what="the new size")
        os.write(master, b"exit\n")
        assert a.wait(60) == 0
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
        os.close(master)
    st = wait_for(lambda: (container_status(c, "ttyshell").get("state") or {}).get("terminated"), timeout=60,
                  what="the shell terminated")
    assert st["exitCode"] == 0, st
    c.kubectl("delete", "pod", "ttyshell", "--wait=false")


@pytest.mark.skipif(not os.path.exists(KUBECTL_120), reason="kubectl 1.20 not installed (scripts/ci-deps-kubectl120.sh)")
def test_kubectl_120_logs_and_exec_over_spdy(shell):
    c = shell
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, HOME=str(c.data_dir / "home120"))

    def k120(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL_120, *args], input=input, capture_output=True, text=True, timeout=60, env=env)
    assert k120("logs", "shell", "--tail=-1").stdout.startswith("hello\noops\n")
    r = k120("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3 and r.stdout == "out\n" and "err" in r.stderr
    assert k120("exec", "-i", "shell", "--", "cat", input="piped\n").stdout == "piped\n"
    marker = "31348.25"
    p = subprocess.Popen([KUBECTL_120, "exec", "shell", "--", "sleep", marker], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: host_processes("sleep", marker), what="exec'd process")
    p.kill()
    p.wait()
    wait_for(lambda: not host_processes("sleep", marker), timeout=30, what="the exec'd process to be killed")


def _http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_port_forward_to_httpd_in_the_pod(kc):
    c = kc
    # one httpd on the pod IP, one on the pod's loopback only (reachable from inside its network namespace)
    start(c, "web", ["sh", "-c", "httpd -p 127.0.0.1:8081 -h /www && exec httpd -f -p 8080 -h /www"],
          container={"readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}})
    for port in (8080, 8081):
        local = free_port()
        pf = popen(c, "port-forward", "pod/web", f"{local}:{port}")
        try:
            assert "Forwarding from 127.0.0.1" in pf.stdout.readline()
            with concurrent.futures.ThreadPoolExecutor(20) as ex:
                pages = list(ex.map(_http_get, [local] * 20))
            assert all(p.startswith(b"HTTP/1.1 200 OK") and p.endswith(b"hello from ketch\n") for p in pages), \
                pages[:2]
        finally:
            pf.terminate()
            pf.wait()
    local = free_port()
    pf = popen(c, "port-forward", "pod/web", f"{local}:8082")      # nothing listens there
    try:
        pf.stdout.readline()
        _http_get(local)
        err = pf.communicate(timeout=30)[1]
        assert "failed to connect to localhost:8082" in err and "Connection refused" in err
    finally:
        pf.kill()
        pf.wait()


def test_python_client_port_forward(kc):
    from kubernetes import client, config
    from kubernetes.stream import portforward
    c = kc
    config.load_kube_config(c.kubeconfig)
    v1 = client.CoreV1Api()

    def fetch(port):
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
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        assert all(p.endswith(b"hello from ketch\n") for p in ex.map(fetch, [8080, 8081] * 5))
    pf = portforward(v1.connect_get_namespaced_pod_portforward, "web", "default", ports="8082")
    s = pf.socket(8082)
    s.setblocking(True)
    assert s.recv(10) == b""
    assert "Connection refused" in pf.error(8082)
    pf.close()


def test_top_reads_the_container_cgroups(kc):
    c = kc
    start(c, "burner", ["sh", "-c", "while :; do :; done"])
    time.sleep(1)     # a window with some CPU use in it
    nodes = c.kubectl("top", "nodes").stdout.splitlines()
    assert nodes[0].split()[:2] == ["NAME", "CPU(cores)"] and nodes[1].startswith(NODE)

    def burning():
        rows = [ln.split() for ln in c.kubectl("top", "pods").stdout.splitlines() if ln.startswith("burner")]
        return rows and int(rows[0][1].rstrip("m")) > 100 and rows[0]
    row = wait_for(burning, timeout=30, interval=1, what="the burner's CPU in kubectl top")
    assert row[2].endswith("Mi")
    one = json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner").stdout)
    assert one["kind"] == "PodMetrics" and one["containers"][0]["name"] == "main"
    assert int(one["containers"][0]["usage"]["memory"].rstrip("Ki")) > 0
    c.kubectl("delete", "pod", "burner", "--wait=false")


def test_bad_input(shell):
    c = shell
    r = c.kubectl("exec", "shell", "-c", "nope", "--", "ls", check=False)
    assert r.returncode != 0 and "container nope is not valid for pod shell" in r.stderr
    r = c.kubectl("exec", "shell", "--", "/no/such/binary", check=False)
    assert r.returncode != 0 and "no such file" in r.stderr.lower() and "ctr:" not in r.stderr
    r = c.kubectl("exec", "shell", "--", "nosuchcmd", check=False)
    assert r.returncode != 0 and ('exec: "nosuchcmd": executable file not found in $PATH' in r.stderr     # runc
                                  or "executable file `nosuchcmd` not found in $PATH" in r.stderr)     # crun
    assert "Internal error occurred" in r.stderr
    apply(c, pod("finished", ["sh", "-c", "echo bye"], restartPolicy="Never"))
    wait_for(lambda: get_json(c, "pod", "finished").get("status", {}).get("phase") == "Succeeded",
             timeout=60, what="Succeeded")
    r = c.kubectl("exec", "finished", "--", "ls", check=False)
    assert r.returncode != 0 and "completed pod" in r.stderr
    assert c.kubectl("logs", "finished").stdout == "bye\n"      # logs of a terminated container
    r = c.kubectl("attach", "finished", check=False)
    assert r.returncode != 0 and "completed pod" in r.stderr
    c.kubectl("delete", "pod", "finished", "--wait=false")


def test_dropped_clients_leave_nothing_behind(shell):
    c = shell
    marker, child = "31347.25", "31347.24"
    ex = popen(c, "exec", "shell", "--", "sh", "-c", f"sleep {child} & sleep {marker}")
    wait_for(lambda: host_processes("sleep", marker) and host_processes("sleep", child), what="exec'd processes")
    f = popen(c, "logs", "-f", "shell")
    wait_for(lambda: "active streams: 2" in agent_health(c), what="two streams on the agent")
    for p in (ex, f):
        p.send_signal(signal.SIGKILL)
        p.wait()
    # the exec'd shell, its child and its background child (all in the exec's session)
    wait_for(lambda: not host_processes("sleep", marker) and not host_processes("sleep", child), timeout=60,
             what="the exec'd processes to be killed")
    wait_for(lambda: "active streams: 0" in agent_health(c), timeout=60, what="no stream left on the agent")
    # tty and stdin: the same (kubectl on a terminal, so the exec has one in the container too)
    marker = "31347.26"
    ex, master = popen_tty(c, "exec", "-i", "-t", "shell", "--", "sleep", marker)
    try:
        wait_for(lambda: host_processes("sleep", marker), what="exec'd process")
        pid = host_processes("sleep", marker)[0]
        assert os.readlink(f"/proc/{pid}/fd/0").startswith("/dev/pts/")      # its terminal in the container
        ex.send_signal(signal.SIGKILL)
        ex.wait()
    finally:
        os.close(master)
    wait_for(lambda: not host_processes("sleep", marker), timeout=60, what="the exec'd process to be killed")
    wait_for(lambda: "active streams: 0" in agent_health(c), timeout=60, what="no stream left on the agent")


def test_exec_client_dropped_while_starting_leaves_nothing(shell):
    """A client that goes while its exec is still starting: the agent kills ctr before ctr has opened the
    exec's output FIFOs, which containerd's shim waits on (30 s) before it records the process's PID.
    Dropped at several points of the start, plain and on a terminal: once the agent has ended the
    stream, no process of the exec is left, and none can start later (the exec is deleted)."""
    c = shell
    for i, delay in enumerate((0, 0.01, 0.02, 0.03, 0.05, 0.07)):
        for tty in (False, True):
            marker = f"3135{i}.{27 + tty}"
            args = ("exec", *(["-i", "-t"] if tty else []), "shell", "--", "sleep", marker)
            ex, master = popen_tty(c, *args) if tty else (popen(c, *args), None)
            try:
                wait_for(lambda: "active streams: 1" in agent_health(c), interval=0, what="the exec on the agent")
                time.sleep(delay)       # to vary where in the start the client goes: not a timed assertion
                ex.send_signal(signal.SIGKILL)
                ex.wait()
            finally:
                if master is not None:
                    os.close(master)
            wait_for(lambda: "active streams: 0" in agent_health(c), timeout=90, what="no stream left on the agent")
            assert not host_processes("sleep", marker), f"the exec'd process outlived its client (tty={tty})"


def test_cri_record_rendering():
    """The node API's CRI log helpers on their own: content only, record times, partial lines."""
    from ketch.node.containerd import logs
    data = (b"2016-10-06T00:17:09.669794202Z stdout F hello\n"
            b"2016-10-06T00:17:10.1Z stderr P par\n"
            b"2016-10-06T00:17:10.2Z stderr P ti\n"
            b"2016-10-06T00:17:10.3Z stdout F al\n"
            b"2016-10-06T00:17:11Z stdout F \n")
    assert logs.render_bytes(data, False) == (b"hello\npartial\n\n", True)
    assert logs.render_bytes(data, True)[0] == (b"2016-10-06T00:17:09.669794202Z hello\n"
                                               b"2016-10-06T00:17:10.1Z partial\n2016-10-06T00:17:11Z \n")
    assert logs.render_bytes(data.splitlines(keepends=True)[1], True) == (b"2016-10-06T00:17:10.1Z par", False)
    assert logs.render_bytes(b"2016-10-06T00:17:10.3Z stdout F al\n", True, False) == (b"al\n", True)
    assert logs.select_lines(data, None, 2) == b"".join(data.splitlines(keepends=True)[1:])   # partials kept
    assert logs.select_lines(data, None, 0) == b""
    since = logs.line_time(b"2016-10-06T00:17:10.3Z")
    assert logs.render_bytes(logs.select_lines(data, since, None), False)[0] == b"al\n\n"
