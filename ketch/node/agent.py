"""The node agent (our kubelet): runs the pods bound to its node(s) and reports their status.

Level-triggered: a work queue of pod keys; each sync reads the pod from the shared informer and
what the runtime holds, starts what should run, and writes the status when it differs from
what the API shows. One agent can serve many simulated nodes (runtime `fake`) from one informer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from ..aioutil import cancel_all
from ..api.errors import StatusError
from ..api.podutil import referenced_objects
from ..client.events import EventRecorder
from ..client.informer import Informer, index_by_node_name, object_key
from ..client.rest import Client
from ..client.workqueue import WorkQueue
from . import machine
from .envvars import EnvResolver, expand
from .nodestatus import NodeManager, NodeSpec
from .podstatus import (
    TERMINAL,
    conditions,
    container_status,
    go_duration,
    init_progress,
    pod_phase,
    qos,
    rfc3339,
    should_restart,
)
from .probes import ContainerProbes
from .runtime import ContainerConfigError, ContainerRecord, ContainerStartError, ImagePullError, Runtime
from .volumes import VolumeManager, remove_orphaned_volumes

log = logging.getLogger("ketch.node")
DNS_LOOKUP_INTERVAL = 5.0       # seconds between lookups of kube-dns (1 s while it does not exist)


@dataclass
class AgentOptions:
    """How the agent runs; `nodes` > 1 simulates that many nodes named <node_name>-<i>."""

    node_name: str
    runtime: str = "process"
    data_dir: str = ""
    nodes: int = 1
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    lease_interval: float = 10.0
    status_interval: float = 300.0
    workers: int = 8
    config_retry: float = 5.0
    kubelet_port: int = 10250     # the agent's own HTTPS API (logs, exec, port-forward, metrics); 0 = any
    image_gc_high: int = 85       # image GC (containerd): start at this % of the image filesystem used
    image_gc_low: int = 80        # ... and free down to this %
    image_min_age: float = 120.0  # images first seen less than this many seconds ago are kept
    image_gc_period: float = 300.0


@dataclass
class PodState:
    """What the agent remembers about one pod between syncs (all of it can be rebuilt)."""

    uid: str
    key: str
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    probes: dict[str, tuple[int, ContainerProbes]] = field(default_factory=dict)
    start_time: str = ""
    last_sent: dict | None = None
    terminating: asyncio.Task | None = None
    grace: float = 30.0
    pull_backoff: dict[str, tuple[int, float, str, str]] = field(default_factory=dict)  # (failures, until, why, image)
    token_resync: float = 0.0     # when a sync is scheduled to renew projected service account tokens


def make_runtime(name: str, data_dir: str, pod_ip: str) -> Runtime:
    if name == "fake":
        from .fake import FakeRuntime
        return FakeRuntime()
    if name == "process":
        from .process import ProcessRuntime
        return ProcessRuntime(data_dir, pod_ip)
    raise ValueError(f"unknown runtime {name!r} (choose fake or process)")


class Agent:
    """One runtime, one pod informer, one work queue for every node this process serves."""

    def __init__(self, client: Client, opts: AgentOptions, runtime: Runtime | None = None):
        self.client = client
        self.opts = opts
        self.data_dir = opts.data_dir or os.path.abspath("ketch-agent")
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        self.fake = opts.runtime == "fake"
        self.host_ip = machine.host_ip()
        self.runtime = runtime or make_runtime(opts.runtime, self.data_dir, self.host_ip)
        self.runtime.on_change = self._runtime_changed
        self.nodes = self._node_specs()
        self.node_ip = {n.name: n.addresses[0]["address"] for n in self.nodes}
        self.allocatable = {n.name: n.allocatable for n in self.nodes}
        self.node_manager = NodeManager(client, self.nodes, opts.lease_interval, opts.status_interval)
        self.pod_ri = client.resource("pods")
        selector = f"spec.nodeName={opts.node_name}" if opts.nodes == 1 else "spec.nodeName!="
        self.pods = Informer(client, self.pod_ri, field_selector=selector, indexers={"node": index_by_node_name})
        self.queue = WorkQueue(base_delay=0.05, max_delay=30.0)
        self.env = EnvResolver(client)
        self.volumes = VolumeManager(client, self.data_dir, self._object_changed)
        self.events = EventRecorder(client, "kubelet", enabled=not self.fake)
        self.states: dict[str, PodState] = {}        # by uid
        self.uids_by_key: dict[str, set[str]] = {}
        self._session: aiohttp.ClientSession | None = None
        self.prepare: list[Callable[[], Awaitable[None]]] = []   # run alongside the runtime's start
        self.pods.add_handlers(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)

    # -- nodes -------------------------------------------------------------------------------
    def _node_specs(self) -> list[NodeSpec]:
        o = self.opts
        names = [o.node_name] if o.nodes == 1 else [f"{o.node_name}-{i}" for i in range(o.nodes)]
        info = machine.node_info(self.runtime.name, self.runtime.version)
        specs = []
        for i, name in enumerate(names):
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": machine.arch(), "beta.kubernetes.io/os": "linux",
                      "beta.kubernetes.io/arch": machine.arch()}
            if self.fake:
                cap = {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi", "pods": "110"}
                ip = f"10.{(i >> 16) & 63}.{(i >> 8) & 255}.{i & 255}" if o.nodes > 1 else self.host_ip
                specs.append(NodeSpec(name, labels, cap, dict(cap), [{"type": "InternalIP", "address": ip},
                                      {"type": "Hostname", "address": name}], info))
            else:
                cap = machine.capacity(self.data_dir)
                specs.append(NodeSpec(name, labels, cap, machine.allocatable(cap),
                                      [{"type": "InternalIP", "address": self.host_ip},
                                       {"type": "Hostname", "address": name}], info,
                                      pressure=lambda: machine.pressure(self.data_dir)))
        return specs

    # -- events ------------------------------------------------------------------------------
    def _enqueue(self, pod: dict) -> None:
        self.queue.add(object_key(pod))

    def _runtime_changed(self, uid: str) -> None:
        st = self.states.get(uid)
        if st is not None:
            self.queue.add(st.key)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        return self._session

    # -- main loop ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self.runtime.start(), *(p() for p in self.prepare))
        from .server import start_for_agent
        node_server = await start_for_agent(self)
        tasks = [asyncio.create_task(self.node_manager.run(stop)), self.pods.start()]
        try:
            await self.pods.synced.wait()
            self._clean_orphans()
            tasks += [asyncio.create_task(self._worker()) for _ in range(self.opts.workers)]
            tasks += self._image_gc(stop)
            await stop.wait()
        finally:
            self.queue.shutdown()
            await cancel_all(tasks)
            for st in self.states.values():
                for _, probes in st.probes.values():
                    probes.stop()
                if st.terminating:
                    st.terminating.cancel()
            await node_server.close()
            await self.volumes.close()
            await self.runtime.close()
            await self.events.close()
            if self._session is not None:
                await self._session.close()

    def _image_gc(self, stop: asyncio.Event) -> list[asyncio.Task]:
        """The image garbage collector's loop, for runtimes that hold images (containerd)."""
        if getattr(self.runtime, "cri", None) is None:
            return []
        from .imagegc import ImageGC
        from .images import PAUSE_IMAGE
        o = self.opts
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": o.node_name, "uid": o.node_name}}
        gc = ImageGC(self.runtime, o.image_gc_high, o.image_gc_low, o.image_min_age, o.image_gc_period,
                     pinned=(PAUSE_IMAGE,),
                     event=lambda etype, reason, msg: self.events.event(node, etype, reason, msg, host=o.node_name))
        self.image_gc = gc
        return [asyncio.create_task(gc.run(stop))]

    def _clean_orphans(self) -> None:
        known = {p["metadata"]["uid"] for p in self.pods.list()}
        if not self.fake:
            remove_orphaned_volumes(self.data_dir, known | self.runtime.pod_uids())
        for uid in self.runtime.pod_uids() - known:
            log.info("removing orphaned pod %s", uid)
            st = PodState(uid, "", grace=0)
            self.states[uid] = st
            st.terminating = asyncio.create_task(self._teardown(st, None))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.sync_pod(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if isinstance(e, StatusError):
                    log.info("sync %s: %s", key, e)
                else:
                    log.exception("sync %s failed", key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    # -- one pod -----------------------------------------------------------------------------
    async def sync_pod(self, key: str) -> None:
        """Converge one pod: start/restart its containers, or stop them, and report its status."""
        pod = self.pods.get(key)
        uid = pod["metadata"]["uid"] if pod else None
        for old in list(self.uids_by_key.get(key, ())):   # gone, or replaced by a pod of the same name
            if old != uid:
                st = self.states.get(old)
                if st is not None and st.terminating is None:
                    st.terminating = asyncio.create_task(self._teardown(st, None))
        if pod is None or pod["spec"].get("nodeName") not in self.node_ip:
            return
        st = self.states.get(uid)
        if st is None:
            st = self.states[uid] = PodState(uid, key)
            self.uids_by_key.setdefault(key, set()).add(uid)
        if st.terminating is not None:
            return
        if pod["metadata"].get("deletionTimestamp"):
            meta_grace = pod["metadata"].get("deletionGracePeriodSeconds")
            spec_grace = pod["spec"].get("terminationGracePeriodSeconds")
            st.grace = float(meta_grace if meta_grace is not None else spec_grace if spec_grace is not None else 30)
            st.terminating = asyncio.create_task(self._teardown(st, pod))
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL and not self.runtime.running(uid):
            return
        if hasattr(self.runtime, "cluster_dns"):
            await self._refresh_cluster_dns()
        ip = await self.runtime.run_sandbox(pod)
        if (pod.get("status") or {}).get("phase") not in TERMINAL:
            await self._refresh_volumes(pod, st)
            await self._converge(pod, st, ip)
        await self._report(pod, st, ip)

    async def _refresh_cluster_dns(self) -> None:
        """The cluster DNS for ClusterFirst pods: kube-system/kube-dns' ClusterIP (looked up at most
        every few seconds); none when the service is missing, so pods get the host's resolv.conf."""
        now = time.monotonic()
        interval = DNS_LOOKUP_INTERVAL if self.runtime.cluster_dns else 1.0
        if now - getattr(self, "_dns_checked", -1e9) < interval:
            return
        self._dns_checked = now
        try:
            svc = await self.client.get(self.client.resource("services"), "kube-system", "kube-dns")
        except StatusError as e:
            if e.code == 404:
                self.runtime.cluster_dns = []
            return
        except (TimeoutError, OSError, aiohttp.ClientError):
            return
        ip = (svc.get("spec") or {}).get("clusterIP") or ""
        self.runtime.cluster_dns = [ip] if ip and ip != "None" else []

    async def _converge(self, pod: dict, st: PodState, ip: str) -> None:
        spec = pod["spec"]
        policy = spec.get("restartPolicy") or "Always"
        init_policy = "OnFailure" if policy == "Always" else policy
        for c in spec.get("initContainers") or ():
            rec = self.runtime.latest(st.uid, c["name"])
            if rec is None:
                await self._start(pod, st, c, 0, ip)
                return
            if rec.running:
                return
            if rec.exit_code == 0:
                continue
            if should_restart(init_policy, rec.exit_code):
                await self._restart(pod, st, c, rec, ip)
            return
        for c in spec.get("containers") or ():
            rec = self.runtime.latest(st.uid, c["name"])
            if rec is None:
                await self._start(pod, st, c, 0, ip)
            elif rec.running:
                self._ensure_probes(pod, st, c, rec, ip)
            else:
                self._stop_probes(st, c["name"])
                if should_restart(policy, rec.exit_code):
                    await self._restart(pod, st, c, rec, ip)

    async def _restart(self, pod: dict, st: PodState, c: dict, rec: ContainerRecord, ip: str) -> None:
        """Restart now, or wait out the crash-loop back-off (10 s doubling to 5 min by default)."""
        ran = (rec.finished_at or 0) - rec.started_at
        if rec.attempt == 0 or ran > 2 * self.opts.backoff_max:
            delay = 0.0
        else:
            delay = min(self.opts.backoff_base * 2 ** (rec.attempt - 1), self.opts.backoff_max)
        remaining = (rec.finished_at or 0) + delay - time.time()
        if remaining > 0:
            meta = pod["metadata"]
            if st.waiting.get(c["name"], ("",))[0] != "CrashLoopBackOff":
                self._event(pod, c, "Warning", "BackOff", f"Back-off restarting failed container {c['name']} "
                            f"in pod {meta['name']}_{meta.get('namespace')}({meta['uid']})")
            st.waiting[c["name"]] = ("CrashLoopBackOff",
                                     f"back-off {go_duration(delay)} restarting failed container={c['name']} "
                                     f"pod={meta['name']}_{meta.get('namespace')}({meta['uid']})")
            self.queue.add_after(st.key, remaining + 0.01)
            return
        await self._start(pod, st, c, rec.attempt + 1, ip)

    async def _start(self, pod: dict, st: PodState, c: dict, attempt: int, ip: str) -> None:
        name = c["name"]
        node = pod["spec"]["nodeName"]
        try:
            env: dict[str, str] = {}
            if not self.fake:
                view = dict(pod)
                view["status"] = {**(pod.get("status") or {}), "podIP": ip, "podIPs": [{"ip": ip}],
                                  "hostIP": self.node_ip[node], "hostIPs": [{"ip": self.node_ip[node]}]}
                env = await self.env.resolve(view, c, self.allocatable[node])
                await self.volumes.setup(view, self.allocatable[node])
                c = dict(c)
                for k in ("command", "args"):
                    if c.get(k):
                        c[k] = [expand(str(x), env) for x in c[k]]
            if self._pull_backing_off(pod, st, c):
                return
            rec = await self.runtime.start_container(pod, c, env, attempt)
        except ImagePullError as e:
            self._pull_failed(pod, st, c, e)
            return
        except ContainerConfigError as e:
            if st.waiting.get(name) != ("CreateContainerConfigError", str(e)):
                self._event(pod, c, "Warning", "Failed", f"Error: {e}")
            st.waiting[name] = ("CreateContainerConfigError", str(e))
            self.queue.add_after(st.key, self.opts.config_retry)
            return
        except ContainerStartError as e:
            st.waiting[name] = (e.reason, str(e))
            self.queue.add_after(st.key, self.opts.config_retry)
            return
        st.waiting.pop(name, None)
        st.pull_backoff.pop(name, None)
        self._event(pod, c, "Normal", "Started", f"Started container {name}")
        if rec.running:
            self._ensure_probes(pod, st, c, rec, ip, fresh=True)

    # -- image pulls: ErrImagePull, then ImagePullBackOff until the back-off is over ------------------
    def _pull_backing_off(self, pod: dict, st: PodState, c: dict) -> bool:
        """Within the image pull back-off: report ImagePullBackOff and come back when it ends."""
        failures, until, why, image = st.pull_backoff.get(c["name"], (0, 0.0, "", ""))
        remaining = until - time.time()
        if remaining <= 0 or image != (c.get("image") or ""):    # a new image gets a fresh back-off
            return False
        msg = f'Back-off pulling image "{c.get("image") or ""}": {why}'
        if st.waiting.get(c["name"], ("",))[0] != "ImagePullBackOff":
            self._event(pod, c, "Normal", "BackOff", f'Back-off pulling image "{c.get("image") or ""}"')
            self._event(pod, c, "Warning", "Failed", "Error: ImagePullBackOff")
        st.waiting[c["name"]] = ("ImagePullBackOff", msg)
        self.queue.add_after(st.key, remaining + 0.01)
        return True

    def _pull_failed(self, pod: dict, st: PodState, c: dict, e: ImagePullError) -> None:
        name = c["name"]
        if e.reason != "ErrImagePull":      # ErrImageNeverPull: nothing to back off from, re-check later
            if st.waiting.get(name) != (e.reason, str(e)):
                self._event(pod, c, "Warning", "ErrImageNeverPull", str(e))
                self._event(pod, c, "Warning", "Failed", f"Error: {e.reason}")
            st.waiting[name] = (e.reason, str(e))
            self.queue.add_after(st.key, self.opts.config_retry)
            return
        st.waiting[name] = (e.reason, str(e))
        prev = st.pull_backoff.get(name)
        failures = prev[0] + 1 if prev and prev[3] == (c.get("image") or "") else 1
        delay = min(self.opts.backoff_base * 2 ** (failures - 1), self.opts.backoff_max)
        st.pull_backoff[name] = (failures, time.time() + delay, str(e), c.get("image") or "")
        self._event(pod, c, "Warning", "Failed", str(e))
        self._event(pod, c, "Warning", "Failed", "Error: ErrImagePull")
        self.queue.add_after(st.key, min(delay / 2, 1.0))    # then ImagePullBackOff until the back-off ends

    # -- volumes -------------------------------------------------------------------------------
    def _object_changed(self, kind: str, ns: str, name: str) -> None:
        """A configMap or secret changed: re-sync the pods of this node that use it."""
        for pod in self.pods.by_index("namespace", ns):
            if (kind, name) in referenced_objects(pod):
                self._enqueue(pod)

    async def _refresh_volumes(self, pod: dict, st: PodState) -> None:
        """Keep the file volumes of a pod whose containers run current (not the first setup: _start does it)."""
        if self.fake:
            return
        self.volumes.watch(pod)
        if self.runtime.containers(st.uid):
            node = pod["spec"]["nodeName"]
            await self.volumes.setup(pod, self.allocatable[node], strict=False)
        due = self.volumes.token_due(st.uid)
        if due is not None and due != st.token_resync:    # renew projected service account tokens in time
            st.token_resync = due
            self.queue.add_after(st.key, max(due - time.time(), 0) + 0.5)

    def _event(self, pod: dict, c: dict, etype: str, reason: str, message: str) -> None:
        self.events.event(pod, etype, reason, message, f"spec.containers{{{c['name']}}}", host=pod["spec"]["nodeName"])

    # -- probes ------------------------------------------------------------------------------
    def _ensure_probes(self, pod: dict, st: PodState, c: dict, rec: ContainerRecord, ip: str,
                       fresh: bool = False) -> None:
        cur = st.probes.get(c["name"])
        if cur is not None and cur[0] == rec.attempt:
            return
        self._stop_probes(st, c["name"])
        if not self.runtime.runs_probes:
            return
        probes = ContainerProbes(self.runtime, self.session, st.uid, c, ip,
                                 changed=lambda: self.queue.add(st.key),
                                 kill=lambda why: self._probe_kill(pod, st, c["name"], rec.attempt, why))
        if not fresh:   # re-adopted after an agent restart: keep what was last reported
            for cs in (pod.get("status") or {}).get("containerStatuses") or ():
                if cs.get("name") == c["name"] and cs.get("containerID") == rec.id:
                    probes.started = probes.started or bool(cs.get("started"))
                    probes.ready = probes.ready or bool(cs.get("ready"))
        st.probes[c["name"]] = (rec.attempt, probes)
        probes.start()

    def _stop_probes(self, st: PodState, name: str) -> None:
        cur = st.probes.pop(name, None)
        if cur is not None:
            cur[1].stop()

    def _probe_kill(self, pod: dict, st: PodState, name: str, attempt: int, why: str) -> None:
        log.info("pod %s container %s: %s; restarting it", st.key, name, why)
        rec = self.runtime.latest(st.uid, name)
        if rec is None or rec.attempt != attempt or not rec.running:
            return
        rec.message = why
        c = next((x for x in pod["spec"].get("containers") or () if x["name"] == name), {"name": name})
        self._event(pod, c, "Warning", "Unhealthy", why)
        self._event(pod, c, "Normal", "Killing", f"Container {name} failed {why.split(' probe')[0].lower()} probe, "
                    "will be restarted")
        grace = pod["spec"].get("terminationGracePeriodSeconds")
        asyncio.create_task(self.runtime.stop_container(st.uid, name, float(30 if grace is None else grace)))

    # -- status ------------------------------------------------------------------------------
    def build_status(self, pod: dict, st: PodState, ip: str) -> dict:
        spec = pod["spec"]
        uid = st.uid
        policy = spec.get("restartPolicy") or "Always"
        old = st.last_sent or pod.get("status") or {}
        runs = self.runtime.containers(uid)
        image_prefix = f"{self.runtime.name}://"

        def statuses(containers: list[dict]) -> list[dict]:
            out = []
            for c in containers:
                probes = st.probes.get(c["name"])
                started = probes[1].started if probes else True
                ready = probes[1].ready if probes else True
                out.append(container_status(c, runs.get(c["name"]) or [], st.waiting.get(c["name"]),
                                            started, ready, image_prefix + (c.get("image") or "")))
            return out

        init = list(spec.get("initContainers") or ())
        init_st = statuses(init)
        for cs in init_st:   # an init container is ready once it completed
            term = cs["state"].get("terminated")
            cs["ready"] = bool(term and term["exitCode"] == 0)
        initialized, init_failed, incomplete = init_progress(init, init_st, "OnFailure" if policy == "Always"
                                                             else policy)
        main_st = statuses(list(spec.get("containers") or ()))
        if init_failed:
            phase = "Failed"
        elif not initialized:
            phase = "Pending"
        else:
            phase = pod_phase(main_st, policy)
        unready = [cs["name"] for cs in main_st if not cs["ready"]]
        node_ip = self.node_ip[spec["nodeName"]]
        if not st.start_time:
            st.start_time = (pod.get("status") or {}).get("startTime") or rfc3339(time.time())
        status = {
            "phase": phase,
            "conditions": conditions(pod, old.get("conditions") or (pod.get("status") or {}).get("conditions") or [],
                                     initialized, incomplete, phase, unready),
            "hostIP": node_ip, "hostIPs": [{"ip": node_ip}], "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": st.start_time, "containerStatuses": main_st, "qosClass": qos(pod),
        }
        if init:
            status["initContainerStatuses"] = init_st
        return status

    async def _report(self, pod: dict, st: PodState, ip: str) -> None:
        status = self.build_status(pod, st, ip)
        current = pod.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()) or status == st.last_sent:
            st.last_sent = status
            return
        meta = pod["metadata"]
        try:
            await self.client.patch(self.pod_ri, meta.get("namespace"), meta["name"],
                                    {"metadata": {"uid": st.uid}, "status": status}, "merge", sub="status")
        except StatusError as e:
            if e.code == 404:
                return
            raise
        st.last_sent = status

    # -- deletion ----------------------------------------------------------------------------
    async def _teardown(self, st: PodState, pod: dict | None) -> None:
        """Stop every container (SIGTERM, SIGKILL after the grace period), then delete the pod."""
        try:
            for name in list(st.probes):
                self._stop_probes(st, name)
            names = [n for n, runs in self.runtime.containers(st.uid).items() if runs and runs[-1].running]
            if pod is not None:
                for n in names:
                    self._event(pod, {"name": n}, "Normal", "Killing", f"Stopping container {n}")
            await asyncio.gather(*(self.runtime.stop_container(st.uid, n, st.grace) for n in names))
            if pod is not None:
                meta = pod["metadata"]
                while True:
                    try:
                        await self.client.delete(self.pod_ri, meta.get("namespace"), meta["name"],
                                                 {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                                  "preconditions": {"uid": st.uid}})
                        break
                    except StatusError as e:
                        if e.code in (404, 409):
                            break
                        log.warning("deleting pod %s: %s", st.key, e)
                    except aiohttp.ClientError as e:
                        log.warning("deleting pod %s: %s", st.key, e)
                    await asyncio.sleep(1)
            await self.runtime.remove_pod(st.uid)
            if not self.fake:
                await asyncio.to_thread(self.volumes.forget, st.uid)
                ns = st.key.split("/", 1)[0] if "/" in st.key else None
                if ns:
                    keep = set().union(*(referenced_objects(p) for p in self.pods.by_index("namespace", ns)
                                         if p["metadata"]["uid"] != st.uid))
                    await self.volumes.unwatch(ns, keep)
        finally:
            self.states.pop(st.uid, None)
            uids = self.uids_by_key.get(st.key)
            if uids is not None:
                uids.discard(st.uid)
                if not uids:
                    del self.uids_by_key[st.key]


async def run_agent(client: Client, stop: asyncio.Event, opts: AgentOptions) -> None:
    """Run the agent until `stop` is set."""
    await Agent(client, opts).run(stop)
