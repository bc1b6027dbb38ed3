"""Service ClusterIP and NodePort allocation, kept as keys in the store.

Each allocated address or port is one key (`/registry/ranges/serviceips/<ip>`,
`/registry/ranges/servicenodeports/<proto>/<port>`) created with the store's create-if-absent,
so two apiservers (or two concurrent creates) can never hold the same one, and allocations
survive restarts. An in-memory set of known keys only speeds up the search for a free one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import socket
import time
from typing import Any

import orjson

from ..api import errors
from ..store.base import KeyExistsError, KeyNotFoundError

log = logging.getLogger("ketch.apiserver.allocator")

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)
REPAIR_GRACE = 60.0  # an allocation without its service is only reclaimed when older than this


def _service_cidr() -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(os.environ.get("KETCH_SERVICE_CIDR") or DEFAULT_SERVICE_CIDR, strict=False)


def _node_port_range() -> tuple[int, int]:
    raw = os.environ.get("KETCH_SERVICE_NODE_PORT_RANGE")
    if not raw:
        return DEFAULT_NODE_PORT_RANGE
    lo, _, hi = raw.partition("-")
    return int(lo), int(hi)


def _cluster_ips(spec: dict) -> list[str]:
    return list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))


def _wants_cluster_ip(spec: dict) -> bool:
    return (spec.get("type") or "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None" and \
        (spec.get("clusterIPs") or [""])[0] != "None"


def _wants_node_ports(spec: dict) -> bool:
    stype = spec.get("type") or "ClusterIP"
    return stype == "NodePort" or (stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))


def _owned(obj: dict) -> tuple[set[str], set[str]]:
    """The allocation keys a stored Service holds."""
    spec = obj.get("spec") or {}
    ips = {IP_PREFIX + ip for ip in _cluster_ips(spec) if ip and ip != "None"} \
        if (spec.get("type") or "ClusterIP") != "ExternalName" else set()
    ports = {f"{PORT_PREFIX}{(p.get('protocol') or 'TCP').lower()}/{p['nodePort']}"
             for p in spec.get("ports") or () if isinstance(p, dict) and p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(f"{PORT_PREFIX}tcp/{spec['healthCheckNodePort']}")
    return ips, ports


class Allocation:
    """Keys taken for one write: committed when the write lands, rolled back otherwise."""

    def __init__(self, allocator: ServiceAllocator, taken: list[str], release: list[str]):
        self.allocator = allocator
        self.taken = taken
        self.release = release

    async def commit(self) -> None:
        for key in self.release:
            await self.allocator.free(key)

    async def rollback(self) -> None:
        for key in self.taken:
            await self.allocator.free(key)


class ServiceAllocator:
    """Allocates ClusterIPs from the service CIDR and NodePorts from their range."""

    def __init__(self, store: Any, cidr: str | None = None, node_ports: tuple[int, int] | None = None):
        self.store = store
        self.cidr = ipaddress.ip_network(cidr, strict=False) if cidr else _service_cidr()
        self.node_ports = node_ports or _node_port_range()
        self.known: set[str] = set()

    @property
    def kubernetes_ip(self) -> str:
        """The first address of the range, reserved for the `kubernetes` service."""
        return str(self.cidr.network_address + 1)

    async def start(self, services: list[dict]) -> None:
        """Load allocations; record ones services hold but the store lacks; reclaim orphans."""
        kvs, _ = await self.store.range("/registry/ranges/")
        held: dict[str, dict] = {}
        for svc in services:
            ips, ports = _owned(svc)
            for key in ips | ports:
                held[key] = svc
        now = time.time()
        for kv in kvs:
            self.known.add(kv.key)
            if kv.key in held or not kv.key.startswith((IP_PREFIX, PORT_PREFIX)):
                continue
            try:
                since = float(orjson.loads(kv.value).get("time") or 0)
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                since = 0.0
            if now - since > REPAIR_GRACE:
                log.info("releasing orphaned allocation %s", kv.key)
                await self.free(kv.key)
        for key, svc in held.items():
            if key not in self.known:
                meta = svc.get("metadata") or {}
                try:
                    await self._take(key, f"{meta.get('namespace')}/{meta.get('name')}")
                except errors.StatusError:
                    log.warning("service %s/%s holds %s, which another service holds too",
                                meta.get("namespace"), meta.get("name"), key)

    async def _take(self, key: str, owner: str) -> None:
        try:
            await self.store.create(key, orjson.dumps({"owner": owner, "time": time.time()}))
        except KeyExistsError:
            self.known.add(key)
            raise errors.StatusError(409, "AlreadyExists", key) from None
        self.known.add(key)

    async def free(self, key: str) -> None:
        self.known.discard(key)
        try:
            await self.store.delete(key)
        except KeyNotFoundError:
            pass

    async def _take_ip(self, ip: str, owner: str, field: str) -> str:
        addr = ipaddress.ip_address(ip)
        if addr not in self.cidr or addr in (self.cidr.network_address, self.cidr.broadcast_address):
            raise _invalid(owner, field, ip, f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the "
                           f"valid range. The range of valid IPs is {self.cidr}")
        try:
            await self._take(IP_PREFIX + str(addr), owner)
        except errors.StatusError:
            raise _invalid(owner, field, ip, f"failed to allocate IP {ip}: provided IP is already allocated") from None
        return str(addr)

    async def _next_ip(self, owner: str) -> str:
        first = int(self.cidr.network_address) + 2      # +1 is the kubernetes service's
        size = self.cidr.num_addresses - 3
        start = random.randrange(size)
        for i in range(size):
            ip = str(ipaddress.ip_address(first + (start + i) % size))
            key = IP_PREFIX + ip
            if key in self.known:
                continue
            try:
                await self._take(key, owner)
                return ip
            except errors.StatusError:
                continue
        raise _invalid(owner, "spec.clusterIPs", "", f"range is full: no free IP in {self.cidr}")

    async def _take_port(self, proto: str, port: int, owner: str, field: str) -> None:
        try:
            await self._take(f"{PORT_PREFIX}{proto.lower()}/{port}", owner)
        except errors.StatusError:
            raise _invalid(owner, field, port, "provided port is already allocated") from None

    async def _next_port(self, proto: str, owner: str, field: str) -> int:
        lo, hi = self.node_ports
        size = hi - lo + 1
        start = random.randrange(size)
        for i in range(size):
            port = lo + (start + i) % size
            key = f"{PORT_PREFIX}{proto.lower()}/{port}"
            if key in self.known:
                continue
            try:
                await self._take(key, owner)
                return port
            except errors.StatusError:
                continue
        raise _invalid(owner, field, 0, f"range is full: no free port in {lo}-{hi}")

    async def allocate(self, obj: dict, old: dict | None = None) -> Allocation:
        """Fill in the ClusterIP and NodePorts of a Service being created or updated (in place)."""
        meta = obj.get("metadata") or {}
        owner = f"{meta.get('namespace')}/{meta.get('name')}"
        spec = obj.setdefault("spec", {})
        old_ips, old_ports = _owned(old) if old is not None else (set(), set())
        taken: list[str] = []
        try:
            if _wants_cluster_ip(spec):
                ips = _cluster_ips(spec)
                if not ips or not ips[0]:
                    if old is None and owner == "default/kubernetes":
                        ip = await self._take_ip(self.kubernetes_ip, owner, "spec.clusterIPs[0]")
                    else:
                        ip = await self._next_ip(owner)
                    taken.append(IP_PREFIX + ip)
                    spec["clusterIP"] = ip
                    spec["clusterIPs"] = [ip]
                elif IP_PREFIX + ips[0] not in old_ips:
                    ip = await self._take_ip(ips[0], owner, "spec.clusterIPs[0]")
                    taken.append(IP_PREFIX + ip)
                    spec["clusterIP"] = ip
                    spec["clusterIPs"] = [ip] + ips[1:]
                elif not spec.get("clusterIPs"):
                    spec["clusterIPs"] = [ips[0]]
            if _wants_node_ports(spec):
                for i, p in enumerate(spec.get("ports") or ()):
                    if not isinstance(p, dict):
                        continue
                    proto = p.get("protocol") or "TCP"
                    field = f"spec.ports[{i}].nodePort"
                    if p.get("nodePort"):
                        key = f"{PORT_PREFIX}{proto.lower()}/{p['nodePort']}"
                        if key not in old_ports and key not in taken:
                            await self._take_port(proto, int(p["nodePort"]), owner, field)
                            taken.append(key)
                    else:
                        p["nodePort"] = await self._next_port(proto, owner, field)
                        taken.append(f"{PORT_PREFIX}{proto.lower()}/{p['nodePort']}")
        except BaseException:
            for key in taken:
                await self.free(key)
            raise
        new_ips, new_ports = _owned(obj)
        release = sorted((old_ips | old_ports) - (new_ips | new_ports))
        return Allocation(self, taken, release)

    async def release(self, obj: dict) -> None:
        """Free everything a deleted Service held."""
        ips, ports = _owned(obj)
        for key in sorted(ips | ports):
            await self.free(key)


def _invalid(owner: str, field: str, value: Any, message: str) -> errors.StatusError:
    name = owner.partition("/")[2]
    return errors.invalid("Service", name, [{"reason": "FieldValueInvalid", "field": field,
                                             "message": f"{field}: Invalid value: {_q(value)}: {message}"}])


def _q(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def advertise_ip(advertise: str) -> str:
    """The address other nodes and pods reach the apiserver at (a wildcard becomes this host's)."""
    host = advertise.rsplit(":", 1)[0].strip("[]") if ":" in advertise else advertise
    if host in ("", "0.0.0.0", "::", "localhost"):
        if host == "localhost":
            return "127.0.0.1"
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("10.255.255.255", 1))   # UDP connect sends nothing: it only picks a route
                return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"
    return host


async def ensure_kubernetes_service(svc: Any, advertise: str) -> None:
    """The `kubernetes` service in `default`, and its Endpoints/EndpointSlice at the apiserver."""
    registry = svc.registry
    s_ri = registry.get("", "v1", "services")
    e_ri = registry.get("", "v1", "endpoints")
    sl_ri = registry.get("discovery.k8s.io", "v1", "endpointslices")
    port = int(advertise.rsplit(":", 1)[1]) if ":" in advertise else 6443
    if not port:
        log.warning("kubernetes service: apiserver port not known yet (port 0); not created")
        return
    ip = advertise_ip(advertise)
    if svc.current(s_ri, "default", "kubernetes") is None:
        body = {"metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}
        try:
            await svc.create(s_ri, "default", body)
        except errors.StatusError as e:
            if e.code not in (409, 422):
                raise
            log.warning("kubernetes service: %s", e)
    if ipaddress.ip_address(ip).is_loopback:
        # Endpoints may not hold loopback addresses: an apiserver on loopback has none to publish.
        log.info("kubernetes service: apiserver on loopback (%s); no endpoints published", ip)
        return
    subsets = [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    slice_body = {"metadata": {"name": "kubernetes", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": "kubernetes",
                                          "endpointslice.kubernetes.io/managed-by": "ketch-apiserver"}},
                  "addressType": "IPv6" if ":" in ip else "IPv4",
                  "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                  "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    for ri, body in ((e_ri, {"metadata": {"name": "kubernetes", "namespace": "default",
                                          "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                             "subsets": subsets}),
                     (sl_ri, slice_body)):
        cur = svc.current(ri, "default", "kubernetes")
        try:
            if cur is None:
                await svc.create(ri, "default", body)
            else:
                def patch(o: dict, body: dict = body) -> dict:
                    o.update({k: v for k, v in body.items() if k != "metadata"})
                    return o
                await svc.patch(ri, "default", "kubernetes", patch)
        except errors.StatusError as e:
            if e.code != 409:
                log.warning("kubernetes %s: %s", ri.plural, e)
