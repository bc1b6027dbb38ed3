"""Controller-manager benchmark: a 1,000-replica Deployment against a real `ketch up`.

Measures the time until every pod is created, until the deployment is available (this script
plays a bulk 'fake runtime' kubelet that marks pods Running/Ready as they appear), and for a
full rolling update (default 25%/25%). Prints figures; asserts nothing about timings.

    .venv/bin/python bench/controllers_bench.py [--replicas 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ketch.api.meta import now_rfc3339  # noqa: E402
from ketch.client.informer import Informer  # noqa: E402
from ketch.client.rest import Client, wait_ready  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


class BulkKubelet:
    """Marks every pod of a namespace Running and Ready as soon as it appears (a fake runtime)."""

    def __init__(self, client: Client, ns: str, concurrency: int = 48):
        self.client, self.ns = client, ns
        self.pods = Informer(client, client.resource("pods"), ns)
        self.ri = client.resource("pods")
        self.q: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.tasks: list[asyncio.Task] = []
        self.concurrency = concurrency

    def _enq(self, pod: dict) -> None:
        n = pod["metadata"]["name"]
        if not _ready(pod) and not pod["metadata"].get("deletionTimestamp") and n not in self.queued:
            self.queued.add(n)
            self.q.put_nowait(n)

    async def start(self) -> None:
        self.pods.add_handlers(self._enq, lambda o, n: self._enq(n))
        self.pods.start()
        await self.pods.synced.wait()
        self.tasks = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def _work(self) -> None:
        while True:
            name = await self.q.get()
            self.queued.discard(name)
            now = now_rfc3339()
            with contextlib.suppress(Exception):
                await self.client.patch(self.ri, self.ns, name, {"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}}, sub="status")

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.pods.stop()


async def _wait(cond, interval: float = 0.05, timeout: float = 600) -> float:
    t0 = time.monotonic()
    while not await cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("benchmark condition not met")
        await asyncio.sleep(interval)
    return time.monotonic() - t0


async def bench(url: str, replicas: int) -> None:
    client = Client(url)
    await wait_ready(client)
    ns = "bench"
    await client.create(client.resource("namespaces"), None, {"metadata": {"name": ns}})
    d_ri = client.resource("deployments", "apps")
    watcher = Informer(client, client.resource("pods"), ns)
    watcher.start()
    await watcher.synced.wait()

    def live() -> list[dict]:
        return [p for p in watcher.list() if not p["metadata"].get("deletionTimestamp")]

    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}
    t0 = time.monotonic()
    await client.create(d_ri, ns, dep)

    async def all_created() -> bool:
        return len(live()) >= replicas
    created = await _wait(all_created)
    print(f"create   {replicas} pods: {created:6.2f} s  ({replicas / created:7.1f} pods/s)")

    kubelet = BulkKubelet(client, ns)
    t1 = time.monotonic()
    await kubelet.start()

    async def available() -> bool:
        st = (await client.get(d_ri, ns, "web")).get("status") or {}
        return st.get("availableReplicas") == replicas
    await _wait(available, 0.1)
    avail = time.monotonic() - t1
    print(f"ready    {replicas} pods: {avail:6.2f} s  ({replicas / avail:7.1f} pods/s)  "
          f"[total from create: {time.monotonic() - t0:.2f} s]")

    t2 = time.monotonic()
    await client.patch(d_ri, ns, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}}, patch_type="strategic")

    async def rolled() -> bool:
        d = await client.get(d_ri, ns, "web")
        st = d.get("status") or {}
        return (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("updatedReplicas") == replicas
                and st.get("replicas") == replicas and st.get("availableReplicas") == replicas)
    await _wait(rolled, 0.1)
    roll = time.monotonic() - t2
    print(f"rollout  {replicas} pods: {roll:6.2f} s  ({replicas / roll:7.1f} pods/s replaced)")
    await kubelet.stop()
    await watcher.stop()
    await client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--split", action="store_true", help="run the controller-manager as its own process")
    args = ap.parse_args()
    ketch = str(Path(sys.executable).parent / "ketch")
    with tempfile.TemporaryDirectory() as d:
        port = _free_port()
        extra = ["--no-controllers"] if args.split else []
        srv = subprocess.Popen([ketch, "up", "--data-dir", d, "--port", str(port), "--http", *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cm = None
        try:
            time.sleep(0.5)
            if args.split:
                while not os.path.exists(os.path.join(d, "kubeconfig")):
                    time.sleep(0.05)
                cm = subprocess.Popen([ketch, "controller-manager", "--kubeconfig", os.path.join(d, "kubeconfig")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"controller-manager {'in its own process' if args.split else 'inside ketch up'}")
            asyncio.run(bench(f"http://127.0.0.1:{port}", args.replicas))
        finally:
            for p in (cm, srv):
                if p is not None:
                    p.terminate()
                    p.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
