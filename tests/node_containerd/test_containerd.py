"""The agent with the `containerd` runtime: real containers (CRI v1), CNI pod IPs, cgroup limits."""

from __future__ import annotations

import os
import time
import urllib.request

from ketch.node import images
from tests.conftest import BIN
from tests.node.conftest import apply, get_json, pod_condition, running_ready, wait_for

from .conftest import NODE, container_status

IMAGE = images.TEST_IMAGE


def pod(name: str, command: list[str] | None, **spec) -> dict:
    ctr = {"name": name, "image": IMAGE, **({"command": command} if command else {}), **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [ctr], "terminationGracePeriodSeconds": 5, **spec}}


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode()


HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def test_pod_running_ready_and_reachable(ctd):
    c, _ = ctd
    web = pod("web", HTTPD, container={"readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                                       "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}})
    apply(c, web)      # startup latency is measured by bench/node_bench.py, not asserted here
    p = wait_for(lambda: running_ready(c, "web"), interval=0.05, what="Running and Ready")
    st = p["status"]
    cs = st["containerStatuses"][0]
    assert cs["containerID"].startswith("containerd://") and cs["ready"] and cs["restartCount"] == 0
    assert st["podIP"] != st["hostIP"] and st["podIP"].startswith("10.")
    assert http_get(f"http://{st['podIP']}:8080/") == "hello from ketch\n"
    node = get_json(c, "node", NODE)
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.")
    out = c.kubectl("get", "pod", "web", "-o", "wide").stdout
    assert "1/1" in out and "Running" in out and st["podIP"] in out
    uid = p["metadata"]["uid"]
    cgroup = f"/sys/fs/cgroup/memory/ketch/pod{uid}"
    if os.path.isdir("/sys/fs/cgroup/memory"):
        assert os.path.isdir(cgroup)
    c.kubectl("delete", "pod", "web", "--grace-period=0", "--timeout=20s")
    wait_for(lambda: not os.path.exists(cgroup), timeout=10, what="pod cgroup removed")   # by the agent


def test_two_containers_share_localhost_and_empty_dir(ctd):
    c, _ = ctd
    manifest = pod("duo", HTTPD)
    manifest["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}}]
    manifest["spec"]["containers"][0]["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    manifest["spec"]["containers"].append({
        "name": "client", "image": IMAGE, "volumeMounts": [{"name": "shared", "mountPath": "/data"}],
        "command": ["sh", "-c", "while :; do wget -qO /data/got http://localhost:8080/ && break; sleep 0.2; done; "
                                "exec sleep 600"],
        "readinessProbe": {"exec": {"command": ["grep", "-q", "hello", "/data/got"]}, "periodSeconds": 1}})
    manifest["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["grep", "-q", "hello", "/shared/got"]}, "periodSeconds": 1}
    apply(c, manifest)
    wait_for(lambda: running_ready(c, "duo"), what="both containers Ready")
    assert "2/2" in c.kubectl("get", "pod", "duo").stdout
    c.kubectl("delete", "pod", "duo", "--grace-period=0", "--wait=false")


def test_crash_loop_back_off(ctd):
    c, _ = ctd
    apply(c, pod("crash", ["sh", "-c", "echo boom; exit 3"]))
    cs = wait_for(lambda: (container_status(c, "crash").get("restartCount") or 0) >= 2
                  and container_status(c, "crash"), timeout=20, what="two restarts")
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    wait_for(lambda: "CrashLoopBackOff" in c.kubectl("get", "pod", "crash").stdout, timeout=10, what="CrashLoopBackOff")
    c.kubectl("delete", "pod", "crash", "--grace-period=0", "--wait=false")


def test_memory_limit_oom_killed(ctd):
    c, _ = ctd
    apply(c, pod("hog", ["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"], restartPolicy="Never",
                 container={"resources": {"limits": {"memory": "32Mi"}}}))
    term = wait_for(lambda: container_status(c, "hog").get("state", {}).get("terminated"), timeout=20,
                    what="terminated")
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
    assert "OOMKilled" in c.kubectl("get", "pod", "hog").stdout
    c.kubectl("delete", "pod", "hog", "--wait=false")


def test_delete_honours_grace_period(ctd):
    c, _ = ctd
    # httpd as PID 1 ignores SIGTERM: it is SIGKILLed when the 2 s grace period is over.
    apply(c, pod("stubborn", HTTPD, terminationGracePeriodSeconds=2))
    apply(c, pod("polite", ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"], terminationGracePeriodSeconds=30))
    for name in ("stubborn", "polite"):
        wait_for(lambda n=name: running_ready(c, n), what=f"{name} Running")
    t0 = time.time()
    c.kubectl("delete", "pod", "stubborn", "--timeout=20s")
    took = time.time() - t0
    assert 1.8 <= took < 20, took   # waited for the grace period, then killed (not left running)
    t0 = time.time()
    c.kubectl("delete", "pod", "polite", "--timeout=20s")
    assert time.time() - t0 < 3


def test_unknown_image_fails_to_pull(ctd):
    c, _ = ctd
    apply(c, pod("ghost", ["true"], container={"image": "ketch.local/no-such-image:1"}))
    w = wait_for(lambda: container_status(c, "ghost").get("state", {}).get("waiting", {}).get("message")
                 and container_status(c, "ghost")["state"]["waiting"], timeout=15, what="a waiting message")
    assert w["reason"] in ("ErrImagePull", "ImagePullBackOff") and "ketch.local/no-such-image:1" in w["message"]
    c.kubectl("delete", "pod", "ghost", "--grace-period=0", "--wait=false")


def test_image_import_and_pull_policy_never(ctd, tmp_path):
    c, node = ctd
    tar = images.build_image(str(tmp_path / "img.tar"), "ketch.local/imported:7", ["/bin/sh"],
                             {"www/index.html": b"imported\n"})
    import subprocess
    r = subprocess.run([str(BIN / "ketch"), "image", "import", tar, "--data-dir", str(node.data_dir)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    apply(c, pod("imported", HTTPD, container={"image": "ketch.local/imported:7", "imagePullPolicy": "Never"}))
    p = wait_for(lambda: running_ready(c, "imported"), what="Running")
    assert wait_for(lambda: _try_get(f"http://{p['status']['podIP']}:8080/"), timeout=5, what="served") == "imported\n"
    c.kubectl("delete", "pod", "imported", "--grace-period=0", "--wait=false")


def _try_get(url: str) -> str | None:
    try:
        return http_get(url)
    except OSError:
        return None


def test_agent_restart_keeps_pods_running(ctd):
    c, node = ctd
    apply(c, pod("keeper", HTTPD))
    p = wait_for(lambda: running_ready(c, "keeper"), what="keeper Running")
    before = container_status(c, "keeper")
    ip = p["status"]["podIP"]
    node.stop()                                  # the agent stops its containerd; the containers keep running
    assert http_get(f"http://{ip}:8080/") == "hello from ketch\n"
    node.start()
    time.sleep(1.5)
    after = container_status(c, "keeper")
    assert after["containerID"] == before["containerID"] and after["restartCount"] == 0 and after["ready"]
    assert pod_condition(get_json(c, "pod", "keeper"), "Ready") == "True"
    assert http_get(f"http://{ip}:8080/") == "hello from ketch\n"
    c.kubectl("delete", "pod", "keeper", "--grace-period=0", "--timeout=20s")


def test_pull_from_local_registry(ctd, registry, tmp_path):
    c, _ = ctd
    tar = images.build_image(str(tmp_path / "reg.tar"), "ketch.local/reg:v1", ["/bin/sh"], {"www/index.html": b"pulled\n"})
    import subprocess
    ref = f"{registry}/ketch/web:v1"
    r = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci-archive:{tar}", f"docker://{ref}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    apply(c, pod("pulled", HTTPD, container={"image": ref, "imagePullPolicy": "Always"}))
    p = wait_for(lambda: running_ready(c, "pulled"), what="Running")
    assert wait_for(lambda: _try_get(f"http://{p['status']['podIP']}:8080/"), timeout=5, what="served") == "pulled\n"
    c.kubectl("delete", "pod", "pulled", "--grace-period=0", "--wait=false")


def test_probes_exec_in_the_container(ctd):
    """Exec probes run through CRI ExecSync inside the container's filesystem."""
    c, _ = ctd
    apply(c, pod("sick", ["sh", "-c", "touch /tmp/ok; sleep 2; rm /tmp/ok; exec sleep 600"], terminationGracePeriodSeconds=1,
                 container={"livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/ok"]}, "periodSeconds": 1,
                                              "failureThreshold": 1}}))
    apply(c, pod("unready", ["sleep", "600"], terminationGracePeriodSeconds=1,
                 container={"readinessProbe": {"exec": {"command": ["test", "-f", "/nope"]}, "periodSeconds": 1}}))
    cs = wait_for(lambda: (container_status(c, "sick").get("restartCount") or 0) >= 1 and container_status(c, "sick"),
                  timeout=20, what="a liveness restart")
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    p = get_json(c, "pod", "unready")
    assert p["status"]["phase"] == "Running" and pod_condition(p, "Ready") == "False"
    c.kubectl("delete", "pod", "sick", "unready", "--grace-period=0", "--wait=false")


def test_pod_network_masqueraded_by_one_nft_rule(ctd):
    # One rule for the whole pod network (not the bridge plugin's per-pod iptables chains).
    import json
    import subprocess
    _, node = ctd
    conflist = json.loads((node.data_dir / "cni" / "net.d" / "10-ketch.conflist").read_text())
    assert conflist["plugins"][0]["type"] == "bridge" and conflist["plugins"][0]["ipMasq"] is False
    table = subprocess.run(["nft", "list", "table", "ip", "ketch_masq_ketch0"], capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "hook postrouting" in table.stdout
    assert "ip saddr 10.89.0.0/16 ip daddr != 10.89.0.0/16" in table.stdout and "masquerade" in table.stdout
