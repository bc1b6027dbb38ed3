"""Garbage collection in all three propagation modes, namespace deletion, default ServiceAccount."""

from __future__ import annotations

import asyncio

import pytest

from ketch.api.errors import StatusError

from .conftest import deployment, kubectl
from .kubelet import Kubelet, eventually


async def _names(api, ri, ns, selector=""):
    return sorted(o["metadata"]["name"] for o in (await api.list(ri, ns, selector))["items"])


async def _gone(api, ri, ns, name):
    try:
        await api.get(ri, ns, name)
        return False
    except StatusError as e:
        return e.code == 404


async def test_cascade_background_foreground_orphan(cluster, api, ns):
    d_ri, rs_ri, pod_ri = api.resource("deployments", "apps"), api.resource("replicasets", "apps"), api.resource("pods")
    kubelet = Kubelet(api, ns, ["n1"])
    await kubelet.start()
    try:
        for name in ("bg", "fg", "or"):
            await api.create(d_ri, ns, deployment(name, 2))
        for name in ("bg", "fg", "or"):
            await eventually(lambda n=name: _count_ready(api, ns, n, 2))
        # Background (kubectl's default): owner gone at once, dependents follow
        await kubectl(cluster, "-n", ns, "delete", "deployment/bg", "--wait=false")
        await eventually(lambda: _names_empty(api, rs_ri, ns, "app=bg"))
        await eventually(lambda: _names_empty(api, pod_ri, ns, "app=bg"))
        # Foreground: the owner stays (finalizer) until the blocking dependents are gone
        seen_blocked = []

        def watch_owner(old, new):
            if new["metadata"]["name"] == "fg" and new["metadata"].get("deletionTimestamp"):
                seen_blocked.append(list(new["metadata"].get("finalizers") or ()))
        d_inf = __import__("ketch.client.informer", fromlist=["Informer"]).Informer(api, d_ri, ns)
        d_inf.add_handlers(on_update=watch_owner)
        d_inf.start()
        await asyncio.wait_for(d_inf.synced.wait(), 5)
        await kubectl(cluster, "-n", ns, "delete", "deployment/fg", "--cascade=foreground", "--timeout=30s")
        assert await _gone(api, d_ri, ns, "fg")
        assert await _names(api, rs_ri, ns, "app=fg") == []
        assert await _names(api, pod_ri, ns, "app=fg") == []
        assert seen_blocked and "foregroundDeletion" in seen_blocked[0]
        await d_inf.stop()
        # Orphan: the owner goes, dependents stay without the owner reference
        rs_before = await _names(api, rs_ri, ns, "app=or")
        pods_before = await _names(api, pod_ri, ns, "app=or")
        await kubectl(cluster, "-n", ns, "delete", "deployment/or", "--cascade=orphan", "--timeout=30s")
        assert await _gone(api, d_ri, ns, "or")
        await asyncio.sleep(0.5)
        rss = (await api.list(rs_ri, ns, "app=or"))["items"]
        assert [r["metadata"]["name"] for r in rss] == rs_before
        assert not rss[0]["metadata"].get("ownerReferences")
        assert await _names(api, pod_ri, ns, "app=or") == pods_before
    finally:
        await kubelet.stop()


async def test_dangling_owner_reference_is_collected(api, ns):
    cm = api.resource("configmaps")
    owner = await api.create(cm, ns, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    await api.create(cm, ns, {"metadata": {"name": "dep", "ownerReferences": [ref]}})
    other = await api.create(cm, ns, {"metadata": {"name": "other"}})
    ref2 = {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other["metadata"]["uid"]}
    await api.create(cm, ns, {"metadata": {"name": "two-owners", "ownerReferences": [ref, ref2]}})
    # a reference to an owner that never existed: collected
    await api.create(cm, ns, {"metadata": {"name": "ghost", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "nope", "uid": "0000"}]}})
    await eventually(lambda: _gone(api, cm, ns, "ghost"))
    await asyncio.sleep(0.3)
    assert not await _gone(api, cm, ns, "dep")
    await api.delete(cm, ns, "owner")
    await eventually(lambda: _gone(api, cm, ns, "dep"))
    # a dependent with another live owner survives and loses the dangling reference

    async def trimmed():
        o = await api.get(cm, ns, "two-owners")
        return [r["uid"] for r in o["metadata"].get("ownerReferences") or ()] == [other["metadata"]["uid"]]
    await eventually(trimmed)


async def test_namespace_deletion_empties_it_and_default_serviceaccount(cluster, api):
    ns_ri = api.resource("namespaces")
    await api.create(ns_ri, None, {"metadata": {"name": "doomed"}})
    sa_ri = api.resource("serviceaccounts")
    await eventually(lambda: _exists(api, sa_ri, "doomed", "default"))
    await api.create(api.resource("deployments", "apps"), "doomed", deployment("web", 3))
    await api.create(api.resource("configmaps"), "doomed", {"metadata": {"name": "cfg"}})
    await eventually(lambda: _count_pods(api, "doomed", 3))
    await kubectl(cluster, "delete", "namespace", "doomed", "--wait=false")
    assert (await api.get(ns_ri, None, "doomed"))["status"]["phase"] == "Terminating"

    async def emptied():
        for ri in (api.resource("pods"), api.resource("configmaps"), api.resource("deployments", "apps"),
                   api.resource("replicasets", "apps"), sa_ri):
            if (await api.list(ri, "doomed"))["items"]:
                return False
        return True
    await eventually(emptied)
    with pytest.raises(StatusError) as e:   # creates in a terminating namespace are refused
        await api.create(api.resource("configmaps"), "doomed", {"metadata": {"name": "late"}})
    assert e.value.code == 403


async def test_namespace_goes_away(cluster, api):
    ns_ri = api.resource("namespaces")
    await api.create(ns_ri, None, {"metadata": {"name": "doomed2"}})
    await api.create(api.resource("configmaps"), "doomed2", {"metadata": {"name": "cfg"}})
    await kubectl(cluster, "delete", "namespace", "doomed2", "--wait=false")
    await eventually(lambda: _gone(api, ns_ri, None, "doomed2"), timeout=5)


async def _exists(api, ri, ns, name):
    return not await _gone(api, ri, ns, name)


async def _names_empty(api, ri, ns, sel):
    return not await _names(api, ri, ns, sel)


async def _count_pods(api, ns, n):
    return len((await api.list(api.resource("pods"), ns))["items"]) == n


async def _count_ready(api, ns, name, n):
    d = await api.get(api.resource("deployments", "apps"), ns, name)
    return (d.get("status") or {}).get("availableReplicas") == n
