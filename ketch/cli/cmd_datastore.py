"""`ketch datastore migrate`: copy an embedded SQLite store into etcd, to grow without rebuilding."""

from __future__ import annotations

import argparse
import os
import sys


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    p = sub.add_parser("datastore", help="manage the cluster's datastore")
    verbs = p.add_subparsers(dest="datastore_cmd", required=True)
    m = verbs.add_parser("migrate", help="copy the SQLite store of a data directory into etcd")
    m.add_argument("--data-dir", default=None, help="the data directory holding state.db")
    m.add_argument("--to", required=True, help="etcd://host:2379[,host:2379] (it must hold no cluster yet)")
    return ["datastore"]


async def sqlite_objects(data_dir: str) -> int:
    """How many objects the SQLite store of a data directory holds (0 when there is none)."""
    path = os.path.join(data_dir, "state.db")
    if not os.path.exists(path):
        return 0
    from ..store.sqlite import SQLiteStore
    src = SQLiteStore(path)
    await src.start()
    try:
        kvs, _ = await src.range("/registry/")
        return len(kvs)
    finally:
        await src.close()


async def migrate(data_dir: str, to: str, progress=print) -> int:
    """Copy every live key; returns the number copied. Refuses a target that already holds a cluster."""
    from ..store.etcd import EtcdStore
    from ..store.sqlite import SQLiteStore
    path = os.path.join(data_dir, "state.db")
    if not os.path.exists(path):
        raise SystemExit(f"ketch: no SQLite store at {path}")
    src = SQLiteStore(path)
    dst = EtcdStore.from_url(to)
    await src.start()
    await dst.start()
    try:
        existing, _ = await dst.range("/registry/")
        if existing:
            raise SystemExit(f"ketch: {to} already holds {len(existing)} objects; migrate only into an empty etcd")
        kvs, _ = await src.range("/registry/")
        for i, kv in enumerate(kvs, 1):
            await dst.create(kv.key, kv.value)
            if i % 500 == 0 or i == len(kvs):
                progress(f"copied {i}/{len(kvs)} objects")
        return len(kvs)
    finally:
        await dst.close()
        await src.close()


async def run(args: argparse.Namespace) -> int:
    from .main import default_data_dir
    data_dir = os.path.abspath(args.data_dir or default_data_dir())
    from .cmd_status import running_pid
    if running_pid(data_dir):
        print(f"ketch: a cluster is running on {data_dir}; stop it first (ketch down --data-dir {data_dir})",
              file=sys.stderr)
        return 1
    n = await migrate(data_dir, args.to, lambda m: print(m, flush=True))
    os.replace(os.path.join(data_dir, "state.db"), os.path.join(data_dir, "state.db.migrated"))
    print(f"ketch: {n} objects copied to {args.to}; state.db kept as state.db.migrated.\n"
          f"  start the cluster with: ketch server --data-dir {data_dir} --datastore {args.to}")
    return 0
