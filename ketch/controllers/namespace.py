"""Namespace lifecycle: a terminating namespace loses all its content, then its finalizer, then itself.

Level-triggered: on every pass it looks at what the API shows (namespaces with a
deletionTimestamp) and does the next step; it keeps no state across passes.
"""

from __future__ import annotations

import asyncio
import logging

from ..api.errors import StatusError
from ..client.rest import Client

log = logging.getLogger("ketch.controllers.namespace")
RESYNC = 5.0


async def reconcile_namespace(client: Client, name: str) -> bool:
    """One step towards deleting a terminating namespace; True when it is gone or not terminating."""
    ns_ri = client.resource("namespaces")
    try:
        ns = await client.get(ns_ri, None, name)
    except StatusError as e:
        if e.code == 404:
            return True
        raise
    if not ns["metadata"].get("deletionTimestamp"):
        return True
    remaining = 0
    for ri in client.registry.resources:
        if not ri.namespaced or "deletecollection" not in ri.verbs or ri.extra.get("storage"):
            continue
        lst = await client.list(ri, name)
        items = lst.get("items") or []
        if not items:
            continue
        remaining += len(items)
        try:
            await client.delete_collection(ri, name, {"propagationPolicy": "Background"})
        except StatusError as e:
            if e.code != 404:
                log.warning("deleting %s in namespace %s: %s", ri.plural, name, e)
    if remaining:
        return False
    if (ns.get("spec") or {}).get("finalizers"):
        ns["spec"]["finalizers"] = []
        try:
            await client.request("PUT", client.path(ns_ri, None, name, "finalize"), ns)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
    return True


async def run_namespace_controller(client: Client, stop: asyncio.Event) -> None:
    """Watch namespaces; finish the deletion of terminating ones (retried every few seconds)."""
    ns_ri = client.resource("namespaces")
    pending: set[str] = set()
    wake = asyncio.Event()

    async def watch_loop() -> None:
        rv = ""
        while not stop.is_set():
            try:
                if not rv:
                    lst = await client.list(ns_ri)
                    rv = lst["metadata"]["resourceVersion"]
                    for ns in lst["items"]:
                        if ns["metadata"].get("deletionTimestamp"):
                            pending.add(ns["metadata"]["name"])
                    wake.set()
                async for ev in client.watch(ns_ri, resource_version=rv, timeout_seconds=300):
                    obj = ev["object"]
                    rv = obj["metadata"].get("resourceVersion") or rv
                    if ev["type"] in ("ADDED", "MODIFIED") and obj["metadata"].get("deletionTimestamp"):
                        pending.add(obj["metadata"]["name"])
                        wake.set()
            except StatusError as e:
                if e.code == 410:
                    rv = ""
                    continue
                log.warning("namespace watch: %s", e)
                await asyncio.sleep(1)
            except (TimeoutError, OSError, Exception) as e:  # connection trouble: retry
                if stop.is_set():
                    return
                log.debug("namespace watch interrupted: %s", e)
                await asyncio.sleep(1)

    watcher = asyncio.create_task(watch_loop())
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(wake.wait(), RESYNC)
            except TimeoutError:
                pass
            wake.clear()
            for name in sorted(pending):
                try:
                    if await reconcile_namespace(client, name):
                        pending.discard(name)
                except Exception as e:
                    log.warning("namespace %s: %s", name, e)
            if pending:
                await asyncio.sleep(0.5)
                wake.set()
    finally:
        watcher.cancel()
