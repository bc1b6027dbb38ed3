"""kubectl attach on containerd: the client's channel WebSocket relayed to containerd's streaming
server over SPDY/3.1, so that a stdin close reaches the container.

CRI Attach gives a one-use URL of containerd's streaming server (k8s.io/kubelet's cri/streaming,
vendored in containerd 1.6). Over WebSocket it speaks `channel.k8s.io`/`v4.channel.k8s.io` only,
which cannot close stdin alone; over a SPDY/3.1 upgrade (what kubectl before 1.30 spoke to the
kubelet) each channel is a stream of its own, and the stdin stream's FIN is stdin's EOF. containerd
then closes the container's stdin if the container has `stdinOnce` (and no tty), else it ends the
attach, as the kubelet does.

The client side here: `POST <url>` with `Upgrade: SPDY/3.1` and `X-Stream-Protocol-Version:
v4.channel.k8s.io`, then the streams the Attach request announced (error, stdin, stdout, stderr
unless tty, resize if tty; each a SYN_STREAM with a `streamtype` header, odd ids). Client channels
0/4 become data on stdin/resize, a v5 close of channel 0 the stdin FIN; the server's stdout, stderr
and error data go back on channels 1/2/3. When the attach ends, containerd 1.6.20 ends stdout and
stderr (FIN) and resets every other stream (RST_STREAM CANCEL): a failure's Status comes on the error
stream first, a success sends none. The session ends at that reset of the error stream, a GOAWAY,
the end of the TCP connection, or when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import urllib.parse

from aiohttp import WSMsgType, web

from ...aioutil import cancel_all
from ...api.spdy import (
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

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
PROTOCOL = "v4.channel.k8s.io"
CONNECT_TIMEOUT = 10.0


class AttachFailed(Exception):
    """The streaming server refused the upgrade (its answer in the message)."""


async def _upgrade(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the streaming server and upgrade `url` to SPDY/3.1 with the v4 channel protocol."""
    u = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port or 80), CONNECT_TIMEOUT)
    try:
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     f"X-Stream-Protocol-Version: {PROTOCOL}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        if status.split(" ")[1:2] != ["101"]:
            body = b""
            with contextlib.suppress(Exception):
                body = await asyncio.wait_for(reader.read(int(headers.get("content-length", "0") or 0) or 4096), 2)
            raise AttachFailed(f"{status.partition(' ')[2]}: {body.decode(errors='replace').strip()}")
        if headers.get("x-stream-protocol-version") != PROTOCOL:
            raise AttachFailed(f"no {PROTOCOL} (answered {headers.get('x-stream-protocol-version')!r})")
        return reader, writer
    except BaseException:
        writer.close()
        raise


async def relay_attach(ws: web.WebSocketResponse, url: str, stdin: bool, tty: bool) -> None:
    """Relay a client's attach (v5 or v4 channels) to containerd's streaming server over SPDY and back,
    until either side ends. `stdin` and `tty` must be what the CRI Attach request said."""
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    try:
        reader, writer = await _upgrade(url)
    except (TimeoutError, AttachFailed, OSError, asyncio.IncompleteReadError, ValueError) as e:
        with contextlib.suppress(Exception):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(
                {"metadata": {}, "status": "Failure", "reason": "InternalError",
                 "message": f"unable to attach: the runtime's streaming server: {e}"}).encode())
        await ws.close()
        return

    codec = HeaderCodec()
    kinds = ["error"] + (["stdin"] if stdin else []) + ["stdout"] + ([] if tty else ["stderr"]) + \
        (["resize"] if tty else [])
    ids = {kind: 1 + 2 * i for i, kind in enumerate(kinds)}          # a client's streams have odd ids
    channel_of = {ids["error"]: ERROR, ids["stdout"]: STDOUT}
    if "stderr" in ids:
        channel_of[ids["stderr"]] = STDERR
    lock = asyncio.Lock()
    stdin_closed = False

    async def send(frame: bytes) -> None:
        async with lock:
            writer.write(frame)
            await writer.drain()

    for kind, sid in ids.items():
        await send(control_frame(SYN_STREAM, 0, struct.pack(">IIH", sid, 0, 0) + codec.encode({"streamtype": kind})))

    async def down() -> None:
        buf = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf += chunk
            for frame in split_frames(buf):
                if not frame[0] & 0x80:                             # a data frame
                    sid = int.from_bytes(frame[0:4], "big") & 0x7FFFFFFF
                    channel = channel_of.get(sid)
                    if channel is not None and len(frame) > 8:
                        await ws.send_bytes(bytes([channel]) + frame[8:])
                    continue
                ftype = int.from_bytes(frame[2:4], "big")
                if ftype in (SYN_STREAM, SYN_REPLY, HEADERS):      # keep the header inflater in step
                    skip = 10 if ftype == SYN_STREAM else 4
                    with contextlib.suppress(Exception):
                        codec.decode(frame[8 + skip:])
                elif ftype == PING:
                    await send(frame)
                elif ftype == GOAWAY:
                    return
                elif ftype == RST_STREAM and int.from_bytes(frame[8:12], "big") & 0x7FFFFFFF == ids["error"]:
                    return      # the attach is over (a failure's Status came before on that stream)

    async def upward() -> None:
        nonlocal stdin_closed
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not msg.data:
                continue
            raw = msg.data if msg.type == WSMsgType.BINARY else msg.data.encode()
            if raw[0] == STDIN and "stdin" in ids and len(raw) > 1 and not stdin_closed:
                await send(data_frame(ids["stdin"], raw[1:]))
            elif raw[0] == RESIZE and "resize" in ids and len(raw) > 1:
                await send(data_frame(ids["resize"], raw[1:]))
            elif v5 and raw[0] == CLOSE and raw[1:2] == bytes([STDIN]) and "stdin" in ids and not stdin_closed:
                stdin_closed = True
                await send(data_frame(ids["stdin"], b"", fin=True))     # stdin's EOF, in the container

    tasks = [asyncio.create_task(down()), asyncio.create_task(upward())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (ConnectionError, OSError):
        pass
    finally:
        await cancel_all(tasks)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        await ws.close()

