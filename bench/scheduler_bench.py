"""Scheduler benchmark: real HTTP against a fresh `ketch up`, the scheduler in its own process.

For each size: N Node objects (with Leases renewed every 10 s, as kubelets do), then M pods
created at once by 32 clients; measures the time from the first create until a watch has seen
every pod bound, and prints pods/s and how evenly the pods spread. Never asserts.

    .venv/bin/python bench/scheduler_bench.py                      # 100/1k, 1k/10k, 5k/10k
    .venv/bin/python bench/scheduler_bench.py --sizes 1000x3000 --in-process
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson

BIN = Path(sys.executable).parent
CLIENTS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node(name: str) -> dict:
    alloc = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "topology.kubernetes.io/zone": f"zone-{hash(name) % 3}"}},
            "status": {"capacity": alloc, "allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def lease(name: str) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()}}


def now_micro() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "registry.local/bench/app:v1",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


async def run_parallel(items: list, fn, clients: int = CLIENTS) -> None:
    it = iter(items)

    async def worker() -> None:
        for x in it:
            await fn(x)
    await asyncio.gather(*(worker() for _ in range(clients)))


async def post(s: aiohttp.ClientSession, url: str, body: dict) -> None:
    for _ in range(20):
        async with s.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
            await r.read()
            if r.status < 300 or r.status == 409:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"POST {url} failed: {r.status}")


async def renew_leases(s: aiohttp.ClientSession, base: str, names: list[str], stop: asyncio.Event,
                       interval: float) -> None:
    """Renew every node's Lease once per interval, spread evenly over the interval."""
    url = f"{base}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
    hdr = {"Content-Type": "application/merge-patch+json"}
    i = 0
    while not stop.is_set():
        name = names[i % len(names)]
        i += 1
        body = orjson.dumps({"spec": {"renewTime": now_micro()}})
        try:
            async with s.patch(url + name, data=body, headers=hdr) as r:
                await r.read()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(interval / len(names))


async def bench(nodes: int, pods: int, in_process: bool, lease_interval: float) -> dict:
    data = tempfile.mkdtemp(prefix="ketch-sched-bench-")
    port = free_port()
    procs: list[subprocess.Popen] = []
    log = open(os.path.join(data, "ketch.log"), "wb")
    up = [str(BIN / "ketch"), "up", "--data-dir", data, "--port", str(port), "--http", "--no-agent", "--no-dns"]
    if not in_process:
        up.append("--no-scheduler")
    procs.append(subprocess.Popen(up, stdout=log, stderr=subprocess.STDOUT))
    base = f"http://127.0.0.1:{port}"
    conn = aiohttp.TCPConnector(limit=CLIENTS * 2 + 8)
    out: dict = {}
    async with aiohttp.ClientSession(connector=conn) as s:
        for _ in range(300):
            try:
                async with s.get(base + "/readyz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        names = [f"node-{i:05d}" for i in range(nodes)]
        await post(s, base + "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "kube-node-lease"}})
        await run_parallel(names, lambda n: post(s, base + "/api/v1/nodes", node(n)))
        await run_parallel(names, lambda n: post(
            s, base + "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease(n)))
        stop = asyncio.Event()
        renewer = asyncio.create_task(renew_leases(s, base, names, stop, lease_interval))
        if not in_process:
            procs.append(subprocess.Popen([str(BIN / "ketch"), "scheduler", "--kubeconfig",
                                           os.path.join(data, "kubeconfig")], stdout=log, stderr=subprocess.STDOUT))
        # Wait until the scheduler is up: one probe pod bound.
        await post(s, base + "/api/v1/namespaces/default/pods", pod("probe"))
        for _ in range(600):
            async with s.get(base + "/api/v1/namespaces/default/pods/probe") as r:
                if (orjson.loads(await r.read()).get("spec") or {}).get("nodeName"):
                    break
            await asyncio.sleep(0.1)
        # Watch from now: count bindings.
        async with s.get(base + "/api/v1/namespaces/default/pods", params={"limit": "1"}) as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
        bound: dict[str, str] = {}
        done = asyncio.Event()
        t_last = [0.0]

        async def watch() -> None:
            params = {"watch": "true", "resourceVersion": rv, "labelSelector": "app=bench"}
            async with s.get(base + "/api/v1/namespaces/default/pods", params=params,
                             timeout=aiohttp.ClientTimeout(total=None)) as r:
                buf = b""
                async for chunk in r.content.iter_any():
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if not line:
                            continue
                        ev = orjson.loads(line)
                        obj = ev["object"]
                        nn = (obj.get("spec") or {}).get("nodeName")
                        name = obj["metadata"]["name"]
                        if nn and name not in bound and name != "probe":
                            bound[name] = nn
                            if len(bound) >= pods:
                                t_last[0] = time.monotonic()
                                done.set()
                                return
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        created = [0.0]

        async def create(i: int) -> None:
            await post(s, base + "/api/v1/namespaces/default/pods", pod(f"bench-{i:06d}"))
        creator = asyncio.create_task(run_parallel(list(range(pods)), create))
        await creator
        created[0] = time.monotonic() - t0
        try:
            await asyncio.wait_for(done.wait(), timeout=max(120, pods / 20))
        except TimeoutError:
            pass
        elapsed = (t_last[0] or time.monotonic()) - t0
        stop.set()
        renewer.cancel()
        watcher.cancel()
        per_node = Counter(bound.values())
        out = {"nodes": nodes, "pods": pods, "bound": len(bound), "seconds": elapsed,
               "pods_per_s": len(bound) / elapsed if elapsed else 0, "create_s": created[0],
               "nodes_used": len(per_node), "max_per_node": max(per_node.values(), default=0),
               "stdev_per_node": statistics.pstdev([per_node.get(n, 0) for n in names]) if names else 0}
    for p in reversed(procs):
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(data, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100x1000,1000x10000,5000x10000", help="NODESxPODS,...")
    ap.add_argument("--in-process", action="store_true", help="run the scheduler inside ketch up")
    ap.add_argument("--lease-interval", type=float, default=10.0)
    args = ap.parse_args()
    print(f"{'nodes':>6} {'pods':>6} {'bound':>6} {'seconds':>8} {'pods/s':>8} {'create s':>9} "
          f"{'nodes used':>10} {'max/node':>8} {'stdev':>6}")
    for size in args.sizes.split(","):
        n, m = (int(x) for x in size.split("x"))
        r = asyncio.run(bench(n, m, args.in_process, args.lease_interval))
        print(f"{r['nodes']:>6} {r['pods']:>6} {r['bound']:>6} {r['seconds']:>8.1f} {r['pods_per_s']:>8.0f} "
              f"{r['create_s']:>9.1f} {r['nodes_used']:>10} {r['max_per_node']:>8} {r['stdev_per_node']:>6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
