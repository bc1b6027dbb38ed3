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
import zlib

from aiohttp import WSMsgType, web

# The SPDY/3 header compression dictionary (SPDY/3 draft, section 2.6.10.1), 1423 bytes.
SPDY3_DICTIONARY = (
    b'\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\x06de'
    b'lete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-'
    b'encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\x00\x00\x00'
    b'\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\x00\x00\x00\x0aconnection\x00'
    b'\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\x00\x00\x00'
    b'\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00\x00\x00\x0dcontent'
    b'-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00'
    b'\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11i'
    b'f-modified-since\x00\x00\x00\x0dif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-s'
    b'ince\x00\x00\x00\x0dlast-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00'
    b'\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range'
    b'\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00'
    b'\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent'
    b'\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00'
    b'\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07ver'
    b'sion\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\x0aset-cookie\x00'
    b'\x00\x00\x0akeep-alive\x00\x00\x00\x06origin10010120120220520630030230330430530630740240540640740840'
    b'9410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanent'
    b'ly400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemen'
    b'ted503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, T'
    b'hu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xh'
    b'tml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-88'
    b'59-1,utf-,*,enq=0.'
)

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01


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
        self.inflate = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self.deflate = zlib.compressobj(zdict=SPDY3_DICTIONARY)
        self.by_request: dict[str, _Conn] = {}
        self.by_data_sid: dict[int, _Conn] = {}
        self.lock = asyncio.Lock()

    # -- frames --------------------------------------------------------------------------------
    async def _send(self, frame: bytes) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_bytes(frame)

    async def control(self, ftype: int, flags: int, payload: bytes) -> None:
        await self._send(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload)

    async def data(self, sid: int, payload: bytes, fin: bool = False) -> None:
        await self._send(struct.pack(">II", sid & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload))
                         + payload)

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(block)
        n, = struct.unpack_from(">I", raw)
        off, out = 4, {}
        for _ in range(n):
            ln, = struct.unpack_from(">I", raw, off)
            name = raw[off + 4:off + 4 + ln].decode()
            off += 4 + ln
            lv, = struct.unpack_from(">I", raw, off)
            out[name.lower()] = raw[off + 4:off + 4 + lv].decode().split("\x00")[0]
            off += 4 + lv
        return out

    def _empty_headers(self) -> bytes:
        return self.deflate.compress(b"\x00\x00\x00\x00") + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    # -- session -------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                self.buf += msg.data
                while len(self.buf) >= 8:
                    length = int.from_bytes(self.buf[5:8], "big")
                    if len(self.buf) < 8 + length:
                        break
                    frame = bytes(self.buf[:8 + length])
                    del self.buf[:8 + length]
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
            headers = self._headers(payload[10:])
            await self.control(SYN_REPLY, 0, struct.pack(">I", sid) + self._empty_headers())
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
            self._headers(payload[4:])   # keep the shared inflate state in step
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
