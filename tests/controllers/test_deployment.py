"""Deployment controller with the real kubectl: rolling update bounds, rollout status/history/undo,
pause/resume/restart, Recreate, proportional scaling, progress deadline."""

from __future__ import annotations

import asyncio
import json

from ketch.api.meta import controller_ref

from .conftest import deployment, kubectl
from .kubelet import Kubelet, eventually, is_ready


class Observer:
    """Checks every observed pod state of a deployment against the rolling-update bounds."""

    def __init__(self, kubelet: Kubelet, app: str, lo: int, hi: int):
        self.kubelet, self.app, self.lo, self.hi = kubelet, app, lo, hi
        self.violations: list[str] = []
        self.states = 0
        self.armed = False
        kubelet.pods.add_handlers(self.check, lambda o, n: self.check(n), self.check)

    def check(self, _pod: dict) -> None:
        if not self.armed:
            return
        pods = [p for p in self.kubelet.pods.list() if (p["metadata"].get("labels") or {}).get("app") == self.app
                and not p["metadata"].get("deletionTimestamp")]
        available = sum(1 for p in pods if is_ready(p))
        self.states += 1
        if available < self.lo or len(pods) > self.hi:
            self.violations.append(f"available={available} total={len(pods)}")


async def _dep(api, ns, name):
    return await api.get(api.resource("deployments", "apps"), ns, name)


async def _rollout_status(cluster, ns, name, timeout="60s", check=True):
    return await asyncio.to_thread(cluster.kubectl, "-n", ns, "rollout", "status", f"deployment/{name}",
                                   f"--timeout={timeout}", check=check, timeout=90)


async def _images(api, ns, app):
    pods = (await api.list(api.resource("pods"), ns, f"app={app}"))["items"]
    return sorted(p["spec"]["containers"][0]["image"] for p in pods if not p["metadata"].get("deletionTimestamp"))


async def test_rolling_update_bounds_history_undo(cluster, api, ns):
    kubelet = Kubelet(api, ns, ["n1", "n2"], ready_delay=0.02)
    await kubelet.start()
    obs = Observer(kubelet, "web", lo=6 - 1, hi=6 + 2)
    try:
        d = deployment("web", 6, "nginx:1", strategy={"type": "RollingUpdate",
                                                      "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}})
        d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
        await kubectl(cluster, "-n", ns, "apply", "-f", "-", input=json.dumps(d))
        await _rollout_status(cluster, ns, "web")
        dep = await _dep(api, ns, "web")
        assert dep["status"]["availableReplicas"] == 6
        assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert {c["type"]: c["status"] for c in dep["status"]["conditions"]} == {"Available": "True", "Progressing": "True"}
        obs.armed = True
        await kubectl(cluster, "-n", ns, "set", "image", "deployment/web", "c=nginx:2")
        await kubectl(cluster, "-n", ns, "annotate", "deployment/web", "kubernetes.io/change-cause=second", "--overwrite")
        await _rollout_status(cluster, ns, "web")
        assert await _images(api, ns, "web") == ["nginx:2"] * 6
        assert obs.states > 10 and not obs.violations, obs.violations[:5]
        rss = (await api.list(api.resource("replicasets", "apps"), ns, "app=web"))["items"]
        assert len(rss) == 2
        for rs in rss:
            assert rs["metadata"]["name"] == f"web-{rs['metadata']['labels']['pod-template-hash']}"
            assert controller_ref(rs)["uid"] == dep["metadata"]["uid"]
        hist = (await kubectl(cluster, "-n", ns, "rollout", "history", "deployment/web")).stdout
        assert "1         first" in hist and "2         second" in hist, hist
        # undo with the real kubectl: back to nginx:1 as revision 3, same bounds
        await kubectl(cluster, "-n", ns, "rollout", "undo", "deployment/web")
        await _rollout_status(cluster, ns, "web")
        assert await _images(api, ns, "web") == ["nginx:1"] * 6
        assert not obs.violations, obs.violations[:5]
        dep = await _dep(api, ns, "web")
        assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert len((await api.list(api.resource("replicasets", "apps"), ns, "app=web"))["items"]) == 2
        hist = (await kubectl(cluster, "-n", ns, "rollout", "history", "deployment/web")).stdout
        assert "2 " in hist and "3 " in hist and "\n1 " not in hist, hist
        # restart: a new template annotation, a new ReplicaSet
        obs.armed = False
        await kubectl(cluster, "-n", ns, "rollout", "restart", "deployment/web")
        await _rollout_status(cluster, ns, "web")
        rss = (await api.list(api.resource("replicasets", "apps"), ns, "app=web"))["items"]
        assert len(rss) == 3
        assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 0, 6]
    finally:
        await kubelet.stop()


async def test_pause_resume_recreate_history_limit(cluster, api, ns):
    kubelet = Kubelet(api, ns, ["n1"])
    await kubelet.start()
    try:
        d = deployment("rc", 3, "nginx:1", strategy={"type": "Recreate"}, revisionHistoryLimit=1)
        await api.create(api.resource("deployments", "apps"), ns, d)
        await _rollout_status(cluster, ns, "rc")
        await kubectl(cluster, "-n", ns, "rollout", "pause", "deployment/rc")
        await kubectl(cluster, "-n", ns, "set", "image", "deployment/rc", "c=nginx:2")
        await asyncio.sleep(0.5)
        assert await _images(api, ns, "rc") == ["nginx:1"] * 3
        assert len((await api.list(api.resource("replicasets", "apps"), ns, "app=rc"))["items"]) == 1
        dep = await _dep(api, ns, "rc")
        prog = next(c for c in dep["status"]["conditions"] if c["type"] == "Progressing")
        assert prog["reason"] == "DeploymentPaused"
        # Recreate: old and new pods never coexist
        mixed: list[list[str]] = []

        def check(_p):
            imgs = {p["spec"]["containers"][0]["image"] for p in kubelet.pods.list()
                    if (p["metadata"].get("labels") or {}).get("app") == "rc"}
            if len(imgs) > 1:
                mixed.append(sorted(imgs))
        kubelet.pods.add_handlers(check, lambda o, n: check(n))
        await kubectl(cluster, "-n", ns, "rollout", "resume", "deployment/rc")
        await _rollout_status(cluster, ns, "rc")
        assert await _images(api, ns, "rc") == ["nginx:2"] * 3
        assert not mixed, mixed[:3]
        await kubectl(cluster, "-n", ns, "set", "image", "deployment/rc", "c=nginx:3")
        await _rollout_status(cluster, ns, "rc")

        async def history_limited():
            rss = (await api.list(api.resource("replicasets", "apps"), ns, "app=rc"))["items"]
            return len(rss) == 2   # the current one + revisionHistoryLimit=1
        await eventually(history_limited)
    finally:
        await kubelet.stop()


async def test_proportional_scaling_and_progress_deadline(cluster, api, ns):
    kubelet = Kubelet(api, ns, ["n1"])
    await kubelet.start()
    rs_ri = api.resource("replicasets", "apps")
    try:
        d = deployment("prop", 10, "nginx:1",
                       strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
        await api.create(api.resource("deployments", "apps"), ns, d)
        await _rollout_status(cluster, ns, "prop")
        kubelet.paused = True          # new pods never become ready: the rollout stalls
        await api.patch(api.resource("deployments", "apps"), ns, "prop", {"spec": {
            "progressDeadlineSeconds": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}, patch_type="strategic")

        async def stalled():
            rss = (await api.list(rs_ri, ns, "app=prop"))["items"]
            sizes = sorted(rs["spec"]["replicas"] for rs in rss)
            return sizes if sizes == [5, 8] else None
        await eventually(stalled)
        # progress deadline: Progressing=False, ProgressDeadlineExceeded; rollout status fails
        async def timed_out():
            dep = await _dep(api, ns, "prop")
            prog = next((c for c in dep["status"].get("conditions") or () if c["type"] == "Progressing"), {})
            return prog.get("reason") == "ProgressDeadlineExceeded" and prog.get("status") == "False"
        await eventually(timed_out, timeout=10)
        r = await _rollout_status(cluster, ns, "prop", timeout="20s", check=False)
        assert r.returncode != 0 and "exceeded its progress deadline" in r.stderr, r.stderr
        # scale mid-rollout: both ReplicaSets grow in proportion (10+3 -> 20+3)
        await kubectl(cluster, "-n", ns, "scale", "deployment/prop", "--replicas=20")

        async def proportional():
            rss = (await api.list(rs_ri, ns, "app=prop"))["items"]
            by_img = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"] for rs in rss}
            return by_img if sum(by_img.values()) == 23 else None
        sizes = await eventually(proportional)
        assert sizes["nginx:1"] > 8 and sizes["nginx:2"] > 5, sizes
        kubelet.resume()

        async def progressing_again():
            dep = await _dep(api, ns, "prop")
            prog = next((c for c in dep["status"].get("conditions") or () if c["type"] == "Progressing"), {})
            return prog.get("status") == "True"
        await eventually(progressing_again)
        await api.patch(api.resource("deployments", "apps"), ns, "prop", {"spec": {"progressDeadlineSeconds": 600}})
        await _rollout_status(cluster, ns, "prop")
        assert await _images(api, ns, "prop") == ["nginx:2"] * 20
    finally:
        await kubelet.stop()
