"""Two apiservers over one etcd allocate from the same ranges without ever handing out a
ClusterIP or NodePort twice (allocations are guarded creates of store keys)."""

from __future__ import annotations

import asyncio

import pytest

from ketch.api.errors import StatusError
from ketch.client.rest import Client
from tests.conftest import start_cluster
from tests.ha.etcd_cluster import start_etcd

from .conftest import service


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    base = tmp_path_factory.mktemp("alloc-etcd")
    etcd = start_etcd(base / "etcd", size=1)
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(start_cluster(base / name, extra=["--datastore", etcd.url]))
        yield servers
    finally:
        for s in servers:
            s.stop()
        etcd.stop()


async def test_concurrent_creates_on_two_servers(two_servers):
    a, b = (Client(s.url) for s in two_servers)
    try:
        ri = a.resource("services")
        await a.create(a.resource("namespaces"), None, {"metadata": {"name": "race"}})
        await b.get(b.resource("namespaces"), None, "race")     # a consistent read: b's cache has it now
        # Both servers race for the same requested values: exactly one wins each.
        wins = await asyncio.gather(*(c.create(ri, "race", service(f"want-{i}", "NodePort",
                                                                    [{"port": 80, "nodePort": 32000}],
                                                                    clusterIP="10.43.250.250"))
                                      for i, c in enumerate((a, b, a, b))), return_exceptions=True)
        assert sum(not isinstance(w, BaseException) for w in wins) == 1, wins
        assert all(isinstance(w, StatusError) and w.code == 422 for w in wins if isinstance(w, BaseException)), wins
        made = await asyncio.gather(*((a if i % 2 else b).create(ri, "race", service(f"s{i}", "NodePort"))
                                      for i in range(30)))
        ips = {s["spec"]["clusterIP"] for s in made}
        ports = {s["spec"]["ports"][0]["nodePort"] for s in made}
        assert len(ips) == 30 and len(ports) == 30 and "10.43.250.250" not in ips and 32000 not in ports
        # Released on one server, free on the other.
        winner = next(w for w in wins if not isinstance(w, BaseException))
        await b.delete(ri, "race", winner["metadata"]["name"])
        again = await a.create(ri, "race", service("again", "NodePort", [{"port": 80, "nodePort": 32000}],
                                                   clusterIP="10.43.250.250"))
        assert again["spec"]["clusterIP"] == "10.43.250.250"
    finally:
        await a.close()
        await b.close()
