"""`ketch scheduler`: the scheduler, as a client of the apiserver."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from ..client.rest import Client


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    """Register `ketch scheduler` (and `ketch up --no-scheduler/--scheduler-config`)."""
    p = sub.add_parser("scheduler", help="run the scheduler against an apiserver")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the apiserver")
    p.add_argument("--config", help="KubeSchedulerConfiguration YAML (profiles, plugins, user plugins)")
    p.add_argument("-v", "--verbose", action="store_true")
    up.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler inside ketch up")
    up.add_argument("--scheduler-config", help="scheduler configuration file for the built-in scheduler")
    return ["scheduler"]


def _config(path: str | None):
    from ..scheduler.config import load_config
    return load_config(path)


async def run_in_up(client: Client, stop: asyncio.Event, args: argparse.Namespace) -> None:
    if getattr(args, "no_scheduler", False):
        return
    from ..scheduler import run_scheduler
    await run_scheduler(client, stop, _config(getattr(args, "scheduler_config", None)))


async def run(args: argparse.Namespace) -> int:
    from ..scheduler import ConfigError, run_scheduler
    try:
        config = _config(args.config)
    except ConfigError as e:
        print(f"ketch scheduler: {e}", file=sys.stderr)
        return 1
    try:
        client = Client.from_kubeconfig(args.kubeconfig, user_agent="ketch-scheduler")
    except (OSError, KeyError, StopIteration) as e:
        print(f"ketch scheduler: cannot use kubeconfig {args.kubeconfig}: {e}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_scheduler(client, stop, config)
    finally:
        await client.close()
    return 0
