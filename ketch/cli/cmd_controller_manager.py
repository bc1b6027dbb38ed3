"""`ketch controller-manager`: the controllers, as a client of the apiserver."""

from __future__ import annotations

import argparse
import asyncio

from ..client.rest import Client


def _add_tunables(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                   help="seconds without a Lease renewal before a node is unreachable (default 40)")
    p.add_argument("--pod-eviction-timeout", type=int, default=300,
                   help="default tolerationSeconds for not-ready/unreachable taints (default 300)")
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500,
                   help="terminated pods kept before Pod GC deletes the oldest (default 12500)")
    p.add_argument("--concurrent-syncs", type=int, default=4, help="workers per controller (default 4)")


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    """Register `ketch controller-manager`; returns the command names this module runs."""
    p = sub.add_parser("controller-manager", help="run the controllers against an apiserver")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the apiserver to manage")
    p.add_argument("--controllers", default="", help="comma-separated controllers to run (default all)")
    p.add_argument("-v", "--verbose", action="store_true")
    _add_tunables(p)
    up.add_argument("--no-controllers", action="store_true",
                    help="do not run the controller-manager inside ketch up (run it separately)")
    _add_tunables(up)
    return ["controller-manager"]


def _options(args: argparse.Namespace | None):
    from ..controllers.framework import Options
    if args is None:
        return Options()
    grace = getattr(args, "node_monitor_grace_period", 40.0)
    return Options(workers=getattr(args, "concurrent_syncs", 4),
                   node_monitor_grace_period=grace, orphan_pod_quarantine=min(10.0, grace),
                   default_toleration_seconds=getattr(args, "pod_eviction_timeout", 300),
                   terminated_pod_gc_threshold=getattr(args, "terminated_pod_gc_threshold", 12500))


async def run_controllers(client: Client, stop: asyncio.Event, args: argparse.Namespace | None = None,
                          identity: str | None = None) -> None:
    """Run every controller until `stop` is set, while this process leads (Lease kube-system/
    ketch-controller-manager), so several servers over one etcd never run two at once."""
    from ..client.leaderelection import identity_from_env, run_with_leader_election
    from ..controllers.manager import run_manager
    enabled = [c for c in (getattr(args, "controllers", "") or "").split(",") if c] or None
    await run_with_leader_election(client, "ketch-controller-manager", "kube-system",
                                   identity or identity_from_env("controller-manager"),
                                   lambda leading: run_manager(client, leading, _options(args), enabled), stop)


async def run_in_up(client: Client, stop: asyncio.Event, args: argparse.Namespace) -> None:
    """The controllers inside `ketch up` (unless --no-controllers)."""
    if getattr(args, "no_controllers", False):
        return
    from ..client.leaderelection import stable_identity
    await run_controllers(client, stop, args, stable_identity(args, "controller-manager"))


async def run(args: argparse.Namespace) -> int:
    """`ketch controller-manager --kubeconfig ...` in the foreground."""
    from .common import client_from_kubeconfig, stop_on_signals
    client = client_from_kubeconfig(args.kubeconfig, "controller-manager")
    if client is None:
        return 1
    stop = stop_on_signals()
    print("ketch controller-manager running", flush=True)
    try:
        await run_controllers(client, stop, args)
    finally:
        await client.close()
    return 0
