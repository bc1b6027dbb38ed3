"""`ketch server`: the control plane alone (apiserver, controllers, scheduler; no node agent).

Several servers over one etcd (`--datastore etcd://...`) serve the same cluster; see docs/ha.md.
"""

from __future__ import annotations

import argparse

_up_parser: argparse.ArgumentParser | None = None


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    """Register `ketch server`; returns the command names this module runs."""
    global _up_parser
    _up_parser = up
    from .main import COMPACT_INTERVAL, DEFAULT_PORT, default_data_dir
    p = sub.add_parser("server", help="run the control plane (apiserver, controllers, scheduler) without a node agent")
    p.add_argument("--data-dir", help=f"where state, certificates and the kubeconfig live (default {default_data_dir()})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port (default 6443; 0 picks a free one)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--datastore", default="",
                   help="sqlite:// (default, embedded) or etcd://host:2379[,host:2379] (etcds:// for TLS)")
    p.add_argument("--http", action="store_true",
                   help="serve plain HTTP without authentication (loopback only; for development and tests)")
    p.add_argument("--tls-san", action="append", help="extra name or IP for the serving certificate")
    p.add_argument("--no-controllers", action="store_true", help="do not run the controller-manager here")
    p.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler here")
    p.add_argument("--no-dns", action="store_true", help="do not run the cluster DNS here")
    p.add_argument("--cluster-dns", default="", help="serve cluster DNS on ADDR:PORT (default: this host's "
                   "address, port 53 or a free one)")
    p.add_argument("--compact-interval", type=float, default=COMPACT_INTERVAL, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true")
    return ["server"]


def server_args(args: argparse.Namespace) -> argparse.Namespace:
    """`ketch up`'s defaults for every option `server` does not define, and no node agent."""
    if _up_parser is not None:
        for k, v in vars(_up_parser.parse_args([])).items():
            if not hasattr(args, k):
                setattr(args, k, v)
    args.no_agent = True
    return args


async def run(args: argparse.Namespace) -> int:
    """`ketch server` in the foreground: `ketch up` without the node agent."""
    from .main import run_up
    return await run_up(server_args(args))
