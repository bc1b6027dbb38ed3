"""Node agent benchmark: pod startup latency and a 0→50 deployment, per runtime, plus agent idle RSS.

A fresh `ketch up --http --no-agent` and a `ketch agent` in its own process (as on a real node).
Startup latency is create → Running and Ready as seen by a watch, for 50 pods created 0.5 s
apart; then a Deployment scaled 0→50 until every pod is Ready. Never asserts.

    .venv/bin/python bench/node_bench.py                       # process and fake
    .venv/bin/python bench/node_bench.py --runtimes fake --pods 20
    .venv/bin/python bench/node_bench.py --runtime containerd   # image ketch.local/busybox:1 (as root)
    .venv/bin/python bench/node_bench.py --runtime containerd --agent-args '--oci-runtime runc'
    .venv/bin/python bench/node_bench.py --cri 24 --repeat 2 --oci-runtime crun   # containerd alone, no API
    ... --pprof FILE    # containerd's Go CPU profile (pprof) of the 0→50's first 5 s (with --cri: of the start)

Also measured: node Ready after the agent process starts, kill -9 of a container's process →
Running and Ready again (process and containerd runtimes), and the agent's RSS with 50 pods and idle.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


IMAGE = {"containerd": "ketch.local/busybox:1"}


class CPUGroup:
    """A cgroup for the agent and all it starts (containerd, shims, runc, CNI plugins; the containers
    themselves go to their pod cgroups): the CPU time the node spent, which a busy machine does not
    distort the way it does wall-clock figures. Needs root; without it, no figure."""

    def __init__(self, name: str):
        self.path = ""
        for base, usage in (("/sys/fs/cgroup/cpuacct", "cpuacct.usage"), ("/sys/fs/cgroup", "cpu.stat")):
            if os.path.exists(os.path.join(base, usage)) or os.path.exists(os.path.join(base, "cgroup.controllers")):
                try:
                    os.makedirs(os.path.join(base, name), exist_ok=True)
                except OSError:
                    continue
                self.path, self.usage = os.path.join(base, name), usage
                break

    def join(self) -> None:   # in the child, before exec
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def seconds(self) -> float:
        if not self.path:
            return float("nan")
        text = Path(self.path, self.usage).read_text()
        if self.usage == "cpu.stat":
            return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
        return int(text) / 1e9

    def remove(self) -> None:
        if not self.path:
            return
        parent = os.path.dirname(self.path)
        for _ in range(50):
            pids = Path(self.path, "cgroup.procs").read_text().split()
            for pid in pids:   # whatever outlived the agent (a shim finishing) goes back to the parent
                try:
                    Path(parent, "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


def proc_cpu(pid: int) -> float:
    """CPU seconds of one process (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def container(image: str) -> dict:
    return {"name": "c", "image": image, "command": ["sleep", "3600"]}


def ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or ())


def container_pid(runtime: str, data: str, pod: dict) -> int:
    uid = pod["metadata"]["uid"]
    if runtime == "containerd":   # the container's cgroup (cgroupfs driver, v1 or v2) lists its processes
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        for path in glob.glob(f"/sys/fs/cgroup/pids/ketch/pod{uid}/*{cid}*/cgroup.procs") + \
                glob.glob(f"/sys/fs/cgroup/ketch/pod{uid}/*{cid}*/cgroup.procs"):
            pids = Path(path).read_text().split()
            if pids:
                return int(pids[0])
        raise RuntimeError(f"no process found for container {cid}")
    meta = orjson.loads(Path(f"{data}/agent/pods/{uid}/c/0.json").read_bytes())
    shim = meta["pid"]
    return int(Path(f"/proc/{shim}/task/{shim}/children").read_text().split()[0])


async def kill_recovery(s: aiohttp.ClientSession, url: str, data: str, runtime: str) -> float:
    """kill -9 the command of pod seq-0; time until it is Running and Ready again (restartCount 1)."""
    async with s.get(url + "/api/v1/namespaces/default/pods/seq-0") as r:
        child = container_pid(runtime, data, await r.json())
    t0 = time.monotonic()
    os.kill(child, signal.SIGKILL)
    while time.monotonic() - t0 < 30:
        async with s.get(url + "/api/v1/namespaces/default/pods/seq-0") as r:
            pod = await r.json()
        cs = (pod.get("status") or {}).get("containerStatuses") or [{}]
        if cs[0].get("restartCount") == 1 and ready(pod):
            return time.monotonic() - t0
        await asyncio.sleep(0.01)
    return float("nan")


async def runtime_removed(data: str, timeout: float) -> None:
    """Wait until the agent's runtime removed every pod (sandboxes, cgroups, logs: its pods dir is empty)."""
    pods_dir = Path(f"{data}/agent/pods")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pods_dir.is_dir() and any(pods_dir.iterdir()):
        await asyncio.sleep(0.1)


class Watcher:
    """One pod watch recording when each pod was first seen Running and Ready."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.url = session, url
        self.ready_at: dict[str, float] = {}
        self.seen_at: dict[str, float] = {}      # first event (created)
        self.bound_at: dict[str, float] = {}     # first event with spec.nodeName
        self.running_at: dict[str, float] = {}   # first event with a pod IP (sandbox up, status written)
        self.events: dict[str, int] = {}         # watch events per pod until it was Ready
        self.changed = asyncio.Event()

    async def run(self) -> None:
        async with self.session.get(f"{self.url}/api/v1/namespaces/default/pods",
                                    params={"watch": "true"}, timeout=aiohttp.ClientTimeout(total=None)) as r:
            buf = b""
            async for chunk in r.content.iter_any():
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    pod = orjson.loads(line)["object"]
                    name = pod["metadata"]["name"]
                    now = time.monotonic()
                    self.seen_at.setdefault(name, now)
                    if name not in self.ready_at:
                        self.events[name] = self.events.get(name, 0) + 1
                    if pod["spec"].get("nodeName"):
                        self.bound_at.setdefault(name, now)
                    if (pod.get("status") or {}).get("podIP"):
                        self.running_at.setdefault(name, now)
                    if name not in self.ready_at and ready(pod):
                        self.ready_at[name] = time.monotonic()
                        self.changed.set()


async def wait_count(w: Watcher, names: set[str] | None, prefix: str, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        got = [k for k in w.ready_at if k.startswith(prefix)]
        if len(got) >= n:
            return True
        if time.monotonic() > deadline:
            return False
        w.changed.clear()
        try:
            await asyncio.wait_for(w.changed.wait(), 1)
        except TimeoutError:
            pass


async def containerd_profile(sock: str, seconds: int, out: str) -> None:
    """containerd's Go CPU profile (pprof, from its debug socket) over the deployment's first seconds."""
    conn = aiohttp.UnixConnector(path=sock)
    async with aiohttp.ClientSession(connector=conn) as s, \
            s.get(f"http://containerd/debug/pprof/profile?seconds={seconds}",
                  timeout=aiohttp.ClientTimeout(total=seconds + 30)) as r:
        Path(out).write_bytes(await r.read())


async def bench(runtime: str, pods: int, gap: float, image: str, replicas: int, agent_args: list[str],
                pprof: str = "", log: str = "") -> None:
    data = tempfile.mkdtemp(prefix=f"ketch-nodebench-{runtime}-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN / "ketch"), "up", "--http", "--no-agent", "--port", str(port),
                               "--data-dir", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent = None
    cpu: CPUGroup | None = None
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                try:
                    async with s.get(url + "/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            cpu = CPUGroup(f"ketch-nodebench-{os.getpid()}") if os.geteuid() == 0 else None
            agent_log = open(log, "ab") if log else subprocess.DEVNULL
            t0 = time.monotonic()
            agent = subprocess.Popen([str(BIN / "ketch"), "agent", "--kubeconfig", f"{data}/kubeconfig",
                                      "--runtime", runtime, "--node-name", "bench-node",
                                      "--data-dir", f"{data}/agent", *agent_args],
                                     stdout=agent_log, stderr=subprocess.STDOUT,
                                     preexec_fn=cpu.join if cpu else None)
            if log:
                agent_log.close()
            while True:
                async with s.get(url + "/api/v1/nodes/bench-node") as r:
                    if r.status == 200:
                        node = await r.json()
                        if any(c["type"] == "Ready" and c["status"] == "True"
                               for c in node["status"].get("conditions") or ()):
                            break
                await asyncio.sleep(0.05)
            node_ready = time.monotonic() - t0
            w = Watcher(s, url)
            wt = asyncio.create_task(w.run())
            await asyncio.sleep(0.5)
            created: dict[str, float] = {}
            for i in range(pods):
                name = f"seq-{i}"
                body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                        "spec": {"containers": [container(image)], "terminationGracePeriodSeconds": 1}}
                created[name] = time.monotonic()
                async with s.post(url + "/api/v1/namespaces/default/pods", json=body) as r:
                    assert r.status == 201, await r.text()
                await asyncio.sleep(gap)
            await wait_count(w, None, "seq-", pods, 60)
            lat = sorted(w.ready_at[n] - created[n] for n in created if n in w.ready_at)
            p50 = statistics.median(lat) if lat else float("nan")
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
            kill_line, removal = "", 0.0
            if runtime in ("process", "containerd") and pods:
                kill_line = f" | kill -9 → Ready again {await kill_recovery(s, url, data, runtime):.3f}s"
            del_cpu0 = cpu.seconds() if cpu else float("nan")
            async with s.delete(url + "/api/v1/namespaces/default/pods") as r:
                await r.read()
            t_del = time.monotonic()
            while True:   # let the agent finish the deletions
                async with s.get(url + "/api/v1/namespaces/default/pods") as r:
                    if not (await r.json())["items"]:
                        break
                await asyncio.sleep(0.2)
            # The API forgets a pod once its containers stopped; the runtime then still removes its sandbox
            # (CNI, cgroup, logs). Wait for that too, so the deployment below does not compete with it.
            await runtime_removed(data, 120)
            removal = time.monotonic() - t_del
            del_cpu = (cpu.seconds() if cpu else float("nan")) - del_cpu0
            dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep"},
                   "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "dep"}},
                            "template": {"metadata": {"labels": {"app": "dep"}},
                                         "spec": {"containers": [container(image)],
                                                  "terminationGracePeriodSeconds": 1}}}}
            cpu0 = cpu.seconds() if cpu else float("nan")
            agent_cpu0 = proc_cpu(agent.pid)
            prof = None
            if pprof:
                prof = asyncio.create_task(containerd_profile(f"{data}/agent/containerd/containerd.sock.debug", 5, pprof))
                await asyncio.sleep(0.1)
            t1 = time.monotonic()
            async with s.post(url + "/apis/apps/v1/namespaces/default/deployments", json=dep) as r:
                assert r.status == 201, await r.text()
            ok = await wait_count(w, None, "dep-", replicas, 120)
            dep_time = time.monotonic() - t1 if ok else float("nan")
            dep_cpu = (cpu.seconds() if cpu else float("nan")) - cpu0
            agent_cpu = proc_cpu(agent.pid) - agent_cpu0
            dep = [n for n in w.ready_at if n.startswith("dep-")]
            if prof is not None:
                await prof

            def last(d: dict[str, float]) -> float:
                return max((d[n] for n in dep if n in d), default=float("nan")) - t1
            phases = (f"last pod created {last(w.seen_at):.2f}s, last bound {last(w.bound_at):.2f}s, "
                      f"last with its status written {last(w.running_at):.2f}s, last Ready {last(w.ready_at):.2f}s, "
                      f"writes per pod until Ready (create, bind, status) "
                      f"{statistics.median([w.events.get(n, 0) for n in dep]) if dep else 0:.0f}")
            await asyncio.sleep(5)
            idle_rss = rss_mib(agent.pid)
            async with s.delete(url + "/apis/apps/v1/namespaces/default/deployments/dep") as r:
                await r.read()
            async with s.delete(url + "/api/v1/namespaces/default/pods") as r:
                await r.read()
            for _ in range(100):
                async with s.get(url + "/api/v1/namespaces/default/pods") as r:
                    if not (await r.json())["items"]:
                        break
                await asyncio.sleep(0.2)
            await runtime_removed(data, 120)   # stopping the agent earlier would leave sandboxes running
            wt.cancel()
        print(f"{runtime:8s} node Ready {node_ready:.2f}s after agent start | startup latency over {len(lat)} pods "
              f"{gap}s apart: p50 {p50:.3f}s p99 {p99:.3f}s | deployment 0→{replicas} all Ready {dep_time:.2f}s | "
              f"agent RSS with {replicas} pods {idle_rss:.0f} MiB{kill_line} | {len(created)} pods deleted and "
              f"removed by the runtime in {removal:.2f}s ({del_cpu / max(1, len(created)) * 1000:.0f} ms of CPU per pod)",
              flush=True)
        await asyncio.sleep(2)
        print(f"{runtime:8s} deployment 0→{replicas}: {phases}; CPU of the agent and what it ran (runtime "
              f"included) {dep_cpu:.2f}s, {dep_cpu / replicas * 1000:.0f} ms per pod (the agent process alone "
              f"{agent_cpu / replicas * 1000:.0f} ms per pod); load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        print(f"{runtime:8s} agent idle RSS (no pods) {rss_mib(agent.pid):.0f} MiB", flush=True)
    finally:
        for p in (agent, server):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(data, ignore_errors=True)
        if cpu is not None:
            cpu.remove()


async def cri_bench(pods: int, conc: int, image: str, oci_runtime: str, repeat: int, pprof: str = "") -> None:
    """The containerd runtime alone, no apiserver and no agent: `pods` pods (a sandbox and one container)
    started `conc` at a time through ketch's CRI client, then stopped and removed the same way; CPU of
    containerd and all it runs (shims, OCI runtime, CNI plugins), this process's own CPU left out."""
    import uuid

    from ketch.node.containerd import ContainerdRuntime
    data = tempfile.mkdtemp(prefix="ketch-cribench-")
    cpu = CPUGroup(f"ketch-cribench-{os.getpid()}")
    cpu.join()   # containerd, started below, inherits the cgroup
    rt = ContainerdRuntime(data, oci_runtime=oci_runtime)
    rt.on_change = lambda uid: None
    sem = asyncio.Semaphore(conc)

    def node_cpu() -> float:
        return cpu.seconds() - proc_cpu(os.getpid())

    async def start(pod: dict) -> None:
        async with sem:
            await rt.start_container(pod, pod["spec"]["containers"][0], {}, 0)

    async def remove(pod: dict) -> None:
        async with sem:
            await rt.stop_container(pod["metadata"]["uid"], "c", 1)
            await rt.remove_pod(pod["metadata"]["uid"])
    try:
        await rt.start()
        await rt._wait_images()
        print(f"cri bench: OCI runtime {rt.oci_runtime} ({rt.oci_why}), {pods} pods {conc} at a time", flush=True)
        for _ in range(repeat):
            batch = [{"metadata": {"name": f"cri-{i}", "uid": str(uuid.uuid4()), "namespace": "default"},
                      "spec": {"containers": [container(image)], "terminationGracePeriodSeconds": 1}}
                     for i in range(pods)]
            prof = None
            if pprof:   # the start phase's first seconds
                prof = asyncio.create_task(containerd_profile(f"{data}/containerd/containerd.sock.debug", 3, pprof))
                await asyncio.sleep(0.1)
            c0, t0 = node_cpu(), time.monotonic()
            await asyncio.gather(*(start(p) for p in batch))
            c1, t1 = node_cpu(), time.monotonic()
            await asyncio.gather(*(remove(p) for p in batch))
            c2, t2 = node_cpu(), time.monotonic()
            if prof is not None:
                await prof
                pprof = ""
            print(f"cri bench: start {t1 - t0:.2f}s, {(c1 - c0) / pods * 1000:.0f} ms of CPU per pod | "
                  f"stop+remove {t2 - t1:.2f}s, {(c2 - c1) / pods * 1000:.0f} ms of CPU per pod | "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        await rt.close()
        shutil.rmtree(data, ignore_errors=True)
        cpu.remove()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", "--runtime", default="process,fake",
                    help="comma-separated: process, fake, containerd (default process,fake)")
    ap.add_argument("--image", help="container image (default ketch.local/busybox:1 for containerd, "
                    "busybox otherwise; the process runtime ignores it)")
    ap.add_argument("--replicas", type=int, default=50, help="replicas of the deployment scaled from 0")
    ap.add_argument("--repeat", type=int, default=1, help="run each runtime this many times")
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--gap", type=float, default=0.5)
    ap.add_argument("--agent-args", default="", help="more arguments for `ketch agent`, e.g. "
                    "'--oci-runtime runc' (one string, split as a shell would)")
    ap.add_argument("--pprof", default="", help="containerd runtime: write containerd's CPU profile (pprof format, "
                    "from its debug socket <containerd.sock>.debug) of the deployment's first 5 s to this file")
    ap.add_argument("--cri", type=int, default=0, metavar="N",
                    help="instead: the containerd runtime alone (no apiserver, no agent), N pods started and removed "
                    "--cri-parallel at a time, --repeat times; CPU per pod of containerd and all it runs")
    ap.add_argument("--cri-parallel", type=int, default=8)
    ap.add_argument("--oci-runtime", default="auto", help="with --cri: auto, runc or crun")
    ap.add_argument("--agent-log", default="", help="append the agent's output (and -v logs if asked for with "
                    "--agent-args -v) to this file")
    a = ap.parse_args()
    print(f"node bench on {os.cpu_count()} cpus", flush=True)
    if a.cri:
        asyncio.run(cri_bench(a.cri, a.cri_parallel, a.image or IMAGE["containerd"], a.oci_runtime, a.repeat, a.pprof))
        return
    for rt in a.runtimes.split(","):
        for _ in range(a.repeat):
            asyncio.run(bench(rt, a.pods, a.gap, a.image or IMAGE.get(rt, "busybox"), a.replicas,
                                shlex.split(a.agent_args), a.pprof,
                                a.agent_log))


if __name__ == "__main__":
    main()
