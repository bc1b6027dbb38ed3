"""`ketch up` to node Ready, and the idle RSS of everything ketch runs.

Starts `ketch up` on a fresh data directory N times (default 5) and times the command until the
node reports Ready through the API; then lets the last one idle and reads the RSS of the ketch
process tree (containerd and the pods themselves excluded). Prints figures; never asserts.

    .venv/bin/python bench/up_bench.py [--runs 5] [--runtime containerd|process]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def ketch_tree(pid: int) -> list[int]:
    """pid and its descendants that are ketch's own (python) processes, not containerd or pods."""
    out = [pid]
    children = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(pid)], capture_output=True,
                              text=True).stdout.split("\n")
    for line in children:
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("python"):
            out += ketch_tree(int(parts[0]))
    return out


def node_ready(data: str) -> bool:
    env = dict(os.environ, KUBECONFIG=os.path.join(data, "kubeconfig"))
    r = subprocess.run([str(BIN / "kubectl"), "get", "nodes", "-o", "json"], capture_output=True, text=True,
                       env=env, timeout=10)
    if r.returncode != 0:
        return False
    items = json.loads(r.stdout)["items"]
    return any(c["type"] == "Ready" and c["status"] == "True"
               for n in items for c in n.get("status", {}).get("conditions", []))


def one_run(args: argparse.Namespace, idle: float) -> tuple[float, float]:
    data = tempfile.mkdtemp(prefix="ketch-up-bench-")
    extra = ["--runtime", args.runtime] if args.runtime else []
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BIN / "ketch"), "up", "--data-dir", data, "--port", str(free_port()), *extra],
                            stdout=open(os.path.join(data, "up.log"), "wb"), stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(open(os.path.join(data, "up.log")).read())
            if os.path.exists(os.path.join(data, "kubeconfig")) and node_ready(data):
                ready = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 60:
                raise SystemExit("node not Ready within 60 s")
            time.sleep(0.02)
        rss = 0.0
        if idle:
            time.sleep(idle)
            rss = sum(rss_mb(p) for p in ketch_tree(proc.pid))
        return ready, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--runtime", default=None, help="passed to ketch up (default: its own choice)")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds to idle before reading RSS")
    args = ap.parse_args()
    times = []
    rss = 0.0
    for i in range(args.runs):
        t, r = one_run(args, args.idle if i == args.runs - 1 else 0)
        times.append(t)
        rss = r or rss
    print(f"ketch up benchmark ({os.cpu_count()} cores, runtime {args.runtime or 'default'}, {args.runs} runs)")
    print(f"  ketch up -> node Ready, median  {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f})")
    print(f"  idle RSS of ketch (apiserver, controllers, scheduler, agent; runtime and pods excluded)  {rss:.0f} MB")


if __name__ == "__main__":
    main()
