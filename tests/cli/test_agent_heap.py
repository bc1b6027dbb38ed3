"""The standalone agent keeps its heap small: two malloc arenas and a periodic malloc_trim (glibc);
the apiserver trims too (after big lists)."""

from __future__ import annotations

import asyncio

from ketch.aioutil import libc_malloc_trim, trim_heap
from ketch.cli.cmd_agent import _small_heap


def test_trim_heap_runs_until_stopped():
    trim = _small_heap()
    assert trim is not None          # Debian's glibc has mallopt and malloc_trim
    calls = []

    def counting(pad: int) -> int:
        calls.append(pad)
        return trim(pad)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(trim_heap(counting, stop, every=0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
    asyncio.run(main())
    assert calls[:3] == [0, 0, 0]


def test_no_glibc_means_no_trimming():
    async def main() -> None:
        await asyncio.wait_for(trim_heap(None, asyncio.Event(), every=0.01), 1)
    asyncio.run(main())


def test_malloc_trim_found_and_returns():
    trim = libc_malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)          # 1: memory was released, 0: none could be
