"""The cluster DNS server: answers for the cluster domain from Service/Endpoints informers and
forwards every other name to upstream resolvers (UDP and TCP)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
from typing import Any

from ..client.informer import Informer
from ..client.rest import Client
from . import codec
from .codec import AAAA, ANY, CNAME, SOA, SRV, A, Message, Record

log = logging.getLogger("ketch.dns")

TTL = 5
UDP_MAX = 512
FORWARD_TIMEOUT = 2.0


def host_nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The host's resolvers, from resolv.conf."""
    out = []
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append((parts[1], 53))
    return out


def parse_hostport(value: str, default_port: int = 53) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:53' or '[::1]:53' as (host, port)."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return host.rstrip("]"), int(port or default_port)
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, default_port


class ClusterDNS:
    """Resolves names of the cluster domain from informer caches."""

    def __init__(self, client: Client | None, domain: str = "cluster.local",
                 upstreams: list[tuple[str, int]] | None = None):
        self.domain = domain.strip(".").lower()
        self.upstreams = upstreams if upstreams is not None else host_nameservers()
        self.services: Informer | None = None
        self.endpoints: Informer | None = None
        if client is not None:
            self.services = Informer(client, client.resource("services"))
            self.endpoints = Informer(client, client.resource("endpoints"))
        self._transports: list[Any] = []
        self._servers: list[asyncio.base_events.Server] = []
        self.queries = 0
        self.forwarded = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on UDP and TCP (the same port; 0 picks one free for both), then start the
        informers; returns the bound (host, port). OSError when the address cannot be had."""
        loop = asyncio.get_running_loop()
        for attempt in range(10):
            transport, _ = await loop.create_datagram_endpoint(lambda: _UDP(self), local_addr=(host, port))
            bound = transport.get_extra_info("sockname")[:2]
            try:
                server = await asyncio.start_server(self._tcp_client, host, bound[1])
            except OSError:
                transport.close()
                if port == 0 and attempt < 9:
                    continue        # the TCP side of the port UDP got is taken: another one
                raise
            break
        self._transports.append(transport)
        self._servers.append(server)
        for inf in (self.services, self.endpoints):
            if inf is not None:
                inf.start()
        if self.services is not None and self.endpoints is not None:
            await asyncio.wait_for(asyncio.gather(self.services.synced.wait(), self.endpoints.synced.wait()), 30)
        return bound[0], bound[1]

    async def close(self) -> None:
        for t in self._transports:
            t.close()
        for s in self._servers:
            s.close()
        for inf in (self.services, self.endpoints):
            if inf is not None:
                await inf.stop()

    # -- queries -----------------------------------------------------------------------------
    async def handle(self, data: bytes, max_size: int) -> bytes | None:
        """The response to one query message (None to drop garbage)."""
        self.queries += 1
        try:
            q = codec.parse(data)
        except codec.DecodeError:
            return None
        if q.is_response:
            return None
        if q.opcode != 0 or len(q.questions) != 1:
            return codec.response(q, codec.NOTIMP if q.opcode else codec.FORMERR, authoritative=False)
        name = q.questions[0].name
        if name == self.domain or name.endswith("." + self.domain):
            return self.answer(q, max_size)
        return await self.forward(q, data)

    def answer(self, q: Message, max_size: int) -> bytes:
        question = q.questions[0]
        found = self.lookup(question.name, question.qtype)
        if found is None:
            return codec.response(q, codec.NXDOMAIN, authority=[self._soa()], max_size=max_size)
        answers, additional = found
        return codec.response(q, codec.NOERROR, answers, [] if answers else [self._soa()], additional,
                              max_size=max_size)

    def _soa(self) -> Record:
        return Record(self.domain, SOA, TTL, codec.rdata_soa(f"ns.dns.{self.domain}",
                                                             f"hostmaster.{self.domain}", 1, TTL))

    def lookup(self, name: str, qtype: int) -> tuple[list[Record], list[Record]] | None:
        """(answers, additional) for a name in the cluster domain; None if the name does not exist."""
        rel = name[: -len(self.domain)].rstrip(".")
        labels = rel.split(".") if rel else []
        if not labels:
            return ([self._soa()] if qtype in (SOA, ANY) else []), []
        if labels[-1] == "pod" and len(labels) == 3:
            return self._pod(name, labels[0], qtype)
        if labels[-1] != "svc":
            return None
        if len(labels) == 2:         # <ns>.svc: exists when some service lives there
            return ([], []) if self._any_service(labels[0]) else None
        if len(labels) == 3:
            return self._service(name, labels[0], labels[1], qtype)
        if len(labels) == 4:
            return self._endpoint(name, labels[0], labels[1], labels[2], qtype)
        if len(labels) == 5 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._port_srv(name, labels[0][1:], labels[1][1:], labels[2], labels[3], qtype)
        return None

    def _svc(self, ns: str, svc: str) -> dict | None:
        return self.services.get_by_name(ns, svc) if self.services is not None else None

    def _any_service(self, ns: str) -> bool:
        return self.services is not None and bool(self.services.keys_by_index("namespace", ns))

    def _ready_addresses(self, ns: str, svc: str) -> list[tuple[dict, list[dict]]]:
        """(address, ports) of every ready endpoint of a service."""
        ep = self.endpoints.get_by_name(ns, svc) if self.endpoints is not None else None
        out = []
        for subset in (ep or {}).get("subsets") or ():
            for addr in subset.get("addresses") or ():
                out.append((addr, subset.get("ports") or []))
        return out

    def _ip_records(self, name: str, ips: list[str], qtype: int) -> list[Record]:
        recs = []
        for ip in ips:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                continue
            if addr.version == 4 and qtype in (A, ANY):
                recs.append(Record(name, A, TTL, addr.packed))
            elif addr.version == 6 and qtype in (AAAA, ANY):
                recs.append(Record(name, AAAA, TTL, addr.packed))
        return recs

    def _endpoint_host(self, addr: dict) -> str:
        return addr.get("hostname") or addr["ip"].replace(".", "-").replace(":", "-")

    def _service(self, name: str, svc_name: str, ns: str, qtype: int) -> tuple[list[Record], list[Record]] | None:
        svc = self._svc(ns, svc_name)
        if svc is None:
            return None
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").rstrip(".")
            return [Record(name, CNAME, TTL, codec.encode_name(target))], []
        headless = spec.get("clusterIP") == "None"
        if qtype == SRV:
            answers: list[Record] = []
            additional: list[Record] = []
            if headless:
                for addr, ports in self._ready_addresses(ns, svc_name):
                    target = f"{self._endpoint_host(addr)}.{name}"
                    for p in ports:
                        answers.append(Record(name, SRV, TTL, codec.rdata_srv(0, 100, p["port"], target)))
                    additional += self._ip_records(target, [addr["ip"]], ANY)
            else:
                for p in spec.get("ports") or ():
                    answers.append(Record(name, SRV, TTL, codec.rdata_srv(0, 100, p["port"], name)))
                additional += self._ip_records(name, list(spec.get("clusterIPs") or [spec.get("clusterIP")]), ANY)
            return answers, additional
        if headless:
            ips = sorted({addr["ip"] for addr, _ in self._ready_addresses(ns, svc_name)})
        else:
            ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
        return self._ip_records(name, ips, qtype), []

    def _endpoint(self, name: str, host: str, svc_name: str, ns: str,
                  qtype: int) -> tuple[list[Record], list[Record]] | None:
        if self._svc(ns, svc_name) is None:
            return None
        ips = [addr["ip"] for addr, _ in self._ready_addresses(ns, svc_name) if self._endpoint_host(addr) == host]
        if not ips:
            return None
        return self._ip_records(name, ips, qtype), []

    def _port_srv(self, name: str, port_name: str, proto: str, svc_name: str, ns: str,
                  qtype: int) -> tuple[list[Record], list[Record]] | None:
        svc = self._svc(ns, svc_name)
        if svc is None:
            return None
        spec = svc.get("spec") or {}
        base = f"{svc_name}.{ns}.svc.{self.domain}"
        answers: list[Record] = []
        additional: list[Record] = []
        if spec.get("clusterIP") == "None":
            for addr, ports in self._ready_addresses(ns, svc_name):
                target = f"{self._endpoint_host(addr)}.{base}"
                for p in ports:
                    if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP").lower() == proto:
                        answers.append(Record(name, SRV, TTL, codec.rdata_srv(0, 100, p["port"], target)))
                        additional += self._ip_records(target, [addr["ip"]], ANY)
        else:
            for p in spec.get("ports") or ():
                if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP").lower() == proto:
                    answers.append(Record(name, SRV, TTL, codec.rdata_srv(0, 100, p["port"], base)))
            if answers:
                additional += self._ip_records(base, [spec.get("clusterIP") or ""], ANY)
        if not answers:
            return None
        return (answers if qtype in (SRV, ANY) else []), (additional if qtype in (SRV, ANY) else [])

    def _pod(self, name: str, dashed: str, qtype: int) -> tuple[list[Record], list[Record]] | None:
        ip = dashed.replace("-", ".") if dashed.count("-") == 3 else dashed.replace("-", ":")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return None
        return self._ip_records(name, [ip], qtype), []

    # -- forwarding --------------------------------------------------------------------------
    async def forward(self, q: Message, data: bytes) -> bytes:
        """Relay a query to the first upstream that answers; SERVFAIL if none does."""
        self.forwarded += 1
        loop = asyncio.get_running_loop()
        for host, port in self.upstreams:
            fut: asyncio.Future = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda fut=fut: _Reply(fut),
                                                                   remote_addr=(host, port))
            except OSError as e:
                log.debug("upstream %s:%s: %s", host, port, e)
                continue
            try:
                transport.sendto(data)
                reply = await asyncio.wait_for(fut, FORWARD_TIMEOUT)
                if len(reply) >= 2 and reply[:2] == data[:2]:
                    return reply
            except (TimeoutError, OSError) as e:
                log.debug("upstream %s:%s: %s", host, port, e)
            finally:
                transport.close()
        return codec.response(q, codec.SERVFAIL, authoritative=False)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                resp = await self.handle(data, 65535)
                if resp is None:
                    break
                writer.write(struct.pack("!H", len(resp)) + resp)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, dns: ClusterDNS):
        self.dns = dns
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        asyncio.get_running_loop().create_task(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: Any) -> None:
        try:
            resp = await self.dns.handle(data, UDP_MAX)
        except Exception:
            log.exception("dns query failed")
            return
        if resp is not None:
            self.transport.sendto(resp, addr)


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future):
        self.fut = fut

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


DNS_SERVICE_IP_OFFSET = 10      # 10.43.0.10 in the default service CIDR, as kube-dns has


async def publish_dns_service(client: Client, ip: str, port: int, cluster_ip: str = "") -> dict:
    """The `kube-dns` service in kube-system: port 53 (UDP and TCP) with Endpoints at the DNS
    server's address, so pods reach it through the proxy at a stable ClusterIP."""
    from ..api.errors import StatusError
    svcs, eps = client.resource("services"), client.resource("endpoints")
    ports = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port}]
    body: dict[str, Any] = {"metadata": {"name": "kube-dns", "namespace": "kube-system",
                                         "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
                            "spec": {"ports": ports}}
    if cluster_ip:
        body["spec"]["clusterIP"] = cluster_ip
    try:
        svc = await client.create(svcs, "kube-system", body)
    except StatusError as e:
        if e.code != 409:
            raise
        svc = await client.patch(svcs, "kube-system", "kube-dns", {"spec": {"ports": ports}})
    endpoints = {"metadata": {"name": "kube-dns", "namespace": "kube-system"},
                 "subsets": [{"addresses": [{"ip": ip}],
                              "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                                        {"name": "dns-tcp", "port": port, "protocol": "TCP"}]}]}
    try:
        await client.create(eps, "kube-system", endpoints)
    except StatusError as e:
        if e.code != 409:
            raise
        await client.patch(eps, "kube-system", "kube-dns", {"subsets": endpoints["subsets"]})
    return svc
