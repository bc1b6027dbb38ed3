"""`ketch controller-manager`: the controllers, as a client of the apiserver."""

from __future__ import annotations

import argparse
import asyncio
import signal

from ..client.rest import Client


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    """Register `ketch controller-manager`; returns the command names this module runs."""
    p = sub.add_parser("controller-manager", help="run the controllers against an apiserver")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the apiserver to manage")
    p.add_argument("-v", "--verbose", action="store_true")
    return ["controller-manager"]


async def run_controllers(client: Client, stop: asyncio.Event, args: argparse.Namespace | None = None) -> None:
    """Run every controller until `stop` is set."""
    from ..controllers.namespace import run_namespace_controller
    await asyncio.gather(run_namespace_controller(client, stop))


async def run_in_up(client: Client, stop: asyncio.Event, args: argparse.Namespace) -> None:
    await run_controllers(client, stop, args)


async def run(args: argparse.Namespace) -> int:
    client = Client.from_kubeconfig(args.kubeconfig, user_agent="ketch-controller-manager")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_controllers(client, stop, args)
    finally:
        await client.close()
    return 0
