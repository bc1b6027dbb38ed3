"""CPU and memory usage of the node and of each container's processes, read from /proc.

A container of the process runtime is a session (its shim is the session leader): its usage is
the sum over every process of that session. A container of the containerd runtime is a cgroup. CPU is a rate between two samples, as the kubelet's
resource metrics endpoint reports it (nanocores over a window).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sample:
    """One reading: cumulative CPU seconds and resident memory, per session id and for the node."""

    at: float
    node_cpu: float
    node_memory: int
    sessions: dict[int | str, tuple[float, int]] = field(default_factory=dict)   # by session id or cgroup


def _node_cpu() -> float:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    busy = sum(int(x) for i, x in enumerate(parts[:8]) if i not in (3, 4))   # minus idle and iowait
    return busy / TICKS


def _node_memory() -> int:
    info: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            info[k] = int(v.split()[0]) * 1024
    return info.get("MemTotal", 0) - info.get("MemAvailable", 0)


CGROUP_ROOT = "/sys/fs/cgroup"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _stat(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def cgroup_usage(path: str, root: str = CGROUP_ROOT) -> tuple[float, int] | None:
    """(CPU seconds, working-set bytes) of a cgroup, v1 or v2, as the kubelet (cAdvisor) counts
    them: the working set is the usage minus the inactive file cache."""
    path = path.strip("/")
    if os.path.exists(os.path.join(root, "cgroup.controllers")):        # v2, unified
        d = os.path.join(root, path)
        cpu = _stat(_read(os.path.join(d, "cpu.stat"))).get("usage_usec")
        mem = _read(os.path.join(d, "memory.current"))
        if cpu is None or mem is None:
            return None
        inactive = _stat(_read(os.path.join(d, "memory.stat"))).get("inactive_file", 0)
        return cpu / 1e6, max(int(mem) - inactive, 0)
    cpu_ns = _read(os.path.join(root, "cpuacct", path, "cpuacct.usage"))
    mem = _read(os.path.join(root, "memory", path, "memory.usage_in_bytes"))
    if cpu_ns is None or mem is None:
        return None
    inactive = _stat(_read(os.path.join(root, "memory", path, "memory.stat"))).get("total_inactive_file", 0)
    return int(cpu_ns) / 1e9, max(int(mem) - inactive, 0)


def sample(sessions: set[int], cgroups: set[str] | None = None) -> Sample:
    """Read the node, every process whose session is in `sessions` and every cgroup in `cgroups`
    (keyed by its path)."""
    s = Sample(time.monotonic(), _node_cpu(), _node_memory())
    for cg in cgroups or ():
        usage = cgroup_usage(cg)
        if usage is not None:
            s.sessions[cg] = usage   # type: ignore[index]
    if not sessions:
        return s
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        sid = int(fields[3])
        if sid not in sessions:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        rss = int(fields[21]) * PAGE
        old = s.sessions.get(sid, (0.0, 0))
        s.sessions[sid] = (old[0] + cpu, old[1] + rss)
    return s


def rate(old: Sample, new: Sample, sid: int | str | None = None) -> float:
    """CPU cores used between two samples (the node's when sid is None)."""
    dt = new.at - old.at
    if dt <= 0:
        return 0.0
    if sid is None:
        return max(new.node_cpu - old.node_cpu, 0.0) / dt
    if sid not in new.sessions:
        return 0.0
    return max(new.sessions[sid][0] - old.sessions.get(sid, (new.sessions[sid][0], 0))[0], 0.0) / dt
