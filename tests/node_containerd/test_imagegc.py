"""Image garbage collection on the containerd runtime.

An agent with thresholds 0/0, a minimum image age of 0 and a GC pass every second: every image no
container uses is removed (the filesystem never gets below 0%), the images of running pods and the
sandbox image stay. What was removed is read from containerd (`ctr images ls`) and from the Node's events.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from ketch.node import images
from ketch.node.containerd.daemon import Containerd
from tests.conftest import BIN
from tests.node.conftest import apply, running_ready, wait_for

from .conftest import Node, _requirements, container_status, node_cluster

GC_FLAGS = ["--image-gc-high-threshold", "0", "--image-gc-low-threshold", "0", "--minimum-image-ttl-duration", "0s",
            "--image-gc-period", "1s"]


@pytest.fixture(scope="module")
def gc_node(tmp_path_factory):
    _requirements()
    with node_cluster(tmp_path_factory.mktemp("ketch-gc"), GC_FLAGS) as cn:
        yield cn


def image_refs(node: Node) -> set[str]:
    sock = Containerd(str(node.data_dir)).socket
    out = subprocess.run(["ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return set(out.split())


def push(registry: str, tmp_path, name: str, marker: bytes) -> str:
    tar = images.build_image(str(tmp_path / f"{name}.tar"), f"ketch.local/{name}:1", ["/bin/sh"], {"marker": marker})
    ref = f"{registry}/gc/{name}:1"
    r = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci-archive:{tar}", f"docker://{ref}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return ref


def pod(name: str, image: str, command: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": command}]}}


def gc_events(c) -> list[dict]:
    evs = json.loads(c.kubectl("get", "events", "-o", "json").stdout).get("items") or []
    return [e for e in evs if (e.get("involvedObject") or {}).get("kind") == "Node"
            and e.get("reason") in ("ImageGarbageCollected", "FreeDiskSpaceFailed")]


def test_unused_images_are_removed_used_ones_and_pause_stay(gc_node, registry, tmp_path):
    c, node = gc_node
    run_ref = push(registry, tmp_path, "run", b"run")
    old_ref = push(registry, tmp_path, "old", b"old")

    apply(c, pod("gc-run", run_ref, ["sleep", "600"]))
    wait_for(lambda: running_ready(c, "gc-run"), timeout=60, what="gc-run Running")
    apply(c, pod("gc-old", old_ref, ["sleep", "600"]))
    wait_for(lambda: running_ready(c, "gc-old"), timeout=60, what="gc-old Running")
    assert old_ref in image_refs(node)          # in use: kept while its pod runs
    c.kubectl("delete", "pod", "gc-old", "--timeout=40s")

    # An image imported by hand and never used by a container.
    tar = images.build_image(str(tmp_path / "unused.tar"), "ketch.local/gc-unused:1", ["/bin/sh"], {"marker": b"unused"})
    r = subprocess.run([str(BIN / "ketch"), "image", "import", tar, "--address", Containerd(str(node.data_dir)).socket],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ketch.local/gc-unused:1" in r.stdout

    wait_for(lambda: old_ref not in image_refs(node) and "ketch.local/gc-unused:1" not in image_refs(node),
             timeout=60, what="unused images removed")
    refs = image_refs(node)
    assert run_ref in refs and images.PAUSE_IMAGE in refs
    assert images.TEST_IMAGE not in refs        # imported at start, never used: removed too
    cs = container_status(c, "gc-run")
    assert cs["ready"] and cs["restartCount"] == 0

    def freed_messages():
        msgs = " ".join(e.get("message") or "" for e in gc_events(c) if e["reason"] == "ImageGarbageCollected")
        return msgs if old_ref in msgs and "ketch.local/gc-unused:1" in msgs else None
    msgs = wait_for(freed_messages, timeout=30, what="ImageGarbageCollected events on the Node")
    assert run_ref not in msgs and images.PAUSE_IMAGE not in msgs
    # Thresholds 0/0 can never be met: the kubelet's warning says how much could not be freed.
    assert any(e["reason"] == "FreeDiskSpaceFailed" and e["type"] == "Warning" for e in gc_events(c))

    # The image of the running pod is removed once no container uses it any more.
    c.kubectl("delete", "pod", "gc-run", "--timeout=40s")
    wait_for(lambda: run_ref not in image_refs(node), timeout=60, what="the image of the deleted pod removed")
    assert images.PAUSE_IMAGE in image_refs(node)


def test_bad_image_gc_flags_are_rejected(tmp_path):
    for flags, msg in ((["--image-gc-high-threshold", "101"], "between 0 and 100"),
                       (["--image-gc-high-threshold", "50", "--image-gc-low-threshold", "60"], "must not be greater"),
                       (["--minimum-image-ttl-duration", "2 minutes"], "invalid duration")):
        r = subprocess.run([str(BIN / "ketch"), "agent", "--kubeconfig", str(tmp_path / "none"), "--runtime", "process",
                            "--data-dir", str(tmp_path / "agent"), *flags], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and msg in r.stderr, r.stderr
