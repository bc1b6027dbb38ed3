"""`ketch scheduler`: the scheduler, as a client of the apiserver."""

from __future__ import annotations

import argparse
import asyncio
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
    from ..client.leaderelection import run_with_leader_election, stable_identity
    from ..scheduler import run_scheduler
    config = _config(getattr(args, "scheduler_config", None))
    await run_with_leader_election(client, "ketch-scheduler", "kube-system", stable_identity(args, "scheduler"),
                                   lambda leading: run_scheduler(client, leading, config), stop)


async def run(args: argparse.Namespace) -> int:
    from ..scheduler import ConfigError, run_scheduler
    try:
        config = _config(args.config)
    except ConfigError as e:
        print(f"ketch scheduler: {e}", file=sys.stderr)
        return 1
    from .common import client_from_kubeconfig, stop_on_signals
    client = client_from_kubeconfig(args.kubeconfig, "scheduler")
    if client is None:
        return 1
    stop = stop_on_signals()
    try:
        from ..client.leaderelection import identity_from_env, run_with_leader_election
        await run_with_leader_election(client, "ketch-scheduler", "kube-system", identity_from_env("scheduler"),
                                       lambda leading: run_scheduler(client, leading, config), stop)
    finally:
        await client.close()
    return 0
