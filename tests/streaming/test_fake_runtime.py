"""A runtime without logs or exec (fake) says so through the apiserver instead of failing obscurely."""

from __future__ import annotations

from tests.conftest import start_cluster
from tests.node.conftest import apply, running_ready, wait_for


def test_fake_runtime_explains_what_it_cannot_do(tmp_path):
    c = start_cluster(tmp_path / "fake", extra=["--runtime", "fake", "--node-name", "fake-node", "--kubelet-port", "0"])
    try:
        apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                  "spec": {"containers": [{"name": "main", "image": "x"}]}})
        wait_for(lambda: running_ready(c, "p"), what="p Running")
        r = c.kubectl("exec", "p", "--", "ls", check=False)
        assert r.returncode == 1 and "the fake runtime cannot exec commands" in r.stderr
        r = c.kubectl("logs", "p", check=False)
        assert r.returncode == 1 and "the fake runtime keeps no container logs" in r.stderr
        assert c.kubectl("top", "nodes").stdout.splitlines()[1].startswith("fake-node")
    finally:
        assert c.stop() == 0
