"""Deployment controller: one ReplicaSet per pod template, rolled out by RollingUpdate or Recreate.

Follows the Kubernetes deployment controller: the ReplicaSet whose template equals the
deployment's (ignoring `pod-template-hash`) is the new one, the others are old; revisions live
in `deployment.kubernetes.io/revision` annotations so that `kubectl rollout history|undo` work.
"""

from __future__ import annotations

import copy
import time

import orjson

from ..api.errors import StatusError
from ..api.meta import controller_ref, now_rfc3339, parse_time
from ..api.selectors import label_selector_from_spec
from ..client.informer import object_key
from .framework import Context, Controller, int_or_percent, set_condition, split_key
from .replicaset import claim, owner_reference

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations that are not copied to its ReplicaSets.
_SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                     DESIRED, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict, collision_count: int | None = None) -> str:
    """FNV-32a of the template, encoded like Kubernetes' rand.SafeEncodeString."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in str(h))


def _strip_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: dict, b: dict) -> bool:
    return _strip_hash(a) == _strip_hash(b)


def revision(obj: dict) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def replicas(obj: dict) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1) or 0)


def _status(obj: dict, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def _created(obj: dict) -> tuple:
    return (parse_time(obj["metadata"].get("creationTimestamp")) or 0.0, obj["metadata"]["name"])


def max_surge(d: dict) -> int:
    strat = (d.get("spec") or {}).get("strategy") or {}
    if strat.get("type") == "Recreate":
        return 0
    ru = strat.get("rollingUpdate") or {}
    surge = int_or_percent(ru.get("maxSurge", "25%"), replicas(d), True)
    unavail = int_or_percent(ru.get("maxUnavailable", "25%"), replicas(d), False)
    return 1 if surge == 0 and unavail == 0 else surge


def max_unavailable(d: dict) -> int:
    strat = (d.get("spec") or {}).get("strategy") or {}
    if strat.get("type") == "Recreate" or replicas(d) == 0:
        return 0
    ru = strat.get("rollingUpdate") or {}
    surge = int_or_percent(ru.get("maxSurge", "25%"), replicas(d), True)
    unavail = int_or_percent(ru.get("maxUnavailable", "25%"), replicas(d), False)
    if surge == 0 and unavail == 0:
        unavail = 0
    return min(unavail, replicas(d))


def _condition(d: dict, ctype: str) -> dict | None:
    return next((c for c in (d.get("status") or {}).get("conditions") or () if c.get("type") == ctype), None)


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, ctx: Context, workers: int | None = None):
        super().__init__(ctx, workers)
        self.d_ri = self.client.resource("deployments", "apps")
        self.rs_ri = self.client.resource("replicasets", "apps")
        self.deps = ctx.factory.informer("deployments", "apps")
        self.rss = ctx.replicasets()
        self.pods = ctx.pods()
        self.deps.add_handlers(lambda o: self.enqueue(object_key(o)), lambda o, n: self.enqueue(object_key(n)),
                               lambda o: self.enqueue(object_key(o)))
        self.rss.add_handlers(self._rs_changed, lambda o, n: (self._rs_changed(o), self._rs_changed(n)),
                              self._rs_changed)
        self.pods.add_handlers(on_delete=self._pod_deleted)

    def _rs_changed(self, rs: dict) -> None:
        ref = controller_ref(rs)
        ns = rs["metadata"].get("namespace")
        if ref is not None:
            if ref.get("kind") == "Deployment":
                self.enqueue(f"{ns}/{ref.get('name')}")
            return
        labels = rs["metadata"].get("labels") or {}
        for d in self.deps.by_index("namespace", ns or ""):
            if label_selector_from_spec((d.get("spec") or {}).get("selector")).matches(labels):
                self.enqueue(object_key(d))

    def _pod_deleted(self, pod: dict) -> None:
        """Recreate waits for old pods to be gone: a pod deletion may unblock it."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get_by_name(pod["metadata"].get("namespace"), ref.get("name"))
        if rs is not None:
            self._rs_changed(rs)

    # -- reconcile ---------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        d = self.deps.get(key)
        if d is None:
            return None
        d = copy.deepcopy(d)
        ns, _ = split_key(key)
        spec = d.get("spec") or {}
        selector = label_selector_from_spec(spec.get("selector"))
        if selector.empty() or selector.matches_nothing():
            self.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting all pods. "
                                "A non-empty selector is required.")
            return None
        uid = d["metadata"]["uid"]
        cands = {object_key(r): r for r in self.rss.by_index("owner", uid)}
        for r in self.rss.by_index("orphan", ns or ""):
            cands.setdefault(object_key(r), r)
        rs_list = await claim(self.client, self.rs_ri, d, selector, list(cands.values()), "ReplicaSet")
        rs_list = [copy.deepcopy(r) for r in rs_list]
        if d["metadata"].get("deletionTimestamp"):
            return await self._sync_status(d, rs_list)
        if spec.get("paused"):
            return await self._sync(d, rs_list)
        if self._is_scaling_event(d, rs_list):
            return await self._sync(d, rs_list)
        if ((spec.get("strategy") or {}).get("type")) == "Recreate":
            return await self._rollout_recreate(d, rs_list)
        return await self._rollout_rolling(d, rs_list)

    # -- replica sets and revisions ------------------------------------------------------------
    def _split(self, d: dict, rs_list: list[dict]) -> tuple[dict | None, list[dict]]:
        tmpl = (d.get("spec") or {}).get("template") or {}
        new = None
        for rs in sorted(rs_list, key=_created):
            if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, tmpl):
                new = rs
                break
        return new, [r for r in rs_list if r is not new]

    def _annotations_for(self, d: dict, rs: dict, new_revision: int, desired_and_max: bool) -> bool:
        """Bring the RS's annotations in line with the deployment's; True if changed."""
        meta = rs["metadata"]
        ann = dict(meta.get("annotations") or {})
        before = dict(ann)
        for k, v in ((d["metadata"].get("annotations") or {}).items()):
            if k not in _SKIP_ANNOTATIONS:
                ann[k] = v
        old_rev = int(ann.get(REVISION) or 0)
        if old_rev < new_revision:
            if old_rev:
                hist = [h for h in (ann.get(REVISION_HISTORY) or "").split(",") if h]
                ann[REVISION_HISTORY] = ",".join(hist + [str(old_rev)])
            ann[REVISION] = str(new_revision)
        if desired_and_max:
            ann[DESIRED] = str(replicas(d))
            ann[MAX_REPLICAS] = str(replicas(d) + max_surge(d))
        meta["annotations"] = ann
        return ann != before

    async def _get_all(self, d: dict, rs_list: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        new, olds = self._split(d, rs_list)
        max_old = max((revision(r) for r in olds), default=0)
        new_revision = max_old + 1
        spec = d.get("spec") or {}
        if new is not None:
            rev_before = revision(new)
            changed = self._annotations_for(d, new, new_revision, False)
            mrs = spec.get("minReadySeconds")
            if (new.get("spec") or {}).get("minReadySeconds") != mrs:
                new["spec"]["minReadySeconds"] = mrs
                changed = True
            if changed:
                new = await self.client.update(self.rs_ri, new)
            if revision(new) != rev_before or self._d_revision(d) != str(revision(new)):
                await self._set_d_revision(d, str(revision(new)))
            return new, olds
        if not create:
            return None, olds
        cc = (d.get("status") or {}).get("collisionCount")
        tmpl = copy.deepcopy(spec.get("template") or {})
        h = template_hash(tmpl, cc)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        sel = copy.deepcopy(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})[HASH_LABEL] = h
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": d["metadata"]["namespace"],
                           "labels": dict(tmpl["metadata"]["labels"]), "ownerReferences": [owner_reference(d)]},
              "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds") or 0,
                       "selector": sel, "template": tmpl}}
        self._annotations_for(d, rs, new_revision, True)
        rs["spec"]["replicas"] = self._new_rs_replicas(d, olds, None)
        try:
            created = await self.client.create(self.rs_ri, d["metadata"]["namespace"], rs)
        except StatusError as e:
            if e.code != 409:
                raise
            existing = await self.client.get(self.rs_ri, d["metadata"]["namespace"], rs["metadata"]["name"])
            ref = controller_ref(existing)
            if ref and ref.get("uid") == d["metadata"]["uid"] and equal_ignore_hash(
                    (existing.get("spec") or {}).get("template") or {}, spec.get("template") or {}):
                return existing, olds
            st = dict(d.get("status") or {})
            st["collisionCount"] = int(cc or 0) + 1
            d["status"] = st
            await self.client.update(self.d_ri, d, "status")
            raise
        if replicas(created):
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {created['metadata']['name']} from 0 to {replicas(created)}")
        await self._set_d_revision(d, str(new_revision))
        conds = set_condition((d.get("status") or {}).get("conditions") or [], "Progressing", "True",
                              "NewReplicaSetCreated", f'Created new replica set "{created["metadata"]["name"]}"',
                              update_time=True)
        d.setdefault("status", {})["conditions"] = conds
        return created, olds

    @staticmethod
    def _d_revision(d: dict) -> str | None:
        return (d["metadata"].get("annotations") or {}).get(REVISION)

    async def _set_d_revision(self, d: dict, rev: str) -> None:
        if self._d_revision(d) == rev:
            return
        upd = await self.client.patch(self.d_ri, d["metadata"]["namespace"], d["metadata"]["name"], {
            "metadata": {"annotations": {REVISION: rev}, "resourceVersion": d["metadata"]["resourceVersion"]}})
        d["metadata"] = upd["metadata"]

    # -- scaling -----------------------------------------------------------------------------
    async def _scale_rs(self, d: dict, rs: dict, n: int) -> dict:
        old = replicas(rs)
        want_ann = {DESIRED: str(replicas(d)), MAX_REPLICAS: str(replicas(d) + max_surge(d))}
        ann = rs["metadata"].get("annotations") or {}
        if old == n and all(ann.get(k) == v for k, v in want_ann.items()):
            return rs
        rs["spec"]["replicas"] = n
        rs["metadata"]["annotations"] = {**ann, **want_ann}
        upd = await self.client.update(self.rs_ri, rs)
        rs.update(upd)
        if old != n:
            verb = "up" if n > old else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {n}")
        return rs

    def _new_rs_replicas(self, d: dict, olds: list[dict], new: dict | None) -> int:
        strat = ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"
        want = replicas(d)
        if strat == "Recreate":
            return want
        cur_new = replicas(new) if new else 0
        current = sum(replicas(r) for r in olds) + cur_new
        max_total = want + max_surge(d)
        if current >= max_total:
            return cur_new
        return cur_new + min(max_total - current, max(want - cur_new, 0))

    def _is_scaling_event(self, d: dict, rs_list: list[dict]) -> bool:
        new, olds = self._split(d, rs_list)
        for rs in ([new] if new else []) + [r for r in olds if replicas(r) > 0]:
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if desired is not None and desired != str(replicas(d)):
                return True
        return False

    async def _scale(self, d: dict, new: dict | None, olds: list[dict]) -> None:
        """Scale the ReplicaSets to the deployment's replicas; proportionally when several are active."""
        active = [r for r in ([new] if new else []) + olds if replicas(r) > 0]
        want = replicas(d)
        if len(active) <= 1:
            target = active[0] if active else (new or (max(olds, key=_created) if olds else None))
            if target is not None and replicas(target) != want:
                await self._scale_rs(d, target, want)
            return
        if new is not None and replicas(new) == want and _status(new, "availableReplicas") == want:
            for r in olds:
                if replicas(r):
                    await self._scale_rs(d, r, 0)
            return
        if ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            return
        allowed = want + max_surge(d) if want > 0 else 0
        total = sum(replicas(r) for r in active)
        to_add = allowed - total
        if to_add == 0:
            return
        if to_add > 0:
            order = sorted(active, key=lambda r: (-replicas(r), -_created(r)[0]))
        else:
            order = sorted(active, key=lambda r: (-replicas(r), _created(r)[0]))
        d_status_replicas = int((d.get("status") or {}).get("replicas") or 0)
        added = 0
        sizes: dict[str, int] = {}
        for r in order:
            if want == 0:
                frac = -replicas(r)
            else:
                ann = (r["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
                annotated = int(ann) if ann else d_status_replicas
                if annotated <= 0:
                    frac = 0
                else:
                    frac = round(replicas(r) * allowed / annotated) - replicas(r)
            left = to_add - added
            prop = min(frac, left) if to_add > 0 else max(frac, left)
            sizes[r["metadata"]["name"]] = replicas(r) + prop
            added += prop
        if added != to_add and order:
            first = order[0]["metadata"]["name"]
            sizes[first] = max(sizes[first] + to_add - added, 0)
        for r in order:
            await self._scale_rs(d, r, sizes[r["metadata"]["name"]])

    async def _sync(self, d: dict, rs_list: list[dict]) -> float | None:
        """Scaling (also while paused): no new template is rolled out here."""
        new, olds = await self._get_all(d, rs_list, False)
        await self._scale(d, new, olds)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, olds)
        return await self._sync_status(d, ([new] if new else []) + olds, new)

    # -- strategies --------------------------------------------------------------------------
    async def _rollout_rolling(self, d: dict, rs_list: list[dict]) -> float | None:
        new, olds = await self._get_all(d, rs_list, True)
        assert new is not None
        all_rs = olds + [new]
        want = replicas(d)
        # scale up the new ReplicaSet within maxSurge
        if replicas(new) != want:
            n = want if replicas(new) > want else self._new_rs_replicas(d, olds, new)
            if n != replicas(new):
                await self._scale_rs(d, new, n)
                return await self._sync_status(d, all_rs, new)
        # scale down the old ones within maxUnavailable
        if await self._reconcile_old(d, olds, new):
            return await self._sync_status(d, all_rs, new)
        if self._complete(d, new, all_rs):
            await self._cleanup(d, olds)
        return await self._sync_status(d, all_rs, new)

    async def _reconcile_old(self, d: dict, olds: list[dict], new: dict) -> bool:
        if sum(replicas(r) for r in olds) == 0:
            return False
        want = replicas(d)
        min_available = want - max_unavailable(d)
        all_pods = sum(replicas(r) for r in olds) + replicas(new)
        new_unavailable = replicas(new) - min(_status(new, "availableReplicas"), replicas(new))
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        scaled = 0
        # First the old pods that are not available anyway (they do not count towards availability).
        for r in sorted(olds, key=_created):
            if scaled >= max_scaled_down:
                break
            unhealthy = replicas(r) - min(_status(r, "availableReplicas"), replicas(r))
            if replicas(r) == 0 or unhealthy <= 0:
                continue
            n = min(unhealthy, max_scaled_down - scaled)
            await self._scale_rs(d, r, replicas(r) - n)
            scaled += n
        # Then available old pods, keeping minAvailable. A ReplicaSet cannot count more available
        # pods than its spec.replicas: the extra ones are being deleted.
        available = sum(min(_status(r, "availableReplicas"), replicas(r)) for r in olds + [new])
        if available > min_available:
            budget = min(available - min_available, max_scaled_down - scaled)
            for r in sorted(olds, key=_created):
                if budget <= 0:
                    break
                if replicas(r) == 0:
                    continue
                n = min(replicas(r), budget)
                await self._scale_rs(d, r, replicas(r) - n)
                scaled += n
                budget -= n
        return scaled > 0

    async def _rollout_recreate(self, d: dict, rs_list: list[dict]) -> float | None:
        new, olds = await self._get_all(d, rs_list, False)
        all_rs = olds + ([new] if new else [])
        scaled = False
        for r in olds:
            if replicas(r):
                await self._scale_rs(d, r, 0)
                scaled = True
        if scaled:
            return await self._sync_status(d, all_rs, new)
        for r in olds:
            if any(((p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
                   for p in self.pods.by_index("owner", r["metadata"]["uid"])):
                return await self._sync_status(d, all_rs, new)
        if new is None:
            new, olds = await self._get_all(d, rs_list, True)
            all_rs = olds + [new]
        if replicas(new) != replicas(d):
            await self._scale_rs(d, new, replicas(d))
        if self._complete(d, new, all_rs):
            await self._cleanup(d, olds)
        return await self._sync_status(d, all_rs, new)

    async def _cleanup(self, d: dict, olds: list[dict]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        dead = [r for r in olds if replicas(r) == 0 and _status(r, "replicas") == 0
                and not r["metadata"].get("deletionTimestamp")
                and int((r.get("status") or {}).get("observedGeneration") or 0) >= int(r["metadata"].get("generation") or 0)]
        extra = len(dead) - int(limit)
        if extra <= 0:
            return
        for r in sorted(dead, key=lambda r: (revision(r), _created(r)))[:extra]:
            try:
                await self.client.delete(self.rs_ri, r["metadata"]["namespace"], r["metadata"]["name"],
                                         {"preconditions": {"uid": r["metadata"]["uid"]}})
            except StatusError as e:
                if e.code not in (404, 409):
                    raise

    # -- status ------------------------------------------------------------------------------
    def _complete(self, d: dict, new: dict | None, all_rs: list[dict]) -> bool:
        want = replicas(d)
        return (new is not None and _status(new, "replicas") == want
                and sum(_status(r, "replicas") for r in all_rs) == want
                and sum(_status(r, "availableReplicas") for r in all_rs) == want)

    async def _sync_status(self, d: dict, all_rs: list[dict], new: dict | None = None) -> float | None:
        if new is None and all_rs:
            new, _ = self._split(d, all_rs)
        want = replicas(d)
        spec = d.get("spec") or {}
        old = d.get("status") or {}
        available = sum(_status(r, "availableReplicas") for r in all_rs)
        status: dict = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(_status(r, "replicas") for r in all_rs),
            "updatedReplicas": _status(new, "replicas") if new else 0,
            "readyReplicas": sum(_status(r, "readyReplicas") for r in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(want - available, 0),
        }
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        now = now_rfc3339()
        conds = list(old.get("conditions") or [])
        if available >= want - max_unavailable(d):
            conds = set_condition(conds, "Available", "True", "MinimumReplicasAvailable",
                                  "Deployment has minimum availability.", now, update_time=False)
        else:
            conds = set_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.", now)
        for c in conds:
            c.setdefault("lastUpdateTime", c.get("lastTransitionTime"))
        requeue: float | None = None
        deadline = spec.get("progressDeadlineSeconds")
        prog = _condition(d, "Progressing")
        rs_name = new["metadata"]["name"] if new else ""
        if spec.get("paused"):
            if not prog or prog.get("reason") != "DeploymentPaused":
                conds = set_condition(conds, "Progressing", "Unknown", "DeploymentPaused",
                                      "Deployment is paused", now, update_time=True)
        elif deadline is not None:
            complete = (status["updatedReplicas"] == want and status["replicas"] == want
                        and available == want and new is not None)
            progressed = (status["updatedReplicas"] > int(old.get("updatedReplicas") or 0)
                          or status["replicas"] < int(old.get("replicas") or 0)
                          or status["readyReplicas"] > int(old.get("readyReplicas") or 0)
                          or available > int(old.get("availableReplicas") or 0))
            if prog and prog.get("reason") == "DeploymentPaused":
                conds = set_condition(conds, "Progressing", "Unknown", "DeploymentResumed",
                                      "Deployment is resumed", now, update_time=True)
                prog = _condition({"status": {"conditions": conds}}, "Progressing")
            if complete:
                if not prog or prog.get("reason") != "NewReplicaSetAvailable":
                    conds = set_condition(conds, "Progressing", "True", "NewReplicaSetAvailable",
                                          f'ReplicaSet "{rs_name}" has successfully progressed.', now, update_time=True)
            elif progressed or prog is None or prog.get("reason") == "NewReplicaSetAvailable" and \
                    d["metadata"].get("generation", 1) != old.get("observedGeneration"):
                conds = set_condition(conds, "Progressing", "True", "ReplicaSetUpdated",
                                      f'ReplicaSet "{rs_name}" is progressing.', now, update_time=True)
                requeue = float(deadline) + 0.5
            elif prog.get("reason") not in ("ProgressDeadlineExceeded", "NewReplicaSetAvailable"):
                since = parse_time(prog.get("lastUpdateTime")) or time.time()
                left = since + float(deadline) - time.time()
                if left <= 0:
                    conds = set_condition(conds, "Progressing", "False", "ProgressDeadlineExceeded",
                                          f'ReplicaSet "{rs_name}" has timed out progressing.', now, update_time=True)
                    self.recorder.event(d, "Warning", "ProgressDeadlineExceeded",
                                        f"Deployment {d['metadata']['name']} has timed out progressing.")
                else:
                    requeue = left + 0.5
        status["conditions"] = conds
        if status != old:
            d["status"] = status
            upd = await self.client.update(self.d_ri, d, "status")
            d["metadata"] = upd["metadata"]
        return requeue
