"""A minimal DNS wire-format codec (RFC 1035): parse queries, build responses."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

A, NS, CNAME, SOA, PTR, AAAA, SRV, ANY = 1, 2, 5, 6, 12, 28, 33, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5


class DecodeError(ValueError):
    """The message is not a well-formed DNS message."""


@dataclass
class Question:
    name: str          # lower-case, without the trailing dot
    qtype: int
    qclass: int = CLASS_IN


@dataclass
class Record:
    name: str
    rtype: int
    ttl: int
    data: bytes        # RDATA already encoded


@dataclass
class Message:
    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def recursion_desired(self) -> bool:
        return bool(self.flags & 0x0100)


def read_name(buf: bytes, off: int) -> tuple[str, int]:
    """A (possibly compressed) domain name at off; returns (name, offset after it)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if off >= len(buf):
            raise DecodeError("name runs past the message")
        n = buf[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(buf):
                raise DecodeError("truncated pointer")
            if end < 0:
                end = off + 2
            off = ((n & 0x3F) << 8) | buf[off + 1]
            jumps += 1
            if jumps > 32:
                raise DecodeError("compression loop")
            continue
        if n & 0xC0:
            raise DecodeError("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(buf):
            raise DecodeError("label runs past the message")
        labels.append(buf[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (end if end >= 0 else off)


def parse(buf: bytes) -> Message:
    """Header and questions of a message (answers are not needed by a server)."""
    if len(buf) < 12:
        raise DecodeError("shorter than a header")
    mid, flags, qd, _an, _ns, _ar = struct.unpack("!6H", buf[:12])
    msg = Message(mid, flags)
    off = 12
    for _ in range(qd):
        name, off = read_name(buf, off)
        if off + 4 > len(buf):
            raise DecodeError("truncated question")
        qtype, qclass = struct.unpack("!2H", buf[off:off + 4])
        off += 4
        msg.questions.append(Question(name.lower().rstrip("."), qtype, qclass))
    return msg


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if not label:
            continue
        b = label.encode("ascii")
        if len(b) > 63:
            raise ValueError(f"label too long: {label!r}")
        out.append(len(b))
        out += b
    out.append(0)
    return bytes(out)


def rdata_a(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def rdata_aaaa(ip: str) -> bytes:
    return ipaddress.IPv6Address(ip).packed


def rdata_srv(priority: int, weight: int, port: int, target: str) -> bytes:
    return struct.pack("!3H", priority, weight, port) + encode_name(target)


def rdata_soa(mname: str, rname: str, serial: int, minimum: int) -> bytes:
    return encode_name(mname) + encode_name(rname) + struct.pack("!5I", serial, 7200, 1800, 86400, minimum)


def response(query: Message, rcode: int, answers: list[Record] = (),   # type: ignore[assignment]
             authority: list[Record] = (), additional: list[Record] = (),   # type: ignore[assignment]
             authoritative: bool = True, max_size: int = 0) -> bytes:
    """A response echoing the query's question; truncated (TC) past max_size when max_size > 0."""
    flags = 0x8000 | (query.opcode << 11) | (0x0400 if authoritative else 0) | \
        (query.flags & 0x0100) | 0x0080 | (rcode & 0xF)
    body = bytearray()
    qname_off = -1
    for q in query.questions:
        if qname_off < 0:
            qname_off = 12
        body += encode_name(q.name) + struct.pack("!2H", q.qtype, q.qclass)
    first = query.questions[0].name if query.questions else None
    sections = []
    for recs in (answers, authority, additional):
        enc = bytearray()
        for r in recs:
            owner = struct.pack("!H", 0xC000 | qname_off) if (r.name == first and qname_off >= 0) \
                else encode_name(r.name)
            enc += owner + struct.pack("!2HIH", r.rtype, CLASS_IN, r.ttl, len(r.data)) + r.data
        sections.append(enc)
    counts = [len(answers), len(authority), len(additional)]
    msg = struct.pack("!6H", query.id, flags, len(query.questions), *counts) + body + b"".join(sections)
    if max_size and len(msg) > max_size:
        flags |= 0x0200
        msg = struct.pack("!6H", query.id, flags, len(query.questions), 0, 0, 0) + body
    return msg


def build_query(mid: int, name: str, qtype: int, recursion: bool = True) -> bytes:
    """A query message (for tests and the forwarder's health checks)."""
    return struct.pack("!6H", mid, 0x0100 if recursion else 0, 1, 0, 0, 0) + encode_name(name) + \
        struct.pack("!2H", qtype, CLASS_IN)


def parse_answers(buf: bytes) -> tuple[int, list[tuple[str, int, bytes]]]:
    """rcode and (name, type, rdata) of the answer section of a response."""
    mid, flags, qd, an, _ns, _ar = struct.unpack("!6H", buf[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(buf, off)
        off += 4
    out = []
    for _ in range(an):
        name, off = read_name(buf, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!2HIH", buf[off:off + 10])
        off += 10
        rdata = buf[off:off + rdlen]
        if rtype in (CNAME, PTR, NS):
            rdata = read_name(buf, off)[0].encode()
        elif rtype == SRV:
            rdata = buf[off:off + 6] + read_name(buf, off + 6)[0].encode()
        out.append((name.lower(), rtype, rdata))
        off += rdlen
    return flags & 0xF, out
