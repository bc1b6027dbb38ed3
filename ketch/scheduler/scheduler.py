"""The scheduler: watch unscheduled pods and nodes, pick a node per pod, bind it.

It is a client of the apiserver only: informers (list+watch) feed the cache and the queue; a
decision is synchronous CPU work over the cache (so assumed pods count at once and two pods never
take the last slot), the binding POST runs in the background with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..api.errors import StatusError
from ..api.meta import now_rfc3339
from ..client.informer import Informer
from ..client.rest import Client
from .cache import Cache
from .config import SchedulerConfig
from .events import BackgroundWriter
from .framework import CycleState, Diagnosis, Framework
from .preemption import find_candidate
from .queue import SchedulingQueue
from .types import PodInfo

log = logging.getLogger("ketch.scheduler")
MAX_INFLIGHT_BINDINGS = 64


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _node_relevant(obj: dict) -> tuple:
    """The parts of a node that can change where pods fit."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return ((obj.get("metadata") or {}).get("labels"), spec.get("taints"), spec.get("unschedulable"),
            status.get("allocatable"), ready, len(status.get("images") or ()))


class Scheduler:
    """One scheduler profile against one apiserver."""

    def __init__(self, client: Client, config: SchedulerConfig | None = None):
        self.client = client
        self.config = config or SchedulerConfig()
        self.name = self.config.scheduler_name
        self.framework = Framework(self.config.plugins, self.config.percentage_of_nodes_to_score)
        self.cache = Cache()
        self.queue = SchedulingQueue()
        self.writer = BackgroundWriter(client, self.name, busy=self._busy)
        self.pods = Informer(client, client.resource("pods"))
        self.nodes = Informer(client, client.resource("nodes"))
        self.priority_classes: dict[str, int] = {}
        self.global_default: int | None = None
        self._pc_informer: Informer | None = None
        try:
            self._pc_informer = Informer(client, client.resource("priorityclasses", "scheduling.k8s.io"))
        except KeyError:
            pass
        self._bindings = asyncio.Semaphore(MAX_INFLIGHT_BINDINGS)
        self._tasks: set[asyncio.Task] = set()
        self.scheduled = 0
        self.attempts = 0

    def _busy(self) -> bool:
        return self.queue.has_active()

    # -- priority ------------------------------------------------------------------------------
    def _pc_changed(self, *_args: dict) -> None:
        assert self._pc_informer is not None
        self.priority_classes = {}
        self.global_default = None
        for pc in self._pc_informer.list():
            name = (pc.get("metadata") or {}).get("name")
            value = int(pc.get("value") or 0)
            self.priority_classes[name] = value
            if pc.get("globalDefault"):
                self.global_default = value

    def priority_of(self, pod: dict) -> int:
        """spec.priority, resolved from spec.priorityClassName when the apiserver did not."""
        spec = pod.get("spec") or {}
        pcn = spec.get("priorityClassName") or ""
        if pcn in self.priority_classes:
            return self.priority_classes[pcn]
        prio = spec.get("priority")
        if not pcn and not prio and self.global_default is not None:
            return self.global_default
        return int(prio or 0)

    def pod_info(self, pod: dict) -> PodInfo:
        return PodInfo(pod, self.priority_of(pod))

    def _responsible(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") == self.name

    # -- informer handlers -------------------------------------------------------------------
    def _on_pod_add(self, pod: dict) -> None:
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            if not _terminal(pod):
                self.cache.confirm(self.pod_info(pod))
            return
        if self._responsible(pod) and not _terminal(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            info_key = f"{pod['metadata'].get('namespace')}/{pod['metadata'].get('name')}"
            self.queue.add(info_key, self.priority_of(pod))

    def _on_pod_update(self, old: dict, new: dict) -> None:
        meta = new.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        spec = new.get("spec") or {}
        if spec.get("nodeName"):
            self.queue.done(key)
            self.cache.unnominate(key)
            if _terminal(new):
                if self.cache.remove_pod(key) is not None:
                    self.queue.move_all()
                return
            old_meta = old.get("metadata") or {}
            assumed = self.cache.assumed_pod(key)
            if assumed is not None and assumed.node_name == spec.get("nodeName") \
                    and old_meta.get("labels") == meta.get("labels") and not meta.get("deletionTimestamp"):
                # Our own binding, as expected: keep the parsed pod.
                assumed.obj = new
                self.cache.assumed.discard(key)
                return
            if (key in self.cache.assumed or not self.cache.is_placed(key)
                    or (old.get("spec") or {}).get("nodeName") != spec.get("nodeName")
                    or old_meta.get("labels") != meta.get("labels")
                    or old_meta.get("deletionTimestamp") != meta.get("deletionTimestamp")):
                self.cache.confirm(self.pod_info(new))
            return
        if not self._responsible(new) or meta.get("deletionTimestamp") or _terminal(new):
            self.queue.delete(key)
            return
        old_meta = old.get("metadata") or {}
        # Our own status writes (PodScheduled=False) must not re-trigger the pod.
        if old.get("spec") != spec or old_meta.get("labels") != meta.get("labels") or key not in self.queue.pods:
            self.queue.add(key, self.priority_of(new))

    def _on_pod_delete(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        self.queue.delete(key)
        self.cache.unnominate(key)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all()

    def _on_node_add(self, node: dict) -> None:
        self.cache.set_node(node)
        self.queue.move_all()

    def _on_node_update(self, old: dict, new: dict) -> None:
        self.cache.set_node(new)
        if _node_relevant(old) != _node_relevant(new):
            self.queue.move_all()

    def _on_node_delete(self, node: dict) -> None:
        self.cache.remove_node((node.get("metadata") or {}).get("name") or "")

    # -- running -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Schedule until `stop` is set."""
        if self._pc_informer is not None:
            self._pc_informer.add_handlers(self._pc_changed, lambda o, n: self._pc_changed(), self._pc_changed)
            self._pc_informer.start()
        self.nodes.add_handlers(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.pods.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.nodes.start()
        waits = [self.nodes.synced.wait()]
        if self._pc_informer is not None:
            waits.append(self._pc_informer.synced.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([asyncio.ensure_future(asyncio.gather(*waits)), stopper],
                           return_when=asyncio.FIRST_COMPLETED)
        self.pods.start()
        self.writer.start()
        loop_task = asyncio.ensure_future(self._loop())
        try:
            await asyncio.wait([loop_task, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.queue.close()
            loop_task.cancel()
            stopper.cancel()
            for t in [loop_task, stopper, *self._tasks]:
                with contextlib.suppress(BaseException):
                    await t
            await self.writer.stop()
            for inf in (self.pods, self.nodes, self._pc_informer):
                if inf is not None:
                    await inf.stop()

    async def _loop(self) -> None:
        await self.pods.synced.wait()
        while True:
            key = await self.queue.pop()
            if key is None:
                return
            try:
                self.schedule_one(key)
            except Exception:
                log.exception("scheduling %s failed", key)
                self.queue.retry(key)
            # Let bindings, watches and events run between decisions.
            await asyncio.sleep(0)
            if self._bindings.locked():
                async with self._bindings:
                    pass

    def schedule_one(self, key: str) -> None:
        """One scheduling attempt: filter, score, assume, start the binding (or record why not)."""
        obj = self.pods.get(key)
        if obj is None or (obj.get("spec") or {}).get("nodeName") or not self._responsible(obj) \
                or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.done(key)
            return
        self.attempts += 1
        pod = self.pod_info(obj)
        state = CycleState(self.cache)
        diagnosis = Diagnosis()
        nodes = self.cache.node_list()
        feasible = self.framework.find_feasible(state, pod, nodes, diagnosis)
        if feasible:
            node = self.framework.select(state, pod, feasible)
            pod.node_name = node.name
            self.cache.assume(pod, node.name)
            self.cache.unnominate(key)
            t = asyncio.ensure_future(self._bind(obj, pod, node.name))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
            return
        message = diagnosis.message(len(nodes))
        nominated = ((obj.get("status") or {}).get("nominatedNodeName")) or ""
        new_nomination = ""
        if nodes and diagnosis.failures:
            result = find_candidate(self.framework, state, pod, diagnosis, nominated)
            if result.candidate is not None:
                new_nomination = result.candidate.node.name
                self.cache.nominate(pod, new_nomination)
                for victim in result.candidate.victims:
                    self._preempt(victim, obj, new_nomination)
            elif result.message:
                message = f"{message} {result.message}"
        self.queue.unschedulable(key)
        self._record_unschedulable(obj, message, new_nomination)

    # -- writes ------------------------------------------------------------------------------
    async def _bind(self, obj: dict, pod: PodInfo, node_name: str) -> None:
        async with self._bindings:
            body = {"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
            try:
                await self.client.request("POST", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/binding", body)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.cache.forget(pod.key)
                if isinstance(e, StatusError) and e.code in (404, 409):
                    self.queue.done(pod.key)  # gone or bound elsewhere: the watch will say
                else:
                    log.warning("binding %s to %s failed: %s", pod.key, node_name, e)
                    self.queue.retry(pod.key)
                self.queue.move_all()
                return
        self.scheduled += 1
        self.queue.done(pod.key)
        self.writer.event(obj, "Normal", "Scheduled", f"Successfully assigned {pod.key} to {node_name}", "Binding")

    def _record_unschedulable(self, obj: dict, message: str, nominated: str) -> None:
        self.writer.event(obj, "Warning", "FailedScheduling", message, "Scheduling")
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if cond and cond.get("status") == "False" and cond.get("message") == message and not nominated:
            return
        patch: dict = {"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": (cond or {}).get("lastTransitionTime") if cond and cond.get("status") == "False"
            else now_rfc3339()}]}}
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        path = f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta.get('name')}/status"

        async def write() -> None:
            await self.client.request("PATCH", path, patch, None, "application/strategic-merge-patch+json")
        self.writer.submit(write)

    def _preempt(self, victim: PodInfo, preemptor: dict, node_name: str) -> None:
        """Evict a victim gracefully: mark why (DisruptionTarget), then delete with its grace period."""
        victim.terminating = True  # do not pick it again while the delete is on its way
        pm = preemptor.get("metadata") or {}
        path = f"/api/v1/namespaces/{victim.namespace}/pods/{victim.name}"
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": f"{self.name}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": now_rfc3339()}

        async def evict() -> None:
            with contextlib.suppress(StatusError):
                await self.client.request("PATCH", path + "/status", {"status": {"conditions": [cond]}}, None,
                                          "application/strategic-merge-patch+json")
            await self.client.request("DELETE", path, {"apiVersion": "v1", "kind": "DeleteOptions",
                                                       "preconditions": {"uid": victim.uid}})
        self.writer.submit(evict)
        self.writer.event(victim.obj, "Normal", "Preempted",
                          f"Preempted by pod {pm.get('uid')} on node {node_name}", "Preempting")
        log.info("preempting %s on %s for %s/%s", victim.key, node_name, pm.get("namespace"), pm.get("name"))


async def run_scheduler(client: Client, stop: asyncio.Event, config: SchedulerConfig | None = None) -> Scheduler:
    """Run a scheduler until `stop` is set; returns it (for its counters)."""
    s = Scheduler(client, config)
    t0 = time.monotonic()
    await s.run(stop)
    log.info("scheduler stopped after %.0fs: %d pods scheduled", time.monotonic() - t0, s.scheduled)
    return s
