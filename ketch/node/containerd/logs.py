"""The CRI log format containerd writes: `<RFC3339Nano time> <stdout|stderr> <P|F> <content>` per line.

`P` marks a partial line continued by the next record; `F` a full one. For `kubectl logs` the
node API strips the prefix (and may use the time for `timestamps`/`since*`).
"""

from __future__ import annotations

import datetime
import re


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


# -- whole-buffer helpers (the node API's fast path: a regex pass instead of an object per record) --
_RECORD = re.compile(rb"^([^ \n]+) (?:stdout|stderr) (?:F |P ([^\n]*)\n)", re.M)
_PARTIAL = re.compile(rb"^[^ \n]+ (?:stdout|stderr) P ", re.M)
_FULL = re.compile(rb"^([^ \n]+) (?:stdout|stderr) F ", re.M)


def render_bytes(data: bytes, stamps: bool, at_line_start: bool = True) -> tuple[bytes, bool]:
    """`render` for a buffer of complete CRI lines: the content (with `timestamps`, each line's record
    time before it); lines that are not CRI records are kept as they are."""
    if at_line_start and not _PARTIAL.search(data):
        return _FULL.sub(rb"\1 " if stamps else b"", data), True
    state = [at_line_start]

    def sub(m: re.Match) -> bytes:
        prefix = m.group(1) + b" " if stamps and state[0] else b""
        state[0] = m.group(2) is None
        return prefix + (m.group(2) or b"")
    return _RECORD.sub(sub, data), state[0]


def line_time(line: bytes) -> float:
    """The record time of one CRI line (0 for a line that is not a record)."""
    try:
        return _parse_time(line.split(b" ", 1)[0].decode())
    except (ValueError, UnicodeDecodeError):
        return 0.0


def is_partial(line: bytes) -> bool:
    parts = line.split(b" ", 3)
    return len(parts) >= 3 and parts[2].rstrip(b"\n") == b"P"


def select_lines(data: bytes, since: float | None, tail: int | None) -> bytes:
    """The CRI lines of `data` at or after `since`, then the last `tail` logical lines (a partial
    record goes with the record that completes it). Records are in time order, so `since` is a
    binary search, and `tail` looks only at the end."""
    import bisect
    lines = data.splitlines(keepends=True)
    start = 0
    if since is not None:
        start = bisect.bisect_left(lines, since, key=line_time)
    if tail is not None:
        j, n = len(lines), 0
        while j > start and n < tail:
            j -= 1
            if not is_partial(lines[j]):
                n += 1
        while j > start and n and is_partial(lines[j - 1]):
            j -= 1
        start = len(lines) if tail <= 0 else max(start, j)
    return b"".join(lines[start:])
