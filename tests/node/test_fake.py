"""The agent with the `fake` runtime: node registration, pods Running/Ready, deletion, many nodes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import BIN, start_cluster

from .conftest import apply, deployment, get_json, pod_condition, wait_for


def test_node_registers_ready_with_lease(fake_cluster):
    c = fake_cluster
    node = wait_for(lambda: get_json(c, "nodes").get("items"), what="a node")[0]
    assert node["metadata"]["name"] == "fake-node"
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "fake-node"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"]
    st = node["status"]
    for r in ("cpu", "memory", "ephemeral-storage", "pods"):
        assert r in st["capacity"] and r in st["allocatable"]
    conds = {x["type"]: x["status"] for x in st["conditions"]}
    assert conds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
    assert {a["type"] for a in st["addresses"]} >= {"InternalIP", "Hostname"}
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("fake://")
    lease = get_json(c, "lease", "fake-node", "-n", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "fake-node" and lease["spec"]["renewTime"]
    assert "Ready" in c.kubectl("get", "nodes").stdout


def test_deployment_pods_go_running_ready_and_deletion_completes(fake_cluster):
    c = fake_cluster
    apply(c, deployment("web", 3))
    c.kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=30s")
    pods = get_json(c, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    for p in pods:
        st = p["status"]
        assert st["phase"] == "Running" and st["podIP"] and st["hostIP"] and st["startTime"]
        for ctype in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
            assert pod_condition(p, ctype) == "True", (ctype, st)
        cs = st["containerStatuses"][0]
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
        assert cs["containerID"] and cs["image"] == "nginx" and cs["imageID"]
    out = c.kubectl("get", "pods", "-l", "app=web").stdout
    assert out.count("1/1") == 3 and out.count("Running") == 3
    t0 = time.time()
    c.kubectl("delete", "pod", pods[0]["metadata"]["name"], "--timeout=20s")   # waits for the object to go
    assert time.time() - t0 < 10
    c.kubectl("delete", "deployment", "web")
    wait_for(lambda: not get_json(c, "pods", "-l", "app=web")["items"], what="pods deleted")


def test_two_hundred_fake_nodes_in_one_agent(tmp_path):
    c = start_cluster(tmp_path / "cluster", extra=["--no-agent"])
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([str(BIN / "ketch"), "agent", "--kubeconfig", c.kubeconfig, "--runtime", "fake",
                              "--nodes", "200", "--node-name", "sim", "--data-dir", str(tmp_path / "agent")],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        def all_ready():
            items = get_json(c, "nodes")["items"]
            ready = [n for n in items if any(x["type"] == "Ready" and x["status"] == "True"
                                             for x in n["status"].get("conditions") or ())]
            return len(ready) == 200 and items
        items = wait_for(all_ready, timeout=40, interval=0.5, what="200 Ready nodes")
        assert {n["metadata"]["name"] for n in items} == {f"sim-{i}" for i in range(200)}
        assert len(get_json(c, "leases", "-n", "kube-node-lease")["items"]) == 200
        apply(c, deployment("many", 40))
        c.kubectl("wait", "--for=condition=Available", "deployment/many", "--timeout=40s")
        nodes = {p["spec"]["nodeName"] for p in get_json(c, "pods", "-l", "app=many")["items"]}
        assert len(nodes) > 10
        rss = int(Path(f"/proc/{agent.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        print(f"agent RSS with 200 fake nodes: {rss // 1024} MiB", file=sys.stderr)
    finally:
        agent.terminate()
        agent.wait(10)
        c.stop()
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()
