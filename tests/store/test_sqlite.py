"""Both store backends honour the etcd-style contract: embedded SQLite and the real etcd.

Revisions are asserted relative to the store's revision when the test starts (0 on a new
SQLite file; etcd starts at 1 and the etcd fixture shares one server between tests).
"""

import asyncio

import pytest

from ketch.store.base import (
    DELETE,
    PUT,
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatchError,
)
from ketch.store.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def etcd_server(tmp_path_factory):
    from tests.ha.etcd_cluster import start_etcd
    cluster = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield cluster
    cluster.stop()


async def _etcd_store(cluster):
    from ketch.store.etcd import EtcdStore
    s = EtcdStore(cluster.endpoints)
    await s.start()
    # A clean keyspace for each test (revisions keep counting).
    await s._call("/v3/kv/deleterange", {"key": "AA==", "range_end": "AA=="}, write=True)
    return s


@pytest.fixture(params=["sqlite", "etcd"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(str(tmp_path / "state.db"))
        await s.start()
    else:
        s = await _etcd_store(request.getfixturevalue("etcd_server"))
    s.base = await s.current_revision()
    yield s
    await s.close()


async def test_create_get_update_delete(store):
    b = store.base
    r1 = await store.create("/registry/pods/default/a", b"1")
    assert r1 == b + 1
    with pytest.raises(KeyExistsError):
        await store.create("/registry/pods/default/a", b"x")
    kv = await store.get("/registry/pods/default/a")
    assert (kv.value, kv.create_revision, kv.mod_revision) == (b"1", b + 1, b + 1)
    r2 = await store.update("/registry/pods/default/a", b"2", r1)
    assert r2 == b + 2
    with pytest.raises(RevisionMismatchError) as e:
        await store.update("/registry/pods/default/a", b"3", r1)
    assert e.value.actual == b + 2
    with pytest.raises(KeyNotFoundError):
        await store.update("/registry/pods/default/nope", b"3", 0)
    rev, last = await store.delete("/registry/pods/default/a", r2)
    assert rev == b + 3 and last.value == b"2"
    assert await store.get("/registry/pods/default/a") is None
    assert await store.current_revision() == b + 3


async def test_range_is_prefix_scoped_and_ordered(store):
    for k in ["/registry/pods/b/x", "/registry/pods/a/y", "/registry/podsx/a", "/registry/pods/a/a"]:
        await store.create(k, k.encode())
    kvs, rev = await store.range("/registry/pods/")
    assert [kv.key for kv in kvs] == ["/registry/pods/a/a", "/registry/pods/a/y", "/registry/pods/b/x"]
    assert rev == store.base + 4


async def test_concurrent_writes_group_commit_unique_revisions(store):
    b = store.base
    revs = await asyncio.gather(*(store.create(f"/k/{i}", b"v") for i in range(300)))
    assert sorted(revs) == list(range(b + 1, b + 301))
    # conflicting updates of one key: exactly one wins per revision
    results = await asyncio.gather(*(store.update("/k/0", b"n", revs[0]) for _ in range(5)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, RevisionMismatchError) for r in results) == 4


async def test_watch_history_then_live_and_compaction(store):
    b = store.base
    await store.create("/a/1", b"1")
    await store.create("/b/1", b"x")
    await store.update("/a/1", b"2", b + 1)
    got = []

    async def consume():
        async for batch in store.watch("/a/", b):
            got.extend(batch)
            if len(got) >= 3:
                return
    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await store.delete("/a/1")
    await asyncio.wait_for(task, 5)
    assert [(e.type, e.key, e.revision, e.value) for e in got] == [
        (PUT, "/a/1", b + 1, b"1"), (PUT, "/a/1", b + 3, b"2"), (DELETE, "/a/1", b + 4, b"2")]
    await store.compact(b + 3)
    with pytest.raises(CompactedError):
        async for _ in store.watch("/a/", b + 1):
            pass
    # from a revision at or after the compaction point still works
    agen = store.watch("/a/", b + 3)
    batch = await asyncio.wait_for(agen.__anext__(), 5)
    assert [e.revision for e in batch] == [b + 4]
    await agen.aclose()


async def test_reopen_keeps_revision_and_data(tmp_path):
    s = SQLiteStore(str(tmp_path / "s.db"))
    await s.start()
    await s.create("/x", b"1")
    await s.delete("/x")
    await s.compact(2)
    await s.close()
    s2 = SQLiteStore(str(tmp_path / "s.db"))
    await s2.start()
    assert await s2.current_revision() == 2
    assert await s2.create("/y", b"1") == 3
    assert s2.compacted_revision() == 2
    await s2.close()
