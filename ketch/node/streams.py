"""Port-forward tunnels: kubectl's SPDY/3.1 inside WebSocket, and the v4 channel framing.

kubectl (1.31+) offers `SPDY/3.1+portforward.k8s.io`: the WebSocket's binary messages carry a raw
SPDY/3.1 byte stream (frames may span messages). Each forwarded connection is a pair of streams
opened by the client with headers streamtype=error|data, port and requestid; the server replies
to every SYN_STREAM, pumps the data stream to the pod's port, and ends both streams with FIN
(writing the failure, if any, on the error stream). PINGs are echoed.

The Python client uses plain channel framing (v4): for port i of `?ports=`, channel 2i carries
data and 2i+1 errors; the first frame the server sends on each channel is the port as 16-bit
little-endian. One TCP connection per port per WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import socket
import struct
import threading

from aiohttp import WSMsgType, web

from ..aioutil import cancel_all
from ..api.spdy import (
    FLAG_FIN,
    GOAWAY,
    HEADERS,
    PING,
    RST_STREAM,
    SYN_REPLY,
    SYN_STREAM,
    HeaderCodec,
    control_frame,
    data_frame,
    split_frames,
)

CLONE_NEWNET = 0x40000000


def _connect_in_netns(netns: str, port: int, timeout: float) -> socket.socket:
    """Connect to localhost:port inside a network namespace. setns() moves only the calling thread,
    and this thread is one of its own that ends right after, so nothing else ever runs in the pod's
    namespace; the socket stays in it."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: list = []

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            try:
                result.append(socket.create_connection(("127.0.0.1", port), timeout=timeout))
            except OSError as e:
                if e.errno != errno.ECONNREFUSED:
                    raise
                result.append(socket.create_connection(("::1", port), timeout=timeout))
        except BaseException as e:   # handed to the caller
            result.append(e)
    t = threading.Thread(target=run, name="ketch-netns-connect", daemon=True)
    t.start()
    t.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    sock: socket.socket = result[0]
    sock.setblocking(False)
    return sock


async def open_port(host: str, port: int, netns: str | None = None,
                    timeout: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the pod's port: to localhost inside its network namespace when the runtime
    gives one (as the kubelet does, so servers bound to 127.0.0.1 in the pod are reachable), else
    to host:port."""
    if netns is None:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    sock = await asyncio.to_thread(_connect_in_netns, netns, port, timeout)
    return await asyncio.open_connection(sock=sock)


async def port_forward_v4(ws: web.WebSocketResponse, host: str, ports: list[int], pod: str,
                          netns: str | None = None) -> None:
    """Connect to each port and pump bytes until either side closes; close everything on the way out."""
    writers: dict[int, asyncio.StreamWriter] = {}
    tasks: list[asyncio.Task] = []

    async def pump(i: int, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await ws.send_bytes(bytes([2 * i]) + data)
        await ws.close()

    try:
        for i, port in enumerate(ports):
            prefix = struct.pack("<H", port)
            await ws.send_bytes(bytes([2 * i]) + prefix)
            await ws.send_bytes(bytes([2 * i + 1]) + prefix)
            try:
                reader, writer = await open_port(host, port, netns)
            except OSError as e:
                msg = (f"error forwarding port {port} to pod {pod}: failed to connect to localhost:{port}: "
                       f"{e.strerror or e or 'timed out'}")
                await ws.send_bytes(bytes([2 * i + 1]) + msg.encode())
                continue
            writers[i] = writer
            tasks.append(asyncio.create_task(pump(i, reader)))
        if not writers:
            await ws.close()
            return
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            w = writers.get(ch // 2) if ch % 2 == 0 else None
            if w is not None and data:
                w.write(data)
                with contextlib.suppress(ConnectionError):
                    await w.drain()
    finally:
        await cancel_all(tasks)
        for w in writers.values():
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()
        await ws.close()


class _Conn:
    """One forwarded connection: its error and data streams and the TCP connection to the pod."""

    def __init__(self, port: int):
        self.port = port
        self.error_sid = 0
        self.data_sid = 0
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.early: list[bytes] = []     # data that came before the pod connection was up
        self.client_fin = False


class SpdyTunnel:
    """The server side of kubectl's port-forward SPDY session, carried in WebSocket messages."""

    def __init__(self, ws: web.WebSocketResponse, host: str, pod: str, netns: str | None = None):
        self.ws, self.host, self.pod, self.netns = ws, host, pod, netns
        self.buf = bytearray()
        self.codec = HeaderCodec()
        self.by_request: dict[str, _Conn] = {}
        self.by_data_sid: dict[int, _Conn] = {}
        self.lock = asyncio.Lock()

    # -- frames --------------------------------------------------------------------------------
    async def _send(self, frame: bytes) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_bytes(frame)

    async def control(self, ftype: int, flags: int, payload: bytes) -> None:
        await self._send(control_frame(ftype, flags, payload))

    async def data(self, sid: int, payload: bytes, fin: bool = False) -> None:
        await self._send(data_frame(sid, payload, fin))

    # -- session -------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                self.buf += msg.data
                for frame in split_frames(self.buf):
                    if await self._frame(frame) is False:
                        return
        finally:
            conns = list(self.by_data_sid.values())
            for c in conns:
                if c.task is not None:
                    c.task.cancel()
            for c in conns:
                if c.task is not None:
                    with contextlib.suppress(BaseException):
                        await c.task
            await self.ws.close()

    async def _frame(self, frame: bytes) -> bool:
        flags, payload = frame[4], frame[8:]
        if not frame[0] & 0x80:   # data frame
            sid = int.from_bytes(frame[0:4], "big") & 0x7FFFFFFF
            c = self.by_data_sid.get(sid)
            if c is not None:
                if payload:
                    if c.writer is not None:
                        c.writer.write(payload)
                        with contextlib.suppress(ConnectionError):
                            await c.writer.drain()
                    else:
                        c.early.append(payload)
                if flags & FLAG_FIN:
                    c.client_fin = True
                    if c.writer is not None and c.writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            c.writer.write_eof()
            return True
        ftype = int.from_bytes(frame[2:4], "big")
        if ftype == SYN_STREAM:
            sid = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            headers = self.codec.decode(payload[10:])
            await self.control(SYN_REPLY, 0, struct.pack(">I", sid) + self.codec.encode({}))
            self._opened(sid, headers)
        elif ftype == PING:
            await self.control(PING, 0, payload)
        elif ftype == RST_STREAM:
            sid = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            c = self.by_data_sid.get(sid)
            if c is not None and c.task is not None:
                c.task.cancel()
        elif ftype == GOAWAY:
            return False
        elif ftype == HEADERS:
            self.codec.decode(payload[4:])   # keep the shared inflate state in step
        return True

    def _opened(self, sid: int, headers: dict[str, str]) -> None:
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            port = 0
        key = headers.get("requestid") or str(port)
        c = self.by_request.setdefault(key, _Conn(port))
        if headers.get("streamtype") == "error":
            c.error_sid = sid
        elif headers.get("streamtype") == "data":
            c.data_sid = sid
        if c.error_sid and c.data_sid and c.task is None:
            self.by_data_sid[c.data_sid] = c
            c.task = asyncio.create_task(self._forward(key, c))

    async def _forward(self, key: str, c: _Conn) -> None:
        error = ""
        try:
            try:
                reader, c.writer = await open_port(self.host, c.port, self.netns)
            except OSError as e:
                error = (f"error forwarding port {c.port} to pod {self.pod}: failed to connect to "
                         f"localhost:{c.port}: {e.strerror or e or 'timed out'}")
                return
            for chunk in c.early:
                c.writer.write(chunk)
            c.early.clear()
            if c.client_fin and c.writer.can_write_eof():
                c.writer.write_eof()
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                await self.data(c.data_sid, chunk)
        except (ConnectionError, OSError) as e:
            error = f"error forwarding port {c.port} to pod {self.pod}: {e}"
        finally:
            if c.writer is not None:
                c.writer.close()
            self.by_request.pop(key, None)
            self.by_data_sid.pop(c.data_sid, None)
            with contextlib.suppress(Exception):
                await self.data(c.data_sid, b"", fin=True)
                await self.data(c.error_sid, error.encode(), fin=True)


async def port_forward_spdy(ws: web.WebSocketResponse, host: str, pod: str, netns: str | None = None) -> None:
    """Serve kubectl's SPDY/3.1 port-forward session until the client goes away."""
    await SpdyTunnel(ws, host, pod, netns).run()
