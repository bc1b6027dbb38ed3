"""Node agent tests: a real `ketch up` with the agent's runtime chosen, driven by the real kubectl."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Cluster, start_cluster


def wait_for(fn, timeout: float = 20.0, interval: float = 0.2, what: str = "condition"):
    """Poll fn() until it returns something truthy; its last value on success."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def get_json(c: Cluster, *args: str) -> dict:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def pod_condition(pod: dict, ctype: str) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond.get("status")
    return None


def apply(c: Cluster, manifest: dict) -> None:
    c.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def running_ready(c: Cluster, name: str, ns: str = "default") -> dict | None:
    pod = get_json(c, "pod", name, "-n", ns)
    st = pod.get("status") or {}
    return pod if st.get("phase") == "Running" and pod_condition(pod, "Ready") == "True" else None


@pytest.fixture(scope="module")
def fake_cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("ketch-fake"), extra=["--runtime", "fake", "--node-name", "fake-node"])
    yield c
    assert c.stop() == 0, c.log_path.read_text()[-3000:]


@pytest.fixture(scope="module")
def process_cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("ketch-proc"),
                      extra=["--runtime", "process", "--node-name", "proc-node", "--crash-backoff", "1"])
    yield c
    c.kubectl("delete", "pods", "--all", "--timeout=30s", check=False)   # no host process outlives the tests
    assert c.stop() == 0, c.log_path.read_text()[-3000:]


def deployment(name: str, replicas: int, image: str = "nginx", container: dict | None = None) -> dict:
    """A Deployment manifest (kubectl create deployment sends protobuf, which the apiserver does not take)."""
    ctr = {"name": name, "image": image, **(container or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [ctr]}}}}
