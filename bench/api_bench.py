"""API benchmark: real HTTP against a freshly started `ketch up`, client on the same machine.

Prints creates/s, p50/p99 latency of create/get/list, list latency at 3k and 10k pods,
watch event delivery latency with 100 watchers, and the server's RSS. Never asserts.

    .venv/bin/python bench/api_bench.py [--clients 32] [--pods 3000] [--big 10000] [--watchers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import aiohttp
import orjson

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pod(name: str, ts: float | None = None) -> dict:
    """A ~1 KB pod, like a small real workload."""
    p = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "backend", "shard": str(hash(name) % 8)},
                     "annotations": {"bench/sent": str(ts or time.time()), "owner": "api-bench"}},
        "spec": {"containers": [{
            "name": "main", "image": "registry.local/bench/app:v1.2.3",
            "command": ["/bin/app", "--serve", "--port=8080"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": f"VAR_{i}", "value": "x" * 20} for i in range(6)],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        }]},
    }
    return p


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_probe(directory: str, n: int = 300, interval: float = 0.01) -> str:
    """What the disk gives one small commit: 4 KB written and fdatasync'ed `n` times at 1/interval per
    second (as the watch phase commits), in the store's directory. A watch event waits for its
    commit's fsync, so this p99 is a floor under the watch p99."""
    path = os.path.join(directory, "disk-probe.bin")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    lat = []
    try:
        for i in range(n):
            os.pwrite(fd, b"x" * 4120, (i * 4120) % (1 << 20))
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
            time.sleep(interval)
    finally:
        os.close(fd)
        os.unlink(path)
    return (f"{pct(lat, .5) * 1e3:.2f} / {pct(lat, .99) * 1e3:.1f} / {max(lat) * 1e3:.0f} ms, "
            f"{sum(x > 0.025 for x in lat)} of {n} over 25 ms")


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Conn(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection for request/response at the lowest client cost (requests
    written as prepared bytes, responses framed by Content-Length): the bench client shares the two
    cores with the server, so what the client spends is taken from the server being measured."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = self.buf[:end].lower().split(b"\r\n")
        n = next((int(line[15:]) for line in head if line.startswith(b"content-length:")), None)
        if n is None:
            self.waiter.set_exception(RuntimeError(f"response without Content-Length: {head[:3]!r}"))
            return
        if len(self.buf) < end + 4 + n:
            return
        status = int(self.buf[9:12])
        body, self.buf = self.buf[end + 4:end + 4 + n], self.buf[end + 4 + n:]
        self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)  # type: ignore[union-attr]
        return await self.waiter


async def run_creates(url: str, ns: str, names: list[str], clients: int, headers: dict,
                      ssl_ctx: object) -> tuple[float, list[float]]:
    """`clients` connections creating pods as fast as the server answers; the latency of each create."""
    loop = asyncio.get_running_loop()
    u = urllib.parse.urlsplit(url)
    head = (f"POST /api/v1/namespaces/{ns}/pods HTTP/1.1\r\nHost: {u.netloc}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\nUser-Agent: api-bench\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())).encode()
    requests = []
    for name in names:
        body = orjson.dumps(pod(name))
        requests.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    conns = []
    for _ in range(clients):
        _, c = await loop.create_connection(_Conn, u.hostname, u.port, ssl=ssl_ctx if u.scheme == "https" else None)
        conns.append(c)
    lat: list[float] = []
    it = iter(zip(names, requests, strict=True))

    async def worker(c: _Conn) -> None:
        for name, req in it:
            t = time.perf_counter()
            status, body = await c.request(req)
            if status != 201:
                raise RuntimeError(f"create {name}: {status} {body[:300]!r}")
            lat.append(time.perf_counter() - t)
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.transport.close()  # type: ignore[union-attr]
    return len(names) / (time.perf_counter() - t0), lat


async def run_gets(s: aiohttp.ClientSession, url: str, ns: str, names: list[str], clients: int,
                   seconds: float) -> tuple[float, list[float]]:
    lat: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            name = random.choice(names)
            t = time.perf_counter()
            async with s.get(f"{url}/api/v1/namespaces/{ns}/pods/{name}") as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"get {name}: {r.status}")
            lat.append(time.perf_counter() - t)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return len(lat) / (time.perf_counter() - t0), lat


async def run_list(s: aiohttp.ClientSession, url: str, ns: str, times: int = 5) -> tuple[list[float], list[float], int]:
    """Latency until the whole list response is received, and including the client's JSON decode."""
    received, decoded = [], []
    n = 0
    for _ in range(times):
        t = time.perf_counter()
        async with s.get(f"{url}/api/v1/namespaces/{ns}/pods") as r:
            body = await r.read()
        received.append(time.perf_counter() - t)
        data = orjson.loads(body)
        decoded.append(time.perf_counter() - t)
        n = len(data["items"])
    return received, decoded, n


class _WatchStream(asyncio.Protocol):
    """One watch connection read at the lowest cost the client can manage: each read is stamped with
    its arrival time and kept; parsing happens after the run. (An aiohttp reader that parsed every
    event as it came made the bench client, one Python thread serving 100 connections, part of the
    measured delay: the last of the 100 watchers waited for the other 99 to be parsed.)"""

    PATTERN = b'"type":"ADDED"'

    def __init__(self, request: bytes, want: int, done: asyncio.Event, counts: list[int], i: int):
        self.request, self.want, self.done, self.counts, self.i = request, want, done, counts, i
        self.reads: list[tuple[float, bytes]] = []
        self.tail = b""
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.reads.append((time.time(), data))
        both = self.tail + data
        self.counts[self.i] += both.count(self.PATTERN)
        self.tail = both[-(len(self.PATTERN) - 1):]
        if self.counts[self.i] >= self.want and min(self.counts) >= self.want:
            self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def latencies(self) -> list[tuple[str, float]]:
        """Arrival time of each ADDED event's last byte minus the send time the pod carries."""
        raw = b"".join(d for _, d in self.reads)
        ends, pos = [], 0
        for t, d in self.reads:
            pos += len(d)
            ends.append((pos, t))
        body_at = raw.index(b"\r\n\r\n") + 4
        # de-chunk, remembering where in the raw stream each piece of body came from
        pieces: list[tuple[int, bytes]] = []
        p = body_at
        while p < len(raw):
            eol = raw.find(b"\r\n", p)
            if eol < 0:
                break
            size = int(raw[p:eol].split(b";")[0], 16)
            if size == 0 or eol + 2 + size > len(raw):
                break
            pieces.append((eol + 2, raw[eol + 2:eol + 2 + size]))
            p = eol + 2 + size + 2
        out, buf, k = [], b"", 0
        for start, piece in pieces:
            buf += piece
            while (nl := buf.find(b"\n")) >= 0:
                line, buf = buf[:nl], buf[nl + 1:]
                # the newline's raw offset: the piece holds the rest of buf after it
                raw_end = start + len(piece) - len(buf)
                while ends[k][0] < raw_end:
                    k += 1
                ev = orjson.loads(line)
                if ev["type"] == "ADDED":
                    meta = ev["object"]["metadata"]
                    out.append((meta["name"], ends[k][1] - float(meta["annotations"]["bench/sent"])))
        return out


async def run_watch(s: aiohttp.ClientSession, url: str, ns: str, watchers: int, events: int,
                    rate: float, headers: dict, ssl_ctx: object) -> tuple[list[float], str]:
    """Watchers on a namespace; pods created at `rate`/s carry their send time; latency = arrival - send."""
    loop = asyncio.get_running_loop()
    async with s.get(f"{url}/api/v1/namespaces/{ns}/pods") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    u = urllib.parse.urlsplit(url)
    request = (f"GET /api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv} HTTP/1.1\r\n"
               f"Host: {u.netloc}\r\nAccept: application/json\r\nUser-Agent: api-bench\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    done = asyncio.Event()
    counts = [0] * watchers
    streams: list[_WatchStream] = []
    transports = []
    for i in range(watchers):
        st = _WatchStream(request, events, done, counts, i)
        tr, _ = await loop.create_connection(lambda st=st: st, u.hostname, u.port,
                                             ssl=ssl_ctx if u.scheme == "https" else None)
        streams.append(st)
        transports.append(tr)
    # every watcher has its response headers before the first event is written
    while any(not st.reads for st in streams):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    for k in range(events):
        body = orjson.dumps(pod(f"w-{k}", time.time()))
        async with s.post(f"{url}/api/v1/namespaces/{ns}/pods", data=body,
                          headers={"Content-Type": "application/json"}) as r:
            await r.read()
        await asyncio.sleep(1.0 / rate)
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        for tr in transports:
            tr.close()
    per_event: dict[str, list[float]] = {}
    for st in streams:
        for name, x in st.latencies():
            per_event.setdefault(name, []).append(x)
    # Where the tail comes from: an event late for every watcher was late leaving (the create, or a
    # pause of the server); one late for some watchers only, late in the fan-out.
    worst = sorted(per_event.items(), key=lambda kv: -max(kv[1]))[:3]
    note = ", ".join(f"{n} first {min(v) * 1e3:.0f} / last {max(v) * 1e3:.0f} ms" for n, v in worst)
    return [x for v in per_event.values() for x in v], note


async def commit_stats(s: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Two histograms from /metrics: the store's commit times (SQLite: each commit is a WAL fsync),
    keys = bucket bounds, and the watch dispatch latency (commit → handed to every watcher),
    keys "dispatch:" + bound."""
    async with s.get(f"{url}/metrics") as r:
        text = await r.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ketch_store_commit_duration_seconds_bucket"):
            out[line.split('le="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("ketch_store_committed_writes_total"):
            out["writes"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("ketch_watch_dispatch_seconds_bucket"):
            out["dispatch:" + line.split('le="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return out


def commit_note(before: dict[str, float], after: dict[str, float]) -> str:
    """Commits in a phase, and how many took over 25 and 100 ms: a slow disk, not the server."""
    if "+Inf" not in after:
        return "-"
    d = {k: after[k] - before.get(k, 0) for k in after}
    n = d["+Inf"]
    return (f"{n:.0f} commits ({d['writes'] / max(n, 1):.1f} writes each), "
            f"{n - d['0.025']:.0f} over 25 ms, {n - d['0.1']:.0f} over 100 ms")


def dispatch_note(before: dict[str, float], after: dict[str, float]) -> str:
    """p50 / p99 of the server's commit → handed-to-every-watcher time in a phase, as the upper
    bounds of the histogram buckets they fall in."""
    d = sorted(((float(k.split(":")[1]), after[k] - before.get(k, 0)) for k in after
                if k.startswith("dispatch:")), key=lambda kv: kv[0])
    if not d or not d[-1][1]:
        return "-"
    total = d[-1][1]

    def bound(q: float) -> str:
        le = next(le for le, n in d if n >= q * total)
        return "over 1000" if le == float("inf") else f"≤ {le * 1e3:g}"
    return f"{bound(.5)} / {bound(.99)} ({total:.0f} changes)"


async def create_namespace(s: aiohttp.ClientSession, url: str, ns: str) -> None:
    async with s.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": ns}}) as r:
        await r.read()


def credentials(kubeconfig: str | None) -> tuple[dict, object]:
    """Headers and SSL context from a ketch kubeconfig (token + embedded CA); none for plain HTTP."""
    if not kubeconfig:
        return {}, None
    import base64
    import ssl

    import yaml
    cfg = yaml.safe_load(open(kubeconfig))
    token = cfg["users"][0]["user"].get("token")
    ca = cfg["clusters"][0]["cluster"].get("certificate-authority-data")
    ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode()) if ca else None
    return ({"Authorization": f"Bearer {token}"} if token else {}), ctx


async def bench(args: argparse.Namespace, url: str, pid: int, kubeconfig: str | None = None,
                data_dir: str | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    out["idle RSS (MB)"] = f"{rss_mb(pid):.1f}"
    headers, ssl_ctx = credentials(kubeconfig)
    conn = aiohttp.TCPConnector(limit=args.clients + args.watchers + 8, ssl=ssl_ctx if ssl_ctx else True)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
        await create_namespace(s, url, "bench")
        await create_namespace(s, url, "big")
        await create_namespace(s, url, "watch")
        # warm-up
        await run_creates(url, "bench", [f"warm-{i}" for i in range(200)], args.clients, headers, ssl_ctx)
        names = [f"p-{i}" for i in range(args.pods)]
        m0 = await commit_stats(s, url)
        c0, s0, t0 = time.process_time(), cpu_seconds(pid), time.perf_counter()
        rate, lat = await run_creates(url, "bench", names, args.clients, headers, ssl_ctx)
        wall = time.perf_counter() - t0
        out["creates: store commits (disk)"] = commit_note(m0, await commit_stats(s, url))
        out["creates/s"] = f"{rate:.0f}"
        out["creates: CPU busy, server / bench client (cores)"] = \
            f"{(cpu_seconds(pid) - s0) / wall:.2f} / {(time.process_time() - c0) / wall:.2f}"
        out["create p50/p99 (ms)"] = f"{pct(lat, .5) * 1e3:.1f} / {pct(lat, .99) * 1e3:.1f}"
        rate, lat = await run_gets(s, url, "bench", names, args.clients, args.seconds)
        out["gets/s"] = f"{rate:.0f}"
        out["get p50/p99 (ms)"] = f"{pct(lat, .5) * 1e3:.1f} / {pct(lat, .99) * 1e3:.1f}"
        # list of exactly --pods pods
        big_names = [f"b-{i}" for i in range(args.pods)]
        await run_creates(url, "big", big_names, args.clients, headers, ssl_ctx)
        rec, dec, n = await run_list(s, url, "big")
        out[f"list {n} pods, received p50/max (s)"] = f"{statistics.median(rec):.3f} / {max(rec):.3f}"
        out[f"list {n} pods, + client decode p50 (s)"] = f"{statistics.median(dec):.3f}"
        more = [f"b-{i}" for i in range(args.pods, args.big)]
        await run_creates(url, "big", more, args.clients, headers, ssl_ctx)
        rec, dec, n = await run_list(s, url, "big")
        out[f"list {n} pods, received p50/max (s)"] = f"{statistics.median(rec):.3f} / {max(rec):.3f}"
        out[f"list {n} pods, + client decode p50 (s)"] = f"{statistics.median(dec):.3f}"
        m0 = await commit_stats(s, url)
        lat, worst = await run_watch(s, url, "watch", args.watchers, args.watch_events, args.watch_rate,
                                     headers, ssl_ctx)
        out[f"watch delivery, {args.watchers} watchers, p50/p99 (ms)"] = \
            f"{pct(lat, .5) * 1e3:.1f} / {pct(lat, .99) * 1e3:.1f} ({len(lat)} deliveries)"
        out["watch: slowest events, first / last watcher"] = worst
        m1 = await commit_stats(s, url)
        out["watch: store commits (disk)"] = commit_note(m0, m1)
        out["watch: commit → handed to all watchers, p50/p99 (ms)"] = dispatch_note(m0, m1)
        out["RSS after load (MB)"] = f"{rss_mb(pid):.1f}"
        rss_later = asyncio.create_task(asyncio.sleep(35))
        if data_dir:
            out["disk: 4 KB + fdatasync at 100/s, p50 / p99 / max"] = disk_probe(data_dir)
        await rss_later      # the server hands freed heap back every 30 s
        out["RSS 35 s after the load (MB)"] = f"{rss_mb(pid):.1f}"
    await asyncio.sleep(3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--pods", type=int, default=3000)
    ap.add_argument("--big", type=int, default=10000)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--watch-events", type=int, default=200)
    ap.add_argument("--watch-rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--url", help="bench an already running apiserver instead of starting one")
    ap.add_argument("--full", action="store_true", help="run scheduler/controllers/agent inside ketch up too")
    ap.add_argument("--http", action="store_true", help="plain HTTP without authentication (default: TLS + token)")
    ap.add_argument("--pid", type=int, help="with --url: the server's PID, for RSS")
    ap.add_argument("--datastore", choices=("sqlite", "etcd", "both"), default="sqlite",
                    help="store behind the apiserver; both prints them side by side (etcd: Debian etcd-server)")
    args = ap.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    if args.url:
        report(args, {"server": asyncio.run(bench(args, args.url, args.pid or os.getpid()))})
        return
    stores = ["sqlite", "etcd"] if args.datastore == "both" else [args.datastore]
    columns = {st: run_one(args, st) for st in stores}
    report(args, columns)


def start_etcd(data: str) -> tuple[subprocess.Popen, str]:
    """One etcd member (Debian etcd-server) on loopback ports, for the etcd column."""
    cport, pport = free_port(), free_port()
    proc = subprocess.Popen(["/usr/bin/etcd", "--name", "bench", "--data-dir", os.path.join(data, "etcd"),
                             "--listen-client-urls", f"http://127.0.0.1:{cport}",
                             "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                             "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-cluster", f"bench=http://127.0.0.1:{pport}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{cport}/health", timeout=1) as r:
                if b"true" in r.read():
                    return proc, f"etcd://127.0.0.1:{cport}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("etcd did not start")


def run_one(args: argparse.Namespace, datastore: str) -> dict[str, str]:
    data = tempfile.mkdtemp(prefix="ketch-bench-")
    port = free_port()
    log = open(os.path.join(data, "ketch.log"), "wb")
    # The apiserver alone, as the kube-apiserver + etcd figures it is compared with: no scheduler,
    # controllers or node agent writing status updates for the benchmark's pods.
    helptext = subprocess.run([str(BIN / "ketch"), "up", "--help"], capture_output=True, text=True).stdout
    extra = [f for f in ("--no-scheduler", "--no-controllers", "--no-agent", "--no-proxy", "--no-dns") if f in helptext]
    if args.full:
        extra = []
    if args.http:
        extra.append("--http")
    etcd = None
    if datastore == "etcd":
        etcd, url = start_etcd(data)
        extra += ["--datastore", url]
    proc = subprocess.Popen([str(BIN / "ketch"), "up", "--data-dir", data, "--port", str(port), *extra],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while b"ready" not in open(os.path.join(data, "ketch.log"), "rb").read():
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("ketch up did not become ready:\n" + open(os.path.join(data, "ketch.log")).read())
            time.sleep(0.05)
        time.sleep(1.0)
        scheme = "http" if args.http else "https"
        return asyncio.run(bench(args, f"{scheme}://127.0.0.1:{port}", proc.pid,
                                 None if args.http else os.path.join(data, "kubeconfig"), data))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if etcd is not None:
            etcd.terminate()
            etcd.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def report(args: argparse.Namespace, columns: dict[str, dict[str, str]]) -> None:
    """A table: one row per figure, one column per datastore."""
    print(f"ketch API benchmark ({os.cpu_count()} cores, {args.clients} clients, 1 KB pods, client on the same machine, "
          f"{'plain HTTP' if args.http else 'TLS + bearer token'}; the apiserver alone)")
    names = list(columns)
    keys = list(dict.fromkeys(k for c in columns.values() for k in c))
    width = max(len(k) for k in keys)
    cw = [max(len(n), *(len(columns[n].get(k, "")) for k in keys)) for n in names]
    print(f"  {'':<{width}}  " + "  ".join(n.ljust(w) for n, w in zip(names, cw, strict=True)))
    for k in keys:
        print(f"  {k:<{width}}  " + "  ".join(columns[n].get(k, "-").ljust(w) for n, w in zip(names, cw, strict=True)))


if __name__ == "__main__":
    main()
