"""A built-in local LoadBalancer provider (the cloud-controller-manager's service role).

Every `type: LoadBalancer` service without a `loadBalancerClass` gets this node's addresses in
`status.loadBalancer.ingress`; the proxy then sends `<address>:<port>` to the service like its
NodePort. Services that stop being LoadBalancers lose the ingress again.
"""

from __future__ import annotations

import asyncio
import logging

from ..api.errors import StatusError
from ..client.informer import Informer, object_key
from ..client.rest import Client

log = logging.getLogger("ketch.proxy.loadbalancer")


def wanted_ingress(svc: dict, addresses: list[str]) -> list[dict] | None:
    """The ingress this provider gives a service; None for services it does not serve."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass"):
        return None
    return [{"ip": a, "ipMode": "VIP"} for a in addresses]


class LoadBalancerProvider:
    """Keeps status.loadBalancer of LoadBalancer services at this node's addresses."""

    def __init__(self, client: Client, addresses: list[str]):
        self.client = client
        self.addresses = list(addresses)
        self.ri = client.resource("services")
        self.services = Informer(client, self.ri)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.services.add_handlers(self._enqueue, lambda o, n: self._enqueue(n))

    def _enqueue(self, svc: dict) -> None:
        self._queue.put_nowait(object_key(svc))

    async def reconcile(self, key: str) -> None:
        svc = self.services.get(key)
        if svc is None:
            return
        want = wanted_ingress(svc, self.addresses)
        have = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if want is None:
            ours = set(self.addresses)
            if not have or not all(i.get("ip") in ours for i in have) or (svc.get("spec") or {}).get(
                    "loadBalancerClass"):
                return
            want = []
        if [i.get("ip") for i in have] == [i["ip"] for i in want]:
            return
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        await self.client.patch(self.ri, ns, name, {"status": {"loadBalancer": {"ingress": want or None}}},
                                sub="status")

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile changed services until `stop`."""
        self.services.start()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                get = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({get, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    break
                key = get.result()
                try:
                    await self.reconcile(key)
                except StatusError as e:
                    if e.code not in (404, 409):
                        log.warning("loadbalancer %s: %s", key, e)
                    if e.code == 409:
                        await asyncio.sleep(0.1)
                        self._queue.put_nowait(key)
        finally:
            stopping.cancel()
            await self.services.stop()
