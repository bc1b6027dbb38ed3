"""What every foreground command shares: a client from a kubeconfig, and a stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from ..client.rest import Client


def client_from_kubeconfig(path: str, component: str) -> Client | None:
    """A client for `component`, or None after printing one line saying why the kubeconfig is unusable."""
    try:
        return Client.from_kubeconfig(path, user_agent=f"ketch-{component}")
    except (OSError, KeyError, StopIteration) as e:
        print(f"ketch {component}: cannot use kubeconfig {path}: {e}", file=sys.stderr)
        return None


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: how a foreground command learns to stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
