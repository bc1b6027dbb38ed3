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

from tests.node.conftest import apply, running_ready, wait_for

from .conftest import _requirements, container_status, node_cluster

STATE_ROOT = "/run/containerd/runc/k8s.io"


@pytest.fixture(scope="module")
def oci_node(tmp_path_factory):
    _requirements()
    if not shutil.which("crun"):
        pytest.fail("missing crun: run scripts/ci-deps-containerd.sh", pytrace=False)
    base = tmp_path_factory.mktemp("ketch-oci")
    from ketch.cli.cmd_agent import _issue_serving_cert

    def trust(c, node) -> None:     # kubectl exec: the apiserver trusts the agent
        _issue_serving_cert(str(c.data_dir), str(node.data_dir))
    with node_cluster(base, before_start=trust) as (c, node):
        yield c, node, base


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


def runs_under(c, runtime: str) -> None:
    """A new pod oci-<runtime>: Running and Ready, run by that runtime, its memory limit set, exec works."""
    name = f"oci-{runtime}"
    apply(c, pod(name))
    wait_for(lambda: running_ready(c, name), timeout=60, what=f"{name} Running")
    assert oci_runtime_of(c, name) == runtime
    assert memory_limit(c, name) == 32 * 1024 * 1024
    assert c.kubectl("exec", name, "--", "echo", f"from-{runtime}").stdout.strip() == f"from-{runtime}"


def agent_log(base, n: int) -> str:
    return (base / f"agent{n}.log").read_text()


def test_crun_by_default_then_runc_over_running_pods(oci_node):
    c, node, base = oci_node
    wait_for(lambda: "OCI runtime crun (crun is installed" in agent_log(base, node.starts), what="crun chosen")
    runs_under(c, "crun")
    # an exec'd process is in the container's cgroups (its limits and accounting), as the container is
    cg = c.kubectl("exec", "oci-crun", "--", "sh", "-c", "cat /proc/1/cgroup; echo ==; cat /proc/self/cgroup").stdout
    init, own = cg.split("==")
    assert sorted(init.split()) == sorted(own.split()), cg

    node.stop()
    node.extra = ["--oci-runtime", "runc"]
    node.start()
    # (the Node is still Ready from the first agent: the log says when the second one runs)
    wait_for(lambda: "OCI runtime runc (from --oci-runtime)" in agent_log(base, node.starts), what="runc chosen")
    runs_under(c, "runc")
    # The crun pod made before the restart is still served by crun.
    assert running_ready(c, "oci-crun")
    assert container_status(c, "oci-crun").get("restartCount") == 0
    assert oci_runtime_of(c, "oci-crun") == "crun"
    assert c.kubectl("exec", "oci-crun", "--", "echo", "still-crun").stdout.strip() == "still-crun"

    c.kubectl("delete", "pod", "oci-crun", "oci-runc", "--timeout=40s")
    pods = base / "agent" / "pods"
    wait_for(lambda: not any(pods.iterdir()), timeout=60, what="both pods removed by the runtime")
