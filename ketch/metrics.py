"""Prometheus text for the few histograms ketch keeps (cumulative buckets, _sum, _count)."""

from __future__ import annotations

import bisect


class Histogram:
    """Counts of observations per upper bound (seconds); cheap enough for every write and event."""

    __slots__ = ("name", "help", "bounds", "counts", "sum")

    def __init__(self, name: str, help_text: str, bounds: tuple[float, ...]):
        self.name = name
        self.help = help_text
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        total = 0
        for le, n in zip([*self.bounds, "+Inf"], self.counts, strict=True):
            total += n
            out.append(f'{self.name}_bucket{{le="{le}"}} {total}')
        out += [f"{self.name}_sum {self.sum:.6f}", f"{self.name}_count {total}"]
        return out
