"""emptyDir `medium: Memory` on the containerd runtime: a tmpfs mounted by the agent, bind-mounted into
the container, unmounted when the pod goes (also when it went while the agent was down).

The container reports what it sees (its /proc/mounts line, df, a write past sizeLimit) into a plain
emptyDir, which the test reads on the host.
"""

from __future__ import annotations

from ketch.node import images
from ketch.node.volumes import mount_points
from tests.node.conftest import apply, get_json, running_ready, wait_for

SCRIPT = r"""
grep ' /mem ' /proc/mounts > /out/mounts
df -k /mem | tail -1 | awk '{print $2}' > /out/size
echo hello > /mem/f && cat /mem/f > /out/f
if dd if=/dev/zero of=/mem/big bs=1M count=16 2>/dev/null; then echo yes > /out/overflow; else echo no > /out/overflow; fi
touch /out/done
exec sleep 600
"""


def mem_pod(name: str, size_limit: str | None = "8Mi", memory_limit: str | None = None) -> dict:
    empty = {"medium": "Memory", **({"sizeLimit": size_limit} if size_limit else {})}
    ctr = {"name": "main", "image": images.TEST_IMAGE, "command": ["sh", "-c", SCRIPT],
           "volumeMounts": [{"name": "out", "mountPath": "/out"}, {"name": "mem", "mountPath": "/mem"}]}
    if memory_limit:
        ctr["resources"] = {"limits": {"memory": memory_limit}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [ctr],
                     "volumes": [{"name": "out", "emptyDir": {}}, {"name": "mem", "emptyDir": empty}]}}


def read(path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def host_tmpfs(node, uid: str) -> str:
    return str(node.data_dir / "volumes" / uid / "mem")


def test_memory_emptydir_is_a_sized_tmpfs(ctd):
    c, node = ctd
    apply(c, mem_pod("mem-sized"))
    wait_for(lambda: running_ready(c, "mem-sized"), timeout=60, what="Running")
    uid = get_json(c, "pod", "mem-sized")["metadata"]["uid"]
    out = node.data_dir / "volumes" / uid / "out"
    wait_for(lambda: (out / "done").exists(), timeout=30, what="the container's report")
    assert read(out / "mounts").split()[2] == "tmpfs", read(out / "mounts")
    assert "size=8192k" in read(out / "mounts")
    assert read(out / "size") == "8192"
    assert read(out / "f") == "hello"
    assert read(out / "overflow") == "no"               # 16Mi do not fit in 8Mi
    assert host_tmpfs(node, uid) in mount_points()      # the agent's tmpfs, bind-mounted into the container

    c.kubectl("delete", "pod", "mem-sized", "--timeout=40s")
    wait_for(lambda: host_tmpfs(node, uid) not in mount_points(), timeout=30, what="the tmpfs unmounted")
    wait_for(lambda: not (node.data_dir / "volumes" / uid).exists(), timeout=30, what="the volume dirs removed")


def test_memory_emptydir_defaults_to_the_pod_memory_limit(ctd):
    c, node = ctd
    apply(c, mem_pod("mem-limit", size_limit=None, memory_limit="24Mi"))
    wait_for(lambda: running_ready(c, "mem-limit"), timeout=60, what="Running")
    uid = get_json(c, "pod", "mem-limit")["metadata"]["uid"]
    out = node.data_dir / "volumes" / uid / "out"
    wait_for(lambda: (out / "done").exists(), timeout=30, what="the container's report")
    assert read(out / "size") == str(24 * 1024)
    assert read(out / "overflow") == "yes"              # 16Mi fit in 24Mi
    c.kubectl("delete", "pod", "mem-limit", "--timeout=40s")
    wait_for(lambda: host_tmpfs(node, uid) not in mount_points(), timeout=30, what="the tmpfs unmounted")


def test_memory_emptydir_of_a_pod_deleted_while_the_agent_was_down(ctd):
    c, node = ctd
    apply(c, mem_pod("mem-gone"))
    wait_for(lambda: running_ready(c, "mem-gone"), timeout=60, what="Running")
    uid = get_json(c, "pod", "mem-gone")["metadata"]["uid"]
    assert host_tmpfs(node, uid) in mount_points()
    node.stop()
    try:
        c.kubectl("delete", "pod", "mem-gone", "--grace-period=0", "--force", "--wait=false")
    finally:
        node.start()
    wait_for(lambda: host_tmpfs(node, uid) not in mount_points(), timeout=30, what="the tmpfs unmounted at start")
    wait_for(lambda: not (node.data_dir / "volumes" / uid).exists(), timeout=30, what="the volume dirs removed")
