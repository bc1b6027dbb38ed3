"""ServiceAccount controller: every active namespace has a `default` ServiceAccount."""

from __future__ import annotations

from ..api.errors import StatusError
from ..client.informer import object_key
from .framework import Context, Controller

DEFAULT_SA = "default"


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx: Context, workers: int | None = 1):
        super().__init__(ctx, workers)
        self.sa_ri = self.client.resource("serviceaccounts")
        self.nss = ctx.factory.informer("namespaces")
        self.sas = ctx.factory.informer("serviceaccounts")
        self.nss.add_handlers(lambda o: self.enqueue(object_key(o)), lambda o, n: self.enqueue(object_key(n)))
        self.sas.add_handlers(on_delete=self._sa_deleted)

    def _sa_deleted(self, sa: dict) -> None:
        if sa["metadata"].get("name") == DEFAULT_SA:
            self.enqueue(sa["metadata"].get("namespace") or "")

    async def reconcile(self, key: str) -> float | None:
        ns = self.nss.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.sas.get_by_name(key, DEFAULT_SA) is not None:
            return None
        try:
            await self.client.create(self.sa_ri, key, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                       "metadata": {"name": DEFAULT_SA, "namespace": key}})
        except StatusError as e:
            if e.code in (403, 404, 409):   # exists already, or the namespace is going away
                return None
            raise
        return None
