"""etcd-only behaviour of EtcdStore (the shared contract is tested in test_sqlite.py for both).

Real etcd members on loopback ports: endpoint fail-over of reads, writes and watches, several
stores (apiservers) over one etcd, compaction seen from another store, paged ranges, a write
whose answer is lost, TLS with client certificates.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress

import pytest

from ketch.store.base import DELETE, PUT, CompactedError, KeyExistsError, RevisionMismatchError
from ketch.store.etcd import EtcdStore, EtcdUnavailableError
from tests.conftest import free_port
from tests.ha.etcd_cluster import start_etcd


@pytest.fixture(scope="module")
def etcd1(tmp_path_factory):
    c = start_etcd(tmp_path_factory.mktemp("etcd1"))
    yield c
    c.stop()


async def _store(endpoints: list[str], **kw) -> EtcdStore:
    s = EtcdStore(endpoints, **kw)
    await s.start()
    return s


def test_from_url():
    s = EtcdStore.from_url("etcd://10.0.0.1:2379,10.0.0.2,[::1]:2380")
    assert s.endpoints == ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://[::1]:2380"]
    t = EtcdStore.from_url("etcds://e1:2379/?ca=/tmp/ca.crt&timeout=3")
    assert t.endpoints == ["https://e1:2379"] and t.timeout == 3.0
    with pytest.raises(ValueError):
        EtcdStore.from_url("etcd://h:2379?cert=/only/cert.pem")
    with pytest.raises(ValueError):
        EtcdStore.from_url("etcd://")
    with pytest.raises(ValueError):
        EtcdStore.from_url("http://h:2379")


async def test_unreachable_etcd_fails_with_a_clear_error():
    s = EtcdStore([f"http://127.0.0.1:{free_port()}"], timeout=1.0)
    with pytest.raises(EtcdUnavailableError, match="etcd unavailable"):
        await s.start()
    await s.close()


async def test_two_stores_share_revisions_watches_and_compaction(etcd1):
    a, b = await _store(etcd1.endpoints), await _store(etcd1.endpoints)
    try:
        base = await a.current_revision()
        agen = b.watch("/registry/configmaps/", base)
        obj = {"kind": "ConfigMap"}
        r1 = await a.create("/registry/configmaps/ns/x", b"1", obj)
        with pytest.raises(KeyExistsError):
            await b.create("/registry/configmaps/ns/x", b"2")
        with pytest.raises(RevisionMismatchError):
            await b.update("/registry/configmaps/ns/x", b"2", r1 - 1)
        r2 = await b.update("/registry/configmaps/ns/x", b"2", r1)
        await a.delete("/registry/configmaps/ns/x", r2)
        got = []
        while len(got) < 3:
            got.extend(await asyncio.wait_for(agen.__anext__(), 5))
        await agen.aclose()
        assert [(e.type, e.revision, e.value, e.create_revision) for e in got] == [
            (PUT, r1, b"1", r1), (PUT, r2, b"2", r1), (DELETE, r2 + 1, b"2", r1)]
        assert got[0].obj is None  # written by another store: decoded by the consumer
        # a store hands its own written object to its own watch
        own = a.watch("/registry/configmaps/", r2 + 1)
        r3 = await a.create("/registry/configmaps/ns/y", b"{}", obj)
        ev = (await asyncio.wait_for(own.__anext__(), 5))[0]
        assert ev.revision == r3 and ev.obj is obj
        await own.aclose()
        # compaction by one store: the other's watch from before it gets CompactedError from etcd
        await a.compact(r2)
        assert b.compacted_revision() < r2
        with pytest.raises(CompactedError):
            async for _ in b.watch("/registry/", base):
                pass
        assert b.compacted_revision() == r2
        c = await _store(etcd1.endpoints)  # a new store learns the compaction point at start
        assert c.compacted_revision() == r2
        await c.compact(r2 - 1)  # compacting an older revision is a no-op, not an error
        await c.close()
    finally:
        await a.close()
        await b.close()


async def test_range_pages_read_one_snapshot(etcd1, monkeypatch):
    import ketch.store.etcd as etcd_mod
    monkeypatch.setattr(etcd_mod, "RANGE_PAGE", 7)
    s = await _store(etcd1.endpoints)
    try:
        await asyncio.gather(*(s.create(f"/registry/pages/{i:03d}", b"v" * 100) for i in range(50)))
        await s.create("/registry/pagesx", b"outside")
        kvs, rev = await s.range("/registry/pages/")
        assert [kv.key for kv in kvs] == [f"/registry/pages/{i:03d}" for i in range(50)]
        assert rev == await s.current_revision()
    finally:
        await s.close()


async def _lossy_proxy(target_port: int) -> tuple[asyncio.Server, int, list[int]]:
    """A TCP proxy that forwards each request to etcd but drops the answer (the write applies)."""
    seen: list[int] = []

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
        head = await cr.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        uw.write(head + await cr.readexactly(length))
        await uw.drain()
        await ur.read(1)  # etcd has answered: the write applied
        seen.append(1)
        uw.close()
        cw.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1], seen


async def test_write_whose_answer_is_lost_is_retried_and_recognised(etcd1):
    port = etcd1.members[0].client_port
    srv, pport, seen = await _lossy_proxy(port)
    s = await _store([f"http://127.0.0.1:{port}"])
    try:
        s.endpoints.insert(0, f"http://127.0.0.1:{pport}")
        s._ep = 0
        rev = await s.create("/registry/lost/a", b"mine")
        assert seen and (await s.get("/registry/lost/a")).mod_revision == rev
        s._ep = 0
        rev2 = await s.update("/registry/lost/a", b"mine2", rev)
        assert rev2 > rev and (await s.get("/registry/lost/a")).value == b"mine2"
        assert len(seen) == 2
    finally:
        srv.close()
        await s.close()


async def test_reads_writes_and_watch_survive_a_member_kill(tmp_path):
    cluster = start_etcd(tmp_path, size=3)
    s = await _store(cluster.endpoints)
    try:
        base = await s.current_revision()
        agen = s.watch("/registry/x/", base)
        revs = [await s.create(f"/registry/x/{i}", b"v") for i in range(5)]
        got = []
        while len(got) < 5:
            got.extend(await asyncio.wait_for(agen.__anext__(), 5))
        # everything (the watch included) talks to the first endpoint: kill that member
        assert s._ep == 0
        cluster.members[0].kill()
        revs += [await s.create(f"/registry/x/{i}", b"v") for i in range(5, 10)]
        while len(got) < 10:
            got.extend(await asyncio.wait_for(agen.__anext__(), 10))
        assert [e.revision for e in got] == revs  # resumed on another member without a gap
        kvs, _ = await s.range("/registry/x/")
        assert len(kvs) == 10
        await agen.aclose()
    finally:
        await s.close()
        cluster.stop()


def _tls_files(d) -> dict[str, str]:
    """A CA, an etcd serving certificate (also a client one: etcd's gateway reuses it) and a client one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    files: dict[str, str] = {}

    def save(name: str, cert, key) -> None:
        files[name + ".crt"] = str(d / f"{name}.crt")
        files[name + ".key"] = str(d / f"{name}.key")
        (d / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def build(cn: str, issuer, signer, pub, ca: bool, sans=None):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(issuer).public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("etcd-ca", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")]), ca_key,
               ca_key.public_key(), True)
    save("ca", ca, ca_key)
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        save(name, build(name, ca.subject, ca_key, key.public_key(), False, sans), key)
    return files


async def test_tls_with_client_certificates(tmp_path):
    import subprocess

    from tests.ha.etcd_cluster import ETCD, require_etcd
    require_etcd()
    f = _tls_files(tmp_path)
    port, peer = free_port(), free_port()
    ep = f"https://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [ETCD, "--name", "tls", "--data-dir", str(tmp_path / "data"), "--listen-client-urls", ep,
         "--advertise-client-urls", ep, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"tls=http://127.0.0.1:{peer}",
         "--cert-file", f["server.crt"], "--key-file", f["server.key"],
         "--trusted-ca-file", f["ca.crt"], "--client-cert-auth", "--log-level", "warn"],
        stdout=open(tmp_path / "etcd.log", "wb"), stderr=subprocess.STDOUT)
    try:
        url = f"etcds://127.0.0.1:{port}?ca={f['ca.crt']}&cert={f['client.crt']}&key={f['client.key']}"
        s = EtcdStore.from_url(url)
        for _ in range(100):  # etcd takes a moment to serve
            try:
                await s.start()
                break
            except EtcdUnavailableError:
                await asyncio.sleep(0.1)
        rev = await s.create("/registry/tls/a", b"1")
        agen = s.watch("/registry/tls/", rev - 1)
        assert [e.value for e in await asyncio.wait_for(agen.__anext__(), 5)] == [b"1"]
        await agen.aclose()
        await s.close()
        # without a client certificate etcd refuses the connection
        nocert = EtcdStore.from_url(f"etcds://127.0.0.1:{port}?ca={f['ca.crt']}&timeout=1")
        with pytest.raises(EtcdUnavailableError):
            await nocert.start()
        await nocert.close()
    finally:
        proc.kill()
        proc.wait(10)


async def test_concurrent_revision_reads_share_requests_sent_after_they_asked(etcd1):
    s = await _store(etcd1.endpoints)
    calls = 0
    real = s._call

    async def counting(path, body, write=False):
        nonlocal calls
        calls += 1
        return await real(path, body, write)
    s._call = counting
    try:
        revs = await asyncio.gather(*(s.current_revision() for _ in range(100)))
        assert calls <= 2 and len(set(revs)) == 1
        # a reader that asks after a write was acknowledged always sees it
        for i in range(20):
            slow = asyncio.ensure_future(s.current_revision())  # in flight while the write lands
            r = await s.create(f"/registry/linear/{i}", b"v")
            assert await s.current_revision() >= r
            await slow
    finally:
        await s.close()
