"""Small asyncio helpers shared by the components."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable


async def cancel_all(tasks: Iterable[asyncio.Future]) -> None:
    """Cancel every task, then wait for each to finish (whatever it raises)."""
    tasks = list(tasks)
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(BaseException):
            await t


def libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None when the C library is not glibc."""
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


async def trim_heap(malloc_trim: Callable[[int], int] | None, stop: asyncio.Event, every: float = 30.0) -> None:
    """malloc_trim every `every` seconds, on a worker thread (ctypes lets go of the GIL): glibc keeps
    the pages of freed memory in the middle of its heaps (a 10,000-pod list leaves tens of MB
    behind each time); this hands them back to the system."""
    while malloc_trim is not None and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            await asyncio.to_thread(malloc_trim, 0)
