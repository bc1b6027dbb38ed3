"""ReplicaSet controller: keep spec.replicas active pods matching the selector.

Adopts matching orphans, releases owned pods whose labels stopped matching, creates in
slow-start batches, deletes the least valuable pods first, and waits (expectations) until its
own creates and deletes show up in the pod cache before acting again.
"""

from __future__ import annotations

import asyncio
import copy
import time

from ..api.errors import StatusError
from ..api.meta import controller_ref, now_rfc3339, parse_time
from ..api.selectors import label_selector_from_spec
from ..client.informer import object_key
from .framework import (
    Context,
    Controller,
    Expectations,
    pod_active,
    pod_available_in,
    pod_ready,
    set_condition,
    split_key,
)

BURST_REPLICAS = 500
SLOW_START_INITIAL = 1
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def owner_reference(owner: dict, block: bool = True) -> dict:
    """The controller ownerReference pointing at `owner`."""
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": block}


def deletion_rank(pod: dict) -> tuple:
    """Sort key: least valuable pod first (unscheduled, pending, not ready, restarts, newest)."""
    st = pod.get("status") or {}
    restarts = sum(int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or ())
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0
    return (bool((pod.get("spec") or {}).get("nodeName")), _PHASE_RANK.get(st.get("phase") or "Pending", 0),
            pod_ready(pod), -restarts, -created)


async def claim(client, ri, owner: dict, selector, candidates: list[dict], owned_kind: str) -> list[dict]:
    """Owned objects matching the selector; adopt matching orphans, release non-matching ones."""
    uid = owner["metadata"]["uid"]
    deleting = bool(owner["metadata"].get("deletionTimestamp"))
    out: list[dict] = []
    for obj in candidates:
        meta = obj["metadata"]
        ref = controller_ref(obj)
        matches = selector.matches(meta.get("labels"))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches or deleting:
                out.append(obj)
                continue
            refs = [r for r in meta.get("ownerReferences") or () if r.get("uid") != uid]
            try:
                await client.patch(ri, meta.get("namespace"), meta["name"], {"metadata": {
                    "ownerReferences": refs or None, "resourceVersion": meta.get("resourceVersion")}})
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
            continue
        if not matches or deleting or meta.get("deletionTimestamp"):
            continue
        refs = list(meta.get("ownerReferences") or ()) + [owner_reference(owner)]
        try:
            obj = await client.patch(ri, meta.get("namespace"), meta["name"], {"metadata": {
                "ownerReferences": refs, "resourceVersion": meta.get("resourceVersion")}})
        except StatusError as e:
            if e.code in (404, 409):
                continue
            raise
        out.append(obj)
    return out


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, ctx: Context, workers: int | None = None):
        super().__init__(ctx, workers)
        self.rs_ri = self.client.resource("replicasets", "apps")
        self.pod_ri = self.client.resource("pods")
        self.rss = ctx.replicasets()
        self.pods = ctx.pods()
        self.expectations = Expectations()
        self.rss.add_handlers(lambda o: self.enqueue(object_key(o)), self._rs_updated,
                              lambda o: self.enqueue(object_key(o)))
        self.pods.add_handlers(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- event handlers ----------------------------------------------------------------------
    def _rs_updated(self, old: dict, new: dict) -> None:
        self.enqueue(object_key(new))

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self.rss.get_by_name(pod["metadata"].get("namespace"), ref.get("name"))
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(rs)

    def _enqueue_matching(self, pod: dict) -> None:
        labels = pod["metadata"].get("labels") or {}
        for rs in self.rss.by_index("namespace", pod["metadata"].get("namespace") or ""):
            if label_selector_from_spec((rs.get("spec") or {}).get("selector")).matches(labels):
                self.enqueue(object_key(rs))

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
        key = self._owner_key(new)
        old_key = self._owner_key(old)
        if old_key is not None and old_key != key:
            self.enqueue(old_key)
        if key is not None:
            self.enqueue(key)
            rs = self.rss.get(key)
            mrs = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if mrs and pod_ready(new) and not pod_ready(old):
                self.queue.add_after(key, mrs + 0.5)
        elif controller_ref(new) is None:
            self._enqueue_matching(new)
        if old["metadata"].get("labels") != new["metadata"].get("labels") and key is not None:
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid") or "")
            self.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        rs = self.rss.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        ns, _ = split_key(key)
        spec = rs.get("spec") or {}
        selector = label_selector_from_spec(spec.get("selector"))
        uid = rs["metadata"]["uid"]
        candidates = {object_key(p): p for p in self.pods.by_index("owner", uid)}
        for p in self.pods.by_index("orphan", ns or ""):
            candidates.setdefault(object_key(p), p)
        pods = await claim(self.client, self.pod_ri, rs, selector,
                           [p for p in candidates.values() if pod_active(p) or controller_ref(p)], "Pod")
        active = [p for p in pods if pod_active(p)]
        failure: str | None = None
        if self.expectations.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            failure = await self._manage(key, rs, active)
        return await self._update_status(rs, active, failure)

    async def _manage(self, key: str, rs: dict, active: list[dict]) -> str | None:
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(active) - want
        if diff < 0:
            n = min(-diff, BURST_REPLICAS)
            self.expectations.expect(key, adds=n)
            created, err = await self._create_pods(rs, n, key)
            if created:
                self.recorder.event(rs, "Normal", "SuccessfulCreate",
                                    f"Created {created} pod(s)" if created > 1 else "Created pod")
            if err is not None:
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {err}")
                return str(err)
        elif diff > 0:
            victims = sorted(active, key=deletion_rank)[:min(diff, BURST_REPLICAS)]
            self.expectations.expect(key, dels={p["metadata"]["uid"] for p in victims})
            results = await asyncio.gather(*(self._delete_pod(key, p) for p in victims), return_exceptions=True)
            errs = [r for r in results if isinstance(r, BaseException)]
            deleted = len(victims) - len(errs)
            if deleted:
                self.recorder.event(rs, "Normal", "SuccessfulDelete",
                                    f"Deleted {deleted} pod(s)" if deleted > 1 else
                                    f"Deleted pod: {victims[0]['metadata']['name']}")
            if errs:
                raise errs[0]
        return None

    async def _delete_pod(self, key: str, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(self.pod_ri, meta["namespace"], meta["name"],
                                     {"preconditions": {"uid": meta["uid"]}})
        except StatusError as e:
            self.expectations.deletion_observed(key, meta["uid"])
            if e.code not in (404, 409):
                raise

    def _pod_from_template(self, rs: dict) -> dict:
        tmpl = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        meta = tmpl.get("metadata") or {}
        pod_meta = {"generateName": rs["metadata"]["name"] + "-", "namespace": rs["metadata"]["namespace"],
                    "labels": meta.get("labels") or {}, "ownerReferences": [owner_reference(rs)]}
        if meta.get("annotations"):
            pod_meta["annotations"] = meta["annotations"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": tmpl.get("spec") or {}}

    async def _create_pods(self, rs: dict, n: int, key: str) -> tuple[int, Exception | None]:
        """Slow start: batches of 1, 2, 4, ... stop at the first failing batch."""
        ns = rs["metadata"]["namespace"]
        pod = self._pod_from_template(rs)
        done, batch, remaining = 0, SLOW_START_INITIAL, n
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(*(self.client.create(self.pod_ri, ns, pod) for _ in range(size)),
                                           return_exceptions=True)
            errs = [r for r in results if isinstance(r, BaseException)]
            done += size - len(errs)
            remaining -= size
            if errs:
                # Those never created (and those not tried) will never be observed.
                self.expectations.creation_observed(key, len(errs) + remaining)
                err = errs[0]
                if isinstance(err, StatusError) and err.code == 403 and "being terminated" in err.message:
                    return done, None   # the namespace is going away: nothing to report
                return done, err if isinstance(err, Exception) else Exception(str(err))
            batch *= 2
        return done, None

    async def _update_status(self, rs: dict, active: list[dict], failure: str | None) -> float | None:
        spec = rs.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        now = time.time()
        ready = available = labeled = 0
        recheck: float | None = None
        for p in active:
            labels = p["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in tmpl_labels.items()):
                labeled += 1
            left = pod_available_in(p, mrs, now)
            if left is None:
                continue
            ready += 1
            if left <= 0:
                available += 1
            else:
                recheck = left if recheck is None else min(recheck, left)
        old = rs.get("status") or {}
        conditions = [c for c in old.get("conditions") or () if c.get("type") != "ReplicaFailure"]
        if failure is not None:
            conditions = set_condition(old.get("conditions") or [], "ReplicaFailure", "True", "FailedCreate",
                                       failure, now_rfc3339())
        elif any(c.get("type") == "ReplicaFailure" for c in old.get("conditions") or ()) and \
                len(active) != int(spec.get("replicas", 1) or 0):
            conditions = list(old.get("conditions") or [])   # keep the failure until we converge
        status: dict = {"replicas": len(active), "fullyLabeledReplicas": labeled, "readyReplicas": ready,
                        "availableReplicas": available,
                        "observedGeneration": rs["metadata"].get("generation", 1)}
        if conditions:
            status["conditions"] = conditions
        if any(old.get(k, 0) != v for k, v in status.items() if k != "conditions") or \
                (old.get("conditions") or []) != conditions:
            new = dict(rs)
            new["status"] = status
            await self.client.update(self.rs_ri, new, "status")
        return None if recheck is None else recheck + 0.1
