"""A small gRPC client over HTTP/2 on a unix socket: unary and server-streaming calls, asyncio only.

Replaces grpcio for the agent's CRI calls (grpcio's core, threads and arenas cost the agent ~20 MB
of RSS). What gRPC needs of HTTP/2 (RFC 9113) and HPACK (RFC 7541) and no more: one connection,
client streams, flow control (large receive windows, replenished), SETTINGS/PING/GOAWAY/RST_STREAM,
header decoding with the static and dynamic tables and Huffman strings. Requests are encoded as
literals without indexing (so the encoder keeps no table). Messages are never compressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import struct
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE = 1, 2, 4, 5
WINDOW = 1 << 30          # what we let the server send before we replenish


class Status(enum.IntEnum):
    """gRPC status codes."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    def __str__(self) -> str:
        return f"StatusCode.{self.name}"


class RPCError(Exception):
    """A call that ended with a non-OK gRPC status (or never reached the server: UNAVAILABLE)."""

    def __init__(self, code: Status, message: str = ""):
        super().__init__(f"{code.name}: {message}")
        self._code, self._message = code, message

    def code(self) -> Status:
        return self._code

    def details(self) -> str:
        return self._message


# -- HPACK ----------------------------------------------------------------------------------------
STATIC = [("", "")] + [tuple(x.split(" ", 1)) if " " in x else (x, "") for x in (
    ":authority", ":method GET", ":method POST", ":path /", ":path /index.html", ":scheme http",
    ":scheme https", ":status 200", ":status 204", ":status 206", ":status 304", ":status 400",
    ":status 404", ":status 500", "accept-charset", "accept-encoding gzip, deflate", "accept-language",
    "accept-ranges", "accept", "access-control-allow-origin", "age", "allow", "authorization",
    "cache-control", "content-disposition", "content-encoding", "content-language", "content-length",
    "content-location", "content-range", "content-type", "cookie", "date", "etag", "expect", "expires",
    "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
    "last-modified", "link", "location", "max-forwards", "proxy-authenticate", "proxy-authorization",
    "range", "referer", "refresh", "retry-after", "server", "set-cookie", "strict-transport-security",
    "transfer-encoding", "user-agent", "vary", "via", "www-authenticate")]

# Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), symbols 0..256 (256 = EOS). The code
# is canonical: codes are assigned in order of (length, symbol), so the lengths define it.
_HUFFMAN_LENGTHS = bytes.fromhex(
    "0d171c1c1c1c1c1c1c181e1c1c1e1c1c1c1c1c1c1c1c1e1c1c1c1c1c1c1c1c1c060a0a0c0d06080b0a0a080b08060606"
    "0505050606060606060607080f060c0a0d06070707070707070707070707070707070707070707070807080d130d0e06"
    "0f05060506050606060507070606060506070605050607070707070f0b0e0d1c14161414161616171617171717171817"
    "181816171817171717151617161717181615141616171715171616181516171715151615171617171416161617161617"
    "1a1a1413161716191a1a1a1b1b1a181913151a1b1b1a1b1815151a1a1c1b1b1b14181415161515171616191918181a17"
    "1a1b1a1a1b1b1b1b1b1c1b1b1b1b1b1a1e")


def _huffman_table() -> dict[tuple[int, int], int]:
    table, code, prev = {}, 0, 0
    for i, sym in enumerate(sorted(range(257), key=lambda s: (_HUFFMAN_LENGTHS[s], s))):
        n = _HUFFMAN_LENGTHS[sym]
        code = 0 if i == 0 else (code + 1) << (n - prev)
        prev = n
        table[(n, code)] = sym
    return table


_HUFFMAN: dict[tuple[int, int], int] | None = None


def huffman_decode(data: bytes) -> bytes:
    global _HUFFMAN
    if _HUFFMAN is None:
        _HUFFMAN = _huffman_table()
    table, out, code, n = _HUFFMAN, bytearray(), 0, 0
    for byte in data:
        for shift in range(7, -1, -1):
            code, n = (code << 1) | ((byte >> shift) & 1), n + 1
            sym = table.get((n, code))
            if sym is not None:
                if sym == 256:
                    raise ValueError("EOS in a Huffman string")
                out.append(sym)
                code, n = 0, 0
    if n > 7 or code != (1 << n) - 1:
        raise ValueError("bad Huffman padding")
    return bytes(out)


def _int(buf: bytes, i: int, prefix: int) -> tuple[int, int]:
    mask = (1 << prefix) - 1
    v = buf[i] & mask
    i += 1
    if v < mask:
        return v, i
    shift = 0
    while True:
        b = buf[i]
        i += 1
        v += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def _encode_int(v: int, prefix: int, first: int = 0) -> bytes:
    mask = (1 << prefix) - 1
    if v < mask:
        return bytes([first | v])
    out = bytearray([first | mask])
    v -= mask
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, new names, no Huffman."""
    out = bytearray()
    for name, value in headers:
        n, v = name.encode(), value.encode()
        out += b"\x00" + _encode_int(len(n), 7) + n + _encode_int(len(v), 7) + v
    return bytes(out)


class Decoder:
    """HPACK header block decoder with its dynamic table."""

    def __init__(self, max_size: int = 4096):
        self.table: list[tuple[str, str]] = []   # newest first
        self.size = 0
        self.max_size = max_size

    def _get(self, idx: int) -> tuple[str, str]:
        if 0 < idx < len(STATIC):
            return STATIC[idx]
        if 0 <= idx - len(STATIC) < len(self.table):
            return self.table[idx - len(STATIC)]
        raise ValueError(f"HPACK index {idx} out of range")

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            n, v = self.table.pop()
            self.size -= len(n) + len(v) + 32

    def _str(self, buf: bytes, i: int) -> tuple[str, int]:
        huff = buf[i] & 0x80
        ln, i = _int(buf, i, 7)
        raw = buf[i:i + ln]
        return (huffman_decode(raw) if huff else raw).decode("utf-8", "replace"), i + ln

    def decode(self, buf: bytes) -> list[tuple[str, str]]:
        out, i = [], 0
        while i < len(buf):
            b = buf[i]
            if b & 0x80:                       # indexed
                idx, i = _int(buf, i, 7)
                out.append(self._get(idx))
            elif b & 0x40:                     # literal, incremental indexing
                idx, i = _int(buf, i, 6)
                name, i = (self._get(idx)[0], i) if idx else self._str(buf, i)
                value, i = self._str(buf, i)
                out.append((name, value))
                self.table.insert(0, (name, value))
                self.size += len(name) + len(value) + 32
                self._evict()
            elif b & 0x20:                     # dynamic table size update
                self.max_size, i = _int(buf, i, 5)
                self._evict()
            else:                              # literal without indexing / never indexed
                idx, i = _int(buf, i, 4)
                name, i = (self._get(idx)[0], i) if idx else self._str(buf, i)
                value, i = self._str(buf, i)
                out.append((name, value))
        return out


# -- HTTP/2 connection ----------------------------------------------------------------------------
class _Stream:
    def __init__(self, sid: int, window: int):
        self.id = sid
        self.send_window = window
        self.headers: list[tuple[str, str]] = []
        self.buf = bytearray()
        self.messages: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.done = asyncio.get_running_loop().create_future()   # the final Status, message
        self.consumed = 0

    def finish(self, code: Status, message: str) -> None:
        if not self.done.done():
            self.done.set_result((code, message))
            self.messages.put_nowait(None)

    def status(self) -> tuple[Status, str]:
        h = dict(self.headers)
        if "grpc-status" not in h:
            st = h.get(":status", "")
            return (Status.UNKNOWN if st == "200" else Status.UNAVAILABLE,
                    f"no grpc-status in the response (HTTP status {st or 'none'})")
        try:
            code = Status(int(h["grpc-status"]))
        except ValueError:
            code = Status.UNKNOWN
        return code, unquote(h.get("grpc-message", ""))


class Connection:
    """One HTTP/2 connection to a gRPC server on a unix socket."""

    def __init__(self, path: str, max_message: int = 16 << 20):
        self.path, self.max_message = path, max_message
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.decoder = Decoder()
        self.send_window = 65535
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.recv_consumed = 0
        self.window_open = asyncio.Event()
        self.closed = False
        self.goaway = False
        self.writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self._header_block: tuple[int, int, bytearray] | None = None   # stream, flags, fragments

    async def connect(self) -> None:
        try:
            reader, self.writer = await asyncio.open_unix_connection(self.path)
        except OSError as e:
            raise RPCError(Status.UNAVAILABLE, f"connecting to {self.path}: {e.strerror or e}") from None
        settings = struct.pack(">HIHIHI", S_ENABLE_PUSH, 0, S_INITIAL_WINDOW_SIZE, WINDOW,
                               S_HEADER_TABLE_SIZE, 4096)
        self.writer.write(PREFACE + self._frame(SETTINGS, 0, 0, settings)
                          + self._frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WINDOW - 65535)))
        self._reader_task = asyncio.create_task(self._read(reader))

    @staticmethod
    def _frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
        return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload

    def usable(self) -> bool:
        return not self.closed and not self.goaway and self.next_id < (1 << 31) - 2

    async def close(self) -> None:
        self._fail_all(Status.UNAVAILABLE, "connection closed")
        self.closed = True
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def _fail_all(self, code: Status, message: str, above: int = -1) -> None:
        for sid, st in list(self.streams.items()):
            if sid > above:
                st.finish(code, message)
                self.streams.pop(sid, None)

    # -- reading
    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "connection closed by the server"
        try:
            while True:
                head = await reader.readexactly(9)
                ln = int.from_bytes(head[:3], "big")
                ftype, flags = head[3], head[4]
                sid = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = await reader.readexactly(ln) if ln else b""
                self._on_frame(ftype, flags, sid, payload)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            why = f"connection lost: {e}" if not isinstance(e, asyncio.IncompleteReadError) else why
        except asyncio.CancelledError:
            raise
        except Exception as e:   # a protocol error: no stream can be trusted any more
            why = f"HTTP/2 protocol error: {e}"
        finally:
            self.closed = True
            self._fail_all(Status.UNAVAILABLE, why)
            self.window_open.set()
            if self.writer is not None:
                self.writer.close()

    def _on_frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if self._header_block is not None and ftype != CONTINUATION:
            raise ValueError("expected CONTINUATION")
        if ftype == DATA:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            self._on_data(sid, flags, payload, len(payload))
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                self._header_block = (sid, flags, bytearray())
            assert self._header_block is not None
            self._header_block[2].extend(payload)
            if flags & END_HEADERS:
                sid, hflags, block = self._header_block
                self._header_block = None
                headers = self.decoder.decode(bytes(block))   # always, to keep the table in step
                st = self.streams.get(sid)
                if st is not None:
                    st.headers.extend(headers)
                    if hflags & END_STREAM:
                        self._end(st)
        elif ftype == RST_STREAM:
            st = self.streams.pop(sid, None)
            if st is not None:
                code = int.from_bytes(payload[:4], "big")
                st.finish(Status.CANCELLED if code == 8 else Status.UNAVAILABLE if code == 7 else Status.INTERNAL,
                          f"stream reset by the server (HTTP/2 error {code})")
        elif ftype == SETTINGS:
            if not flags & ACK:
                for off in range(0, len(payload) - 5, 6):
                    key, val = struct.unpack(">HI", payload[off:off + 6])
                    if key == S_INITIAL_WINDOW_SIZE:
                        for st in self.streams.values():
                            st.send_window += val - self.peer_initial_window
                        self.peer_initial_window = val
                        self.window_open.set()
                    elif key == S_MAX_FRAME_SIZE:
                        self.peer_max_frame = val
                self._write(self._frame(SETTINGS, ACK, 0))
        elif ftype == PING:
            if not flags & ACK:
                self._write(self._frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            self.goaway = True
            self._fail_all(Status.UNAVAILABLE, "the server is going away", above=last)
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if sid == 0:
                self.send_window += inc
            elif sid in self.streams:
                self.streams[sid].send_window += inc
            self.window_open.set()

    def _on_data(self, sid: int, flags: int, payload: bytes, flow: int) -> None:
        self.recv_consumed += flow
        if self.recv_consumed > WINDOW // 2:
            self._write(self._frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.recv_consumed)))
            self.recv_consumed = 0
        st = self.streams.get(sid)
        if st is None:
            return
        st.consumed += flow
        if st.consumed > WINDOW // 2 and not flags & END_STREAM:
            self._write(self._frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", st.consumed)))
            st.consumed = 0
        st.buf += payload
        while len(st.buf) >= 5:
            n = int.from_bytes(st.buf[1:5], "big")
            if n > self.max_message:
                self._reset(st, Status.RESOURCE_EXHAUSTED, f"message of {n} bytes over the limit")
                return
            if len(st.buf) < 5 + n:
                break
            if st.buf[0]:
                self._reset(st, Status.INTERNAL, "compressed message (no compression was offered)")
                return
            st.messages.put_nowait(bytes(st.buf[5:5 + n]))
            del st.buf[:5 + n]
        if flags & END_STREAM:
            self._end(st)

    def _end(self, st: _Stream) -> None:
        self.streams.pop(st.id, None)
        st.finish(*st.status())

    def _reset(self, st: _Stream, code: Status, message: str) -> None:
        self.streams.pop(st.id, None)
        self._write(self._frame(RST_STREAM, 0, st.id, struct.pack(">I", 8)))
        st.finish(code, message)

    def _write(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    # -- calls
    async def open(self, path: str, message: bytes, timeout: float | None) -> _Stream:
        """Send one request message on a new stream."""
        sid, self.next_id = self.next_id, self.next_id + 2
        st = self.streams[sid] = _Stream(sid, self.peer_initial_window)
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        if timeout is not None:
            headers.append(("grpc-timeout", f"{max(1, int(timeout * 1000))}m"))
        block = encode_headers(headers)
        for i in range(0, max(len(block), 1), self.peer_max_frame):
            last = i + self.peer_max_frame >= len(block)
            self._write(self._frame(HEADERS if i == 0 else CONTINUATION, END_HEADERS if last else 0, sid,
                                    block[i:i + self.peer_max_frame]))
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        while body:
            if self.closed or st.done.done():
                break
            n = min(len(body), self.peer_max_frame, self.send_window, st.send_window)
            if n <= 0:
                self.window_open.clear()
                await self.window_open.wait()
                continue
            self.send_window -= n
            st.send_window -= n
            chunk, body = body[:n], body[n:]
            self._write(self._frame(DATA, 0 if body else END_STREAM, sid, chunk))
        if self.closed:
            st.finish(Status.UNAVAILABLE, "connection closed")
        return st

    def cancel(self, st: _Stream) -> None:
        if self.streams.pop(st.id, None) is not None:
            self._write(self._frame(RST_STREAM, 0, st.id, struct.pack(">I", 8)))
        st.finish(Status.CANCELLED, "cancelled by the client")


class Channel:
    """Calls on one (re)connecting HTTP/2 connection: `unary` and `stream` with encode/decode callables."""

    def __init__(self, path: str, max_message: int = 16 << 20):
        self.path, self.max_message = path, max_message
        self._conn: Connection | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connection(self) -> Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is None or not self._conn.usable():
                old, self._conn = self._conn, None
                if old is not None and not old.streams:
                    await old.close()
                conn = Connection(self.path, self.max_message)
                await conn.connect()
                self._conn = conn
            return self._conn

    async def unary(self, path: str, request: bytes, timeout: float | None) -> bytes:
        async def call() -> bytes:
            conn = await self._connection()
            st = await conn.open(path, request, timeout)
            try:
                code, message = await asyncio.shield(st.done)
            except asyncio.CancelledError:
                conn.cancel(st)
                raise
            if code != Status.OK:
                raise RPCError(code, message)
            msg = st.messages.get_nowait()
            if msg is None:
                raise RPCError(Status.INTERNAL, "no response message")
            return msg
        try:
            return await asyncio.wait_for(call(), timeout)
        except TimeoutError:
            raise RPCError(Status.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    async def stream(self, path: str, request: bytes, decode: Callable[[bytes], dict]) -> AsyncIterator[dict]:
        """A server-streaming call: yields each response message until the server ends the stream."""
        conn = await self._connection()
        st = await conn.open(path, request, None)
        try:
            while True:
                msg = await st.messages.get()
                if msg is None:
                    break
                yield decode(msg)
            code, message = st.done.result()
            if code != Status.OK:
                raise RPCError(code, message)
        finally:
            if not st.done.done():
                conn.cancel(st)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
