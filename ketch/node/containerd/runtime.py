"""The `containerd` runtime: real containers through CRI v1 (pod sandboxes, CNI networking, cgroups).

containerd keeps the state: on start the runtime lists the sandboxes and containers labelled as
ketch's and re-adopts them. Container exits are seen at once through containerd's task exit events
(its event service on the same socket), and by polling ListContainers as a safety net (every `poll`
seconds without events, every `events_poll` seconds with them); ContainerStatus then gives the exit
code, reason (OOMKilled...) and times.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import math
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ...api.quantity import parse_quantity
from .. import images, machine, volumes
from ..dnsconfig import pod_dns_config
from ..runtime import ContainerConfigError, ContainerRecord, ContainerStartError, ImagePullError, Runtime
from . import cri, execs, proto
from .daemon import Containerd

log = logging.getLogger("ketch.node.containerd")

MANAGED = "ketch.io/managed"
UID = "io.kubernetes.pod.uid"
CNAME = "io.kubernetes.container.name"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PARENT = "ketch"
EVENTS_SUBSCRIBE = "/containerd.services.events.v1.Events/Subscribe"


@dataclass
class Sandbox:
    id: str
    ip: str
    log_dir: str
    config: dict | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _ns(t: int) -> float:
    return t / 1e9 if t else 0.0


def _cpu(q) -> float:
    return float(parse_quantity(q))


def containerd_version() -> str:
    try:
        out = subprocess.run(["containerd", "--version"], capture_output=True, text=True, timeout=5).stdout.split()
        return out[2].split("~")[0].lstrip("v") if len(out) > 2 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def choose_oci_runtime(wanted: str) -> tuple[str, str]:
    """The OCI runtime of ketch's containerd and why: crun when installed (a C binary: a fraction of runc's
    CPU per run, and containerd's shim runs it ~12 times per pod), else runc."""
    if wanted in ("runc", "crun"):
        return wanted, "from --oci-runtime"
    if shutil.which("crun"):
        return "crun", "crun is installed; choose with --oci-runtime runc|crun"
    return "runc", "crun is not installed; choose with --oci-runtime runc|crun"


class ContainerdRuntime(Runtime):
    name = "containerd"
    log_format = "cri"     # log_files() hold CRI records: strip them with containerd.logs.plain/parse_line

    def __init__(self, data_dir: str, socket: str | None = None, pod_cidr: str = "10.89.0.0/16",
                 bridge: str = "ketch0", poll: float = 0.5, events_poll: float = 5.0, oci_runtime: str = "auto"):
        super().__init__()
        self.data_dir = data_dir
        self.version = containerd_version()
        self.oci_runtime, self.oci_why = choose_oci_runtime(oci_runtime)
        self.daemon = Containerd(data_dir, socket, images.PAUSE_IMAGE, pod_cidr, bridge, self.oci_runtime)
        self.poll, self.events_poll = poll, events_poll
        self._events_live = False
        self._early_exits: dict[str, float] = {}   # exit events of containers not registered yet
        self._tasks: set[asyncio.Task] = set()
        self._images_task: asyncio.Task | None = None
        self.cri: cri.CRIClient | None = None
        self.host_ip = machine.host_ip()
        self._sandboxes: dict[str, Sandbox] = {}
        self._pods: dict[str, dict[str, list[ContainerRecord]]] = {}
        self._by_id: dict[str, tuple[str, ContainerRecord]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._poller: asyncio.Task | None = None
        self.cluster_dns: list[str] = []        # kube-dns' ClusterIP, set by the agent; empty: no cluster DNS
        self.cluster_domain = "cluster.local"
        self.image_used: dict[str, float] = {}        # image ref -> when a container last started from it (image GC)
        self.images_starting: dict[str, int] = {}     # image refs of containers being created (image GC keeps them)

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        t0 = time.monotonic()
        await self.daemon.start()
        self.cri = cri.CRIClient(self.daemon.socket)
        deadline = time.monotonic() + 30
        while True:
            try:
                v = await self.cri.call("Version", {"version": "v1"}, timeout=5)
                break
            except cri.CRIError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self.version = v.get("runtime_version", self.version).lstrip("v")
        await self.ensure_images()
        await self._readopt()
        await asyncio.to_thread(self._sweep_cgroups)
        self._poller = asyncio.create_task(self._poll_loop())
        log.info("containerd %s ready in %.2fs (socket %s)", self.version, time.monotonic() - t0, self.daemon.socket)

    async def close(self) -> None:
        for t in [*self._tasks, *([self._images_task] if self._images_task else [])]:
            t.cancel()
        if self._images_task is not None:
            with contextlib.suppress(BaseException):
                await self._images_task
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.cri is not None:
            await self.cri.close()
        await self.daemon.stop()

    async def image_present(self, ref: str) -> bool:
        resp = await self.cri.call("ImageStatus", {"image": {"image": ref}})
        return bool(resp.get("image"))

    async def ensure_images(self) -> None:
        """Build and import ketch's sandbox image when missing, and the busybox test image in the background:
        the node does not wait for an image only some pods use; a pull waits for it (`_wait_images`)."""
        await self._ensure_image(images.PAUSE_IMAGE, images.build_pause)
        self._images_task = asyncio.create_task(self._ensure_image(images.TEST_IMAGE, images.build_test_image))

    async def _ensure_image(self, ref: str, build) -> None:
        if await self.image_present(ref):
            return
        path = os.path.join(self.daemon.dir, "images", ref.split("/")[-1].replace(":", "_") + ".tar")
        await asyncio.to_thread(build, path)
        await import_image(self.daemon.socket, path)

    async def _wait_images(self) -> None:
        task = self._images_task
        if task is not None and not task.done():
            try:
                await asyncio.shield(task)
            except Exception as e:   # the pull then says what is missing
                log.warning("importing %s: %s", images.TEST_IMAGE, e)

    async def _readopt(self) -> None:
        sbs = await self.cri.call("ListPodSandbox", {"filter": {"label_selector": {MANAGED: "true"}}})
        for sb in sbs.get("items") or ():
            uid = (sb.get("labels") or {}).get(UID) or sb.get("metadata", {}).get("uid")
            if not uid:
                continue
            if sb.get("state", 0) != cri.SANDBOX_READY:
                self._sandboxes.setdefault(uid, Sandbox("", "", ""))
                continue
            st = await self.cri.call("PodSandboxStatus", {"pod_sandbox_id": sb["id"]})
            ip = ((st.get("status") or {}).get("network") or {}).get("ip") or self.host_ip
            self._sandboxes[uid] = Sandbox(sb["id"], ip, (sb.get("annotations") or {}).get("ketch.io/log-directory", ""))
        resp = await self.cri.call("ListContainers", {"filter": {"label_selector": {MANAGED: "true"}}})
        for c in sorted(resp.get("containers") or (), key=lambda c: c.get("metadata", {}).get("attempt", 0)):
            rec = await self._record(c["id"])
            if rec is not None:
                log.info("re-adopted %s/%s attempt %d (%s)", rec[0], rec[1].name, rec[1].attempt,
                         "running" if rec[1].running else "exited")

    async def _record(self, cid: str) -> tuple[str, ContainerRecord] | None:
        """Build (or refresh) the record of one container from ContainerStatus."""
        try:
            st = (await self.cri.call("ContainerStatus", {"container_id": cid})).get("status") or {}
        except cri.CRIError as e:
            if cri.not_found(e) and cid in self._by_id:
                uid, rec = self._by_id[cid]
                if rec.running:
                    self._terminated(rec, 137, time.time(), "Error", "container removed")
                return uid, rec
            return None
        labels = st.get("labels") or {}
        uid, name = labels.get(UID), labels.get(CNAME) or st.get("metadata", {}).get("name")
        if not uid or not name:
            return None
        known = self._by_id.get(cid)
        if known is None:
            attempt = st.get("metadata", {}).get("attempt", 0)
            rec = ContainerRecord(name, attempt, "containerd://" + cid, _ns(st.get("started_at", 0)) or time.time())
            rec.extra["cid"] = cid
            runs = self._pods.setdefault(uid, {}).setdefault(name, [])
            runs.append(rec)
            runs.sort(key=lambda r: r.attempt)
            self._by_id[cid] = (uid, rec)
        else:
            rec = known[1]
        rec.extra["imageRef"] = st.get("image_ref", "")
        state = st.get("state", 0)
        if st.get("started_at"):
            rec.started_at = _ns(st["started_at"])
        if state == cri.CONTAINER_EXITED or (state == cri.CONTAINER_UNKNOWN and st.get("finished_at")):
            code = st.get("exit_code", 0)
            self._terminated(rec, code, _ns(st.get("finished_at", 0)) or time.time(),
                             st.get("reason") or "", st.get("message") or "")
        elif state == cri.CONTAINER_CREATED:
            rec.running = False if st.get("finished_at") else rec.running
        return uid, rec

    @staticmethod
    def _terminated(rec: ContainerRecord, code: int, finished: float, reason: str, message: str) -> None:
        rec.running = False
        rec.exit_code = code
        rec.finished_at = finished
        rec.reason = reason or ("Completed" if code == 0 else "Error")
        if message:
            rec.message = message

    async def _poll_loop(self) -> None:
        """Poll ListContainers: every `poll` s, or every `events_poll` s while containerd's exit events flow."""
        events = asyncio.create_task(self._events_loop())
        last = time.monotonic()
        try:
            while True:
                await asyncio.sleep(self.poll)
                if self._events_live and time.monotonic() - last < self.events_poll:
                    continue
                last = time.monotonic()
                try:
                    await self._poll_once()
                except cri.CRIError as e:
                    log.warning("polling containerd: %s", e.details())
                except Exception:   # never let the watcher die
                    log.exception("polling containerd")
        finally:
            events.cancel()
            with contextlib.suppress(BaseException):
                await events

    async def _events_loop(self) -> None:
        """React to containerd's task exit events (its event service, on the same socket) at once."""
        req = proto.encode("SubscribeRequest", {"filters": ['topic=="/tasks/exit"']})
        while True:
            try:
                self._events_live = True
                async for env in self.cri.stream(EVENTS_SUBSCRIBE, req, lambda b: proto.decode("Envelope", b)):
                    if env.get("namespace") != "k8s.io":
                        continue
                    ev = proto.decode("TaskExit", (env.get("event") or {}).get("value", b""))
                    cid = ev.get("container_id", "")
                    if ev.get("id", cid) != cid:   # an exec inside the container, not its own process
                        continue
                    known = self._by_id.get(cid)
                    if known is None:   # StartContainer may not have returned yet: start_container checks
                        self._early_exits[cid] = time.monotonic()
                        if len(self._early_exits) > 256:
                            old = time.monotonic() - 60
                            self._early_exits = {k: t for k, t in self._early_exits.items() if t > old}
                    elif known[1].running:
                        self._spawn(self._exited(cid))
            except cri.CRIError as e:
                log.debug("containerd events: %s", e.details())
            except Exception:   # never let the watcher die; polling goes on
                log.exception("containerd events")
            self._events_live = False
            await asyncio.sleep(1)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exited(self, cid: str) -> None:
        """A task exit event: read the container until CRI has seen the exit too (it handles the same event)."""
        for delay in (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 1, 2):   # a busy containerd may lag
            await asyncio.sleep(delay)
            known = self._by_id.get(cid)
            if known is None or not known[1].running:
                return
            with contextlib.suppress(cri.CRIError):
                got = await self._record(cid)
                if got is not None and not got[1].running:
                    self.on_change(got[0])
                    return

    async def _poll_once(self) -> None:
        resp = await self.cri.call("ListContainers", {"filter": {"label_selector": {MANAGED: "true"}}}, timeout=10)
        seen = set()
        for c in resp.get("containers") or ():
            seen.add(c["id"])
            known = self._by_id.get(c["id"])
            if known is not None and known[1].running and c.get("state") != cri.CONTAINER_RUNNING:
                await self._changed(c["id"])
        for cid, (uid, rec) in list(self._by_id.items()):
            if rec.running and cid not in seen and not rec.extra.get("starting"):
                self._terminated(rec, 137, time.time(), "Error", "container removed from containerd")
                self.on_change(uid)

    async def _changed(self, cid: str) -> None:
        got = await self._record(cid)
        if got is not None:
            self.on_change(got[0])

    # -- runtime interface ---------------------------------------------------------------------
    def pod_uids(self) -> set[str]:
        return set(self._pods) | set(self._sandboxes)

    def containers(self, uid: str) -> dict[str, list[ContainerRecord]]:
        return self._pods.get(uid) or {}

    def log_files(self, uid: str, name: str) -> list[str]:
        sb = self._sandboxes.get(uid)
        if sb is None or not sb.log_dir:
            return []
        return [os.path.join(sb.log_dir, name, f"{r.attempt}.log") for r in self.containers(uid).get(name) or ()]

    # -- exec, attach, logs, port-forward, metrics (the streaming node API) ---------------------
    def exec_command(self, uid: str, name: str, command: list[str],
                     tty: bool) -> tuple[list[str], Callable[[], Awaitable[None]]] | None:
        """`ctr tasks exec` with an exec id of ours: the process joins the container (its namespaces,
        cgroup, the container's env, cwd and user, as CRI Exec does); the exit status is the command's.
        The kill coroutine, for a client that went away (the agent has killed ctr first), kills the exec
        process and its session, deletes it from containerd and removes its FIFOs (execs.end_exec)."""
        rec = self.latest(uid, name)
        if rec is None or not rec.running or not rec.extra.get("cid"):
            return None
        cid, eid = rec.extra["cid"], "ketch-exec-" + secrets.token_hex(8)
        fifo = os.path.join(self.daemon.dir, "fifo")
        os.makedirs(fifo, mode=0o700, exist_ok=True)
        base = [shutil.which("ctr") or "ctr", "--address", self.daemon.socket, "-n", "k8s.io", "tasks"]
        argv = [*base, "exec", "--exec-id", eid, "--fifo-dir", fifo, *(["--tty"] if tty else []), cid, *command]

        async def kill() -> None:
            await execs.end_exec(base, cid, eid, self.task_bundle(cid), fifo)
        return argv, kill

    def task_bundle(self, cid: str) -> str:
        """The container's task bundle (the shim's directory for it, where runc writes exec PIDs):
        under the state directory of the agent's containerd, else containerd's default one."""
        state = os.path.join(self.daemon.dir, "state") if self.daemon.own else "/run/containerd"
        return os.path.join(state, "io.containerd.runtime.v2.task", "k8s.io", cid)

    def container_cgroup(self, uid: str, name: str) -> str | None:
        rec = self.latest(uid, name)
        if rec is None or not rec.running or not rec.extra.get("cid"):
            return None
        return f"/{CGROUP_PARENT}/pod{uid}/{rec.extra['cid']}"    # cgroupfs: <cgroup parent>/<container id>

    async def attach_url(self, uid: str, name: str, stdin: bool, tty: bool) -> str | None:
        """CRI Attach: a URL of containerd's streaming server (plain HTTP on 127.0.0.1, see daemon.py)."""
        rec = self.latest(uid, name)
        if rec is None or not rec.running or not rec.extra.get("cid"):
            return None
        resp = await self.cri.call("Attach", {"container_id": rec.extra["cid"], "stdin": stdin, "tty": tty,
                                              "stdout": True, "stderr": not tty}, timeout=10)
        return resp.get("url") or None

    async def reopen_log(self, uid: str, name: str) -> bool:
        """CRI ReopenContainerLog: containerd closes the (renamed) log and opens the path again."""
        rec = self.latest(uid, name)
        if rec is None or not rec.running or not rec.extra.get("cid"):
            return False
        await self.cri.call("ReopenContainerLog", {"container_id": rec.extra["cid"]}, timeout=10)
        return True

    @staticmethod
    def stdio_config(container: dict) -> dict:
        """The container's stdin/stdinOnce/tty (what `kubectl attach -i/-t` attaches to)."""
        return {"stdin": bool(container.get("stdin")), "stdin_once": bool(container.get("stdinOnce")),
                "tty": bool(container.get("tty"))}

    async def pod_netns(self, uid: str) -> str | None:
        """The sandbox's network namespace, through its PID (PodSandboxStatus verbose info)."""
        sb = self._sandboxes.get(uid)
        if sb is None or not sb.id:
            return None
        try:
            st = await self.cri.call("PodSandboxStatus", {"pod_sandbox_id": sb.id, "verbose": True}, timeout=10)
            pid = int(json.loads((st.get("info") or {}).get("info") or "{}").get("pid") or 0)
        except (cri.CRIError, ValueError, TypeError):
            return None
        return f"/proc/{pid}/ns/net" if pid > 0 and os.path.exists(f"/proc/{pid}/ns/net") else None

    def port_forward_host(self, uid: str) -> str | None:
        sb = self._sandboxes.get(uid)
        return sb.ip if sb is not None and sb.ip else None

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def sandbox_config(self, pod: dict) -> dict:
        meta, spec = pod["metadata"], pod["spec"]
        uid, ns = meta["uid"], meta.get("namespace") or "default"
        log_dir = os.path.join(self.data_dir, "pods", f"{ns}_{meta['name']}_{uid}")
        host_net = bool(spec.get("hostNetwork"))
        ports = []
        for c in spec.get("containers") or ():
            for p in c.get("ports") or ():
                if p.get("hostPort"):
                    ports.append({"protocol": {"TCP": 0, "UDP": 1, "SCTP": 2}.get(p.get("protocol") or "TCP", 0),
                                  "container_port": p["containerPort"], "host_port": p["hostPort"],
                                  "host_ip": p.get("hostIP") or ""})
        psc = spec.get("securityContext") or {}
        privileged = any(((c.get("securityContext") or {}).get("privileged"))
                         for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))
        sc = {"namespace_options": {"network": cri.NS_NODE if host_net else cri.NS_POD,
                                    "pid": cri.NS_NODE if spec.get("hostPID") else cri.NS_CONTAINER,
                                    "ipc": cri.NS_NODE if spec.get("hostIPC") else cri.NS_POD},
              "privileged": privileged}
        if psc.get("runAsUser") is not None:
            sc["run_as_user"] = {"value": psc["runAsUser"]}
        dns = pod_dns_config(pod, self.cluster_dns, self.cluster_domain)     # None: the host's resolv.conf
        return {"metadata": {"name": meta["name"], "uid": uid, "namespace": ns, "attempt": 0},
                "hostname": "" if host_net else (spec.get("hostname") or meta["name"])[:63],
                "log_directory": log_dir, "port_mappings": ports, **({"dns_config": dns} if dns else {}),
                "labels": {MANAGED: "true", UID: uid, "io.kubernetes.pod.name": meta["name"],
                           "io.kubernetes.pod.namespace": ns},
                "annotations": {"ketch.io/log-directory": log_dir},
                "linux": {"cgroup_parent": f"/{CGROUP_PARENT}/pod{uid}", "security_context": sc}}

    async def run_sandbox(self, pod: dict) -> str:
        uid = pod["metadata"]["uid"]
        async with self._lock(uid):
            sb = self._sandboxes.get(uid)
            if sb is not None and sb.id:
                if sb.config is None:
                    sb.config = self.sandbox_config(pod)
                return sb.ip
            cfg = self.sandbox_config(pod)
            os.makedirs(cfg["log_directory"], mode=0o755, exist_ok=True)
            try:
                resp = await self.cri.call("RunPodSandbox", {"config": cfg}, timeout=120)
                sid = resp["pod_sandbox_id"]
                st = await self.cri.call("PodSandboxStatus", {"pod_sandbox_id": sid})
            except cri.CRIError as e:
                raise ContainerStartError(f"failed to create pod sandbox: {e.details()}") from None
            ip = ((st.get("status") or {}).get("network") or {}).get("ip") or self.host_ip
            self._sandboxes[uid] = Sandbox(sid, ip, cfg["log_directory"], cfg)
            self._pods.setdefault(uid, {})
            return ip

    async def pull(self, pod: dict, container: dict, sandbox: dict | None) -> str:
        """Make the container's image present as its imagePullPolicy says; returns the image reference."""
        ref = container.get("image") or ""
        if not ref:
            raise ContainerConfigError("the container has no image")
        await self._wait_images()
        policy = container.get("imagePullPolicy")
        if not policy:
            last = ref.rsplit("/", 1)[-1]
            policy = "Always" if "@" not in ref and (":" not in last or last.endswith(":latest")) else "IfNotPresent"
        try:
            if policy != "Always" and await self.image_present(ref):
                return ref
            if policy == "Never":
                raise ImagePullError(ref, f'Container image "{ref}" is not present with pull policy of Never',
                                     "ErrImageNeverPull")
            await self.cri.call("PullImage", {"image": {"image": ref}, "sandbox_config": sandbox}, timeout=600)
        except cri.CRIError as e:
            raise ImagePullError(ref, f'Failed to pull image "{ref}": {e.details()}') from None
        return ref

    def container_config(self, pod: dict, container: dict, env: dict[str, str], attempt: int, image: str,
                         sb: Sandbox) -> dict:
        spec, meta, name = pod["spec"], pod["metadata"], container["name"]
        res = container.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        resources: dict = {}
        cpu_req = requests.get("cpu") or limits.get("cpu")
        resources["cpu_shares"] = max(2, int(_cpu(cpu_req) * 1024)) if cpu_req else 2
        if limits.get("cpu"):
            resources["cpu_period"] = 100000
            resources["cpu_quota"] = max(1000, math.ceil(_cpu(limits["cpu"]) * 100000))
        if limits.get("memory"):
            resources["memory_limit_in_bytes"] = int(parse_quantity(limits["memory"]))
        psc, csc = spec.get("securityContext") or {}, container.get("securityContext") or {}
        sc: dict = {"privileged": bool(csc.get("privileged")), "readonly_rootfs": bool(csc.get("readOnlyRootFilesystem")),
                    "namespace_options": sb.config["linux"]["security_context"]["namespace_options"]
                    if sb.config else {"pid": cri.NS_CONTAINER}}
        user = csc.get("runAsUser", psc.get("runAsUser"))
        group = csc.get("runAsGroup", psc.get("runAsGroup"))
        if user is not None:
            sc["run_as_user"] = {"value": int(user)}
            if group is not None:
                sc["run_as_group"] = {"value": int(group)}
        caps = csc.get("capabilities") or {}
        if caps.get("add") or caps.get("drop"):
            sc["capabilities"] = {"add_capabilities": [c for c in caps.get("add") or () if c != "SYS_RESOURCE"],
                                  "drop_capabilities": list(caps.get("drop") or ())}
        mounts = self._mounts(pod, container)
        return {"metadata": {"name": name, "attempt": attempt}, "image": {"image": image},
                "command": [str(x) for x in container.get("command") or ()],
                "args": [str(x) for x in container.get("args") or ()],
                "working_dir": container.get("workingDir") or "",
                "envs": [{"key": k, "value": v} for k, v in env.items()],
                "mounts": mounts,
                "labels": {MANAGED: "true", UID: meta["uid"], CNAME: name,
                           "io.kubernetes.pod.name": meta["name"],
                           "io.kubernetes.pod.namespace": meta.get("namespace") or "default"},
                "annotations": {"io.kubernetes.container.restartCount": str(attempt)},
                "log_path": f"{name}/{attempt}.log", **self.stdio_config(container),
                "linux": {"resources": resources, "security_context": sc}}

    def _mounts(self, pod: dict, container: dict) -> list[dict]:
        """Bind mounts of the container's volumes (ketch.node.volumes: the agent writes the file volumes)."""
        return [{"container_path": m.container_path, "host_path": m.host_path, "readonly": m.readonly}
                for m in volumes.container_mounts(pod, container, self.data_dir)]

    async def start_container(self, pod: dict, container: dict, env: dict[str, str], attempt: int) -> ContainerRecord:
        """Start one container; for image GC its image counts as in use meanwhile, and its last use is recorded."""
        ref = container.get("image") or ""
        self.images_starting[ref] = self.images_starting.get(ref, 0) + 1
        try:
            return await self._start_container(pod, container, env, attempt)
        finally:
            self.image_used[ref] = time.time()
            self.images_starting[ref] -= 1
            if not self.images_starting[ref]:
                del self.images_starting[ref]

    async def _start_container(self, pod: dict, container: dict, env: dict[str, str], attempt: int) -> ContainerRecord:
        uid, name = pod["metadata"]["uid"], container["name"]
        await self.run_sandbox(pod)
        sb = self._sandboxes[uid]
        image = await self.pull(pod, container, sb.config)
        cfg = self.container_config(pod, container, env, attempt, image, sb)
        os.makedirs(os.path.join(sb.log_dir, name), exist_ok=True)
        req = {"pod_sandbox_id": sb.id, "config": cfg, "sandbox_config": sb.config}
        try:
            try:
                cid = (await self.cri.call("CreateContainer", req, timeout=60))["container_id"]
            except cri.CRIError as e:
                if "reserved" not in (e.details() or ""):
                    raise
                await self._remove_named(sb.id, uid, name, attempt)   # a leftover of a failed start
                cid = (await self.cri.call("CreateContainer", req, timeout=60))["container_id"]
        except cri.CRIError as e:
            raise ContainerStartError(f"failed to create container {name}: {e.details()}") from None
        rec = ContainerRecord(name, attempt, "containerd://" + cid, time.time())
        rec.extra.update(cid=cid, starting=True)
        try:
            await self.cri.call("StartContainer", {"container_id": cid}, timeout=60)
        except cri.CRIError as e:
            with contextlib.suppress(cri.CRIError):
                await self.cri.call("RemoveContainer", {"container_id": cid})
            raise ContainerStartError(f"failed to start container {name}: {e.details()}") from None
        runs = self._pods.setdefault(uid, {}).setdefault(name, [])
        runs.append(rec)
        self._by_id[cid] = (uid, rec)
        rec.extra.pop("starting", None)
        if self._early_exits.pop(cid, None) is not None:   # it exited before StartContainer returned
            self._spawn(self._exited(cid))
        return rec

    async def _remove_named(self, sid: str, uid: str, name: str, attempt: int) -> None:
        resp = await self.cri.call("ListContainers", {"filter": {"pod_sandbox_id": sid,
                                                                 "label_selector": {UID: uid, CNAME: name}}})
        for c in resp.get("containers") or ():
            if c.get("metadata", {}).get("attempt") == attempt:
                with contextlib.suppress(cri.CRIError):
                    await self.cri.call("RemoveContainer", {"container_id": c["id"]})

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        rec = self.latest(uid, name)
        if rec is None or not rec.running:
            return
        cid = rec.extra["cid"]
        t = max(0, math.ceil(grace))
        try:
            await self.cri.call("StopContainer", {"container_id": cid, "timeout": t}, timeout=t + 30)
        except cri.CRIError as e:
            if not cri.not_found(e):
                log.warning("stopping %s/%s: %s", uid, name, e.details())
        await self._changed(cid)

    async def remove_pod(self, uid: str) -> None:
        resp = await self.cri.call("ListPodSandbox", {"filter": {"label_selector": {UID: uid, MANAGED: "true"}}})
        ids = {sb["id"] for sb in resp.get("items") or ()}
        sb = self._sandboxes.get(uid)
        if sb is not None and sb.id:
            ids.add(sb.id)
        for sid in ids:
            # RemovePodSandbox stops the sandbox itself (CRI says it must): a StopPodSandbox first would
            # tear the network down twice (every CNI plugin run again). Stop first only if Remove failed.
            for methods in (("RemovePodSandbox",), ("StopPodSandbox", "RemovePodSandbox")):
                failed = False
                for method in methods:
                    try:
                        await self.cri.call(method, {"pod_sandbox_id": sid}, timeout=60)
                    except cri.CRIError as e:
                        if not cri.not_found(e):
                            failed = True
                            log.warning("%s %s: %s", method, sid, e.details())
                if not failed:
                    break
        for cid in [c for c, (u, _) in self._by_id.items() if u == uid]:
            del self._by_id[cid]
        self._pods.pop(uid, None)
        self._sandboxes.pop(uid, None)
        self._locks.pop(uid, None)
        await asyncio.to_thread(self._cleanup_files, uid, sb.log_dir if sb else "")

    def _sweep_cgroups(self) -> None:
        """Empty pod cgroups of pods containerd no longer holds (an agent stopped mid-removal)."""
        held = self.pod_uids()
        for d in glob.glob(f"{CGROUP_ROOT}/*/{CGROUP_PARENT}/pod*"):
            if os.path.basename(d)[3:] not in held:
                _rmdirs(d)

    def _cleanup_files(self, uid: str, log_dir: str) -> None:
        """The pod cgroup (containerd never removes it), its logs and emptyDir volumes."""
        for d in glob.glob(f"{CGROUP_ROOT}/*/{CGROUP_PARENT}/pod{uid}"):
            _rmdirs(d)
        for d in [log_dir, *glob.glob(os.path.join(self.data_dir, "pods", f"*_{uid}"))]:
            if d:
                shutil.rmtree(d, ignore_errors=True)
        volumes.remove_pod_volumes(self.data_dir, uid)     # memory-backed emptyDirs are unmounted first

    async def exec_probe(self, uid: str, name: str, command: list[str], timeout: float) -> tuple[bool, str]:
        rec = self.latest(uid, name)
        if rec is None or not rec.running:
            return False, "container not running"
        t = max(1, math.ceil(timeout))
        try:
            resp = await self.cri.call("ExecSync", {"container_id": rec.extra["cid"], "cmd": command, "timeout": t},
                                       timeout=t + 10)
        except cri.CRIError as e:
            return False, e.details() or str(e.code())
        out = (resp.get("stdout", b"") + resp.get("stderr", b"")).decode(errors="replace")
        return resp.get("exit_code", 0) == 0, out[-1024:]


def _rmdirs(cgroup: str) -> None:
    """Remove a cgroup and its children, bottom-up; a cgroup still in use stays."""
    for root, _dirs, _files in os.walk(cgroup, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(root)


async def import_image(socket: str, path: str) -> str:
    """`ctr -n k8s.io images import` an OCI layout or docker archive; returns ctr's output."""
    ctr = shutil.which("ctr") or "ctr"
    proc = await asyncio.create_subprocess_exec(ctr, "--address", socket, "-n", "k8s.io", "images", "import",
                                                "--all-platforms", path, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ctr images import {path}: {out.decode(errors='replace').strip()}")
    return out.decode(errors="replace")
