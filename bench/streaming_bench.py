"""Streaming benchmark: exec round trips, exec/log throughput, port-forward through the apiserver.

A fresh `ketch up --http --runtime process --kubelet-port 0`; every stream goes client → apiserver
→ node agent (TLS, client certificate) → process. Never asserts.

    .venv/bin/python bench/streaming_bench.py
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
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


async def wait_running(s: aiohttp.ClientSession, url: str, name: str) -> None:
    for _ in range(200):
        async with s.get(f"{url}/api/v1/namespaces/default/pods/{name}") as r:
            pod = await r.json()
        if (pod.get("status") or {}).get("phase") == "Running":
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} not running")


async def exec_ws(s: aiohttp.ClientSession, url: str, pod: str, command: list[str]) -> tuple[int, float]:
    """Run a command over the v5 channel protocol; (stdout bytes, seconds)."""
    q = "&".join(f"command={c}" for c in command) + "&stdout=true&stderr=true"
    t = time.perf_counter()
    n = 0
    async with s.ws_connect(f"{url}/api/v1/namespaces/default/pods/{pod}/exec?{q}",
                            protocols=["v5.channel.k8s.io"], max_msg_size=0) as ws:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY and msg.data[:1] == b"\x01":
                n += len(msg.data) - 1
    return n, time.perf_counter() - t


def http_get(port: int, path: str = "/") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        n = 0
        while chunk := c.recv(1 << 16):
            n += len(chunk)
    return n


async def main() -> None:
    d = tempfile.mkdtemp(prefix="ketch-stream-bench-")
    port = free_port()
    up = subprocess.Popen([str(BIN / "ketch"), "up", "--data-dir", d, "--port", str(port), "--http", "--runtime",
                           "process", "--node-name", "bench", "--kubelet-port", "0"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, KUBECONFIG=f"{d}/kubeconfig", HOME=d)
    web_port = free_port()
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(url + "/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            with open(f"{d}/www.bin", "wb") as f:
                f.write(os.urandom(20 << 20))
            pods = {"sh": ["sleep", "3600"],
                    "chatty": ["sh", "-c", "head -c 50000000 /dev/zero | tr '\\0' x | fold -w 99; sleep 3600"],
                    "web": ["python3", "-m", "http.server", str(web_port), "--bind", "127.0.0.1", "--directory", d]}
            for name, cmd in pods.items():
                body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                        "spec": {"terminationGracePeriodSeconds": 1,
                                 "containers": [{"name": "main", "image": "x", "command": cmd}]}}
                async with s.post(f"{url}/api/v1/namespaces/default/pods", data=orjson.dumps(body),
                                  headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 201, await r.text()
            for name in pods:
                await wait_running(s, url, name)
            await asyncio.sleep(2)

            times = [(await exec_ws(s, url, "sh", ["true"]))[1] for _ in range(50)]
            print(f"exec `true` round trip (v5 WebSocket, 50 sequential): median {statistics.median(times) * 1e3:.1f} ms,"
                  f" p95 {sorted(times)[47] * 1e3:.1f} ms")
            n, dt = await exec_ws(s, url, "sh", ["sh", "-c", "head -c 200000000 /dev/zero"])
            print(f"exec stdout throughput: {n / dt / 1e6:.0f} MB/s ({n >> 20} MiB in {dt:.2f} s)")
            t = time.perf_counter()
            async with s.get(f"{url}/api/v1/namespaces/default/pods/chatty/log") as r:
                n = len(await r.read())
            dt = time.perf_counter() - t
            print(f"log read throughput: {n / dt / 1e6:.0f} MB/s ({n >> 20} MiB in {dt:.2f} s)")

        local = free_port()
        pf = subprocess.Popen([str(BIN / "kubectl"), "port-forward", "pod/web", f"{local}:{web_port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        pf.stdout.readline()
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            list(ex.map(lambda _: http_get(local), range(200)))
        dt = time.perf_counter() - t
        print(f"kubectl port-forward (SPDY in WebSocket): 200 HTTP requests, 20 in parallel: {200 / dt:.0f} req/s")
        t = time.perf_counter()
        n = http_get(local, "/www.bin")
        dt = time.perf_counter() - t
        print(f"kubectl port-forward download: {n / dt / 1e6:.0f} MB/s ({n >> 20} MiB in {dt:.2f} s)")
        pf.terminate()
        pf.wait()
        subprocess.run([str(BIN / "kubectl"), "delete", "pods", "--all", "--timeout=30s"], env=env,
                       capture_output=True)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(20)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
