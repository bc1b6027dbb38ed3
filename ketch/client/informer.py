"""Shared informers: one list+watch per resource into a local, indexed cache.

An informer lists, then watches from the list's resourceVersion; a dropped watch resumes from
the last resourceVersion seen, a 410 Expired re-lists (and tells the handlers what changed in
between). Handlers run in the informer's task, in event order; they should only enqueue work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..api.errors import StatusError
from ..api.registry import ResourceInfo
from .rest import Client

log = logging.getLogger("ketch.client.informer")

Handler = Callable[[dict], None]
UpdateHandler = Callable[[dict, dict], None]
IndexFunc = Callable[[dict], list[str]]


def object_key(obj: dict) -> str:
    """'namespace/name' for namespaced objects, 'name' otherwise (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


def index_by_namespace(obj: dict) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_owner_uid(obj: dict) -> list[str]:
    return [r["uid"] for r in (obj.get("metadata") or {}).get("ownerReferences") or () if r.get("uid")]


def index_by_node_name(obj: dict) -> list[str]:
    n = (obj.get("spec") or {}).get("nodeName")
    return [n] if n else []


class Informer:
    """A cache of one resource kept current by list+watch, with secondary indexes."""

    def __init__(self, client: Client, ri: ResourceInfo, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "",
                 indexers: dict[str, IndexFunc] | None = None, watch_timeout: int = 600):
        self.client = client
        self.ri = ri
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.items: dict[str, dict] = {}
        self.indexers: dict[str, IndexFunc] = {"namespace": index_by_namespace, **(indexers or {})}
        self.indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexers}
        self._add: list[Handler] = []
        self._update: list[UpdateHandler] = []
        self._delete: list[Handler] = []
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._task: asyncio.Task | None = None

    # -- registration ------------------------------------------------------------------------
    def add_handlers(self, on_add: Handler | None = None, on_update: UpdateHandler | None = None,
                     on_delete: Handler | None = None) -> None:
        """Register callbacks; objects already cached are replayed to on_add."""
        if on_add:
            self._add.append(on_add)
            for obj in list(self.items.values()):
                on_add(obj)
        if on_update:
            self._update.append(on_update)
        if on_delete:
            self._delete.append(on_delete)

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.indexers[name] = fn
        idx: dict[str, set[str]] = {}
        for key, obj in self.items.items():
            for v in fn(obj):
                idx.setdefault(v, set()).add(key)
        self.indexes[name] = idx

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> dict | None:
        return self.items.get(key)

    def get_by_name(self, namespace: str | None, name: str) -> dict | None:
        return self.items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[dict]:
        return list(self.items.values())

    def by_index(self, index: str, value: str) -> list[dict]:
        keys = self.indexes[index].get(value) or ()
        return [self.items[k] for k in keys if k in self.items]

    def keys_by_index(self, index: str, value: str) -> set[str]:
        return set(self.indexes[index].get(value) or ())

    # -- cache maintenance -----------------------------------------------------------------------
    def _index(self, key: str, obj: dict | None, old: dict | None) -> None:
        for name, fn in self.indexers.items():
            idx = self.indexes[name]
            old_vals = fn(old) if old is not None else []
            new_vals = fn(obj) if obj is not None else []
            if old_vals == new_vals:
                continue
            for v in old_vals:
                s = idx.get(v)
                if s is not None:
                    s.discard(key)
                    if not s:
                        del idx[v]
            for v in new_vals:
                idx.setdefault(v, set()).add(key)

    def _apply(self, etype: str, obj: dict) -> None:
        key = object_key(obj)
        old = self.items.get(key)
        if etype == "DELETED":
            if old is None:
                return
            del self.items[key]
            self._index(key, None, old)
            for h in self._delete:
                _safe(h, obj)
            return
        self.items[key] = obj
        self._index(key, obj, old)
        if old is None:
            for h in self._add:
                _safe(h, obj)
        else:
            for h in self._update:
                _safe(h, old, obj)

    def _replace(self, objs: list[dict]) -> None:
        """A fresh list: add/update what is there, delete what vanished."""
        fresh = {object_key(o): o for o in objs}
        for key in [k for k in self.items if k not in fresh]:
            self._apply("DELETED", self.items[key])
        for o in objs:
            self._apply("MODIFIED" if object_key(o) in self.items else "ADDED", o)

    # -- loop --------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                if e.code == 410:
                    log.info("%s: watch expired; re-listing", self.ri.plural)
                    self.resource_version = ""
                    continue
                log.warning("%s informer: %s", self.ri.plural, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
            except Exception as e:  # connection refused/reset: the apiserver restarts
                log.debug("%s informer: %r", self.ri.plural, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)

    async def _list(self) -> None:
        objs: list[dict] = []
        cont = ""
        while True:
            params: dict[str, Any] = {"limit": 5000}
            if cont:
                params["continue"] = cont
            lst = await self.client.list(self.ri, self.namespace, self.label_selector, self.field_selector, **params)
            for o in lst.get("items") or []:
                o.setdefault("kind", self.ri.kind)
                o.setdefault("apiVersion", self.ri.group_version)
                objs.append(o)
            cont = (lst.get("metadata") or {}).get("continue") or ""
            rv = (lst.get("metadata") or {}).get("resourceVersion") or ""
            if not cont:
                break
        self._replace(objs)
        self.resource_version = rv
        self.synced.set()

    async def _watch(self) -> None:
        params: dict[str, Any] = {}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        async for ev in self.client.watch(self.ri, self.namespace, self.resource_version,
                                          timeout_seconds=self.watch_timeout, **params):
            obj = ev.get("object") or {}
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if ev.get("type") != "BOOKMARK":
                self._apply(ev["type"], obj)
            if rv:
                self.resource_version = rv


def _safe(fn: Callable, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("informer handler failed")


class InformerFactory:
    """One shared informer per (resource, namespace, selectors): controllers share their caches."""

    def __init__(self, client: Client):
        self.client = client
        self._informers: dict[tuple, Informer] = {}

    def informer(self, plural: str, group: str = "", version: str = "v1", namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "") -> Informer:
        key = (group, version, plural, namespace, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = self._informers[key] = Informer(self.client, self.client.resource(plural, group, version),
                                                  namespace, label_selector, field_selector)
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self._informers.values())), timeout)

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()
