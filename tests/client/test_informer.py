"""Informers stay in sync through list, watch, dropped watches and re-lists; the work queue dedupes."""

from __future__ import annotations

import asyncio

from ketch.client.informer import Informer, index_by_owner_uid
from ketch.client.rest import Client
from ketch.client.workqueue import WorkQueue


async def _eventually(cond, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_informer_tracks_changes_and_indexes(cluster):
    client = Client(cluster.url)
    cms = client.resource("configmaps")
    await client.create(client.resource("namespaces"), None, {"metadata": {"name": "inf1"}})
    owner = await client.create(cms, "inf1", {"metadata": {"name": "o"}})   # a real owner: the GC keeps "a"
    uid = owner["metadata"]["uid"]
    await client.create(cms, "inf1", {"metadata": {"name": "a", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": uid}]}})
    inf = Informer(client, cms, "inf1", indexers={"owner": index_by_owner_uid})
    seen: list[tuple[str, str]] = []
    inf.add_handlers(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                     on_update=lambda old, new: seen.append(("update", new["metadata"]["name"])),
                     on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])))
    inf.start()
    await asyncio.wait_for(inf.synced.wait(), 5)
    assert [o["metadata"]["name"] for o in inf.by_index("owner", uid)] == ["a"]
    await client.create(cms, "inf1", {"metadata": {"name": "b"}})
    await client.patch(cms, "inf1", "a", {"metadata": {"ownerReferences": None}})
    await client.delete(cms, "inf1", "b")
    await _eventually(lambda: len(seen) >= 5)
    assert seen == [("add", "a"), ("add", "o"), ("add", "b"), ("update", "a"), ("delete", "b")]
    assert inf.by_index("owner", uid) == []
    assert set(inf.items) == {"inf1/a", "inf1/o"}
    await inf.stop()
    await client.close()


async def test_work_queue_dedupes_and_requeues_dirty_keys():
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    k = await q.get()
    assert k == "a"
    q.add("a")              # re-added while processing: comes back after done
    assert len(q) == 1
    q.done("a")
    assert [await q.get(), await q.get()] == ["b", "a"]
    q.done("b")
    q.done("a")
    q.add_rate_limited("c")
    q.add_rate_limited("c")
    assert q.retries("c") == 2
    assert await asyncio.wait_for(q.get(), 1) == "c"
    q.shutdown()
    assert await q.get() is None


async def test_many_watches_never_starve_requests(cluster):
    """More watches than the request pool has connections (64): requests still go through, and every
    watch sees its object's change (an agent watches each configMap and secret of its pods alone)."""
    client = Client(cluster.url)
    cms = client.resource("configmaps")
    await client.create(client.resource("namespaces"), None, {"metadata": {"name": "inf-many"}})
    n = 80
    for i in range(n):
        await client.create(cms, "inf-many", {"metadata": {"name": f"c{i}"}, "data": {"v": "0"}})
    infs = []
    changed: set[str] = set()
    for i in range(n):
        inf = Informer(client, cms, "inf-many", field_selector=f"metadata.name=c{i}")
        inf.add_handlers(on_update=lambda old, new: changed.add(new["metadata"]["name"]))
        inf.start()
        infs.append(inf)
    try:
        await asyncio.wait_for(asyncio.gather(*(inf.synced.wait() for inf in infs)), 30)
        assert [len(inf.list()) for inf in infs] == [1] * n
        # every watch is established and holds its connection; a request still gets one at once
        await asyncio.wait_for(client.get(cms, "inf-many", "c0"), 10)
        for i in range(n):
            await asyncio.wait_for(client.patch(cms, "inf-many", f"c{i}", {"data": {"v": "1"}}), 10)
        await _eventually(lambda: len(changed) == n, timeout=30)
    finally:
        for inf in infs:
            await inf.stop()
        await client.close()
