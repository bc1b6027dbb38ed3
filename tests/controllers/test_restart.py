"""The controller-manager as its own process, killed (SIGKILL) mid-rollout and restarted: the
rollout completes, within its bounds, with no duplicate pods."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess

import pytest

from tests.conftest import BIN, start_cluster

from .conftest import deployment, kubectl
from .kubelet import Kubelet, eventually
from .test_deployment import Observer, _images, _rollout_status


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("ketch-split"), extra=["--no-controllers"])
    yield c
    assert c.stop() == 0


def _start_cm(cluster) -> subprocess.Popen:
    log = open(cluster.data_dir / "cm.log", "ab")
    # The same identity across the restart, as a re-created controller-manager pod keeps its name:
    # it takes its Lease back at once instead of waiting for it to expire.
    env = dict(os.environ, KETCH_IDENTITY="cm-under-test")
    return subprocess.Popen([str(BIN / "ketch"), "controller-manager", "--kubeconfig", cluster.kubeconfig],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


async def test_killed_mid_rollout_and_restarted(cluster, api, ns):
    cm = _start_cm(cluster)
    kubelet = Kubelet(api, ns, ["n1", "n2"], ready_delay=0.15)
    await kubelet.start()
    obs = Observer(kubelet, "web", lo=12 - 2, hi=12 + 3)
    rs_ri = api.resource("replicasets", "apps")
    try:
        d = deployment("web", 12, "nginx:1", strategy={"type": "RollingUpdate",
                                                       "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
        await kubectl(cluster, "-n", ns, "apply", "-f", "-", input=json.dumps(d))
        await _rollout_status(cluster, ns, "web")
        obs.armed = True
        await kubectl(cluster, "-n", ns, "set", "image", "deployment/web", "c=nginx:2")

        async def mid_rollout():
            rss = (await api.list(rs_ri, ns, "app=web"))["items"]
            new = [r for r in rss if r["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"]
            return new and 3 <= (new[0].get("status") or {}).get("availableReplicas", 0) < 9
        await eventually(mid_rollout, interval=0.01)
        cm.send_signal(signal.SIGKILL)
        cm.wait(5)
        await asyncio.sleep(1.0)     # the kubelet keeps going; nobody reconciles
        cm = _start_cm(cluster)
        await _rollout_status(cluster, ns, "web")
        assert await _images(api, ns, "web") == ["nginx:2"] * 12
        rss = (await api.list(rs_ri, ns, "app=web"))["items"]
        assert sorted(r["spec"]["replicas"] for r in rss) == [0, 12]
        assert obs.states > 20 and not obs.violations, obs.violations[:5]
        pods = (await api.list(api.resource("pods"), ns, "app=web"))["items"]
        assert len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == 12
    finally:
        await kubelet.stop()
        cm.send_signal(signal.SIGTERM)
        try:
            cm.wait(10)
        except subprocess.TimeoutExpired:
            cm.kill()
            cm.wait()
    assert cm.returncode == 0, (cluster.data_dir / "cm.log").read_text()[-2000:]
