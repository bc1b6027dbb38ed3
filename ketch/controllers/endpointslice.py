"""EndpointSlice controller: discovery.k8s.io/v1 slices for every Service with a selector.

Endpoints are grouped by the ports they serve (named target ports resolve per pod) and cut into
slices of at most MAX_ENDPOINTS, named `<service>-<n>` so a reconcile on a stale cache cannot
create duplicates; changed slices are rewritten in place, surplus ones deleted. Terminating pods stay listed (ready=false, terminating=true),
as in Kubernetes, so a proxy can drain them.
"""

from __future__ import annotations

from typing import Any

from ..api.errors import StatusError
from .endpoints import (
    HEADLESS_LABEL,
    SERVICE_NAME_LABEL,
    ServicePodWatcher,
    endpoint_ports,
    is_headless,
    service_labels,
    usable_ip,
)
from .framework import Context, pod_ready, split_key

MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100


def slice_endpoint(pod: dict, svc: dict) -> dict[str, Any]:
    """One endpoint of a slice for a pod."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    terminating = bool(meta.get("deletionTimestamp"))
    ready = pod_ready(pod)
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    ep: dict[str, Any] = {"addresses": [pod["status"]["podIP"]],
                          "conditions": {"ready": publish or (ready and not terminating),
                                         "serving": publish or ready, "terminating": terminating}}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"] and is_headless(svc):
        ep["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    ep["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta["name"],
                       "uid": meta.get("uid")}
    return ep


def desired_slices(svc: dict, pods: list[dict]) -> list[tuple[str, list[dict], list[dict]]]:
    """(addressType, ports, endpoints) of every slice the service needs."""
    groups: dict[tuple, list[dict]] = {}
    for pod in pods:
        st = pod.get("status") or {}
        if not usable_ip(st.get("podIP")) or st.get("phase") in ("Succeeded", "Failed"):
            continue
        ports = endpoint_ports(svc, pod)
        if ports is None:
            continue
        family = "IPv6" if ":" in st["podIP"] else "IPv4"
        groups.setdefault((family, ports), []).append(slice_endpoint(pod, svc))
    out = []
    for (family, ports), eps in sorted(groups.items()):
        eps.sort(key=lambda e: e["targetRef"]["name"])
        port_list = [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]
        for i in range(0, len(eps), MAX_ENDPOINTS):
            out.append((family, port_list, eps[i:i + MAX_ENDPOINTS]))
    return out


class EndpointSliceController(ServicePodWatcher):
    name = "endpointslice"

    def __init__(self, ctx: Context, workers: int | None = None):
        super().__init__(ctx, workers)
        self.ri = self.client.resource("endpointslices", "discovery.k8s.io")
        self.slices = ctx.factory.informer("endpointslices", "discovery.k8s.io")
        self.slices.add_indexer("service", _index_by_service)
        self.slices.add_handlers(on_update=lambda o, n: self._slice_deleted(n), on_delete=self._slice_deleted)

    def _slice_deleted(self, sl: dict) -> None:
        """A managed slice changed or went away: its service converges it back."""
        for key in _index_by_service(sl):
            self.enqueue(key)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        svc = self.services.get(key)
        existing = sorted(self.slices.by_index("service", key), key=lambda s: s["metadata"]["name"])
        spec = (svc or {}).get("spec") or {}
        if svc is None or not spec.get("selector") or spec.get("type") == "ExternalName":
            want: list = []
        else:
            want = desired_slices(svc, self.selected_pods(svc))
            if not want:
                # An empty slice says "no endpoints" (rather than "not computed yet").
                want = [("IPv4", [], [])]
        labels = {}
        if svc is not None:
            labels = {k: v for k, v in service_labels(svc).items() if k != HEADLESS_LABEL}
            if is_headless(svc):
                labels[HEADLESS_LABEL] = ""
            labels[SERVICE_NAME_LABEL] = name
            labels[MANAGED_BY_LABEL] = MANAGED_BY
        have = {s["metadata"]["name"]: s for s in existing}
        for i, (family, ports, eps) in enumerate(want):
            assert svc is not None
            slice_name = f"{name}-{i}"
            body: dict[str, Any] = {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice_name, "namespace": ns, "labels": labels, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Service", "name": name, "uid": svc["metadata"]["uid"],
                    "controller": True, "blockOwnerDeletion": True}]},
                "addressType": family, "endpoints": eps, "ports": ports}
            cur = have.pop(slice_name, None)
            if cur is None:
                await self._create(ns, body)
            elif cur.get("addressType") != family:    # immutable: replace the slice
                await self._delete(ns, slice_name)
                await self._create(ns, body)
            elif (cur.get("endpoints") or []) != eps or (cur.get("ports") or []) != ports or \
                    cur["metadata"].get("labels") != labels or \
                    cur["metadata"].get("ownerReferences") != body["metadata"]["ownerReferences"]:
                body["metadata"] = {**cur["metadata"], "labels": labels,
                                    "ownerReferences": body["metadata"]["ownerReferences"]}
                await self.client.update(self.ri, body)
        for surplus in have:
            await self._delete(ns, surplus)
        return None

    async def _create(self, ns: str | None, body: dict) -> None:
        try:
            await self.client.create(self.ri, ns, body)
        except StatusError as e:
            if e.code not in (403, 404):
                raise

    async def _delete(self, ns: str | None, name: str) -> None:
        try:
            await self.client.delete(self.ri, ns, name)
        except StatusError as e:
            if e.code != 404:
                raise


def _index_by_service(sl: dict) -> list[str]:
    """Slices this controller manages, by their service's key."""
    labels = (sl.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{sl['metadata'].get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]

