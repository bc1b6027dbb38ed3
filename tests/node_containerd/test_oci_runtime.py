"""The OCI runtime under ketch's containerd: crun when installed (`--oci-runtime auto`, the default),
runc with `--oci-runtime runc`.

Which binary runs a container is read from the runtime's state directory, which containerd's runc
shim keeps for both under /run/containerd/runc/k8s.io/<container id>/: runc writes `state.json`
there, crun `status`. The agent is restarted with the other runtime over running pods: containerd
keeps each sandbox on the handler it was made with, so the pods of the first runtime are re-adopted
and keep working (exec, deletion) while new pods get the second.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import start_cluster
from tests.node.conftest import apply, running_ready, wait_for

from .conftest import Node, _requirements, container_status

STATE_ROOT = "/run/containerd/runc/k8s.io"


@pytest.fixture(scope="module")
def oci_node(tmp_path_factory):
    _requirements()
    if not shutil.which("crun"):
        pytest.fail("missing crun: run scripts/ci-deps-containerd.sh", pytrace=False)
    base = tmp_path_factory.mktemp("ketch-oci")
    c = start_cluster(base / "cluster", extra=["--no-agent"])
    node = Node(c, base / "agent")
    from ketch.cli.cmd_agent import _issue_serving_cert
    _issue_serving_cert(str(c.data_dir), str(node.data_dir))   # kubectl exec: the apiserver trusts the agent
    try:
        node.start()
        yield c, node, base
        c.kubectl("delete", "pods", "--all", "--timeout=40s", check=False)
        pods = base / "agent" / "pods"
        wait_for(lambda: not pods.exists() or not any(pods.iterdir()), timeout=60, what="pods removed")
    finally:
        node.stop()
        c.stop()


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "ketch.local/busybox:1", "command": ["sleep", "600"],
                                     "resources": {"limits": {"memory": "32Mi"}}}]}}


def oci_runtime_of(c, name: str) -> str:
    cid = container_status(c, name)["containerID"].split("://", 1)[1]
    state = os.path.join(STATE_ROOT, cid)
    found = [f for f in ("state.json", "status") if os.path.exists(os.path.join(state, f))]
    assert len(found) == 1, (state, os.listdir(state) if os.path.isdir(state) else "missing")
    return {"state.json": "runc", "status": "crun"}[found[0]]


def memory_limit(c, name: str) -> int:
    uid = c.kubectl("get", "pod", name, "-o", "jsonpath={.metadata.uid}").stdout.strip()
    cid = container_status(c, name)["containerID"].split("://", 1)[1]
    with open(f"/sys/fs/cgroup/memory/ketch/pod{uid}/{cid}/memory.limit_in_bytes") as f:
        return int(f.read())


def agent_log(base, n: int) -> str:
    return (base / f"agent{n}.log").read_text()


def test_crun_by_default_then_runc_over_running_pods(oci_node):
    c, node, base = oci_node
    wait_for(lambda: "OCI runtime crun (crun is installed" in agent_log(base, node.starts), what="crun chosen")
    apply(c, pod("oci-crun"))
    wait_for(lambda: running_ready(c, "oci-crun"), timeout=60, what="oci-crun Running")
    assert oci_runtime_of(c, "oci-crun") == "crun"
    assert memory_limit(c, "oci-crun") == 32 * 1024 * 1024
    assert c.kubectl("exec", "oci-crun", "--", "echo", "from-crun").stdout.strip() == "from-crun"
    # an exec'd process is in the container's cgroups (its limits and accounting), as the container is
    cg = c.kubectl("exec", "oci-crun", "--", "sh", "-c", "cat /proc/1/cgroup; echo ==; cat /proc/self/cgroup").stdout
    init, own = cg.split("==")
    assert sorted(init.split()) == sorted(own.split()), cg

    node.stop()
    node.extra = ["--oci-runtime", "runc"]
    node.start()
    # (the Node is still Ready from the first agent: the log says when the second one runs)
    wait_for(lambda: "OCI runtime runc (from --oci-runtime)" in agent_log(base, node.starts), what="runc chosen")
    apply(c, pod("oci-runc"))
    wait_for(lambda: running_ready(c, "oci-runc"), timeout=60, what="oci-runc Running")
    assert oci_runtime_of(c, "oci-runc") == "runc"
    assert memory_limit(c, "oci-runc") == 32 * 1024 * 1024
    assert c.kubectl("exec", "oci-runc", "--", "echo", "from-runc").stdout.strip() == "from-runc"
    # The crun pod made before the restart is still served by crun.
    assert running_ready(c, "oci-crun")
    assert container_status(c, "oci-crun").get("restartCount") == 0
    assert oci_runtime_of(c, "oci-crun") == "crun"
    assert c.kubectl("exec", "oci-crun", "--", "echo", "still-crun").stdout.strip() == "still-crun"

    c.kubectl("delete", "pod", "oci-crun", "oci-runc", "--timeout=40s")
    pods = base / "agent" / "pods"
    wait_for(lambda: not any(pods.iterdir()), timeout=60, what="both pods removed by the runtime")
