"""Network programming latency: from an endpoint change in the API to the rule in the kernel.

Starts a real `ketch up` (controllers, no node agent), creates N services x M ready endpoints
(this script plays kubelet: pods bound to a node, given IPs, marked Ready), runs the proxy
in-process against a network namespace it creates (never the host's ruleset), then flips pod
readiness one at a time and measures
  - change -> kernel: PATCH pods/x/status until the proxy's nft transaction for it has returned
    (through the Endpoints controller, the proxy's watch and nft);
  - proxy only: watch event -> nft transaction done;
  - the nft time of one incremental transaction and of a full rebuild of the table.
Prints figures; asserts nothing about timings. Needs root, nft and ip.

    .venv/bin/python bench/proxy_bench.py [--services 100] [--endpoints 10] [--flips 20] [--nft-binary]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ketch.api.errors import StatusError  # noqa: E402
from ketch.api.meta import now_rfc3339  # noqa: E402
from ketch.client.rest import Client, wait_ready  # noqa: E402
from ketch.proxy import nft  # noqa: E402
from ketch.proxy.proxier import Proxier  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(ip: str, ready: bool) -> dict:
    now = now_rfc3339()
    return {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}}


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def _fmt(xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return f"median {statistics.median(ms):.1f} ms, p90 {_pct(ms, 0.9):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


async def bench(url: str, netns: str, n_svc: int, n_ep: int, flips: int, binary: bool) -> None:
    client = Client(url)
    await wait_ready(client)
    ns = "bench"
    with contextlib.suppress(StatusError):
        await client.create(client.resource("namespaces"), None, {"metadata": {"name": ns}})
    with contextlib.suppress(StatusError):
        await client.create(client.resource("nodes"), None, {"metadata": {"name": "node-a"}, "status": {
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now_rfc3339(),
                            "lastTransitionTime": now_rfc3339()}]}})
    svcs, pods = client.resource("services"), client.resource("pods")
    sem = asyncio.Semaphore(32)
    t0 = time.monotonic()

    async def make_service(i: int) -> None:
        async with sem:
            await client.create(svcs, ns, {"metadata": {"name": f"s{i}"}, "spec": {
                "selector": {"svc": f"s{i}"}, "ports": [{"port": 80, "targetPort": 8080}]}})

    async def make_pod(i: int, j: int) -> None:
        async with sem:
            name = f"s{i}-p{j}"
            await client.create(pods, ns, {"metadata": {"name": name, "labels": {"svc": f"s{i}"}}, "spec": {
                "nodeName": "node-a", "containers": [{"name": "c", "image": "x"}]}})
            await client.patch(pods, ns, name, _status(f"10.{100 + i // 250}.{i % 250}.{j + 1}", True), sub="status")
    await asyncio.gather(*(make_service(i) for i in range(n_svc)))
    await asyncio.gather(*(make_pod(i, j) for i in range(n_svc) for j in range(n_ep)))
    print(f"created {n_svc} services and {n_svc * n_ep} ready pods in {time.monotonic() - t0:.1f}s", flush=True)

    proxier = Proxier(client, "node-a", table="ketch", netns=netns,
                      nft_command=["ip", "netns", "exec", netns, "nft"] if binary else None)
    stop = asyncio.Event()
    task = asyncio.create_task(proxier.run(stop))

    def programmed() -> int:
        return sum(1 for name in (proxier.applied.chains if proxier.applied else {}) if name.startswith("ep-"))
    t0 = time.monotonic()
    while programmed() < n_svc * n_ep:
        await asyncio.sleep(0.01)
        if time.monotonic() - t0 > 120:
            raise SystemExit(f"only {programmed()} endpoints programmed after 120s")
    print(f"initial sync: {n_svc * n_ep} endpoints in the kernel {time.monotonic() - t0:.2f}s after the proxy "
          f"started (its last transaction {proxier.last_sync_seconds * 1000:.0f} ms)", flush=True)

    end_to_end: list[float] = []
    nft_times: list[float] = []
    proxier.latencies.clear()
    def has_ip(ip: str) -> bool:
        return proxier.applied is not None and any(
            f"dnat ip to {ip}:" in r for c, rules in proxier.applied.chains.items() if c.startswith("ep-")
            for r in rules)
    for k in range(flips):
        i, j = (k * 37) % n_svc, (k * 7) % n_ep
        ip = f"10.{100 + i // 250}.{i % 250}.{j + 1}"
        for ready in (False, True):      # out of rotation, then back
            syncs = proxier.syncs
            t0 = time.monotonic()
            await client.patch(pods, ns, f"s{i}-p{j}", _status(ip, ready), sub="status")
            while has_ip(ip) != ready:
                await asyncio.sleep(0.001)
            end_to_end.append(time.monotonic() - t0)
            if proxier.syncs > syncs:
                nft_times.append(proxier.last_sync_seconds)
    print(f"nft via {'the nft binary (ip netns exec)' if binary else 'libnftables in-process'}")
    print(f"endpoint change -> rule in kernel ({n_svc} services x {n_ep} endpoints): {_fmt(end_to_end)}")
    print(f"proxy only (watch event -> nft done): {_fmt(proxier.latencies)}")
    print(f"one incremental nft transaction: {_fmt(nft_times)}")
    full = build = 0.0
    for _ in range(3):
        t1 = time.monotonic()
        want = nft.build_ruleset(proxier.services.list(),
                                 {f"{e['metadata']['namespace']}/{e['metadata']['name']}": e
                                  for e in proxier.endpoints.list()})
        cmds = nft.render("ketch", want, None)
        t2 = time.monotonic()
        await nft.apply(cmds, proxier.nft)
        build, full = t2 - t1, time.monotonic() - t2
    print(f"full rebuild: {len(cmds)} nft commands, render {build * 1000:.0f} ms, nft {full * 1000:.0f} ms")
    stop.set()
    await task
    await client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--flips", type=int, default=20)
    ap.add_argument("--nft-binary", action="store_true", help="run `nft -f -` per sync instead of libnftables")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("proxy_bench needs root (network namespaces, nft)")
    netns = f"ketch-bench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    port = _free_port()
    ketch = str(Path(sys.executable).parent / "ketch")
    with tempfile.TemporaryDirectory() as d:
        log = open(os.path.join(d, "ketch.log"), "wb")
        srv = subprocess.Popen([ketch, "up", "--data-dir", d, "--port", str(port), "--http", "--no-agent",
                                "--no-scheduler"], stdout=log, stderr=subprocess.STDOUT)
        try:
            asyncio.run(bench(f"http://127.0.0.1:{port}", netns, args.services, args.endpoints, args.flips,
                              args.nft_binary))
        finally:
            srv.terminate()
            srv.wait(20)
            subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    main()
