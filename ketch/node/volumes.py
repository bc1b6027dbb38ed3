"""Pod volumes on the node: emptyDir, hostPath, and the file volumes configMap, secret, downwardAPI, projected.

Shared by the runtimes: every volume of a pod lives under `<data dir>/volumes/<pod uid>/<volume>`.
The agent's `VolumeManager` writes the file volumes there (and keeps them current when their
configMaps, secrets or the pod's labels/annotations change); `container_mounts` tells a runtime
what to mount where. File volumes are written like the kubelet's AtomicWriter:

    <volume>/..2026_11_22_07_50_01.123456789/<files>    one directory per version
    <volume>/..data -> ..2026_11_22_07_50_01.123456789   swapped with rename(2)
    <volume>/<key>  -> ..data/<key>                       what a container sees

so a reader sees either the old set of files or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..api.errors import StatusError
from ..api.podutil import referenced_objects
from ..client.informer import Informer
from ..client.rest import Client
from .envvars import field_ref, resource_field_ref
from .runtime import ContainerConfigError

log = logging.getLogger("ketch.node.volumes")

FILE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644
DATA = "..data"

Payload = dict[str, tuple[bytes, int]]    # relative path -> (content, mode)


def pod_dir(data_dir: str, uid: str) -> str:
    return os.path.join(data_dir, "volumes", uid)


def volume_dir(data_dir: str, uid: str, name: str) -> str:
    return os.path.join(pod_dir(data_dir, uid), name)


def _kind_of(vol: dict) -> str:
    for k in ("emptyDir", "hostPath", *FILE_VOLUMES):
        if k in vol:
            return k
    return next((k for k in vol if k != "name"), "")


def remove_orphaned_volumes(data_dir: str, keep: set[str]) -> None:
    """Remove the volume directories of pods that are gone (left by an agent stopped before it cleaned up)."""
    root = os.path.join(data_dir, "volumes")
    try:
        uids = os.listdir(root)
    except FileNotFoundError:
        return
    for uid in uids:
        if uid not in keep:
            log.info("removing the volumes of gone pod %s", uid)
            remove_pod_volumes(data_dir, uid)


def remove_pod_volumes(data_dir: str, uid: str) -> None:
    """Unmount the pod's memory-backed emptyDirs (lazily when busy), then remove its volume directories."""
    d = pod_dir(data_dir, uid)
    unmount_under(d)
    shutil.rmtree(d, ignore_errors=True)


# -- emptyDir medium: Memory (tmpfs) ---------------------------------------------------------------
MNT_DETACH = 2
DEFAULT_TMPFS_BYTES = 64 << 20     # only when the node's memory cannot be read


def _libc():
    import ctypes
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_points() -> list[str]:
    """Every mount point of this mount namespace (/proc/self/mountinfo, octal escapes decoded)."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split(" ")
                if len(parts) > 4:
                    out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4]))
    except OSError:
        pass
    return out


def unmount_under(path: str) -> list[str]:
    """Unmount every mount at or below `path`, deepest first, with MNT_DETACH (a busy tmpfs goes once
    its last user leaves); returns what was unmounted."""
    path = os.path.realpath(path)
    found = sorted({m for m in mount_points() if m == path or m.startswith(path.rstrip("/") + "/")},
                   key=len, reverse=True)
    if not found:
        return []
    libc = _libc()
    done = []
    for m in found:
        if libc.umount2(m.encode(), MNT_DETACH) == 0:
            done.append(m)
            log.info("unmounted %s", m)
        else:
            log.warning("unmounting %s: %s", m, os.strerror(_errno()))
    return done


def _errno() -> int:
    import ctypes
    return ctypes.get_errno()


def _bytes(q) -> int:
    from ..api.quantity import parse_quantity
    return int(parse_quantity(str(q)))


def pod_memory_limit(pod: dict) -> int | None:
    """The pod's memory limit as its cgroup gets it: max(sum of the containers', largest init container's);
    None when a container has no memory limit."""
    spec = pod.get("spec") or {}

    def limit(c: dict) -> int | None:
        m = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        return _bytes(m) if m is not None else None

    total = 0
    for c in spec.get("containers") or ():
        lim = limit(c)
        if lim is None:
            return None
        total += lim
    for c in spec.get("initContainers") or ():
        lim = limit(c)
        if lim is None:
            return None
        total = max(total, lim)
    return total


def node_allocatable_memory() -> int:
    """What the node reports as allocatable memory (capacity minus the 100Mi eviction reserve)."""
    from . import machine
    total = machine.meminfo().get("MemTotal", 0)     # bytes
    return max(total - (100 << 20), 0) or DEFAULT_TMPFS_BYTES


def memory_volume_size(pod: dict, vol: dict) -> int:
    """The tmpfs size of an emptyDir with medium Memory, as the kubelet computes it: node allocatable
    memory, lowered to the pod's memory limit when every container has one, lowered to sizeLimit."""
    size = node_allocatable_memory()
    pod_limit = pod_memory_limit(pod)
    if pod_limit and pod_limit < size:
        size = pod_limit
    limit = (vol.get("emptyDir") or {}).get("sizeLimit")
    if limit is not None:
        sl = _bytes(limit)
        if sl < size:
            size = sl
    return max(size, 4096)


def is_memory_medium(vol: dict) -> bool:
    return "emptyDir" in vol and ((vol.get("emptyDir") or {}).get("medium") or "") == "Memory"


def setup_memory_dir(host: str, size: int) -> bool:
    """Mount a tmpfs of `size` bytes (mode 0777) at `host` unless one is there; False when not root (a plain
    directory then: the process runtime without root)."""
    os.makedirs(host, mode=0o777, exist_ok=True)
    if os.path.ismount(host):
        return True
    if os.geteuid() != 0:
        log.info("%s: emptyDir medium Memory is a plain directory (mounting a tmpfs needs root)", host)
        return False
    libc = _libc()
    opts = f"size={size},mode=0777".encode()
    if libc.mount(b"tmpfs", host.encode(), b"tmpfs", 0, opts) != 0:
        err = _errno()
        raise ContainerConfigError(f"mounting a tmpfs for emptyDir medium Memory at {host}: {os.strerror(err)}")
    log.info("mounted a tmpfs of %d bytes at %s", size, host)
    return True


# -- payloads --------------------------------------------------------------------------------------
def _check_path(path: str, what: str) -> str:
    """A relative path inside the volume: no absolute path, no `..` element, not starting with `..`."""
    if not path or path.startswith("/") or ".." in path.split("/") or path.startswith(".."):
        raise ContainerConfigError(f"{what}: invalid path {path!r} (must be relative, without '..')")
    return posixpath.normpath(path)


def _object_data(kind: str, obj: dict) -> dict[str, bytes]:
    if kind == "secrets":
        return {k: base64.b64decode(v or "") for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("binaryData") or {}).items():
        data.setdefault(k, base64.b64decode(v or ""))
    return data


def _mode(m, default: int) -> int:
    if m is None:
        return default
    m = int(m)
    if not 0 <= m <= 0o777:
        raise ContainerConfigError(f"invalid file mode {m} (must be 0000-0777)")
    return m


async def _key_files(kind: str, ns: str, src: dict, name: str, default_mode: int, get, vol: str) -> Payload:
    """The files of a configMap or secret source: every key, or `items` (key -> path, mode)."""
    label = "configmap" if kind == "configmaps" else "secret"
    optional = bool(src.get("optional"))
    obj = await get(kind, ns, name)
    if obj is None:
        if optional:
            return {}
        raise ContainerConfigError(f'MountVolume.SetUp failed for volume "{vol}" : {label} "{name}" not found')
    data = _object_data(kind, obj)
    out: Payload = {}
    items = src.get("items")
    if not items:
        for k, v in data.items():
            out[_check_path(k, f"volume {vol}")] = (v, default_mode)
        return out
    for it in items:
        key = it.get("key") or ""
        if key not in data:
            if optional:
                continue
            what = "config key" if kind == "configmaps" else "secret key"
            raise ContainerConfigError(f'MountVolume.SetUp failed for volume "{vol}" : {label} "{name}" '
                                       f"references non-existent {what}: {key}")
        out[_check_path(it.get("path") or key, f"volume {vol}")] = (data[key], _mode(it.get("mode"), default_mode))
    return out


def format_map(m: dict) -> str:
    """The downward API's rendering of labels/annotations: sorted `key="value"` lines (Go %q quoting)."""
    return "\n".join(f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in sorted((m or {}).items()))


def _downward_files(pod: dict, items: list[dict], default_mode: int, allocatable: dict, vol: str) -> Payload:
    out: Payload = {}
    meta = pod.get("metadata") or {}
    for it in items or ():
        path = _check_path(it.get("path") or "", f"volume {vol}")
        mode = _mode(it.get("mode"), default_mode)
        if it.get("fieldRef"):
            fp = it["fieldRef"].get("fieldPath") or ""
            if fp in ("metadata.labels", "metadata.annotations"):
                value = format_map(meta.get(fp.split(".")[1]) or {})
            else:
                value = field_ref(pod, fp)
        elif it.get("resourceFieldRef"):
            ref = it["resourceFieldRef"]
            cname = ref.get("containerName") or ""
            spec = pod.get("spec") or {}
            ctr = next((c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                        if c.get("name") == cname), None)
            if ctr is None:
                raise ContainerConfigError(f"volume {vol}: resourceFieldRef names no container {cname!r}")
            value = resource_field_ref(ctr, ref, allocatable)
        else:
            raise ContainerConfigError(f"volume {vol}: downwardAPI item {path!r} has neither fieldRef nor "
                                       "resourceFieldRef")
        out[path] = (value.encode(), mode)
    return out


async def build_payload(pod: dict, vol: dict, get, allocatable: dict, token=None) -> Payload:
    """The files of one file volume (raises ContainerConfigError as the kubelet would fail the mount)."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    name = vol.get("name") or ""
    if "configMap" in vol:
        src = vol["configMap"] or {}
        return await _key_files("configmaps", ns, src, src.get("name") or "", _mode(src.get("defaultMode"), DEFAULT_MODE),
                                get, name)
    if "secret" in vol:
        src = vol["secret"] or {}
        return await _key_files("secrets", ns, src, src.get("secretName") or "",
                                _mode(src.get("defaultMode"), DEFAULT_MODE), get, name)
    if "downwardAPI" in vol:
        src = vol["downwardAPI"] or {}
        return _downward_files(pod, src.get("items") or [], _mode(src.get("defaultMode"), DEFAULT_MODE),
                               allocatable, name)
    src = vol.get("projected") or {}
    default_mode = _mode(src.get("defaultMode"), DEFAULT_MODE)
    out: Payload = {}
    for s in src.get("sources") or ():
        if "configMap" in s:
            cm = s["configMap"] or {}
            part = await _key_files("configmaps", ns, cm, cm.get("name") or "", default_mode, get, name)
        elif "secret" in s:
            sec = s["secret"] or {}
            part = await _key_files("secrets", ns, sec, sec.get("name") or "", default_mode, get, name)
        elif "downwardAPI" in s:
            part = _downward_files(pod, (s["downwardAPI"] or {}).get("items") or [], default_mode, allocatable, name)
        elif "serviceAccountToken" in s:
            sat = s["serviceAccountToken"] or {}
            if token is None:
                raise ContainerConfigError(f"volume {name}: serviceAccountToken projection is not available")
            value = await token(pod, sat)
            part = {_check_path(sat.get("path") or "", f"volume {name}"): (value.encode(), default_mode)}
        else:
            raise ContainerConfigError(f"volume {name}: unsupported projected source {sorted(s)}")
        for p in part:
            if p in out:
                raise ContainerConfigError(f"volume {name}: two projected sources write {p!r}")
        out.update(part)
    return out


# -- the atomic writer -----------------------------------------------------------------------------
def _current(target: str) -> Payload | None:
    """What the volume holds now (None when nothing was written yet)."""
    data = os.path.join(target, DATA)
    if not os.path.islink(data):
        return None
    out: Payload = {}
    for root, _dirs, files in os.walk(data + "/", followlinks=False):
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, data)
            with open(p, "rb") as fh:
                out[rel] = (fh.read(), os.stat(p).st_mode & 0o777)
    return out


def write_atomic(target: str, payload: Payload) -> bool:
    """Make `target` hold exactly `payload`, switching versions with one rename; False when unchanged."""
    if _current(target) == payload:
        return False
    os.makedirs(target, mode=0o755, exist_ok=True)
    os.chmod(target, 0o755)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 1_000_000_000:09d}"
    new = os.path.join(target, stamp)
    os.mkdir(new, 0o755)
    for rel, (content, mode) in payload.items():
        p = os.path.join(new, rel)
        os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(p, mode)      # not subject to the umask
    old = os.readlink(os.path.join(target, DATA)) if os.path.islink(os.path.join(target, DATA)) else None
    tmp = os.path.join(target, "..data_tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(stamp, tmp)
    os.rename(tmp, os.path.join(target, DATA))
    top = {rel.split("/", 1)[0] for rel in payload}
    for name in top:      # user-visible names: symlinks through ..data
        link = os.path.join(target, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(DATA, name), link)
    for name in os.listdir(target):
        if name.startswith(".."):
            continue
        if name not in top:
            p = os.path.join(target, name)
            if os.path.islink(p):
                os.unlink(p)
    if old and old != stamp:
        shutil.rmtree(os.path.join(target, old), ignore_errors=True)
    return True


# -- mounts ----------------------------------------------------------------------------------------
@dataclass
class Mount:
    container_path: str
    host_path: str
    readonly: bool
    volume: str
    kind: str


def container_mounts(pod: dict, container: dict, data_dir: str) -> list[Mount]:
    """Where each of the container's volumeMounts comes from on the host (directories are created)."""
    vols = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    out = []
    for vm in container.get("volumeMounts") or ():
        v = vols.get(vm.get("name"))
        if v is None:
            raise ContainerConfigError(f"volume {vm.get('name')!r} not found")
        try:
            out.append(_mount(pod, v, vm, data_dir))
        except OSError as e:
            raise ContainerConfigError(f"volume {v['name']}: {e.strerror}: {e.filename}") from None
    return out


def _mount(pod: dict, v: dict, vm: dict, data_dir: str) -> Mount:
    uid = pod["metadata"]["uid"]
    kind = _kind_of(v)
    readonly = bool(vm.get("readOnly"))
    if kind == "emptyDir":
        host = volume_dir(data_dir, uid, v["name"])
        os.makedirs(host, mode=0o777, exist_ok=True)
        if is_memory_medium(v):
            setup_memory_dir(host, memory_volume_size(pod, v))
        os.chmod(host, 0o777)
    elif kind == "hostPath":
        host = v["hostPath"].get("path") or ""
        htype = v["hostPath"].get("type") or ""
        if htype == "DirectoryOrCreate":
            os.makedirs(host, exist_ok=True)
        elif htype == "FileOrCreate" and not os.path.exists(host):
            os.makedirs(os.path.dirname(host) or "/", exist_ok=True)
            open(host, "a").close()
        elif htype in ("Directory", "File", "Socket") and not os.path.exists(host):
            raise ContainerConfigError(f'hostPath type check failed: {host} is not a {htype.lower()}')
    elif kind in FILE_VOLUMES:
        host = volume_dir(data_dir, uid, v["name"])
        readonly = True       # as the kubelet: configMap, secret, downwardAPI and projected are read-only
        if not os.path.isdir(host):
            raise ContainerConfigError(f"volume {v['name']} is not set up yet")
    else:
        raise ContainerConfigError(f"volume {v['name']}: {kind or 'this'} volumes are not supported by ketch "
                                   "(emptyDir, hostPath, configMap, secret, downwardAPI and projected are)")
    sub = vm.get("subPath") or ""
    if sub:
        host = os.path.join(host, _check_path(sub, f"volumeMount {vm.get('name')} subPath"))
        if kind == "emptyDir" and not os.path.exists(host):
            os.makedirs(host, mode=0o777, exist_ok=True)
        elif not os.path.lexists(host):
            raise ContainerConfigError(f"subPath {sub!r} does not exist in volume {v['name']}")
    return Mount(vm.get("mountPath") or "", host, readonly, v["name"], kind)


# -- the agent's side: write, refresh, watch --------------------------------------------------------
ObjectChanged = Callable[[str, str, str], None]    # (configmaps|secrets, namespace, name)


class VolumeManager:
    """Writes a pod's file volumes and keeps them current.

    configMaps and secrets are read from informers on the single objects the node's pods
    reference; a change calls `on_change` so the agent re-syncs the pods that use the object, and
    their next sync rewrites what changed. A cache miss falls back to a GET.
    """

    def __init__(self, client: Client, data_dir: str, on_change: ObjectChanged):
        self.client = client
        self.data_dir = data_dir
        self.on_change = on_change
        self.ri = {"configmaps": client.resource("configmaps"), "secrets": client.resource("secrets")}
        self.informers: dict[tuple[str, str, str], Informer] = {}   # (kind, namespace, name)
        self._written: dict[tuple[str, str], str] = {}    # (uid, volume) -> digest of what is on disk
        self._gone: set[str] = set()
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def watch(self, pod: dict) -> None:
        """Watch each configMap and secret the pod references, one object per watch
        (fieldSelector metadata.name), as the kubelet does: a node may read only the objects of
        the pods bound to it, never a whole namespace's secrets."""
        ns = pod["metadata"].get("namespace") or "default"
        for kind, name in referenced_objects(pod):
            if not name or (kind, ns, name) in self.informers:
                continue
            inf = Informer(self.client, self.ri[kind], namespace=ns, field_selector=f"metadata.name={name}")
            notify = (lambda k: lambda o: self.on_change(k, ns, o["metadata"].get("name") or ""))(kind)
            inf.add_handlers(notify, lambda old, new, n=notify: n(new), notify)
            self.informers[(kind, ns, name)] = inf
            inf.start()

    async def unwatch(self, ns: str, keep: set[tuple[str, str]] | frozenset = frozenset()) -> None:
        """Stop the watches of the namespace's objects that no pod of this node references any more
        (`keep`: the (kind, name) still referenced)."""
        for key in [k for k in self.informers if k[1] == ns and (k[0], k[2]) not in keep]:
            await self.informers.pop(key).stop()

    async def close(self) -> None:
        for inf in self.informers.values():
            await inf.stop()
        self.informers.clear()

    async def get(self, kind: str, ns: str, name: str) -> dict | None:
        inf = self.informers.get((kind, ns, name))
        if inf is not None and inf.synced.is_set():
            obj = inf.get_by_name(ns, name)
            if obj is not None:
                return obj
        try:
            return await self.client.get(self.ri[kind], ns, name)
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _token(self, pod: dict, src: dict) -> str:
        """A service account token for the pod (TokenRequest), renewed at 80% of its lifetime."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ns, sa = meta.get("namespace") or "default", spec.get("serviceAccountName") or "default"
        seconds = int(src.get("expirationSeconds") or 3600)
        key = (meta["uid"], json.dumps([sa, src.get("audience") or "", seconds]))
        cached = self._tokens.get(key)
        if cached and time.time() < cached[1]:
            return cached[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds,
                         "audiences": [src["audience"]] if src.get("audience") else [],
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"],
                                            "uid": meta["uid"]}}}
        try:
            resp = await self.client.request("POST", self.client.path(self.client.resource("serviceaccounts"),
                                                                      ns, sa, "token"), body)
        except StatusError as e:
            raise ContainerConfigError(f"serviceAccountToken for service account {ns}/{sa}: {e}") from None
        token = resp["status"]["token"]
        self._tokens[key] = (token, time.time() + seconds * 0.8)
        return token

    async def setup(self, pod: dict, allocatable: dict, strict: bool = True) -> bool:
        """Write every file volume of the pod; True when a file changed.

        strict (a container is about to start): a missing object fails as ContainerConfigError.
        Not strict (a refresh of running pods): a volume that cannot be built keeps its last content.
        """
        uid = pod["metadata"]["uid"]
        if uid in self._gone:
            return False
        changed = False
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            if _kind_of(vol) not in FILE_VOLUMES:
                continue
            try:
                payload = await build_payload(pod, vol, self.get, allocatable, self._token)
            except (ContainerConfigError, StatusError) as e:
                if strict:
                    raise ContainerConfigError(str(e)) from None
                log.info("pod %s volume %s not refreshed: %s", uid, vol.get("name"), e)
                continue
            digest = hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()
            key = (uid, vol["name"])
            if self._written.get(key) == digest:
                continue
            target = volume_dir(self.data_dir, uid, vol["name"])
            if await asyncio.to_thread(write_atomic, target, payload):
                changed = True
                log.info("pod %s volume %s written (%d files)", uid, vol["name"], len(payload))
            self._written[key] = digest
        return changed

    def token_due(self, uid: str) -> float | None:
        """When the earliest service account token of the pod's volumes is due for renewal (epoch seconds)."""
        dues = [due for (u, _), (_, due) in self._tokens.items() if u == uid]
        return min(dues) if dues else None

    def forget(self, uid: str) -> None:
        """The pod is gone: drop what is remembered and remove its volume directories."""
        self._gone.add(uid)
        for k in [k for k in self._written if k[0] == uid]:
            del self._written[k]
        for k in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[k]
        remove_pod_volumes(self.data_dir, uid)
