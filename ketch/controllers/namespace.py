"""Namespace lifecycle: a terminating namespace loses all its content, then its finalizer, then itself.

Level-triggered: on every pass it looks at what the API shows (namespaces with a
deletionTimestamp) and does the next step; it keeps no state across passes.
"""

from __future__ import annotations

import asyncio
import logging

from ..api.errors import StatusError
from ..client.rest import Client
from .framework import Context, Controller

log = logging.getLogger("ketch.controllers.namespace")
RETRY = 0.5


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
            if e.code == 409:
                log.debug("finalizing namespace %s: %s", name, e)
                return False
            if e.code != 404:
                raise
    return True


class NamespaceController(Controller):
    """Finishes the deletion of terminating namespaces, retrying until they are empty."""

    name = "namespace"

    def __init__(self, ctx: Context, workers: int | None = 2):
        super().__init__(ctx, workers)
        self.nss = ctx.factory.informer("namespaces")
        self.nss.add_handlers(self._changed, lambda o, n: self._changed(n))

    def _changed(self, ns: dict) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.enqueue(ns["metadata"]["name"])

    async def reconcile(self, key: str) -> float | None:
        ns = self.nss.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        return None if await reconcile_namespace(self.client, key) else RETRY


async def run_namespace_controller(client: Client, stop: asyncio.Event) -> None:
    """Run the namespace controller alone (its own informer)."""
    ctx = Context(client)
    ctrl = NamespaceController(ctx)
    ctx.factory.start()
    try:
        await ctx.factory.wait_synced()
        await ctrl.run(stop)
    finally:
        await ctx.factory.stop()
