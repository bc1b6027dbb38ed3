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
import struct

from aiohttp import WSMsgType, web

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


async def port_forward_v4(ws: web.WebSocketResponse, host: str, ports: list[int], pod: str) -> None:
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
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as e:
                msg = (f"error forwarding port {port} to pod {pod}: failed to connect to localhost:{port}: "
                       f"{e.strerror or e}")
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
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
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

    def __init__(self, ws: web.WebSocketResponse, host: str, pod: str):
        self.ws, self.host, self.pod = ws, host, pod
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
                reader, c.writer = await asyncio.open_connection(self.host, c.port)
            except OSError as e:
                error = (f"error forwarding port {c.port} to pod {self.pod}: failed to connect to "
                         f"localhost:{c.port}: {e.strerror or e}")
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


async def port_forward_spdy(ws: web.WebSocketResponse, host: str, pod: str) -> None:
    """Serve kubectl's SPDY/3.1 port-forward session until the client goes away."""
    await SpdyTunnel(ws, host, pod).run()
