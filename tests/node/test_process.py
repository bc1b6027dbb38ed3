"""The agent with the `process` runtime: containers are host processes (no isolation)."""

from __future__ import annotations

import base64
import signal
import subprocess
import time

from tests.conftest import BIN, free_port, start_cluster

from .conftest import apply, get_json, pod_condition, running_ready, wait_for


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for init to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pod(name: str, command: list[str], **spec) -> dict:
    ctr = {"name": name, "image": "busybox", "command": command, **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [ctr], "terminationGracePeriodSeconds": 5, **spec}}


def status(c, name: str) -> dict:
    return get_json(c, "pod", name).get("status") or {}


def container_status(c, name: str) -> dict:
    return (status(c, name).get("containerStatuses") or [{}])[0]


def test_shell_command_runs_and_is_ready(process_cluster):
    c = process_cluster
    apply(c, pod("shell", ["sh", "-c", "echo started; sleep 600"]))
    p = wait_for(lambda: running_ready(c, "shell"), what="Running and Ready")
    st = p["status"]
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["containerID"].startswith("process://")
    assert st["podIP"] and st["hostIP"] and pod_condition(p, "ContainersReady") == "True"
    node = get_json(c, "node", "proc-node")
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("process://")
    assert "1/1" in c.kubectl("get", "pod", "shell").stdout


def test_no_command_is_a_config_error(process_cluster):
    c = process_cluster
    apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nocmd"},
              "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    w = wait_for(lambda: container_status(c, "nocmd").get("state", {}).get("waiting", {}).get("message"),
                 what="waiting message")
    assert container_status(c, "nocmd")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    assert "command" in w
    c.kubectl("delete", "pod", "nocmd", "--wait=false")


def test_never_restart_exit_zero_succeeds(process_cluster):
    c = process_cluster
    apply(c, pod("once", ["sh", "-c", "exit 0"], restartPolicy="Never"))
    wait_for(lambda: status(c, "once").get("phase") == "Succeeded", what="Succeeded")
    cs = container_status(c, "once")
    assert cs["state"]["terminated"]["reason"] == "Completed" and cs["state"]["terminated"]["exitCode"] == 0
    assert "Completed" in c.kubectl("get", "pod", "once").stdout
    apply(c, pod("fails", ["sh", "-c", "exit 7"], restartPolicy="Never"))
    wait_for(lambda: status(c, "fails").get("phase") == "Failed", what="Failed")
    assert container_status(c, "fails")["state"]["terminated"]["exitCode"] == 7


def test_crash_loop_back_off_grows(process_cluster):
    """The cluster runs with --crash-backoff 1: delays 1 s, 2 s, 4 s (10 s, 20 s, 40 s by default)."""
    c = process_cluster
    apply(c, pod("crash", ["sh", "-c", "echo boom; exit 3"]))
    messages = set()

    def seen_growth():
        cs = container_status(c, "crash")
        w = cs.get("state", {}).get("waiting") or {}
        if w.get("reason") == "CrashLoopBackOff":
            messages.add(w["message"].split(" restarting")[0])
        return {"back-off 1s", "back-off 2s", "back-off 4s"} <= messages and cs
    cs = wait_for(seen_growth, timeout=25, interval=0.1, what="growing back-off")
    assert cs["restartCount"] >= 3
    assert cs["lastState"]["terminated"]["exitCode"] == 3 and cs["lastState"]["terminated"]["reason"] == "Error"
    reasons = {e["reason"] for e in get_json(c, "events")["items"] if e["involvedObject"]["name"] == "crash"}
    assert {"Started", "BackOff"} <= reasons, reasons
    c.kubectl("delete", "pod", "crash", "--wait=false")


def test_readiness_probe_drives_ready(process_cluster, tmp_path):
    c = process_cluster
    flag = tmp_path / "ready"
    apply(c, pod("unready", ["sleep", "600"], container={"readinessProbe": {
        "exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1, "failureThreshold": 1}}))
    wait_for(lambda: status(c, "unready").get("phase") == "Running", what="Running")
    time.sleep(2.5)
    p = get_json(c, "pod", "unready")
    assert pod_condition(p, "Ready") == "False" and pod_condition(p, "ContainersReady") == "False"
    assert not p["status"]["containerStatuses"][0]["ready"]
    flag.write_text("ok")
    wait_for(lambda: running_ready(c, "unready"), timeout=10, what="Ready after the probe passes")
    flag.unlink()
    wait_for(lambda: pod_condition(get_json(c, "pod", "unready"), "Ready") == "False", timeout=10,
             what="Ready=False again")
    # httpGet and tcpSocket probes against a real server process
    port = free_port()
    apply(c, pod("web", ["python3", "-m", "http.server", str(port), "--bind", "0.0.0.0"], container={
        "readinessProbe": {"httpGet": {"path": "/", "port": port}, "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "initialDelaySeconds": 2}}))
    wait_for(lambda: running_ready(c, "web"), timeout=15, what="web Ready via httpGet")
    time.sleep(2.5)
    assert container_status(c, "web")["restartCount"] == 0
    c.kubectl("delete", "pod", "unready", "web", "--wait=false")


def test_failing_liveness_probe_restarts(process_cluster):
    c = process_cluster
    apply(c, pod("sick", ["sleep", "600"], terminationGracePeriodSeconds=1, container={"livenessProbe": {
        "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}}))
    cs = wait_for(lambda: (container_status(c, "sick").get("restartCount") or 0) >= 1 and container_status(c, "sick"),
                  timeout=15, what="a restart")
    assert cs["lastState"]["terminated"]["exitCode"] in (137, 143)
    c.kubectl("delete", "pod", "sick", "--wait=false")


def test_configmap_and_secret_env(process_cluster, tmp_path):
    c = process_cluster
    apply(c, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
              "data": {"greeting": "hello", "COLOR": "blue"}})
    apply(c, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
              "data": {"password": base64.b64encode(b"s3cret").decode()}})
    out = tmp_path / "env.txt"
    apply(c, pod("envs", ["sh", "-c", f'echo "$GREETING $PASSWORD $COLOR $MY_POD $MY_NS $ALIAS" > {out}; sleep 600'],
                 container={"envFrom": [{"configMapRef": {"name": "cfg"}}], "env": [
                     {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                     {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                     {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                     {"name": "ALIAS", "value": "$(GREETING)-x"}]}))
    wait_for(lambda: running_ready(c, "envs"), what="Running")
    wait_for(lambda: out.exists() and out.read_text().strip(), what="env written")
    assert out.read_text().split() == ["hello", "s3cret", "blue", "envs", "default", "hello-x"]
    apply(c, pod("missing", ["sleep", "60"], container={"env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}))
    w = wait_for(lambda: container_status(c, "missing").get("state", {}).get("waiting", {}).get("message"),
                 what="config error")
    assert 'configmap "nope" not found' in w
    c.kubectl("delete", "pod", "envs", "missing", "--wait=false")


def test_delete_honours_grace_period(process_cluster, tmp_path):
    c = process_cluster
    log = tmp_path / "term.log"
    apply(c, pod("stubborn", ["sh", "-c", f'trap "echo TERM >> {log}" TERM; echo $$$$ > {tmp_path}/pid; '
                              "while true; do sleep 0.1; done"], terminationGracePeriodSeconds=2))
    wait_for(lambda: running_ready(c, "stubborn"), what="Running")
    pid = int(wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip(), what="pid"))
    t0 = time.time()
    c.kubectl("delete", "pod", "stubborn", "--timeout=20s")
    took = time.time() - t0
    assert 1.8 <= took < 20, took   # waited for the grace period, then killed (not left running)
    assert "TERM" in log.read_text()                 # SIGTERM first ...
    assert not alive(pid)         # ... then SIGKILL
    apply(c, pod("polite", ["sleep", "600"], terminationGracePeriodSeconds=30))
    wait_for(lambda: running_ready(c, "polite"), what="Running")
    t0 = time.time()
    c.kubectl("delete", "pod", "polite", "--timeout=20s")
    assert time.time() - t0 < 3


def _agent(c, tmp_path, log_name: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ketch"), "agent", "--kubeconfig", c.kubeconfig, "--runtime", "process",
                             "--node-name", "restart-node", "--data-dir", str(tmp_path / "agent"), "--no-proxy"],
                            stdout=open(tmp_path / log_name, "wb"), stderr=subprocess.STDOUT)


def test_agent_restart_readopts_and_cleans_orphans(tmp_path):
    c = start_cluster(tmp_path / "cluster", extra=["--no-agent"])
    agent = _agent(c, tmp_path, "agent1.log")
    try:
        apply(c, pod("keeper", ["sh", "-c", f"echo $$$$ > {tmp_path}/keeper.pid; exec sleep 600"]))
        apply(c, pod("orphan", ["sh", "-c", f"echo $$$$ > {tmp_path}/orphan.pid; exec sleep 600"]))
        for name in ("keeper", "orphan"):
            wait_for(lambda n=name: running_ready(c, n), what=f"{name} Running")
        before = container_status(c, "keeper")
        keeper = int((tmp_path / "keeper.pid").read_text())
        orphan = int((tmp_path / "orphan.pid").read_text())
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        assert alive(keeper) and alive(orphan)
        c.kubectl("delete", "pod", "orphan", "--grace-period=0", "--force")
        agent = _agent(c, tmp_path, "agent2.log")
        wait_for(lambda: not alive(orphan), timeout=15, what="orphan process gone")
        time.sleep(1)
        after = container_status(c, "keeper")
        assert after["containerID"] == before["containerID"] and after["restartCount"] == 0
        assert after["ready"] and alive(keeper)
        c.kubectl("delete", "pod", "keeper", "--timeout=20s")
        assert not alive(keeper)
    finally:
        agent.terminate()
        agent.wait(10)
        c.stop()
