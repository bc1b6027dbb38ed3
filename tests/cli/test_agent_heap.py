"""The standalone agent keeps its heap small: two malloc arenas and a periodic malloc_trim (glibc)."""

from __future__ import annotations

import asyncio

from ketch.cli.cmd_agent import _small_heap, _trim_heap


def test_trim_heap_runs_until_stopped():
    trim = _small_heap()
    assert trim is not None          # Debian's glibc has mallopt and malloc_trim
    calls = []

    def counting(pad: int) -> int:
        calls.append(pad)
        return trim(pad)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(_trim_heap(counting, stop, every=0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
    asyncio.run(main())
    assert calls[:3] == [0, 0, 0]


def test_no_glibc_means_no_trimming():
    async def main() -> None:
        await asyncio.wait_for(_trim_heap(None, asyncio.Event(), every=0.01), 1)
    asyncio.run(main())
