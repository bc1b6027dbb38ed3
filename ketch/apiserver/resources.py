"""Create, read, update, patch and delete with Kubernetes semantics, over the store and watch cache."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from ..api import errors, managedfields
from ..api.defaults import apply_defaults
from ..api.meta import generate_name, new_uid, now_rfc3339
from ..api.openapi import check_fields
from ..api.registry import Registry, ResourceInfo
from ..api.validation import validate
from ..store.base import KeyExistsError, KeyNotFoundError, RevisionMismatchError
from . import strategy
from .allocator import ServiceAllocator
from .cache import Entry, WatchCache, make_entry

MAX_RETRIES = 10
NAMESPACES_PREFIX = "/registry/namespaces/"
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


class WriteResult:
    """The object written (or that would be written, for dry runs) and any warnings."""

    __slots__ = ("obj", "raw", "created", "warnings", "deleted")

    def __init__(self, obj: dict, raw: bytes, created: bool = False, warnings: list[str] | None = None,
                 deleted: bool = False):
        self.obj = obj
        self.raw = raw
        self.created = created
        self.warnings = warnings or []
        self.deleted = deleted


def _result(entry_or_obj: Entry | dict, **kw: Any) -> WriteResult:
    if isinstance(entry_or_obj, Entry):
        return WriteResult(entry_or_obj.obj, entry_or_obj.raw, **kw)
    return WriteResult(entry_or_obj, orjson.dumps(entry_or_obj), **kw)


def _causes(field_errors: list) -> list[dict]:
    """Status causes: each message without its field (kubectl prints field + message)."""
    return [{"reason": fe.reason, "message": getattr(fe, "body", fe.message), "field": fe.field,
             "summary": fe.message} for fe in field_errors]


class ResourceService:
    """The verbs of every registered resource."""

    def __init__(self, store: Any, registry: Registry):
        self.store = store
        self.registry = registry
        self.cache = WatchCache(store, {self.storage_prefix(r) for r in registry.resources})
        self.allocator = ServiceAllocator(store)

    @staticmethod
    def storage_prefix(ri: ResourceInfo) -> str:
        return ri.extra.get("storage") or ri.key_prefix

    def _written(self, ri: ResourceInfo, key: str, obj: dict, rev: int) -> Entry:
        """The entry of a write that landed at `rev`: the cache's (already encoded) once it has it."""
        e = self.cache.resource(self.storage_prefix(ri)).items.get(key)
        if e is not None and e.rev == rev and e.obj is obj:
            return e
        return make_entry(key, obj, rev)

    def key(self, ri: ResourceInfo, namespace: str | None, name: str) -> str:
        p = self.storage_prefix(ri)
        return f"{p}{namespace}/{name}" if ri.namespaced else f"{p}{name}"

    async def start(self) -> None:
        await self.cache.start()
        await self.allocator.start([e.obj for e in self.cache.resource("/registry/services/").items.values()])

    async def close(self) -> None:
        await self.cache.close()

    # -- reads -------------------------------------------------------------------------------
    def current(self, ri: ResourceInfo, namespace: str | None, name: str) -> Entry | None:
        return self.cache.resource(self.storage_prefix(ri)).items.get(self.key(ri, namespace, name))

    async def get(self, ri: ResourceInfo, namespace: str | None, name: str) -> Entry:
        await self.cache.sync()
        e = self.current(ri, namespace, name)
        if e is None:
            raise errors.not_found(ri.plural, name, ri.group)
        return e

    async def list(self, ri: ResourceInfo, namespace: str | None, predicate: Any = None,
                   limit: int = 0, start_after: str = "", exact_rev: int = 0) -> tuple[list[Entry], int, str, int]:
        """Entries ordered by key; returns (entries, revision, last key if truncated, remaining).

        exact_rev lists the state at that revision, rebuilt from the cache's event window."""
        await self.cache.sync()
        rc = self.cache.resource(self.storage_prefix(ri))
        rev = self.cache.rev
        prefix = f"{rc.prefix}{namespace}/" if (ri.namespaced and namespace) else rc.prefix
        if exact_rev and exact_rev < rev:
            items = self._state_at(rc, exact_rev)
            keys = sorted(k for k in items if k.startswith(prefix))
            rev = exact_rev
        else:
            keys = rc.keys_with_prefix(prefix)
            items = rc.items
        if start_after:
            import bisect
            keys = keys[bisect.bisect_right(keys, start_after):]
        out: list[Entry] = []
        if predicate is None and not limit:
            return [items[k] for k in keys], rev, "", 0
        for i, k in enumerate(keys):
            e = items[k]
            if predicate is None or predicate(e.obj):
                out.append(e)
                if limit and len(out) >= limit:
                    rest = keys[i + 1:]
                    if not rest:
                        return out, rev, "", 0
                    remaining = len(rest) if predicate is None else sum(1 for k2 in rest if predicate(items[k2].obj))
                    if remaining == 0:
                        return out, rev, "", 0
                    return out, rev, k, remaining
        return out, rev, "", 0

    @staticmethod
    def _state_at(rc: Any, rev: int) -> dict[str, Entry]:
        """The objects as they were at `rev`: undo newer events, newest first (410 if too old)."""
        from ..store.base import CompactedError
        try:
            newer = list(rc.events_after(rev))
        except CompactedError:
            raise errors.gone("The resourceVersion for the provided list is too old.") from None
        state = dict(rc.items)
        for ev in reversed(newer):
            if ev.prev is None:
                state.pop(ev.key, None)
            else:
                state[ev.key] = ev.prev
        return state

    # -- create ------------------------------------------------------------------------------
    async def create(self, ri: ResourceInfo, namespace: str | None, obj: Any, *, dry_run: bool = False,
                     field_validation: str = "Warn", manager: str = "", applied: dict | None = None) -> WriteResult:
        obj = self._check_shape(ri, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        warnings = self._field_validation(ri, obj, field_validation)
        self._bind_namespace(ri, namespace, meta)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = generate_name(str(meta["generateName"]))
            else:
                raise errors.invalid(ri.kind, "", [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                    "message": "metadata.name: Required value: name or generateName is required"}],
                                     ri.group)
        name = meta["name"]
        # Server-owned metadata.
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        if ri.kind == "Pod":
            self._admit_priority(obj)
        self._defaults(obj)
        strategy.prepare_for_create(ri.kind, obj)
        self._validate(ri, obj, None)
        meta.pop("managedFields", None)
        if manager:
            managedfields.record(obj, None, manager, "Apply" if applied is not None else "Update", ri.definition,
                                 applied)
        if ri.namespaced:
            if self.cache.resource(NAMESPACES_PREFIX).items.get(NAMESPACES_PREFIX + (namespace or "")) is None:
                await self.cache.sync()     # created through another apiserver a moment ago?
            self._check_namespace_open(namespace or "", ri)
        key = self.key(ri, namespace, name)
        alloc = None
        if ri.kind == "Service" and self.current(ri, namespace, name) is None:
            alloc = await self.allocator.allocate(obj)
            if dry_run:
                await alloc.rollback()
        if dry_run:
            if self.current(ri, namespace, name) is not None:
                raise errors.already_exists(ri.plural, name, ri.group)
            return _result(obj, created=True, warnings=warnings)
        try:
            rev = await self.store.create(key, orjson.dumps(obj), obj)
        except BaseException as e:
            if alloc is not None:
                await alloc.rollback()
            if isinstance(e, KeyExistsError):
                raise errors.already_exists(ri.plural, name, ri.group) from None
            raise
        await self.cache.wait_for(rev)
        return _result(self._written(ri, key, obj, rev), created=True, warnings=warnings)

    # -- update / patch ----------------------------------------------------------------------
    async def update(self, ri: ResourceInfo, namespace: str | None, name: str, obj: Any, *,
                     subresource: str = "", dry_run: bool = False, field_validation: str = "Warn",
                     manager: str = "") -> WriteResult:
        obj = self._check_shape(ri, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f'the name of the object ({meta["name"]}) does not match the name on the URL ({name})')
        meta["name"] = name
        warnings = self._field_validation(ri, obj, field_validation)
        self._bind_namespace(ri, namespace, meta)
        expected = self._rv(meta.get("resourceVersion"))

        def mutate(_cur: dict, _entry: Entry) -> dict:
            return orjson.loads(orjson.dumps(obj)) if _entry is not None else obj
        res = await self._guarded_update(ri, namespace, name, mutate, expected=expected, subresource=subresource,
                                         dry_run=dry_run, manager=manager)
        res.warnings = warnings + res.warnings
        return res

    async def patch(self, ri: ResourceInfo, namespace: str | None, name: str, patch_fn: Any, *,
                    subresource: str = "", dry_run: bool = False, field_validation: str = "Warn",
                    manager: str = "", applied: dict | None = None, force: bool = False) -> WriteResult:
        """patch_fn(current_obj_copy) -> new object; re-applied on conflicts."""
        warnings: list[str] = []

        def mutate(cur: dict, _entry: Entry) -> dict:
            new = patch_fn(cur)
            new = self._check_shape(ri, new)
            warnings[:] = self._field_validation(ri, new, field_validation)
            return new
        res = await self._guarded_update(ri, namespace, name, mutate, expected=0, subresource=subresource,
                                         dry_run=dry_run, patch=True, manager=manager, applied=applied,
                                         force=force)
        res.warnings = warnings + res.warnings
        return res

    async def _guarded_update(self, ri: ResourceInfo, namespace: str | None, name: str, mutate: Any, *,
                              expected: int, subresource: str, dry_run: bool, patch: bool = False,
                              manager: str = "", applied: dict | None = None, force: bool = False) -> WriteResult:
        key = self.key(ri, namespace, name)
        for attempt in range(MAX_RETRIES):
            cur = await self._read_for_write(ri, namespace, name, attempt)
            new = mutate(cur.copy(), cur)
            meta = new.setdefault("metadata", {})
            if patch:
                # A resourceVersion in a patch is a precondition.
                want = self._rv(meta.get("resourceVersion"))
                if want and want != cur.rev:
                    raise errors.conflict(ri.plural, name, ri.group)
            elif expected and expected != cur.rev:
                raise errors.conflict(ri.plural, name, ri.group)
            new = self._merge_for_update(ri, new, cur.obj, subresource)
            if manager and subresource != "finalize":
                managedfields.record(new, cur.obj, manager, "Apply" if applied is not None else "Update",
                                     ri.definition, applied, subresource if subresource == "status" else "", force)
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                    and not self._namespace_finalizers(ri, new) and not strategy.graceful_kind(ri.kind):
                # The last finalizer is gone: the object goes away now.
                if dry_run:
                    return _result(new, deleted=True)
                try:
                    rev, _ = await self.store.delete(key, cur.rev)
                except (RevisionMismatchError, KeyNotFoundError):
                    continue
                if ri.kind == "Service":
                    await self.allocator.release(cur.obj)
                await self.cache.wait_for(rev)
                return _result(make_entry(key, new, rev), deleted=True)
            if new == cur.obj:
                return _result(cur)   # no-op: no write, same resourceVersion
            alloc = None
            if ri.kind == "Service" and subresource != "status":
                alloc = await self.allocator.allocate(new, cur.obj)
            if dry_run:
                if alloc is not None:
                    await alloc.rollback()
                return _result(new)
            # Stored without a resourceVersion (the store's revision is the version): the cache
            # splices it into these bytes instead of encoding the object again.
            new["metadata"].pop("resourceVersion", None)
            try:
                rev = await self.store.update(key, orjson.dumps(new), cur.rev, new)
            except BaseException as e:
                if alloc is not None:
                    await alloc.rollback()
                if isinstance(e, RevisionMismatchError):
                    if expected:
                        raise errors.conflict(ri.plural, name, ri.group) from None
                    continue
                if isinstance(e, KeyNotFoundError):
                    raise errors.not_found(ri.plural, name, ri.group) from None
                raise
            if alloc is not None:
                await alloc.commit()
            await self.cache.wait_for(rev)
            return _result(self._written(ri, key, new, rev))
        raise errors.conflict(ri.plural, name, ri.group, "too many concurrent writes; try again")

    def _merge_for_update(self, ri: ResourceInfo, new: dict, old: dict, subresource: str) -> dict:
        """Keep server-owned fields; split spec and status writes; bump generation; validate."""
        old_meta = old.get("metadata") or {}
        if subresource == "finalize":
            # Only spec.finalizers changes, and only through /finalize (not re-defaulted).
            finalizers = list((new.get("spec") or {}).get("finalizers") or [])
            new = orjson.loads(orjson.dumps(old))
            new.setdefault("spec", {})["finalizers"] = finalizers
            if not finalizers:
                new["spec"].pop("finalizers")
            return new
        if subresource == "status":
            status = new.get("status")
            new = orjson.loads(orjson.dumps(old))
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            self._validate(ri, new, old)
            return new
        meta = new["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "namespace", "name"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if not managedfields.valid_entries(meta.get("managedFields")):
            # A write may set managedFields (kubectl's apply migration does); else they stay.
            if "managedFields" in old_meta:
                meta["managedFields"] = old_meta["managedFields"]
            else:
                meta.pop("managedFields", None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if "status" in ri.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self._defaults(new)
        if ri.kind == "Namespace":
            fin = (old.get("spec") or {}).get("finalizers")
            if fin is None:
                new.setdefault("spec", {}).pop("finalizers", None)
            else:
                new.setdefault("spec", {})["finalizers"] = fin
        if ri.kind == "Service":
            from ..api.defaults import prepare_service_update
            prepare_service_update(new, old)
        if ri.kind in strategy.GENERATION_KINDS:
            gen = int(old_meta.get("generation") or 1)
            if strategy.spec_of(new) != strategy.spec_of(old):
                gen += 1
            meta["generation"] = gen
        if old_meta.get("deletionTimestamp"):
            # Finalizers may only be removed from an object being deleted, not added.
            added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if added:
                raise errors.forbidden(f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}",
                                       ri.plural, meta.get("name", ""), ri.group)
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        self._validate(ri, new, old)
        return new

    async def _read_for_write(self, ri: ResourceInfo, namespace: str | None, name: str, attempt: int) -> Entry:
        """The object a write starts from: the cached one, re-synced with the store after a conflict."""
        if attempt:
            await self.cache.sync()
        cur = self.current(ri, namespace, name)
        if cur is None:
            raise errors.not_found(ri.plural, name, ri.group)
        return cur

    # -- delete ------------------------------------------------------------------------------
    async def delete(self, ri: ResourceInfo, namespace: str | None, name: str, options: dict | None = None, *,
                     dry_run: bool = False) -> WriteResult:
        options = options or {}
        key = self.key(ri, namespace, name)
        if ri.kind == "Namespace" and name in IMMORTAL_NAMESPACES:
            raise errors.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                   ri.plural, name)
        for attempt in range(MAX_RETRIES):
            cur = await self._read_for_write(ri, namespace, name, attempt)
            pre = options.get("preconditions") or {}
            cur_meta = cur.obj.get("metadata") or {}
            if pre.get("uid") and pre["uid"] != cur_meta.get("uid"):
                raise errors.conflict(ri.plural, name, ri.group,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {cur_meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur_meta.get("resourceVersion"):
                raise errors.conflict(ri.plural, name, ri.group,
                                      f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                      f"ResourceVersion in object meta: {cur_meta.get('resourceVersion')}")
            new = cur.copy()
            meta = new["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is not None:
                policy = "Orphan" if options["orphanDependents"] else "Background"
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            grace = options.get("gracePeriodSeconds")
            grace = strategy.default_grace_seconds(ri.kind, cur.obj) if grace is None else max(0, int(grace))
            if strategy.graceful_kind(ri.kind) and not (new.get("spec") or {}).get("nodeName"):
                grace = 0
            ns_pending = ri.kind == "Namespace" and bool((new.get("spec") or {}).get("finalizers"))
            if ri.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            if finalizers or grace > 0 or ns_pending:
                # Graceful: mark for deletion; finalizers / the kubelet / the namespace controller finish it.
                if meta.get("deletionTimestamp"):
                    old_grace = meta.get("deletionGracePeriodSeconds")
                    if grace >= (old_grace if old_grace is not None else grace + 1) and finalizers == list(meta.get("finalizers") or []):
                        return _result(cur)
                meta["deletionTimestamp"] = _rfc3339_in(grace) if strategy.graceful_kind(ri.kind) else (
                    meta.get("deletionTimestamp") or now_rfc3339())
                meta["deletionGracePeriodSeconds"] = grace
                if finalizers:
                    meta["finalizers"] = finalizers
                if "generation" in meta and ri.kind in strategy.GENERATION_KINDS and not cur_meta.get("deletionTimestamp"):
                    meta["generation"] = int(meta["generation"]) + 1
                if dry_run:
                    return _result(new)
                try:
                    rev = await self.store.update(key, orjson.dumps(new), cur.rev, new)
                except (RevisionMismatchError, KeyNotFoundError):
                    continue
                await self.cache.wait_for(rev)
                return _result(self._written(ri, key, new, rev))
            if dry_run:
                return _result(cur, deleted=True)
            try:
                rev, _ = await self.store.delete(key, cur.rev)
            except RevisionMismatchError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(ri.plural, name, ri.group) from None
            if ri.kind == "Service":
                await self.allocator.release(cur.obj)
            await self.cache.wait_for(rev)
            return _result(make_entry(key, cur.copy(), rev), deleted=True)
        raise errors.conflict(ri.plural, name, ri.group, "too many concurrent writes; try again")

    async def delete_collection(self, ri: ResourceInfo, namespace: str | None, predicate: Any,
                                options: dict | None, *, dry_run: bool = False) -> list[WriteResult]:
        entries, _, _, _ = await self.list(ri, namespace, predicate)
        results = []
        for e in entries:
            meta = e.obj["metadata"]
            try:
                results.append(await self.delete(ri, meta.get("namespace"), meta["name"], options, dry_run=dry_run))
            except errors.StatusError as err:
                if err.code != 404:
                    raise
        return results

    # -- helpers -----------------------------------------------------------------------------
    def _check_shape(self, ri: ResourceInfo, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body must be a JSON object of kind {ri.kind}")
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if kind and kind != ri.kind:
            raise errors.bad_request(f"the kind of the object ({kind}) does not match the resource ({ri.plural}, kind {ri.kind})")
        if api_version and api_version != ri.group_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected API version ({ri.group_version})")
        obj["kind"] = ri.kind
        obj["apiVersion"] = ri.group_version
        try:
            has_null = b"null" in orjson.dumps(obj)     # encoding is cheaper than a walk; most bodies have none
        except TypeError:
            has_null = True
        if has_null:
            _strip_nulls(obj)
        return obj

    def _bind_namespace(self, ri: ResourceInfo, namespace: str | None, meta: dict) -> None:
        if ri.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    def _check_namespace_open(self, namespace: str, ri: ResourceInfo) -> None:
        ns = self.cache.resource(NAMESPACES_PREFIX).items.get(NAMESPACES_PREFIX + namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if (ns.obj.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.forbidden(f"{ri.plural} is forbidden: unable to create new content in namespace {namespace} "
                                   "because it is being terminated", ri.plural, "", ri.group)

    def _admit_priority(self, pod: dict) -> None:
        """Priority admission: priorityClassName -> spec.priority (and the global default class)."""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return
        name = spec.get("priorityClassName")
        classes = self.cache.resources.get("/registry/priorityclasses/")
        value: int | None = None
        policy = None
        if name:
            if name in SYSTEM_PRIORITY_CLASSES:
                value = SYSTEM_PRIORITY_CLASSES[name]
            else:
                pc = classes.items.get("/registry/priorityclasses/" + name) if classes else None
                if pc is None:
                    raise errors.forbidden(f'pods "{(pod.get("metadata") or {}).get("name", "")}" is forbidden: '
                                           f"no PriorityClass with name {name} was found", "pods")
                value = int(pc.obj.get("value") or 0)
                policy = pc.obj.get("preemptionPolicy")
        elif classes:
            default = next((e.obj for e in classes.items.values() if e.obj.get("globalDefault")), None)
            if default is not None:
                spec["priorityClassName"] = default["metadata"]["name"]
                value = int(default.get("value") or 0)
                policy = default.get("preemptionPolicy")
        if value is None:
            value = 0
        given = spec.get("priority")
        if given is not None and given != value:
            raise errors.forbidden(f'pods "{(pod.get("metadata") or {}).get("name", "")}" is forbidden: the integer '
                                   f"value of priority ({given}) must not be provided in pod spec; priority "
                                   f"admission controller computed {value} from the given PriorityClass name", "pods")
        spec["priority"] = value
        if policy and not spec.get("preemptionPolicy"):
            spec["preemptionPolicy"] = policy

    def _namespace_finalizers(self, ri: ResourceInfo, obj: dict) -> bool:
        return ri.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))

    def _defaults(self, obj: dict) -> None:
        apply_defaults(obj, shared=True)     # objects bound for the store are never changed in place

    def _validate(self, ri: ResourceInfo, obj: dict, old: dict | None) -> None:
        errs = validate(obj, old)
        if errs:
            raise errors.invalid(ri.kind, (obj.get("metadata") or {}).get("name", ""), _causes(errs), ri.group)

    def _field_validation(self, ri: ResourceInfo, obj: dict, mode: str) -> list[str]:
        """Decode-time checks: wrong JSON types are 400; unknown fields are 400 (Strict) or dropped."""
        if not ri.definition:
            return []
        found = check_fields(ri.definition, obj, drop_unknown=mode != "Strict")
        if found.type_error:
            raise errors.bad_request(f'{ri.kind} in version "{ri.version}" cannot be handled as a {ri.kind}: '
                                     f"{found.type_error}")
        if not found.unknown or mode == "Ignore":
            return []
        msgs = [f'unknown field "{f}"' for f in found.unknown]
        if mode == "Strict":
            raise errors.bad_request("strict decoding error: " + ", ".join(msgs))
        return msgs

    @staticmethod
    def _rv(value: Any) -> int:
        if value in (None, ""):
            return 0
        try:
            return int(value)
        except (TypeError, ValueError):
            raise errors.bad_request(f'invalid resourceVersion "{value}": must be a decimal integer') from None


def _strip_nulls(obj: Any) -> None:
    """Drop null fields, as decoding into the API types does (a null optional field is unset)."""
    if type(obj) is dict:
        if None in obj.values():
            for k in [k for k, v in obj.items() if v is None]:
                del obj[k]
        for v in obj.values():
            if type(v) is dict or type(v) is list:
                _strip_nulls(v)
    else:
        for v in obj:
            if type(v) is dict or type(v) is list:
                _strip_nulls(v)


def _rfc3339_in(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


async def ensure_namespaces(svc: ResourceService, names: list[str]) -> None:
    """Create the default namespaces when missing (first start)."""
    ri = svc.registry.get("", "v1", "namespaces")
    for n in names:
        if svc.current(ri, None, n) is None:
            try:
                await svc.create(ri, None, {"metadata": {"name": n}})
            except errors.StatusError as e:
                if e.code != 409:
                    raise
    await asyncio.sleep(0)
