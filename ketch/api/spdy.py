"""SPDY/3.1 framing shared by the apiserver (kubectl's SPDY exec upgrade) and the node agent
(port-forward tunnelled in WebSocket): frame builders, a frame splitter, header blocks.

Header blocks are zlib streams primed with the SPDY/3 dictionary, one stream per direction for
the whole session (SPDY/3 section 2.6.10).
"""

from __future__ import annotations

import struct
import zlib

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


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload


def data_frame(sid: int, payload: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", sid & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload


def split_frames(buf: bytearray) -> list[bytes]:
    """Remove and return every complete frame at the start of buf."""
    out = []
    while len(buf) >= 8:
        length = int.from_bytes(buf[5:8], "big")
        if len(buf) < 8 + length:
            break
        out.append(bytes(buf[:8 + length]))
        del buf[:8 + length]
    return out


class HeaderCodec:
    """The two zlib streams of one session: inflate what the peer sends, deflate what we send."""

    def __init__(self) -> None:
        self.inflate = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self.deflate = zlib.compressobj(zdict=SPDY3_DICTIONARY)

    def decode(self, block: bytes) -> dict[str, str]:
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

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
