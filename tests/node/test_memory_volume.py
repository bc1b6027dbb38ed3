"""emptyDir `medium: Memory` on the `process` runtime: as root, the same tmpfs as on containerd, at the
volume's directory (which the mountPath symlink points to); unmounted when the pod goes."""

from __future__ import annotations

import os

import pytest

from ketch.node.volumes import mount_points

from .conftest import apply, get_json, running_ready, wait_for


def tmpfs_options(path: str) -> str | None:
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            if mnt == path and fstype == "tmpfs":
                return opts
    return None


def test_memory_emptydir_is_a_tmpfs_when_root(process_cluster, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (without it the volume is a plain directory)")
    c = process_cluster
    m = tmp_path / "mnt"
    apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mem"},
              "spec": {"terminationGracePeriodSeconds": 2,
                       "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}}],
                       "containers": [{"name": "main", "image": "busybox",
                                       "command": ["sh", "-c", f"echo hi > {m}/scratch/f; exec sleep 600"],
                                       "volumeMounts": [{"name": "scratch", "mountPath": str(m / "scratch")}]}]}})
    wait_for(lambda: running_ready(c, "mem"), timeout=30, what="Running")
    uid = get_json(c, "pod", "mem")["metadata"]["uid"]
    vol = os.path.realpath(m / "scratch")
    assert vol.endswith(f"/volumes/{uid}/scratch")
    opts = tmpfs_options(vol)
    assert opts is not None and "size=4096k" in opts, opts
    wait_for(lambda: (m / "scratch" / "f").exists(), what="the file written")
    assert os.stat(m / "scratch" / "f").st_dev == os.stat(vol).st_dev      # on the tmpfs
    c.kubectl("delete", "pod", "mem", "--timeout=30s")
    wait_for(lambda: vol not in mount_points(), timeout=20, what="the tmpfs unmounted")
    wait_for(lambda: not os.path.exists(vol), timeout=20, what="the volume dir removed")
