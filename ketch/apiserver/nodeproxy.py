"""pods/log, exec, attach, portforward and metrics.k8s.io: proxied to the node agent's own API.

The apiserver finds the pod's node, dials `https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>`
with a client certificate from the cluster CA (CN kube-apiserver-kubelet-client, O system:masters)
and streams the answer back: chunked text for logs, WebSocket messages relayed one by one for
exec/attach/port-forward. Like kube-apiserver without --kubelet-certificate-authority, it does not
verify the agent's serving certificate (a joined agent may serve a self-signed one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from ..api import errors
from ..api.registry import ResourceInfo
from ..api.selectors import parse_label_selector
from . import auth

log = logging.getLogger("ketch.apiserver.nodeproxy")

CLIENT_CN = "kube-apiserver-kubelet-client"
NODE_SUBRESOURCES = ("log", "exec", "attach", "portforward")
DIAL_TIMEOUT = 10.0
METRICS_TIMEOUT = 5.0


def _bad(message: str) -> errors.StatusError:
    return errors.StatusError(400, "BadRequest", message)


def _cpu(cores: float) -> str:
    return f"{int(cores * 1e9)}n"


def _mem(b: int) -> str:
    return f"{int(b) // 1024}Ki"


class NodeProxy:
    """Dials node agents on behalf of API clients."""

    def __init__(self, server: Any):
        self.server = server
        self._session: aiohttp.ClientSession | None = None

    # -- credentials -------------------------------------------------------------------------
    def pki_dir(self) -> str | None:
        """The cluster PKI: the server's pki_dir, else <dir of the SQLite file>/pki (ketch up)."""
        d = getattr(self.server, "pki_dir", None)
        if d:
            return d
        path = getattr(self.server.store, "path", None)
        return os.path.join(os.path.dirname(os.path.abspath(path)), "pki") if path else None

    def _ssl(self) -> ssl.SSLContext:
        from .pki import PKI, _write
        d = self.pki_dir()
        if not d or not os.path.exists(os.path.join(d, "ca.key")):
            raise errors.StatusError(503, "ServiceUnavailable",
                                     "this apiserver has no cluster CA to authenticate to node agents with")
        pki = PKI(d)
        cert, key = os.path.join(d, "kubelet-client.crt"), os.path.join(d, "kubelet-client.key")
        if not (os.path.exists(cert) and os.path.exists(key)):
            cert_pem, key_pem = pki.issue(CLIENT_CN, ["system:masters"])
            _write(key, key_pem)
            _write(cert, cert_pem, 0o644)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(cert, key)
        return ctx

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl(), limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=DIAL_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- where ---------------------------------------------------------------------------------
    def _node_url(self, node_name: str) -> str:
        nri = self.server.registry.get("", "v1", "nodes")
        entry = self.server.service.current(nri, None, node_name)
        if entry is None:
            raise errors.StatusError(503, "ServiceUnavailable", f'node "{node_name}" not found')
        st = entry.obj.get("status") or {}
        port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or ()}
        host = addrs.get("InternalIP") or addrs.get("ExternalIP") or addrs.get("Hostname")
        if not port or not host:
            raise errors.StatusError(503, "ServiceUnavailable", f'node "{node_name}" publishes no agent endpoint')
        return f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"

    # -- pods/<sub> ----------------------------------------------------------------------------
    async def pod_request(self, request: web.Request, ri: ResourceInfo, ns: str, name: str,
                          sub: str) -> web.StreamResponse:
        """Validate against the pod, then hand the request to its node's agent."""
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed()
        pod = (await self.server.service.get(ri, ns, name)).obj
        user = request.get("user")
        if user is not None and not user.is_admin:
            # exec, attach and port-forward are `create` even over a WebSocket GET (as in Kubernetes
            # 1.31+); node credentials read no logs and open no streams.
            verb = "get" if sub == "log" else "create"
            why = (f'node "{user.node_name}" cannot {verb} pods/{sub}' if user.node_name else
                   auth.authorize(user, verb, "pods", sub, ns, name, current=pod))
            if why is not None:
                raise errors.forbidden(f'pods "{name}" is forbidden: {why}', "pods", name, "")
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName")
        if not node:
            raise _bad(f"pod {name} does not have a host assigned")
        q = request.query
        path = f"/portForward/{ns}/{name}"
        if sub != "portforward":
            names = [c["name"] for c in spec.get("containers") or ()]
            all_names = [c["name"] for c in spec.get("initContainers") or ()] + names
            ctr = q.get("container") or ""
            if not ctr:
                if len(names) != 1:
                    raise _bad(f"a container name must be specified for pod {name}, choose one of: "
                               f"[{' '.join(names)}]")
                ctr = names[0]
            if ctr not in all_names:
                raise _bad(f"container {ctr} is not valid for pod {name}")
            if sub in ("exec", "attach"):
                phase = status.get("phase")
                if phase in ("Succeeded", "Failed"):
                    raise _bad(f"cannot {sub} into a container in a completed pod; current phase is {phase}")
                cs = {c.get("name"): c for c in (status.get("containerStatuses") or []) +
                      (status.get("initContainerStatuses") or [])}.get(ctr) or {}
                if "running" not in (cs.get("state") or {}):
                    raise _bad(f"container {ctr} is not running in pod {name}; its state is "
                               f"{next(iter(cs.get('state') or {'waiting': 0}))}")
            path = {"log": "/containerLogs", "exec": "/exec", "attach": "/attach"}[sub] + f"/{ns}/{name}/{ctr}"
        query = [(k, v) for k, v in q.items() if k != "container"]
        url = self._node_url(node) + path
        if sub == "log":
            return await self._proxy_log(request, url, query)
        if request.headers.get("Upgrade", "").lower() == "spdy/3.1":
            if sub == "portforward":
                return await serve_spdy_port_forward(request, self.session(), url, query)
            return await serve_spdy_exec(request, self.session(), url, query)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise _bad(f"ketch serves {sub} over WebSocket only (Upgrade: {request.headers.get('Upgrade') or 'none'} "
                       "is not supported): use kubectl 1.30 or newer")
        return await self._proxy_ws(request, url, query)

    async def _proxy_log(self, request: web.Request, url: str, query: list) -> web.StreamResponse:
        try:
            up = await self.session().get(url, params=query)
        except (aiohttp.ClientError, OSError) as e:
            raise errors.StatusError(503, "ServiceUnavailable", f"error dialing the node agent: {e}") from None
        try:
            if up.status != 200:
                body = await up.read()
                return web.Response(body=body, status=up.status, content_type="application/json")
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            copy = asyncio.ensure_future(self._copy(up, resp))
            # A client that goes away while nothing is written would leave the copy waiting forever.
            while not copy.done():
                await asyncio.wait([copy], timeout=1.0)
                t = request.transport
                if t is None or t.is_closing():
                    copy.cancel()
                    break
            with contextlib.suppress(BaseException):
                await copy
            with contextlib.suppress(ConnectionError, RuntimeError):
                await resp.write_eof()
            return resp
        finally:
            up.close()

    @staticmethod
    async def _copy(up: aiohttp.ClientResponse, resp: web.StreamResponse) -> None:
        async for chunk in up.content.iter_any():
            await resp.write(chunk)

    async def _proxy_ws(self, request: web.Request, url: str, query: list) -> web.StreamResponse:
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            up = await self.session().ws_connect(url, params=query, protocols=protocols, max_msg_size=0,
                                                 autoping=True, heartbeat=None)
        except aiohttp.WSServerHandshakeError as e:
            raise errors.StatusError(e.status if 400 <= e.status < 600 else 502, "BadRequest"
                                     if e.status == 400 else "InternalError",
                                     f"the node agent refused the stream: {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise errors.StatusError(503, "ServiceUnavailable", f"error dialing the node agent: {e}") from None
        ws = web.WebSocketResponse(protocols=[up.protocol] if up.protocol else (), max_msg_size=0, autoping=True)
        try:
            await ws.prepare(request)
            a = asyncio.ensure_future(self._relay(ws, up))
            b = asyncio.ensure_future(self._relay(up, ws))
            done, pending = await asyncio.wait([a, b], return_when=asyncio.FIRST_COMPLETED)
            if b in done:
                # the agent finished: let the client's last messages reach it, then close
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(a), 0.0)
            for t in pending:
                t.cancel()
            for t in (a, b):
                with contextlib.suppress(BaseException):
                    await t
        finally:
            await up.close()
            await ws.close()
        return ws

    @staticmethod
    async def _relay(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await dst.send_str(msg.data)
            else:
                break

    # -- metrics.k8s.io ------------------------------------------------------------------------
    async def _scrape(self) -> list[dict]:
        """Ask every node agent with an endpoint for /metrics/resource (agents that fail are skipped)."""
        nri = self.server.registry.get("", "v1", "nodes")
        urls: dict[str, str] = {}
        entries, *_ = await self.server.service.list(nri, None)
        for entry in entries:
            conds = (entry.obj.get("status") or {}).get("conditions") or ()
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                continue    # a node that is down would only make `kubectl top` wait for the timeout
            with contextlib.suppress(errors.StatusError):
                urls.setdefault(self._node_url(entry.obj["metadata"]["name"]), entry.obj["metadata"]["name"])

        async def one(url: str) -> dict | None:
            try:
                async with self.session().get(url + "/metrics/resource",
                                              timeout=aiohttp.ClientTimeout(total=METRICS_TIMEOUT)) as r:
                    return await r.json() if r.status == 200 else None
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                return None
        out = await asyncio.gather(*(one(u) for u in urls))
        return [o for o in out if o]

    async def metrics(self, request: web.Request, ri: ResourceInfo, ns: str | None, name: str) -> web.Response:
        """NodeMetrics / PodMetrics (get and list), answered from the agents' current readings."""
        from .server import respond
        if request.method != "GET":
            raise errors.method_not_allowed()
        scrapes = await self._scrape()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        selector = parse_label_selector(request.query.get("labelSelector"))
        items: list[dict] = []
        if ri.kind == "NodeMetrics":
            nri = self.server.registry.get("", "v1", "nodes")
            for s in scrapes:
                for n in s.get("nodes") or ():
                    entry = self.server.service.current(nri, None, n)
                    labels = (entry.obj["metadata"].get("labels") or {}) if entry else {}
                    items.append({"metadata": {"name": n, "creationTimestamp": stamp, "labels": labels},
                                  "timestamp": stamp, "window": f"{s['window']:.3f}s",
                                  "usage": {"cpu": _cpu(s["node"]["cpu"]), "memory": _mem(s["node"]["memory"])}})
        else:
            pri = self.server.registry.get("", "v1", "pods")
            for s in scrapes:
                for p in s.get("pods") or ():
                    if ns and p["namespace"] != ns:
                        continue
                    entry = self.server.service.current(pri, p["namespace"], p["name"])
                    labels = (entry.obj["metadata"].get("labels") or {}) if entry else {}
                    items.append({"metadata": {"name": p["name"], "namespace": p["namespace"],
                                               "creationTimestamp": stamp, "labels": labels},
                                  "timestamp": stamp, "window": f"{s['window']:.3f}s",
                                  "containers": [{"name": c["name"], "usage": {"cpu": _cpu(c["cpu"]),
                                                                               "memory": _mem(c["memory"])}}
                                                 for c in p["containers"]]})
        for it in items:
            it["kind"], it["apiVersion"] = ri.kind, ri.group_version
        if name:
            for it in items:
                if it["metadata"]["name"] == name:
                    return respond(it)
            raise errors.StatusError(404, "NotFound", f'{ri.plural}.metrics.k8s.io "{name}" not found',
                                     details={"name": name, "group": "metrics.k8s.io", "kind": ri.plural})
        items = [it for it in items if selector.matches(it["metadata"].get("labels") or {})]
        items.sort(key=lambda it: (it["metadata"].get("namespace", ""), it["metadata"]["name"]))
        return respond({"kind": ri.list_kind, "apiVersion": ri.group_version, "metadata": {}, "items": items})


# -- SPDY/3.1 exec/attach (kubectl before 1.30) ---------------------------------------------------
class _RawParser:
    """Takes over the connection's bytes after the 101 answer (aiohttp's upgraded-protocol hook)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)


async def serve_spdy_exec(request: web.Request, session: aiohttp.ClientSession, url: str,
                          query: list) -> web.StreamResponse:
    """Answer kubectl's `Upgrade: SPDY/3.1` with a SPDY session and relay it to the agent's v5 WebSocket.

    Streams (by their `streamtype` header) map to channels: stdin 0, stdout 1, stderr 2, error 3,
    resize 4; stdin's FIN becomes the v5 close message for stdin. Protocol v4.channel.k8s.io: the
    error stream carries the final Status as JSON."""
    from ..api import spdy
    offered = [p.strip() for p in request.headers.get("X-Stream-Protocol-Version", "").split(",")]
    if "v4.channel.k8s.io" not in offered:
        raise _bad("ketch speaks the SPDY exec protocol v4.channel.k8s.io only; the client offered "
                   f"{', '.join(offered) or 'none'}")
    q = dict(query)
    want = {"error"} | {n for n in ("stdin", "stdout") if q.get(n) in ("true", "1")}
    if q.get("stderr") in ("true", "1") and q.get("tty") not in ("true", "1"):
        want.add("stderr")
    try:
        up = await session.ws_connect(url, params=query, protocols=["v5.channel.k8s.io"], max_msg_size=0)
    except aiohttp.WSServerHandshakeError as e:
        raise errors.StatusError(e.status if 400 <= e.status < 600 else 502, "BadRequest",
                                 f"the node agent refused the stream: {e.message}") from None
    except (aiohttp.ClientError, OSError) as e:
        raise errors.StatusError(503, "ServiceUnavailable", f"error dialing the node agent: {e}") from None
    resp = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                  "X-Stream-Protocol-Version": "v4.channel.k8s.io"})
    await resp.prepare(request)
    parser = _RawParser()
    request.protocol.set_parser(parser)   # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    transport = request.transport
    codec = spdy.HeaderCodec()
    sids: dict[str, int] = {}
    channels: dict[int, int] = {}          # client stream id -> channel
    ready = asyncio.Event()

    def send(frame: bytes) -> None:
        if transport is not None and not transport.is_closing():
            transport.write(frame)

    async def from_client() -> None:
        buf = bytearray()
        while True:
            data = await parser.queue.get()
            if data is None:
                return
            buf += data
            for frame in spdy.split_frames(buf):
                flags, payload = frame[4], frame[8:]
                if not frame[0] & 0x80:
                    sid = int.from_bytes(frame[0:4], "big") & 0x7FFFFFFF
                    ch = channels.get(sid)
                    if ch in (0, 4) and payload:
                        await up.send_bytes(bytes([ch]) + payload)
                    if ch == 0 and flags & spdy.FLAG_FIN:
                        await up.send_bytes(bytes([255, 0]))
                    continue
                ftype = int.from_bytes(frame[2:4], "big")
                if ftype == spdy.SYN_STREAM:
                    sid = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
                    kind = codec.decode(payload[10:]).get("streamtype", "")
                    send(spdy.control_frame(spdy.SYN_REPLY, 0, sid.to_bytes(4, "big") + codec.encode({})))
                    sids[kind] = sid
                    channels[sid] = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4}.get(kind, -1)
                    if want <= set(sids):
                        ready.set()
                elif ftype == spdy.PING:
                    send(spdy.control_frame(spdy.PING, 0, payload))
                elif ftype == spdy.GOAWAY:
                    return
                elif ftype == spdy.HEADERS:
                    codec.decode(payload[4:])

    async def from_agent() -> None:
        await ready.wait()
        async for msg in up:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            kind = {1: "stdout", 2: "stderr", 3: "error"}.get(msg.data[0])
            sid = sids.get(kind or "")
            if sid:
                send(spdy.data_frame(sid, msg.data[1:]))
        for kind in ("stdout", "stderr", "error"):
            if kind in sids:
                send(spdy.data_frame(sids[kind], b"", fin=True))

    await _relay(from_client, from_agent, up, transport, linger=2.0)
    return resp


async def _relay(from_client: Any, from_agent: Any, up: Any, transport: Any, linger: float = 0.0) -> None:
    """Pump both directions until one side stops, then close both ends (no task left behind).

    With `linger`, when the agent side ends first the client gets that long to read the end and go."""
    a, b = asyncio.ensure_future(from_client()), asyncio.ensure_future(from_agent())
    try:
        await asyncio.wait([a, b], return_when=asyncio.FIRST_COMPLETED)
        if linger and b.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(a), linger)
    finally:
        for t in (a, b):
            t.cancel()
        for t in (a, b):
            with contextlib.suppress(BaseException):
                await t
        await up.close()
        if transport is not None:
            transport.close()


async def serve_spdy_port_forward(request: web.Request, session: aiohttp.ClientSession, url: str,
                                  query: list) -> web.StreamResponse:
    """kubectl's plain SPDY/3.1 port-forward: the bytes go as they are to the agent's SPDY-in-WebSocket tunnel."""
    offered = [p.strip() for p in request.headers.get("X-Stream-Protocol-Version", "").split(",")]
    if "portforward.k8s.io" not in offered:
        raise _bad(f"port-forward speaks portforward.k8s.io; the client offered {', '.join(offered) or 'none'}")
    try:
        up = await session.ws_connect(url, params=query, protocols=["SPDY/3.1+portforward.k8s.io"], max_msg_size=0)
    except (aiohttp.ClientError, OSError) as e:
        raise errors.StatusError(503, "ServiceUnavailable", f"error dialing the node agent: {e}") from None
    resp = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                  "X-Stream-Protocol-Version": "portforward.k8s.io"})
    await resp.prepare(request)
    parser = _RawParser()
    request.protocol.set_parser(parser)   # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    transport = request.transport

    async def from_client() -> None:
        while (data := await parser.queue.get()) is not None:
            await up.send_bytes(data)

    async def from_agent() -> None:
        async for msg in up:
            if msg.type != WSMsgType.BINARY:
                break
            if transport is None or transport.is_closing():
                return
            transport.write(msg.data)

    await _relay(from_client, from_agent, up, transport)
    return resp
