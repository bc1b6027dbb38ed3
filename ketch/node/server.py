"""The node agent's own HTTPS endpoint (the kubelet API): logs, exec, attach, port-forward, metrics.

Only the apiserver may call it: TLS with a client certificate signed by the cluster CA whose
common name is `kube-apiserver-kubelet-client` (or whose organisation is system:masters).
Paths follow the kubelet's: /containerLogs/<ns>/<pod>/<ctr>, /exec/<ns>/<pod>/<ctr>,
/attach/<ns>/<pod>/<ctr>, /portForward/<ns>/<pod>, /metrics/resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import json
import logging
import os
import pty
import signal
import ssl
import struct
import subprocess
import termios
import time
import tty as tty_mod
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from ..selfsigned import self_signed
from . import metrics
from .runtime import Runtime

log = logging.getLogger("ketch.node.server")

APISERVER_CN = "kube-apiserver-kubelet-client"
CHANNEL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
PF_PROTOCOLS = ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io", "portforward.k8s.io"]
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
FOLLOW_POLL = 0.2
LOG_MAX_SIZE = 10 * 1024 * 1024   # the kubelet's containerLogMaxSize and containerLogMaxFiles defaults
LOG_MAX_FILES = 5
ROTATE_INTERVAL = 10.0
INDEX_INTERVAL = 0.5              # how often log growth is timestamped (the accuracy of line times)
ACTIVE: set[asyncio.Task] = set()     # streaming handlers in flight (tests check none outlive a client)


def status_body(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def fail(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(status_body(code, reason, message), status=code)


def server_ssl_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Serve with cert/key; demand a client certificate signed by `ca`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _peer_allowed(request: web.Request) -> bool:
    transport = request.transport
    sslobj = transport.get_extra_info("ssl_object") if transport else None
    if sslobj is None:
        return False
    cert = sslobj.getpeercert() or {}
    names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k in ("commonName", "organizationName")]
    return APISERVER_CN in names or "system:masters" in names


def _truthy(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


def rotate_log(path: str, max_size: int = LOG_MAX_SIZE, max_files: int = LOG_MAX_FILES) -> bool:
    """Copy-truncate `path` into path.1 (shifting path.1.. up, dropping the oldest) once it passes max_size.

    The container keeps writing to its O_APPEND descriptor, so truncating in place is safe; only
    what it writes between the copy and the truncation can be lost (the copy re-reads the tail to
    keep that window short)."""
    try:
        if os.path.getsize(path) <= max_size:
            return False
        _shift_rotated(path, max_files)
        with open(path, "r+b") as src, open(path + ".1", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            src.truncate(0)
        if os.path.exists(path + ".times"):
            os.replace(path + ".times", path + ".1.times")
        return True
    except OSError:
        return False


def _shift_rotated(path: str, max_files: int) -> None:
    """path.1.. become path.2.. (with their .times indexes); the oldest beyond max_files is dropped."""
    for i in range(max_files - 1, 1, -1):
        for suffix in ("", ".times"):
            if os.path.exists(f"{path}.{i - 1}{suffix}"):
                os.replace(f"{path}.{i - 1}{suffix}", f"{path}.{i}{suffix}")


def _renamed(f: Any, path: str) -> bool:
    """Whether `path` is now another file than the open `f` (a rotation renamed it)."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except OSError:
        return False


def index_log(path: str, sizes: dict[str, int], now: float) -> None:
    """Append "<size> <time>" to path.times when the log changed size: the process runtime's output
    carries no time, so a line's time is the first index entry at or past its end."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return
    if sizes.get(path) == size:
        return
    sizes[path] = size
    with contextlib.suppress(OSError), open(path + ".times", "a") as f:
        f.write(f"{size} {now:.6f}\n")


def timed_lines(path: str, default: float) -> list[tuple[float, bytes]]:
    """The lines of one log file with their times (`default` for what was not indexed yet)."""
    import bisect
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    offsets: list[int] = []
    stamps: list[float] = []
    with contextlib.suppress(OSError), open(path + ".times") as f:
        for row in f:
            with contextlib.suppress(ValueError):
                o, t = row.split()
                if offsets and int(o) < offsets[-1]:
                    offsets, stamps = [], []     # truncated by a rotation: only what follows counts
                offsets.append(int(o))
                stamps.append(float(t))
    out, end = [], 0
    for line in data.splitlines(keepends=True):
        end += len(line)
        i = bisect.bisect_left(offsets, end)
        out.append((stamps[i] if i < len(stamps) else default, line))
    return out


def log_chain(path: str) -> list[str]:
    """A log file and its rotated predecessors, oldest first."""
    old = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        old.append(f"{path}.{i}")
        i += 1
    return old[::-1] + [path]


def _rfc3339nano(t: float) -> str:
    d = datetime.datetime.fromtimestamp(t, datetime.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond * 1000:09d}Z"


class NodeServer:
    """Serves the kubelet API for the pods an agent runs."""

    def __init__(self, runtime: Runtime, find_pod: Callable[[str, str], dict | None],
                 pod_by_uid: Callable[[str], dict | None], node_names: Callable[[], list[str]]):
        self.runtime = runtime
        self.find_pod = find_pod
        self.pod_by_uid = pod_by_uid
        self.ssl: ssl.SSLContext | None = None
        self.node_names = node_names
        self._samples: list[metrics.Sample] = []
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.log_max_size, self.log_max_files = LOG_MAX_SIZE, LOG_MAX_FILES
        self._rotator: asyncio.Task | None = None
        self._sizes: dict[str, int] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        r = app.router
        r.add_get("/containerLogs/{ns}/{pod}/{ctr}", self.logs)
        for verb in ("exec", "attach"):
            r.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{ctr}}", self.exec if verb == "exec" else self.attach)
        r.add_route("*", "/portForward/{ns}/{pod}", self.port_forward)
        r.add_get("/metrics/resource", self.resource_metrics)
        r.add_get("/healthz", self.healthz)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.ssl is not None and not _peer_allowed(request):
            return fail(403, "Forbidden", "only the apiserver may use the node agent's API")
        task = asyncio.current_task()
        if task is not None:
            ACTIVE.add(task)
        try:
            return await handler(request)
        finally:
            if task is not None:
                ACTIVE.discard(task)

    async def healthz(self, request: web.Request) -> web.Response:
        """ok, and how many streams are in flight besides this request (tests check for leaks)."""
        return web.Response(text=f"ok\nactive streams: {len(ACTIVE) - 1}\n")

    async def start(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> int:
        """Listen; return the port (an ephemeral one when port is 0)."""
        self.ssl = ssl_ctx
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=ssl_ctx, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self._rotator is None:
            self._rotator = asyncio.create_task(self._rotate_logs())
        return self.port

    async def close(self) -> None:
        if self._rotator is not None:
            self._rotator.cancel()
            with contextlib.suppress(BaseException):
                await self._rotator
            self._rotator = None
        if self.runner is not None:
            await self.runner.cleanup()

    async def _rotate_logs(self) -> None:
        """Timestamp the growth of each running container's log; keep it under log_max_size,
        log_max_files files in all."""
        last_rotation = time.monotonic()
        while True:
            await asyncio.sleep(INDEX_INTERVAL)
            rotate = time.monotonic() - last_rotation >= ROTATE_INTERVAL
            if rotate:
                last_rotation = time.monotonic()
            now = time.time()
            live = set()
            cri = getattr(self.runtime, "log_format", "") == "cri"
            for uid in list(self.runtime.pod_uids()):
                for name, runs in list(self.runtime.containers(uid).items()):
                    files = self.runtime.log_files(uid, name)
                    if runs and runs[-1].running and files:
                        live.add(files[-1])
                        if not cri:   # CRI records carry their time
                            index_log(files[-1], self._sizes, now)
                        if rotate and (await self._rotate_by_reopen(uid, name, files[-1]) if cri
                                       else rotate_log(files[-1], self.log_max_size, self.log_max_files)):
                            self._sizes.pop(files[-1], None)
            for gone in set(self._sizes) - live:
                del self._sizes[gone]

    async def _rotate_by_reopen(self, uid: str, name: str, path: str) -> bool:
        """The kubelet's rotation for a CRI runtime, without a window where lines are lost: rename the
        log to path.1 (older ones shifted) and have the runtime reopen path (ReopenContainerLog)."""
        try:
            if os.path.getsize(path) <= self.log_max_size:
                return False
            _shift_rotated(path, self.log_max_files)
            os.replace(path, path + ".1")
        except OSError:
            return False
        try:
            reopened = await self.runtime.reopen_log(uid, name)
        except Exception as e:      # the container just ended, for one
            log.warning("reopening the log of %s/%s: %s", uid, name, e)
            reopened = False
        if not reopened:        # readers still find a current file
            with contextlib.suppress(OSError):
                open(path, "ab").close()
        return True

    # -- lookup ------------------------------------------------------------------------------
    def _pod(self, request: web.Request) -> tuple[dict, str]:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod = self.find_pod(ns, name)
        if pod is None:
            raise web.HTTPNotFound(text=json.dumps(status_body(404, "NotFound", f'pods "{name}" not found')),
                                   content_type="application/json")
        return pod, pod["metadata"]["uid"]

    def _container(self, pod: dict, ctr: str) -> None:
        names = [c["name"] for c in (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]]
        if ctr not in names:
            msg = f"container {ctr} is not valid for pod {pod['metadata']['name']}"
            raise web.HTTPBadRequest(text=json.dumps(status_body(400, "BadRequest", msg)),
                                     content_type="application/json")

    # -- logs --------------------------------------------------------------------------------
    async def logs(self, request: web.Request) -> web.StreamResponse:
        """The container's log: tailLines, limitBytes, previous, follow, timestamps, since*."""
        pod, uid = self._pod(request)
        ctr = request.match_info["ctr"]
        self._container(pod, ctr)
        q = request.query
        files = self.runtime.log_files(uid, ctr)
        runs = self.runtime.containers(uid).get(ctr) or []
        previous = _truthy(q.get("previous"))
        if previous:
            if len(files) < 2:
                return fail(400, "BadRequest", f'previous terminated container "{ctr}" in pod '
                                                f'"{pod["metadata"]["name"]}" not found')
            path, rec = files[-2], runs[-2]
        else:
            if runs and not files:
                return fail(400, "BadRequest", f"the {self.runtime.name} runtime keeps no container logs")
            if not files:
                return fail(400, "BadRequest", f'container "{ctr}" in pod "{pod["metadata"]["name"]}" is waiting '
                                                "to start: ContainerCreating")
            path, rec = files[-1], runs[-1]
        since: float | None = None
        if q.get("sinceSeconds"):
            since = time.time() - int(q["sinceSeconds"])
        elif q.get("sinceTime"):
            since = datetime.datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00")).timestamp()
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        stamps = _truthy(q.get("timestamps"))
        follow = _truthy(q.get("follow")) and not previous
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if getattr(self.runtime, "log_format", "") == "cri":
            with contextlib.suppress(ConnectionError):     # the caller went away
                await self._cri_log(request, resp, uid, ctr, path, rec, since, tail, limit, stamps, follow)
            return resp
        try:
            sent = 0

            async def emit(data: bytes, when: float | None) -> bool:
                nonlocal sent
                if stamps and when is not None:
                    prefix = _rfc3339nano(when).encode() + b" "
                    data = b"".join(prefix + line for line in data.splitlines(keepends=True))
                if limit is not None:
                    data = data[:max(limit - sent, 0)]
                if data:
                    await resp.write(data)
                    sent += len(data)
                return limit is None or sent < limit

            try:
                f = open(path, "rb")
            except OSError:
                await resp.write_eof()
                return resp
            with f:
                # Old lines take their time from the log's index (see index_log); lines read
                # while following take the time they were read.
                if stamps or since is not None or tail is not None:
                    default = rec.finished_at or time.time()
                    lines = [x for p in log_chain(path)[:-1] for x in timed_lines(p, default)]
                    current = timed_lines(path, default)
                    f.seek(sum(len(line) for _, line in current))     # follow on from what was read
                    lines += current
                    if since is not None:
                        lines = [x for x in lines if x[0] >= since]
                    if tail is not None:
                        lines = lines[-tail:] if tail > 0 else []
                    existing = b"".join((_rfc3339nano(t).encode() + b" " + line) if stamps else line
                                        for t, line in lines)
                else:      # the whole log as it is: no need to look at lines
                    existing = b""
                    for p in log_chain(path)[:-1]:
                        with contextlib.suppress(OSError), open(p, "rb") as old:
                            existing += old.read()
                    existing += f.read()
                go_on = await emit(existing, None)
                partial = b""
                while follow and go_on:
                    if os.fstat(f.fileno()).st_size < f.tell():
                        f.seek(0)     # rotated (copy-truncated) under us
                    chunk = f.read(65536)
                    if chunk:
                        data, _, partial = (partial + chunk).rpartition(b"\n")
                        if data:
                            go_on = await emit(data + b"\n", time.time())
                        continue
                    t = request.transport
                    if t is None or t.is_closing():
                        break      # the caller went away
                    latest = self.runtime.latest(uid, ctr)
                    if latest is not rec or not rec.running:
                        # the attempt ended: drain what it wrote last, then stop
                        rest = partial + f.read()
                        if rest:
                            await emit(rest, time.time())
                        break
                    await asyncio.sleep(FOLLOW_POLL)
            await resp.write_eof()
            return resp
        except ConnectionError:   # the caller went away
            pass
        return resp

    async def _cri_log(self, request: web.Request, resp: web.StreamResponse, uid: str, ctr: str, path: str,
                       rec: Any, since: float | None, tail: int | None, limit: int | None, stamps: bool,
                       follow: bool) -> None:
        """A log of CRI records (the containerd runtime): the content only, as the kubelet prints it;
        `timestamps` and `since*` use each record's own time."""
        from .containerd import logs as cri_logs
        sent = 0

        async def emit(data: bytes) -> bool:
            nonlocal sent
            if limit is not None:
                data = data[:max(limit - sent, 0)]
            if data:
                await resp.write(data)
                sent += len(data)
            return limit is None or sent < limit

        try:
            f = open(path, "rb")
        except OSError:
            await resp.write_eof()
            return
        try:
            data = b""
            for p in log_chain(path)[:-1]:
                with contextlib.suppress(OSError), open(p, "rb") as old:
                    data += old.read()
            current = f.read()
            complete = current.rfind(b"\n") + 1
            f.seek(complete)          # an unfinished record is read again when following
            data += current[:complete]
            if since is not None or tail is not None:
                data = cri_logs.select_lines(data, since, tail)
            text, at_start = cri_logs.render_bytes(data, stamps)
            del data, current
            go_on = await emit(text)
            buf = b""
            while follow and go_on:
                if os.fstat(f.fileno()).st_size < f.tell():
                    f.seek(0)     # rotated (copy-truncated) under us
                    buf = b""
                chunk = f.read(65536)
                if not chunk and _renamed(f, path):
                    # rotated by rename + ReopenContainerLog: take what containerd wrote to the old
                    # file before it switched, then go on with the new one
                    await asyncio.sleep(FOLLOW_POLL)
                    chunk = f.read()
                    if not chunk:
                        f.close()
                        f = open(path, "rb")
                        continue
                if chunk:
                    buf += chunk
                    complete = buf.rfind(b"\n") + 1
                    if complete:
                        data, buf = buf[:complete], buf[complete:]
                        if since is not None:
                            data = cri_logs.select_lines(data, since, None)
                        text, at_start = cri_logs.render_bytes(data, stamps, at_start)
                        go_on = await emit(text)
                    continue
                t = request.transport
                if t is None or t.is_closing():
                    break      # the caller went away
                latest = self.runtime.latest(uid, ctr)
                if latest is not rec or not rec.running:
                    # the attempt ended: containerd may still be writing what it said last
                    await asyncio.sleep(FOLLOW_POLL)
                    rest = buf + f.read()
                    if rest:
                        await emit(cri_logs.render_bytes(rest if rest.endswith(b"\n") else rest + b"\n", stamps,
                                                         at_start)[0])
                    break
                await asyncio.sleep(FOLLOW_POLL)
            await resp.write_eof()
        finally:
            f.close()

    # -- exec / attach -----------------------------------------------------------------------
    def _running(self, pod: dict, uid: str, ctr: str) -> web.Response | None:
        self._container(pod, ctr)
        rec = self.runtime.latest(uid, ctr)
        if rec is None or not rec.running:
            phase = (pod.get("status") or {}).get("phase", "")
            return fail(400, "BadRequest", f"container {ctr} is not running in pod {pod['metadata']['name']}"
                                           f"{' (phase ' + phase + ')' if phase else ''}")
        return None

    async def _websocket(self, request: web.Request, protocols: list[str]) -> web.WebSocketResponse | web.Response:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return fail(400, "BadRequest", "ketch serves exec, attach and port-forward over WebSocket only "
                                           "(no SPDY/3.1 upgrade): use kubectl 1.30 or newer")
        ws = web.WebSocketResponse(protocols=protocols, heartbeat=None, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        return ws

    async def _refuse(self, request: web.Request, resp: web.Response) -> web.StreamResponse:
        """An exec/attach the agent cannot serve: over a WebSocket, the Status on the error channel
        (a refused upgrade would lose the message on the way through the apiserver)."""
        if request.headers.get("Upgrade", "").lower() != "websocket" or resp.body is None:
            return resp
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS)
        await ws.prepare(request)
        st = json.loads(bytes(resp.body))   # type: ignore[arg-type]
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(bytes([ERROR]) + json.dumps({"metadata": {}, "status": "Failure",
                                                             "message": st["message"],
                                                             "reason": st["reason"]}).encode())
        await ws.close()
        return ws

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """Run a command beside the container, streamed over the channel protocol."""
        pod, uid = self._pod(request)
        ctr = request.match_info["ctr"]
        bad = self._running(pod, uid, ctr)
        if bad is not None:
            return await self._refuse(request, bad)
        q = request.query
        command = q.getall("command", [])
        if not command:
            return await self._refuse(request, fail(400, "BadRequest",
                                                    "you must specify at least one command for the container"))
        tty = _truthy(q.get("tty"))
        inside = self.runtime.exec_command(uid, ctr, command, tty)
        context = self.runtime.exec_context(uid, ctr) if inside is None else (dict(os.environ), None)
        if context is None:
            return await self._refuse(request, fail(400, "BadRequest",
                                                    f"the {self.runtime.name} runtime cannot exec commands"))
        ws = await self._websocket(request, CHANNEL_PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        env, cwd = context
        argv, kill = inside if inside is not None else (None, None)
        await run_exec(ws, command, env, cwd, _truthy(q.get("stdin")), tty, argv=argv, kill=kill)
        return ws

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """Attach to the running container: its output from now on (the process runtime has no stdin)."""
        pod, uid = self._pod(request)
        ctr = request.match_info["ctr"]
        bad = self._running(pod, uid, ctr)
        if bad is not None:
            return await self._refuse(request, bad)
        q = request.query
        try:
            url = await self.runtime.attach_url(uid, ctr, _truthy(q.get("stdin")), _truthy(q.get("tty")))
        except Exception as e:     # the runtime refused (a CRI error, for one)
            msg = getattr(e, "details", lambda: None)() or str(e)
            return await self._refuse(request, fail(500, "InternalError", f"unable to attach: {msg}"))
        ws = await self._websocket(request, CHANNEL_PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        if url:     # containerd's streaming server: over SPDY, which can pass a stdin close on
            from .containerd.attach import relay_attach
            await relay_attach(ws, url, _truthy(q.get("stdin")), _truthy(q.get("tty")))
            return ws
        files = self.runtime.log_files(uid, ctr)
        rec = self.runtime.latest(uid, ctr)
        reader = asyncio.create_task(_drain(ws))
        cri = getattr(self.runtime, "log_format", "") == "cri"
        buf = b""
        try:
            with open(files[-1], "rb") as f:
                f.seek(0, os.SEEK_END)
                while not ws.closed and not reader.done():
                    chunk = f.read(65536)
                    if chunk and cri:    # CRI records: their content, on the channel of their stream
                        from .containerd.logs import records
                        buf += chunk
                        complete = buf.rfind(b"\n") + 1
                        for r in records(buf[:complete]):
                            await ws.send_bytes(bytes([STDERR if r.stream == "stderr" else STDOUT]) + r.content)
                        buf = buf[complete:]
                        continue
                    if chunk:
                        await ws.send_bytes(bytes([STDOUT]) + chunk)
                        continue
                    if rec is None or not rec.running:
                        break
                    await asyncio.sleep(FOLLOW_POLL)
            if not ws.closed:
                await ws.send_bytes(bytes([ERROR]) + json.dumps({"metadata": {}, "status": "Success"}).encode())
        except (ConnectionError, OSError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            await ws.close()
        return ws

    # -- port-forward ------------------------------------------------------------------------
    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """Tunnel TCP to the pod's ports: kubectl's SPDY-in-WebSocket or the v4 channel framing."""
        pod, uid = self._pod(request)
        host = self.runtime.port_forward_host(uid)
        if host is None:
            return fail(400, "BadRequest", f"the {self.runtime.name} runtime cannot port-forward")
        ws = await self._websocket(request, PF_PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        from .streams import port_forward_spdy, port_forward_v4
        netns = await self.runtime.pod_netns(uid)
        if ws.ws_protocol == "SPDY/3.1+portforward.k8s.io":
            await port_forward_spdy(ws, host, pod["metadata"]["name"], netns)
            return ws
        ports = [int(p) for v in request.query.getall("ports", []) for p in v.split(",") if p]
        await port_forward_v4(ws, host, ports, pod["metadata"]["name"], netns)
        return ws

    # -- metrics -----------------------------------------------------------------------------
    def _sessions(self) -> dict[tuple[str, str], int | str]:
        """What to measure for each running container: its session id or its cgroup path."""
        out: dict[tuple[str, str], int | str] = {}
        for uid in self.runtime.pod_uids():
            for name in self.runtime.containers(uid):
                sid = self.runtime.container_cgroup(uid, name) or self.runtime.container_session(uid, name)
                if sid is not None:
                    out[(uid, name)] = sid
        return out

    async def resource_metrics(self, request: web.Request) -> web.Response:
        """{"node": {...}, "pods": [...]}: CPU in cores and memory in bytes, over a short window."""
        sessions = self._sessions()
        sids = {s for s in sessions.values() if isinstance(s, int)}
        cgroups = {s for s in sessions.values() if isinstance(s, str)}
        now = metrics.sample(sids, cgroups)
        old = self._samples[-1] if self._samples else None
        if old is None or now.at - old.at < 0.5 or now.at - old.at > 60:
            old = now
            await asyncio.sleep(0.5)
            now = metrics.sample(sids, cgroups)
        self._samples = [now]
        window = now.at - old.at
        pods = []
        for uid in self.runtime.pod_uids():
            pod = self.pod_by_uid(uid)
            if pod is None:
                continue
            ctrs = []
            for name in self.runtime.containers(uid):
                sid = sessions.get((uid, name))
                if sid is None:
                    continue
                ctrs.append({"name": name, "cpu": metrics.rate(old, now, sid),
                             "memory": now.sessions.get(sid, (0, 0))[1]})
            if ctrs:
                pods.append({"namespace": pod["metadata"].get("namespace"), "name": pod["metadata"]["name"],
                             "containers": ctrs})
        return web.json_response({"timestamp": time.time(), "window": window, "nodes": self.node_names(),
                                  "node": {"cpu": metrics.rate(old, now), "memory": now.node_memory},
                                  "pods": pods})


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


async def run_exec(ws: web.WebSocketResponse, command: list[str], env: dict[str, str], cwd: str | None,
                   stdin: bool, tty: bool, argv: list[str] | None = None,
                   kill: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run `command` (on the host, or through `argv` that runs it in a container), pumping the channels
    until it exits or the client goes; kill it (`kill`, then its process group) if the client goes."""
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    run = argv or command
    master = slave = None
    try:
        if tty:
            master, slave = pty.openpty()
            if argv:     # the terminal is the runtime's (in the container): ours only passes bytes through
                tty_mod.setraw(slave)
            # A session leader that opens a terminal gets it as its controlling terminal.
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", 'exec "$@" <>"$0" >&0 2>&0', os.ttyname(slave), *run,
                stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True)
            os.close(slave)
            slave = None
        else:
            proc = await asyncio.create_subprocess_exec(
                *run, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    except (OSError, subprocess.SubprocessError) as e:
        msg = f"failed to exec in container: exec: \"{command[0]}\": {getattr(e, 'strerror', None) or e}"
        with contextlib.suppress(Exception):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(
                {"metadata": {}, "status": "Failure", "message": msg, "reason": "InternalError"}).encode())
        await ws.close()
        if slave is not None:
            os.close(slave)
        if master is not None:
            os.close(master)
        return
    loop = asyncio.get_running_loop()

    start_error = b""     # the runtime could not start the command (ctr says so on its stderr, first)

    async def pump(reader: asyncio.StreamReader | None, channel: int) -> None:
        nonlocal start_error
        if reader is None:
            return
        first = True
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if first and argv and channel == STDERR and data.startswith(b"ctr: OCI runtime exec failed"):
                start_error = data[5:].strip()
                continue
            first = False
            await ws.send_bytes(bytes([channel]) + data)

    async def pump_pty(fd: int) -> None:
        q: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
            q.put_nowait(data)
        loop.add_reader(fd, readable)
        try:
            while True:
                data = await q.get()
                if not data:
                    return
                await ws.send_bytes(bytes([STDOUT]) + data)
        finally:
            loop.remove_reader(fd)

    async def read_client() -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not msg.data:
                continue
            raw = msg.data if msg.type == WSMsgType.BINARY else msg.data.encode()   # the Python client sends str as text
            ch, data = raw[0], raw[1:]
            if ch == STDIN and data:
                if master is not None:
                    os.write(master, data)
                elif proc.stdin is not None:
                    proc.stdin.write(data)
                    with contextlib.suppress(ConnectionError):
                        await proc.stdin.drain()
            elif ch == RESIZE and master is not None:
                with contextlib.suppress(ValueError, KeyError, OSError):
                    size = json.loads(data)
                    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size["Height"], size["Width"], 0, 0))
            elif ch == CLOSE and v5 and data[:1] == bytes([STDIN]):
                if master is not None:
                    os.write(master, b"\x04")
                elif proc.stdin is not None:
                    proc.stdin.close()

    client = asyncio.create_task(read_client())
    if master is not None:
        outputs = [asyncio.create_task(pump_pty(master))]
    else:
        outputs = [asyncio.create_task(pump(proc.stdout, STDOUT)), asyncio.create_task(pump(proc.stderr, STDERR))]
    done_out = asyncio.gather(*outputs, proc.wait())
    try:
        await asyncio.wait([client, done_out], return_when=asyncio.FIRST_COMPLETED)
        if done_out.done() and not done_out.cancelled() and done_out.exception() is None:
            code = proc.returncode or 0
            if code == 0:
                st: dict[str, Any] = {"metadata": {}, "status": "Success"}
            elif start_error:    # as the kubelet reports a failed CRI exec: an internal error, not an exit code
                st = {"metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
                      "message": "Internal error occurred: error executing command in container: failed to exec "
                                 f"in container: {start_error.decode(errors='replace')}"}
            else:
                st = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: error executing command "
                                 f"{command}: exit status {code}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            with contextlib.suppress(Exception):
                await ws.send_bytes(bytes([ERROR]) + json.dumps(st).encode())
    finally:
        gone = proc.returncode is None     # the client went away: nothing it started may outlive it
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()     # in case it left its process group (ctr may)
        if gone and kill is not None:
            # the process in the container is not ours: once the host side cannot start it any more
            # (its process group is dead), the runtime kills it
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
            with contextlib.suppress(Exception):
                await kill()
        for t in (client, *outputs):
            t.cancel()
        done_out.cancel()
        for t in (client, *outputs):
            with contextlib.suppress(BaseException):
                await t
        with contextlib.suppress(BaseException):
            await done_out
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 5)
        if master is not None:
            with contextlib.suppress(OSError):
                os.close(master)
        await ws.close()


async def start_for_agent(agent: Any) -> NodeServer:
    """Start the agent's API with TLS from its data dir and publish the port in its Node(s).

    <data>/kubelet.crt+key serve (issued by the cluster CA inside `ketch up`; self-signed when
    missing); <data>/ca.crt (the cluster CA, written by `ketch agent` when it joins) verifies the
    apiserver's client certificate. Without a CA the API refuses every caller.
    """
    d = agent.data_dir
    cert, key, ca = (os.path.join(d, f) for f in ("kubelet.crt", "kubelet.key", "ca.crt"))
    if not (os.path.exists(cert) and os.path.exists(key)):
        self_signed(cert, key, ["localhost", "127.0.0.1", agent.host_ip])
    ctx: ssl.SSLContext
    if os.path.exists(ca):
        ctx = server_ssl_context(cert, key, ca)
    else:
        log.warning("no cluster CA in %s: the node API will refuse every caller", d)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cert)   # trusts nobody but itself

    def find_pod(ns: str, name: str) -> dict | None:
        return agent.pods.get(f"{ns}/{name}")

    def pod_by_uid(uid: str) -> dict | None:
        st = agent.states.get(uid)
        pod = agent.pods.get(st.key) if st is not None and st.key else None
        return pod if pod is not None and pod["metadata"].get("uid") == uid else None

    srv = NodeServer(agent.runtime, find_pod, pod_by_uid, lambda: [n.name for n in agent.nodes])
    try:
        port = await srv.start("0.0.0.0", agent.opts.kubelet_port, ctx)
    except OSError as e:   # busy (another agent, a real kubelet): take any port, the Node says which
        log.warning("node API cannot listen on :%d (%s); using an ephemeral port", agent.opts.kubelet_port,
                    e.strerror)
        await srv.close()
        port = await srv.start("0.0.0.0", 0, ctx)
    for spec in agent.nodes:
        spec.kubelet_port = port
    log.info("node API listening on :%d", port)
    return srv
