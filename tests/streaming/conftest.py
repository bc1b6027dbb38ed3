"""A `ketch up` with the process runtime and the agent's API on an ephemeral port."""

from __future__ import annotations

import pytest

from tests.conftest import start_cluster


@pytest.fixture(scope="module")
def stream_cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("ketch-stream"),
                      extra=["--runtime", "process", "--node-name", "stream-node", "--crash-backoff", "1",
                             "--kubelet-port", "0"])
    yield c
    c.kubectl("delete", "pods,deployments", "--all", "--timeout=30s", check=False)  # no host process outlives us
    assert c.stop() == 0, c.log_path.read_text()[-3000:]
