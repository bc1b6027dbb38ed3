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
