"""Cluster DNS inside `ketch up` on a loopback port, forwarding to a fake upstream on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading

import pytest

from ketch.dns import codec
from tests.conftest import free_port, start_cluster
from tests.controllers.kubelet import eventually

from .conftest import service
from .kubelet import ensure_node, run_pod

UPSTREAM_ANSWER = "198.51.100.7"


class FakeUpstream:
    """Answers every A query with UPSTREAM_ANSWER (never leaves the machine)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.names: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            q = codec.parse(data)
            self.names.append(q.questions[0].name)
            rec = codec.Record(q.questions[0].name, codec.A, 30, codec.rdata_a(UPSTREAM_ANSWER))
            self.sock.sendto(codec.response(q, codec.NOERROR, [rec], authoritative=False), addr)


@pytest.fixture(scope="module")
def upstream():
    u = FakeUpstream()
    yield u
    u.sock.close()


@pytest.fixture(scope="module")
def dns_port():
    return free_port()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, upstream, dns_port):
    c = start_cluster(tmp_path_factory.mktemp("ketch-dns"), extra=[
        "--cluster-dns", f"127.0.0.1:{dns_port}", "--dns-upstream", f"127.0.0.1:{upstream.port}"])
    yield c
    assert c.stop() == 0, c.log_path.read_text()[-3000:]


async def query(port: int, name: str, qtype: int, tcp: bool = False) -> tuple[int, list[tuple[str, int, bytes]]]:
    msg = codec.build_query(0x1234, name, qtype)
    loop = asyncio.get_running_loop()
    if tcp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(struct.pack("!H", len(msg)) + msg)
        n = struct.unpack("!H", await reader.readexactly(2))[0]
        data = await reader.readexactly(n)
        writer.close()
        return codec.parse_answers(data)
    fut = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            fut.set_result(data)
    t, _ = await loop.create_datagram_endpoint(P, remote_addr=("127.0.0.1", port))
    try:
        t.sendto(msg)
        data = await asyncio.wait_for(fut, 3)
    finally:
        t.close()
    assert data[:2] == msg[:2]
    return codec.parse_answers(data)


def _a(answers) -> list[str]:
    return sorted(str(ipaddress.IPv4Address(r)) for _, t, r in answers if t == codec.A)


async def test_service_records(api, ns, dns_port):
    await ensure_node(api)
    svc = await api.create(api.resource("services"), ns, service(
        "web", ports=[{"name": "http", "port": 80, "targetPort": 8080}], selector={"app": "web"}))
    name = f"web.{ns}.svc.cluster.local"
    rcode, ans = await eventually(lambda: _found(query(dns_port, name, codec.A)), 10)
    assert _a(ans) == [svc["spec"]["clusterIP"]]
    rcode, ans = await query(dns_port, f"_http._tcp.{name}", codec.SRV)
    assert rcode == 0 and ans[0][1] == codec.SRV
    prio, weight, port = struct.unpack("!3H", ans[0][2][:6])
    assert port == 80 and ans[0][2][6:].decode() == name
    rcode, ans = await query(dns_port, name, codec.A, tcp=True)
    assert _a(ans) == [svc["spec"]["clusterIP"]]
    rcode, ans = await query(dns_port, name, codec.AAAA)
    assert rcode == 0 and ans == []                                  # exists, no IPv6 record
    rcode, ans = await query(dns_port, f"nope.{ns}.svc.cluster.local", codec.A)
    assert rcode == codec.NXDOMAIN and ans == []
    rcode, _ = await query(dns_port, f"_http._udp.{name}", codec.SRV)
    assert rcode == codec.NXDOMAIN
    rcode, ans = await query(dns_port, f"10-1-2-3.{ns}.pod.cluster.local", codec.A)
    assert _a(ans) == ["10.1.2.3"]


async def test_headless_service_answers_pod_ips(api, ns, dns_port):
    await ensure_node(api)
    await api.create(api.resource("services"), ns, service(
        "db", ports=[{"name": "pg", "port": 5432}], selector={"app": "db"}, clusterIP="None"))
    await run_pod(api, ns, "db-0", {"app": "db"}, "10.5.0.1", hostname="db-0", subdomain="db")
    await run_pod(api, ns, "db-1", {"app": "db"}, "10.5.0.2")
    await run_pod(api, ns, "db-2", {"app": "db"}, "10.5.0.3", ready=False)
    name = f"db.{ns}.svc.cluster.local"

    async def ips():
        return _a((await query(dns_port, name, codec.A))[1])
    await eventually(lambda: _eq(ips(), ["10.5.0.1", "10.5.0.2"]), 10)   # not-ready pods left out
    rcode, ans = await query(dns_port, f"db-0.{name}", codec.A)
    assert _a(ans) == ["10.5.0.1"]
    rcode, ans = await query(dns_port, f"_pg._tcp.{name}", codec.SRV)
    targets = sorted(r[6:].decode() for _, t, r in ans if t == codec.SRV)
    assert targets == [f"10-5-0-2.{name}", f"db-0.{name}"]


async def test_external_name_and_forwarding(api, ns, dns_port, upstream):
    await api.create(api.resource("services"), ns, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.org"}})
    name = f"ext.{ns}.svc.cluster.local"
    rcode, ans = await eventually(lambda: _found(query(dns_port, name, codec.A)), 10)
    assert ans[0][1] == codec.CNAME and ans[0][2] == b"db.example.org"
    rcode, ans = await query(dns_port, "www.example.org", codec.A)
    assert rcode == 0 and _a(ans) == [UPSTREAM_ANSWER]
    assert "www.example.org" in upstream.names
    assert not any(n.endswith("cluster.local") for n in upstream.names)


async def _found(aw):
    rcode, ans = await aw
    return (rcode, ans) if rcode == 0 and ans else None


async def _eq(aw, want):
    return (await aw) == want


async def test_kube_dns_service_routes_to_the_server(api, dns_port):
    from ketch.dns.server import publish_dns_service
    from ketch.proxy.nft import build_ruleset
    svc = await publish_dns_service(api, "192.0.2.53", dns_port, "10.43.0.10")
    svc = await publish_dns_service(api, "192.0.2.53", dns_port, "10.43.0.10")      # idempotent
    assert svc["spec"]["clusterIP"] == "10.43.0.10"
    ep = await api.get(api.resource("endpoints"), "kube-system", "kube-dns")
    assert ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.53"}]
    rs = build_ruleset([svc], {"kube-system/kube-dns": ep})
    assert {"10.43.0.10 . udp . 53", "10.43.0.10 . tcp . 53"} <= set(rs.service_ips)
    assert sum(f"dnat ip to 192.0.2.53:{dns_port}" in r for rules in rs.chains.values() for r in rules) == 2
    rcode, ans = await eventually(lambda: _found(query(dns_port, "kube-dns.kube-system.svc.cluster.local",
                                                       codec.A)), 10)
    assert _a(ans) == ["10.43.0.10"]
