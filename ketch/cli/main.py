"""The `ketch` command: `ketch up` runs a cluster in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time

from ..client.kubeconfig import write_kubeconfig

DEFAULT_PORT = 6443
COMPACT_INTERVAL = 300.0


def _is_loopback(address: str) -> bool:
    import ipaddress
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def default_data_dir() -> str:
    return "/var/lib/ketch" if os.geteuid() == 0 else os.path.expanduser("~/.ketch")


async def _compactor(store, interval: float) -> None:
    """Compact history older than one interval, like kube-apiserver does every 5 minutes."""
    previous = await store.current_revision()
    while True:
        await asyncio.sleep(interval)
        rev = await store.current_revision()
        if previous:
            await store.compact(previous)
        previous = rev


def open_store(datastore: str, data_dir: str):
    """The store a --datastore URL names: '' or sqlite:// (embedded, in the data dir) or etcd://h:p[,h:p]."""
    if datastore.startswith("etcd://") or datastore.startswith("etcds://"):
        from ..store.etcd import EtcdStore
        return EtcdStore.from_url(datastore)
    if datastore and not datastore.startswith("sqlite://"):
        raise SystemExit(f"ketch: unsupported --datastore {datastore!r}: use sqlite:// or etcd://host:2379")
    from ..store.sqlite import SQLiteStore
    path = datastore[len("sqlite://"):] if datastore.startswith("sqlite://") and len(datastore) > 9 else \
        os.path.join(data_dir, "state.db")
    return SQLiteStore(path)


async def run_up(args: argparse.Namespace) -> int:
    from aiohttp import web

    from ..apiserver.server import APIServer

    data_dir = os.path.abspath(args.data_dir or default_data_dir())
    os.makedirs(data_dir, exist_ok=True)
    t0 = time.monotonic()
    secure = not args.http
    if not secure and not _is_loopback(args.address):
        print(f"ketch: --http serves without TLS or authentication, so only on loopback, not {args.address}",
              file=sys.stderr)
        return 2
    ssl_ctx = None
    tokens = None
    admin_token = None
    ca_pem = None
    if secure:
        from ..apiserver.auth import TokenFile, server_ssl_context
        from ..apiserver.pki import PKI, default_hosts, new_token
        pki = PKI(os.path.join(data_dir, "pki"))
        pki.ensure(default_hosts(args.address) + list(args.tls_san or []))
        tokens = TokenFile(os.path.join(pki.dir, "tokens.json"))
        admin_token = tokens.find_user("ketch-admin")
        if admin_token is None:
            admin_token = new_token()
            tokens.add(admin_token, "ketch-admin", ["system:masters", "system:authenticated"])
        join_token = tokens.find_user("system:bootstrap:join")
        if join_token is None:
            join_token = new_token()
            tokens.add(join_token, "system:bootstrap:join", ["system:bootstrappers"])
        ssl_ctx = server_ssl_context(pki.serving_cert, pki.serving_key, pki.ca_cert)
        with open(pki.ca_cert, "rb") as f:
            ca_pem = f.read()
        from ..client.join import ca_hash
        join_token = f"K10{ca_hash(ca_pem)}::{join_token}"
    datastore = getattr(args, "datastore", "") or ""
    if datastore.startswith("etcd") and os.path.exists(os.path.join(data_dir, "state.db")):
        from .cmd_datastore import sqlite_objects
        n = await sqlite_objects(data_dir)
        if n:
            print(f"ketch: {data_dir} holds an embedded SQLite store with {n} objects, and --datastore names etcd.\n"
                  f"  copy it over first: ketch datastore migrate --data-dir {data_dir} --to {datastore}", file=sys.stderr)
            return 1
    store = open_store(datastore, data_dir)
    await store.start()
    server = APIServer(store, advertise=f"{args.address}:{args.port}", tokens=tokens, secure=secure)
    server.ca_pem = ca_pem or b""
    from ..apiserver.satoken import TokenSigner
    server.signer = TokenSigner(os.path.join(data_dir, "pki", "sa.key"))
    await server.start()
    runner = server.runner(handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, args.address, args.port, backlog=1024, reuse_address=True, ssl_context=ssl_ctx)
    try:
        await site.start()
    except OSError as e:
        print(f"ketch: cannot listen on {args.address}:{args.port}: {e.strerror}; pick another --port", file=sys.stderr)
        await runner.cleanup()
        await server.close()
        await store.close()
        return 1
    port = site._server.sockets[0].getsockname()[1] if args.port == 0 else args.port  # type: ignore[union-attr]
    host = "127.0.0.1" if args.address in ("0.0.0.0", "::") else args.address
    url = f"{'https' if secure else 'http'}://{host}:{port}"
    kubeconfig = os.path.join(data_dir, "kubeconfig")
    write_kubeconfig(kubeconfig, url, admin_token, ca_pem)
    from .common import stop_on_signals
    stop = stop_on_signals()
    loop = asyncio.get_running_loop()
    from ..client.rest import Client
    from .cmd_status import remove_pid, write_pid
    write_pid(data_dir)

    client = Client(url, token=admin_token, ca_file=os.path.join(data_dir, "pki", "ca.crt") if secure else None,
                    user_agent="ketch-up")
    tasks = [loop.create_task(_compactor(store, args.compact_interval))]
    # Each component that runs inside `ketch up` has a command module with run_in_up().
    for mod in _command_modules():
        run_in_up = getattr(mod, "run_in_up", None)
        if run_in_up is not None:
            tasks.append(loop.create_task(run_in_up(client, stop, args)))
    kind = "etcd" if type(store).__name__ == "EtcdStore" else "sqlite"
    print(f"ketch apiserver listening on {url} (data in {data_dir}, store {kind}"
          f"{', TLS + token authentication' if secure else ', plain HTTP without authentication'})", flush=True)
    if secure:
        print(f"join token for more nodes: {join_token}\n"
              f"  ketch agent --server {url} --token <join token> --node-name NAME", flush=True)
    print(f"ketch is ready in {time.monotonic() - t0:.2f}s. To use it:\n"
          f"  export KUBECONFIG={kubeconfig}\n  kubectl get namespaces", flush=True)
    await stop.wait()
    print("ketch: shutting down", flush=True)
    for t in tasks:
        t.cancel()
        with contextlib.suppress(BaseException):
            await t
    await client.close()
    await server.close()
    await runner.cleanup()
    await store.close()
    remove_pid(data_dir)
    print("ketch: stopped", flush=True)
    return 0


# Command modules under ketch/cli/: each has add_parser(subparsers) and run(args) -> int (async),
# and optionally run_in_up(client, stop, args) for components that `ketch up` runs in-process.
COMMANDS = ("cmd_controller_manager", "cmd_scheduler", "cmd_agent", "cmd_status", "cmd_server", "cmd_datastore",
            "cmd_proxy")


def _command_modules() -> list:
    import importlib
    mods = []
    for name in COMMANDS:
        try:
            mods.append(importlib.import_module(f"ketch.cli.{name}"))
        except ModuleNotFoundError as e:
            if e.name != f"ketch.cli.{name}":
                raise
    return mods


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ketch", description="A lightweight Kubernetes-compatible orchestrator")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="run an all-in-one cluster in the foreground")
    up.add_argument("--data-dir", help=f"where state lives (default {default_data_dir()})")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port (default 6443; 0 picks a free one)")
    up.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--compact-interval", type=float, default=COMPACT_INTERVAL, help=argparse.SUPPRESS)
    up.add_argument("--datastore", default="", help="sqlite:// (default, embedded) or etcd://host:2379[,host:2379]")
    up.add_argument("--http", action="store_true",
                    help="serve plain HTTP without authentication (loopback only; for development and tests)")
    up.add_argument("--tls-san", action="append", help="extra name or IP for the serving certificate")
    up.add_argument("-v", "--verbose", action="store_true")
    handlers = {}
    for mod in _command_modules():
        for name in mod.add_parser(sub, up):
            handlers[name] = mod.run
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    if args.cmd == "up":
        return asyncio.run(run_up(args))
    return asyncio.run(handlers[args.cmd](args))


if __name__ == "__main__":
    sys.exit(main())
