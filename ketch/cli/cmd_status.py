"""`ketch status` and `ketch down`: look at, and stop, the cluster a data directory holds."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time

PID_FILE = "ketch.pid"


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    from .main import default_data_dir
    for name, text in (("status", "show the cluster of a data directory: process, API, nodes"),
                       ("down", "stop the `ketch up` / `ketch server` running on a data directory")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data-dir", default=None, help=f"(default {default_data_dir()})")
    return ["status", "down"]


def write_pid(data_dir: str) -> None:
    with open(os.path.join(data_dir, PID_FILE), "w") as f:
        f.write(str(os.getpid()))


def remove_pid(data_dir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(data_dir, PID_FILE))


def running_pid(data_dir: str) -> int | None:
    try:
        with open(os.path.join(data_dir, PID_FILE)) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"ketch" not in f.read():
                return None
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


async def run(args: argparse.Namespace) -> int:
    from .main import default_data_dir
    data_dir = os.path.abspath(args.data_dir or default_data_dir())
    pid = running_pid(data_dir)
    if args.cmd == "down":
        if pid is None:
            print(f"ketch: nothing running on {data_dir}")
            return 0
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and running_pid(data_dir) == pid:
            await asyncio.sleep(0.1)
        if running_pid(data_dir) == pid:
            print(f"ketch: process {pid} did not stop within 30 s", flush=True)
            return 1
        print(f"ketch: stopped (pid {pid})")
        return 0
    return await _status(data_dir, pid)


async def _status(data_dir: str, pid: int | None) -> int:
    from ..client.rest import Client
    kubeconfig = os.path.join(data_dir, "kubeconfig")
    print(f"data dir:   {data_dir}")
    print(f"process:    {'running, pid ' + str(pid) if pid else 'not running'}")
    if not pid or not os.path.exists(kubeconfig):
        return 0 if not pid else 1
    client = Client.from_kubeconfig(kubeconfig)
    try:
        version = await client.request("GET", "/version")
        nodes = (await client.list(client.resource("nodes")))["items"]
    except Exception as e:  # the process runs but the API does not answer
        print(f"api:        {client.server} not answering: {e}")
        return 1
    finally:
        await client.close()
    print(f"api:        {client.server} (version {version.get('gitVersion')})")
    print(f"kubeconfig: {kubeconfig}")
    print(f"nodes:      {len(nodes)}")
    if nodes:
        rows = [("NAME", "STATUS", "VERSION")]
        for n in nodes:
            ready = next((c.get("status") for c in (n.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), "Unknown")
            status = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
            if (n.get("spec") or {}).get("unschedulable"):
                status += ",SchedulingDisabled"
            rows.append((n["metadata"]["name"], status,
                         ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print("  " + "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
