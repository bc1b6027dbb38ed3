"""Endpoints controller: each Service with a selector gets an Endpoints object listing its pods.

Ready pods go to `addresses`, the others to `notReadyAddresses` (all to `addresses` with
`publishNotReadyAddresses`); a named targetPort is resolved per pod from its container ports,
so pods naming a port differently land in different subsets. Services without a selector are
left alone: their Endpoints are the user's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..api.errors import StatusError
from ..client.informer import object_key
from .framework import Context, Controller, pod_ready, split_key

HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def selector_matches(selector: dict, labels: dict | None) -> bool:
    """A Service selector (a plain map) matches a pod's labels."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_headless(svc: dict) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def usable_ip(ip: str | None) -> bool:
    """An address Endpoints may hold (not loopback, link-local, unspecified or multicast)."""
    try:
        a = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return not (a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast)


def pod_in_endpoints(pod: dict, publish_not_ready: bool) -> bool:
    """Pods with an IP that are not finished (and not terminating, unless not-ready ones publish)."""
    st = pod.get("status") or {}
    if not usable_ip(st.get("podIP")) or st.get("phase") in ("Succeeded", "Failed"):
        return False
    return publish_not_ready or not (pod.get("metadata") or {}).get("deletionTimestamp")


def resolve_target_port(port: dict, pod: dict) -> int | None:
    """The pod port a service port sends to: a number, or the container port with that name."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or ():
        for cp in c.get("ports") or ():
            if cp.get("name") == target and (cp.get("protocol") or "TCP") == proto:
                return cp.get("containerPort")
    return None


def endpoint_ports(svc: dict, pod: dict) -> tuple[tuple[str, int, str], ...] | None:
    """(name, port, protocol) of every service port this pod serves; None if it serves none."""
    ports = (svc.get("spec") or {}).get("ports") or []
    if not ports:
        return () if is_headless(svc) else None
    out = []
    for p in ports:
        n = resolve_target_port(p, pod)
        if n:
            out.append((p.get("name") or "", n, p.get("protocol") or "TCP"))
    return tuple(out) if out else None


def address_of(pod: dict, svc: dict) -> dict[str, Any]:
    """An EndpointAddress for a pod (hostname when it names itself under this headless service)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    addr: dict[str, Any] = {"ip": pod["status"]["podIP"]}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"] and is_headless(svc):
        addr["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        addr["nodeName"] = spec["nodeName"]
    addr["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta["name"],
                         "uid": meta.get("uid")}
    return addr


def _ip_key(addr: dict) -> tuple:
    try:
        return (0, ipaddress.ip_address(addr["ip"]))
    except ValueError:
        return (1, addr["ip"])


def desired_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    """The Endpoints subsets of a Service: addresses grouped by the ports they serve."""
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[tuple, tuple[list[dict], list[dict]]] = {}
    for pod in pods:
        if not pod_in_endpoints(pod, publish):
            continue
        ports = endpoint_ports(svc, pod)
        if ports is None:
            continue
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if publish or pod_ready(pod) else not_ready).append(address_of(pod, svc))
    subsets = []
    for ports, (ready, not_ready) in sorted(groups.items()):
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_ip_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_ip_key)
        if ports:
            subset["ports"] = [{**({"name": n} if n else {}), "port": p, "protocol": proto}
                               for n, p, proto in ports]
        subsets.append(subset)
    return subsets


def service_labels(svc: dict) -> dict[str, str]:
    labels = dict((svc.get("metadata") or {}).get("labels") or {})
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    return labels


class ServicePodWatcher(Controller):
    """Shared wiring: services and their pods enqueue the service key."""

    def __init__(self, ctx: Context, workers: int | None = None):
        super().__init__(ctx, workers)
        self.services = ctx.factory.informer("services")
        self.pods = ctx.pods()
        self.services.add_handlers(self._svc_changed, lambda o, n: self._svc_changed(n), self._svc_changed)
        self.pods.add_handlers(self._pod_changed, self._pod_updated, self._pod_changed)

    def _svc_changed(self, svc: dict) -> None:
        self.enqueue(object_key(svc))

    def _pod_updated(self, old: dict, new: dict) -> None:
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._pod_changed(old)
        self._pod_changed(new)

    def _pod_changed(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace") or ""
        for svc in self.services.by_index("namespace", ns):
            sel = (svc.get("spec") or {}).get("selector")
            if sel and selector_matches(sel, meta.get("labels")):
                self.enqueue(object_key(svc))

    def selected_pods(self, svc: dict) -> list[dict]:
        sel = svc["spec"]["selector"]
        ns = svc["metadata"].get("namespace") or ""
        return [p for p in self.pods.by_index("namespace", ns)
                if selector_matches(sel, (p.get("metadata") or {}).get("labels"))]


class EndpointsController(ServicePodWatcher):
    name = "endpoints"

    def __init__(self, ctx: Context, workers: int | None = None):
        super().__init__(ctx, workers)
        self.ep_ri = self.client.resource("endpoints")
        self.endpoints = ctx.factory.informer("endpoints")
        # Edits to a selector service's Endpoints are reverted, deletions recreated.
        self.endpoints.add_handlers(on_update=lambda o, n: self.enqueue(object_key(n)),
                                    on_delete=lambda o: self.enqueue(object_key(o)))

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None and self._managed(current):
                try:
                    await self.client.delete(self.ep_ri, ns, name)
                except StatusError as e:
                    if e.code != 404:
                        raise
            return None
        spec = svc.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return None      # manual endpoints (or none): not ours
        subsets = desired_subsets(svc, self.selected_pods(svc))
        labels = service_labels(svc)
        if current is not None and (current.get("subsets") or []) == subsets and \
                ((current.get("metadata") or {}).get("labels") or {}) == labels:
            return None
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels}, "subsets": subsets}
        if current is None:
            try:
                await self.client.create(self.ep_ri, ns, body)
            except StatusError as e:
                if e.code in (403, 404):  # namespace going away
                    return None
                raise
            return None
        body["metadata"] = {**current["metadata"], "labels": labels}
        await self.client.update(self.ep_ri, body)
        return None

    @staticmethod
    def _managed(ep: dict) -> bool:
        """Endpoints of a deleted service go with it, except leader-election records (as in Kubernetes)."""
        annotations = (ep.get("metadata") or {}).get("annotations") or {}
        return "control-plane.alpha.kubernetes.io/leader" not in annotations
