"""Local images built offline from Debian's busybox-static: ketch's sandbox ("pause") image and a test image.

An OCI image layout archive is written with the standard library (one layer: /bin/busybox, its
applet symlinks, /etc/passwd and /etc/group), ready for `ctr -n k8s.io images import`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

BUSYBOX = "/bin/busybox"
PAUSE_IMAGE = "ketch.local/pause:1"
TEST_IMAGE = "ketch.local/busybox:1"
# PID 1 of the sandbox: exits on SIGTERM, sleeps forever, and `wait` reaps whatever is reparented to it.
PAUSE_CMD = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 2147483647 & wait $!; done"]


def find_busybox() -> str:
    """A statically linked busybox (Debian's busybox-static installs /bin/busybox)."""
    path = os.environ.get("KETCH_BUSYBOX") or shutil.which("busybox") or BUSYBOX
    if not os.path.exists(path):
        raise FileNotFoundError("busybox not found: install Debian's busybox-static")
    return path


def _applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    return [a for a in out.split() if a and a != "bin/busybox"]


def _layer(busybox: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(path: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(path)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, now
            tar.addfile(ti)

        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev", "var"}
        for d in sorted(dirs):
            add_dir(d)
        add_dir("tmp", 0o1777)
        with open(busybox, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode, ti.mtime = len(data), 0o755, now
        tar.addfile(ti, io.BytesIO(data))
        for applet in _applets(busybox):
            ti = tarfile.TarInfo(applet)
            ti.type, ti.mode, ti.mtime = tarfile.SYMTYPE, 0o777, now
            ti.linkname = "/bin/busybox"
            tar.addfile(ti)
        base = {"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                "etc/group": b"root:x:0:\nnogroup:x:65534:\n"}
        for path, content in {**base, **files}.items():
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    add_dir(d)
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode, ti.mtime = len(content), 0o644, now
            tar.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


def build_image(dest: str, name: str, cmd: list[str], files: dict[str, bytes] | None = None,
                busybox: str | None = None) -> str:
    """Write an OCI image layout archive named `name` (repo:tag) to dest; returns dest."""
    busybox = busybox or find_busybox()
    raw = _layer(busybox, files or {})
    gz = gzip.compress(raw, compresslevel=1, mtime=0)
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    config = {"architecture": arch, "os": "linux",
              "config": {"Cmd": cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                         "WorkingDir": "/"},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
              "history": [{"created_by": "ketch: busybox-static"}]}
    cfg = blob(json.dumps(config).encode())
    layer = blob(gz)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}
    man = blob(json.dumps(manifest).encode())
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
                            "platform": {"architecture": arch, "os": "linux"},
                            "annotations": {"io.containerd.image.name": name,
                                            "org.opencontainers.image.ref.name": tag}}]}
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = dest + ".tmp"
    with tarfile.open(tmp, "w") as tar:
        def add(path: str, data: bytes) -> None:
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
    os.replace(tmp, dest)
    return dest


def build_pause(dest: str) -> str:
    """ketch's sandbox image: sleeps forever, reaps zombies, exits on SIGTERM."""
    return build_image(dest, PAUSE_IMAGE, PAUSE_CMD)


def build_test_image(dest: str) -> str:
    """A busybox image for tests: `httpd -f -p 8080 -h /www` serves /www/index.html."""
    return build_image(dest, TEST_IMAGE, ["/bin/sh"], {"www/index.html": b"hello from ketch\n"})
