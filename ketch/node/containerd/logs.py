"""The CRI log format containerd writes: `<RFC3339Nano time> <stdout|stderr> <P|F> <content>` per line.

`P` marks a partial line continued by the next record; `F` a full one. For `kubectl logs` the
node API strips the prefix (and may use the time for `timestamps`/`since*`).
"""

from __future__ import annotations

import datetime


def parse_line(line: bytes) -> tuple[float, str, bool, bytes] | None:
    """(time, stream, partial, content) of one record (content keeps its newline unless partial)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tag = parts[0], parts[1].decode(errors="replace"), parts[2].rstrip(b"\n")
    content = parts[3] if len(parts) == 4 else b"\n"
    try:
        when = _parse_time(stamp.decode())
    except ValueError:
        return None
    partial = tag == b"P"
    if partial:
        content = content.rstrip(b"\n")
    return when, stream, partial, content


def _parse_time(s: str) -> float:
    # Python's fromisoformat takes at most 6 fraction digits; containerd writes 9.
    if "." in s:
        head, frac = s.split(".", 1)
        tz = ""
        for i, ch in enumerate(frac):
            if not ch.isdigit():
                frac, tz = frac[:i], frac[i:]
                break
        s = f"{head}.{frac[:6]}{tz}"
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def plain(data: bytes) -> bytes:
    """The content of a chunk of CRI log records (complete lines only), prefixes removed."""
    out = []
    for line in data.splitlines(keepends=True):
        rec = parse_line(line)
        out.append(rec[3] if rec else line)
    return b"".join(out)


class Record:
    """One CRI log record: its time (as written and parsed), stream, P/F tag and content."""

    __slots__ = ("stamp", "when", "stream", "partial", "content")

    def __init__(self, stamp: bytes, when: float, stream: str, partial: bool, content: bytes):
        self.stamp, self.when, self.stream, self.partial, self.content = stamp, when, stream, partial, content


def parse_record(line: bytes, default: float = 0.0) -> Record:
    """A record from one complete line; a malformed line is kept whole as a full stdout line."""
    parts = line.split(b" ", 3)
    if len(parts) >= 3:
        try:
            when = _parse_time(parts[0].decode())
        except (ValueError, UnicodeDecodeError):
            when = None
        if when is not None:
            partial = parts[2].rstrip(b"\n") == b"P"
            content = parts[3] if len(parts) == 4 else b"\n"
            if partial:
                content = content.rstrip(b"\n")
            return Record(parts[0], when, parts[1].decode(errors="replace"), partial, content)
    return Record(b"", default, "stdout", False, line if line.endswith(b"\n") else line + b"\n")


def records(data: bytes, default: float = 0.0) -> list[Record]:
    """Every record of the complete lines of `data`."""
    return [parse_record(line, default) for line in data.splitlines(keepends=True) if line.endswith(b"\n")]


def group_lines(recs: list[Record]) -> list[list[Record]]:
    """Records grouped into logical lines (partial records with the record that completes them)."""
    out: list[list[Record]] = []
    cur: list[Record] = []
    for r in recs:
        cur.append(r)
        if not r.partial:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def render(recs: list[Record], stamps: bool, at_line_start: bool = True) -> tuple[bytes, bool]:
    """The text of records as the kubelet prints it: content only, with `timestamps` the record's
    own RFC3339Nano time before each line (not before the continuation of a partial line).
    Returns the text and whether the next record starts a line."""
    out = []
    for r in recs:
        if stamps and at_line_start:
            out.append((r.stamp or format_time(r.when).encode()) + b" ")
        out.append(r.content)
        at_line_start = not r.partial
    return b"".join(out), at_line_start


def format_time(t: float) -> str:
    """RFC3339Nano in UTC as Go prints it (trailing zeros of the fraction dropped)."""
    d = datetime.datetime.fromtimestamp(t, datetime.UTC)
    frac = f"{d.microsecond:06d}".rstrip("0")
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"
