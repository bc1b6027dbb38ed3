"""ketch's own containerd: config, CNI conflist, start and stop (by PID) under the agent's data dir."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import time

log = logging.getLogger("ketch.node.containerd")

CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
IPAM_ROOT = "/var/lib/cni/ketch"


def cni_bin_dir() -> str:
    for d in CNI_BIN_DIRS:
        if os.path.exists(os.path.join(d, "bridge")):
            return d
    return CNI_BIN_DIRS[0]


OCI_RUNTIMES = ("auto", "runc", "crun")
CGROUP_ROOT = "/sys/fs/cgroup"


def v2_controllers_in_hybrid() -> list[str]:
    """Controllers bound to the cgroup2 hierarchy of a hybrid layout (v1 controllers on a tmpfs at
    /sys/fs/cgroup plus cgroup2 at /sys/fs/cgroup/unified). crun 1.8 refuses to create a container
    there unless that list is empty; on a pure v1 or a pure v2 layout it is always empty."""
    if not os.path.ismount(os.path.join(CGROUP_ROOT, "unified")):
        return []
    try:
        with open(os.path.join(CGROUP_ROOT, "unified", "cgroup.controllers")) as f:
            return f.read().split()
    except OSError:
        return []


def missing() -> list[str]:
    """What this machine lacks to run ketch's containerd (empty when all is there)."""
    out = [b for b in ("containerd", "runc", "ctr", "iptables") if not shutil.which(b)]
    if not os.path.exists(os.path.join(cni_bin_dir(), "bridge")):
        out.append("CNI plugins (containernetworking-plugins)")
    return out


class Containerd:
    """Paths, config and process of one containerd owned by an agent (or an existing socket)."""

    def __init__(self, data_dir: str, socket: str | None = None, sandbox_image: str = "",
                 pod_cidr: str = "10.89.0.0/16", bridge: str = "ketch0", oci_runtime: str = "runc"):
        self.dir = os.path.join(data_dir, "containerd")
        self.own = socket is None
        self.socket = socket or os.path.join(self.dir, "containerd.sock")
        if len(self.socket) > 100:   # unix socket paths are limited to 108 bytes
            short = hashlib.sha1(self.dir.encode()).hexdigest()[:12]
            self.socket = f"/run/ketch/{short}/containerd.sock"
            os.makedirs(os.path.dirname(self.socket), mode=0o700, exist_ok=True)
        self.sandbox_image = sandbox_image
        self.pod_cidr, self.bridge = pod_cidr, bridge
        self.cni_dir = os.path.join(data_dir, "cni")
        # Host-wide, per bridge: every agent on this machine that shares the bridge shares its addresses.
        self.ipam_dir = os.path.join(IPAM_ROOT, bridge)
        self.pid_file = os.path.join(self.dir, "containerd.pid")
        self.log_file = os.path.join(self.dir, "containerd.log")
        self.pid: int | None = None
        self.nft_masq = bool(shutil.which("nft"))
        self.oci_runtime = oci_runtime
        self.crun = shutil.which("crun") or ""

    def crun_binary(self) -> str:
        """The binary the crun runtime handler runs: crun itself, or, where cgroup2 holds controllers
        of a hybrid layout (which crun 1.8 refuses: "cgroups in hybrid mode not supported"), a wrapper
        (`crun_wrapper`) that runs `crun create` in a mount namespace of its own without
        /sys/fs/cgroup/unified, so that crun sees a plain cgroup v1 layout."""
        return os.path.join(self.dir, "crun-v1") if v2_controllers_in_hybrid() else self.crun

    def crun_wrapper(self) -> str:
        # Only create/run check the layout; the other commands (start, state, kill, delete, exec) run crun
        # as is. The namespace is a slave of the host's: nothing done in it reaches the host.
        return (f"#!/bin/sh\n# written by ketch (daemon.py, crun_binary): crun with cgroup v1 only\n"
                f"case \" $* \" in *\" create \"*|*\" run \"*)\n"
                f"  exec unshare --mount --propagation slave -- /bin/sh -c "
                f"'umount -l {CGROUP_ROOT}/unified && exec \"$0\" \"$@\"' {self.crun} \"$@\";;\nesac\n"
                f"exec {self.crun} \"$@\"\n")

    def masquerade_rules(self) -> str:
        """An nft script that (re)creates, atomically, the pod network's masquerade table for this bridge.

        Host-wide and shared, like the bridge and its address allocations: every agent on this bridge
        writes the same table, and it stays when an agent stops (its containers keep running)."""
        table = "ketch_masq_" + "".join(c if c.isalnum() else "_" for c in self.bridge)
        net = self.pod_cidr
        return (f"table ip {table} {{\n}}\ndelete table ip {table}\n"
                f"table ip {table} {{\n  chain postrouting {{\n"
                f"    type nat hook postrouting priority srcnat; policy accept;\n"
                f"    ip saddr {net} ip daddr != {net} ip daddr != 224.0.0.0/4 masquerade\n  }}\n}}\n")

    async def ensure_masquerade(self) -> None:
        if not self.nft_masq:
            return
        proc = await asyncio.create_subprocess_exec("nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(self.masquerade_rules().encode())
        if proc.returncode != 0:
            log.warning("nft masquerade for %s: %s", self.pod_cidr, err.decode(errors="replace").strip())

    def config(self) -> str:
        d = self.dir
        # Both handlers whenever crun is there: sandboxes and containers keep the handler they were made
        # with, so a containerd restarted with the other default still serves the ones it re-adopts.
        crun = "" if not self.crun else f"""    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = "{self.crun_binary()}"
        SystemdCgroup = false
"""
        return f"""version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0
# Unused here: the snapshotters other than overlayfs (and native) only probe and warn at each start; the
# restart monitor lists every container every 10 s for a `ctr run --restart` label ketch never sets.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.internal.v1.restart"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  level = "warn"
  address = "{self.socket}.debug"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{self.sandbox_image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{self.oci_runtime}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
{crun}  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir()}"
    conf_dir = "{self.cni_dir}/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d}/certs.d"
"""

    def conflist(self) -> dict:
        # With nft, one masquerade rule for the whole pod network (ensure_masquerade) instead of the bridge
        # plugin's per-pod iptables chain: that costs ~10 iptables runs per pod start and stop, each
        # reading the whole nat table, a third of the CPU a sandbox takes on a busy node. No "loopback"
        # plugin: containerd's CRI brings `lo` up itself (its own cni-loopback network).
        return {"cniVersion": "0.4.0", "name": "ketch", "plugins": [
            {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": not self.nft_masq,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": self.pod_cidr}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": self.ipam_dir}},
            {"type": "portmap", "capabilities": {"portMappings": True}}]}

    def write_config(self) -> str:
        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "certs.d"), exist_ok=True)
        os.makedirs(os.path.join(self.cni_dir, "net.d"), exist_ok=True)
        if self.crun and self.crun_binary() != self.crun:
            wrapper = self.crun_binary()
            with open(wrapper + ".tmp", "w") as f:
                f.write(self.crun_wrapper())
            os.chmod(wrapper + ".tmp", 0o755)
            os.replace(wrapper + ".tmp", wrapper)
        path = os.path.join(self.dir, "config.toml")
        with open(path, "w") as f:
            f.write(self.config())
        with open(os.path.join(self.cni_dir, "net.d", "10-ketch.conflist"), "w") as f:
            json.dump(self.conflist(), f, indent=1)
        return path

    def _running_pid(self) -> int | None:
        """The PID of a containerd this data dir started earlier and that still runs."""
        try:
            pid = int(open(self.pid_file).read().strip())
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except (OSError, ValueError):
            return None
        if cmdline and cmdline[0].endswith(b"containerd") and os.path.join(self.dir, "config.toml").encode() in cmdline:
            return pid
        return None

    async def start(self, timeout: float = 20.0) -> None:
        """Start containerd (or adopt the one this data dir left running) and wait for its socket."""
        if not self.own:
            return
        config = self.write_config()
        masq = asyncio.create_task(self.ensure_masquerade())
        self.pid = self._running_pid()
        if self.pid is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket)
            logf = open(self.log_file, "ab")
            proc = await asyncio.create_subprocess_exec(
                shutil.which("containerd") or "containerd", "--config", config, stdin=asyncio.subprocess.DEVNULL,
                stdout=logf, stderr=logf, start_new_session=True)
            logf.close()
            self.pid = proc.pid
            self._proc = proc
            with open(self.pid_file, "w") as f:
                f.write(f"{proc.pid}\n")
            log.info("started containerd (pid %d, socket %s)", proc.pid, self.socket)
        else:
            log.info("adopted containerd (pid %d)", self.pid)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or not _alive(self.pid):
                masq.cancel()
                raise RuntimeError(f"containerd did not come up; see {self.log_file}")
            await asyncio.sleep(0.02)
        await masq

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the containerd we started (containers keep running under their shims)."""
        pid, self.pid = self.pid, None
        if not self.own or pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc = getattr(self, "_proc", None)
        if proc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
