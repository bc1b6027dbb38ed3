"""Facts about the machine the agent runs on: capacity, addresses, node info, pressure."""

from __future__ import annotations

import os
import platform
import socket

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
KUBELET_VERSION = "v1.34.0-ketch.0.1.0"


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        k, _, v = line.partition(":")
        parts = v.split()
        if parts:
            out[k] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def arch() -> str:
    m = platform.machine()
    return ARCH.get(m, m)


def host_ip() -> str:
    """The address other machines reach this one at (the default route's source), else loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def capacity(data_dir: str) -> dict[str, str]:
    st = os.statvfs(data_dir)
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{meminfo().get('MemTotal', 0) // 1024}Ki",
            "ephemeral-storage": f"{st.f_blocks * st.f_frsize // 1024}Ki", "pods": "110"}


def allocatable(cap: dict[str, str]) -> dict[str, str]:
    """Capacity minus the eviction reserve (100Mi of memory), as the kubelet reports by default."""
    out = dict(cap)
    mem = int(cap["memory"].removesuffix("Ki")) - 100 * 1024
    out["memory"] = f"{max(mem, 0)}Ki"
    return out


def node_info(runtime: str, runtime_version: str) -> dict[str, str]:
    return {
        "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
        "osImage": os_image(), "containerRuntimeVersion": f"{runtime}://{runtime_version}",
        "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux", "architecture": arch(),
    }


def pressure(data_dir: str) -> dict[str, bool]:
    """MemoryPressure/DiskPressure/PIDPressure by the kubelet's default hard eviction thresholds."""
    mem = meminfo().get("MemAvailable", 1 << 40)
    st = os.statvfs(data_dir)
    disk_free = st.f_bavail / st.f_blocks if st.f_blocks else 1.0
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max", "32768"))
        nprocs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    except (OSError, ValueError):
        pid_max, nprocs = 1, 0
    return {"MemoryPressure": mem < 100 * 1024 * 1024, "DiskPressure": disk_free < 0.10,
            "PIDPressure": nprocs > 0.9 * pid_max}
