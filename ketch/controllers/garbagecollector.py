"""Garbage collector: deletes dependents whose owners are gone, and runs the foreground/orphan
finalizers the apiserver puts on owners deleted with those propagation policies.

It watches every resource that can carry ownerReferences and keeps an owner-uid index on each
cache. Owners missing from the caches are confirmed with a live GET before anything is deleted.
"""

from __future__ import annotations

import asyncio

from ..api.errors import StatusError
from ..api.registry import ResourceInfo
from ..client.informer import Informer, index_by_owner_uid, object_key
from .framework import Context, Controller

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_SKIP = {"events", "leases", "endpointslices", "endpoints"}


def _gc_resources(ctx: Context) -> list[ResourceInfo]:
    out = []
    for ri in ctx.client.registry.resources:
        if ri.extra.get("storage") or ri.plural in _SKIP or "watch" not in ri.verbs:
            continue
        out.append(ri)
    return out


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, ctx: Context, workers: int | None = None):
        super().__init__(ctx, workers)
        self.informers: dict[str, Informer] = {}   # "<plural>.<group>" -> informer
        self.by_kind: dict[tuple[str, str], tuple[str, ResourceInfo]] = {}
        for ri in _gc_resources(ctx):
            if ri.plural == "pods":
                inf = ctx.pods()
            elif ri.plural == "replicasets":
                inf = ctx.replicasets()
            else:
                inf = ctx.factory.informer(ri.plural, ri.group, ri.version)
                if "owner" not in inf.indexers:
                    inf.add_indexer("owner", index_by_owner_uid)
            rkey = f"{ri.plural}.{ri.group}"
            self.informers[rkey] = inf
            self.by_kind[(ri.group_version, ri.kind)] = (rkey, ri)
            inf.add_handlers(self._make_add(rkey), self._make_update(rkey), self._make_delete(rkey))

    # -- keys: "<plural>.<group>|<namespace>/<name>" --------------------------------------------
    @staticmethod
    def _key(rkey: str, obj: dict) -> str:
        return f"{rkey}|{object_key(obj)}"

    def _make_add(self, rkey: str):
        def on_add(obj: dict) -> None:
            meta = obj.get("metadata") or {}
            if meta.get("ownerReferences") or self._has_gc_finalizer(obj):
                self.enqueue(self._key(rkey, obj))
        return on_add

    def _make_update(self, rkey: str):
        def on_update(old: dict, new: dict) -> None:
            om, nm = old.get("metadata") or {}, new.get("metadata") or {}
            if (om.get("ownerReferences") != nm.get("ownerReferences") or self._has_gc_finalizer(new)
                    or om.get("deletionTimestamp") != nm.get("deletionTimestamp")):
                self.enqueue(self._key(rkey, new))
            if nm.get("deletionTimestamp") and self._has_gc_finalizer(new):
                self._enqueue_dependents(nm.get("uid"))
            # A dependent disappearing or changing may unblock its foreground-deleting owner.
            if om.get("deletionTimestamp") != nm.get("deletionTimestamp"):
                self._enqueue_owners(new)
        return on_update

    def _make_delete(self, rkey: str):
        def on_delete(obj: dict) -> None:
            self._enqueue_dependents((obj.get("metadata") or {}).get("uid"))
            self._enqueue_owners(obj)
        return on_delete

    @staticmethod
    def _has_gc_finalizer(obj: dict) -> bool:
        f = (obj.get("metadata") or {}).get("finalizers") or ()
        return FOREGROUND in f or ORPHAN in f

    def _dependents(self, uid: str | None) -> list[tuple[str, dict]]:
        if not uid:
            return []
        out = []
        for rkey, inf in self.informers.items():
            for o in inf.by_index("owner", uid):
                out.append((rkey, o))
        return out

    def _enqueue_dependents(self, uid: str | None) -> None:
        for rkey, o in self._dependents(uid):
            self.enqueue(self._key(rkey, o))

    def _enqueue_owners(self, obj: dict) -> None:
        ns = (obj.get("metadata") or {}).get("namespace")
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
            hit = self.by_kind.get((ref.get("apiVersion"), ref.get("kind")))
            if hit is None:
                continue
            rkey, ri = hit
            owner = self.informers[rkey].get_by_name(ns if ri.namespaced else None, ref.get("name"))
            if owner is not None and self._has_gc_finalizer(owner):
                self.enqueue(self._key(rkey, owner))

    # -- owner resolution --------------------------------------------------------------------
    async def _owner_state(self, ns: str | None, ref: dict) -> str:
        """'absent', 'deleting' (foreground, waiting for dependents) or 'present'."""
        hit = self.by_kind.get((ref.get("apiVersion"), ref.get("kind")))
        if hit is None:
            ri = self.client.registry.by_kind(ref.get("apiVersion") or "", ref.get("kind") or "")
            if ri is None:
                return "present"   # an unknown kind: never delete on a guess
            owner = None
        else:
            rkey, ri = hit
            owner = self.informers[rkey].get_by_name(ns if ri.namespaced else None, ref.get("name"))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            try:
                owner = await self.client.get(ri, ns if ri.namespaced else None, ref.get("name"))
            except StatusError as e:
                if e.code == 404:
                    return "absent"
                raise
            if owner["metadata"].get("uid") != ref.get("uid"):
                return "absent"
        meta = owner["metadata"]
        if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or ()):
            return "deleting"
        return "present"

    # -- reconcile ---------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        rkey, _, okey = key.partition("|")
        inf = self.informers.get(rkey)
        if inf is None:
            return None
        obj = inf.get(okey)
        if obj is None:
            return None
        meta = obj["metadata"]
        ri = inf.ri
        fins = meta.get("finalizers") or ()
        if meta.get("deletionTimestamp"):
            if ORPHAN in fins:
                await self._orphan_dependents(rkey, obj)
                return None
            if FOREGROUND in fins:
                return await self._foreground(rkey, obj)
        refs = meta.get("ownerReferences") or ()
        if not refs:
            return None
        ns = meta.get("namespace")
        states = await asyncio.gather(*(self._owner_state(ns, r) for r in refs))
        solid = [r for r, s in zip(refs, states, strict=True) if s == "present"]
        dangling = [r for r, s in zip(refs, states, strict=True) if s == "absent"]
        waiting = [r for r, s in zip(refs, states, strict=True) if s == "deleting"]
        if solid:
            if dangling or waiting:
                gone = {r["uid"] for r in dangling + waiting}
                keep = [r for r in refs if r.get("uid") not in gone]
                await self._patch_refs(ri, obj, keep)
            return None
        if meta.get("deletionTimestamp"):
            return None
        policy = "Background"
        if waiting and self._dependents(meta.get("uid")):
            policy = "Foreground"
        try:
            await self.client.delete(ri, ns, meta["name"], {"propagationPolicy": policy,
                                                            "preconditions": {"uid": meta["uid"]}})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        return None

    async def _patch_refs(self, ri: ResourceInfo, obj: dict, refs: list[dict]) -> None:
        meta = obj["metadata"]
        try:
            await self.client.patch(ri, meta.get("namespace"), meta["name"], {"metadata": {
                "ownerReferences": refs or None, "resourceVersion": meta.get("resourceVersion")}})
        except StatusError as e:
            if e.code != 404:
                raise

    async def _remove_finalizer(self, ri: ResourceInfo, obj: dict, fin: str) -> None:
        meta = obj["metadata"]
        fins = [f for f in meta.get("finalizers") or () if f != fin]
        try:
            await self.client.patch(ri, meta.get("namespace"), meta["name"], {"metadata": {
                "finalizers": fins or None, "resourceVersion": meta.get("resourceVersion")}})
        except StatusError as e:
            if e.code != 404:
                raise

    async def _orphan_dependents(self, rkey: str, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for dkey, dep in self._dependents(uid):
            keep = [r for r in dep["metadata"].get("ownerReferences") or () if r.get("uid") != uid]
            await self._patch_refs(self.informers[dkey].ri, dep, keep)
        await self._remove_finalizer(self.informers[rkey].ri, owner, ORPHAN)

    async def _foreground(self, rkey: str, owner: dict) -> float | None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dkey, dep in self._dependents(uid):
            ref = next((r for r in dep["metadata"].get("ownerReferences") or () if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dep["metadata"].get("deletionTimestamp"):
                self.enqueue(self._key(dkey, dep))
            elif FOREGROUND in (dep["metadata"].get("finalizers") or ()):
                self.enqueue(self._key(dkey, dep))
        if blocking:
            return 2.0   # dependents' deletions will enqueue us; this is a safety net
        await self._remove_finalizer(self.informers[rkey].ri, owner, FOREGROUND)
        return None
