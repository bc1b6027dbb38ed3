"""ClusterIP and NodePort allocation in the apiserver, the `kubernetes` service, Service validation."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from ketch.api.errors import StatusError
from tests.conftest import start_cluster

from .conftest import service


async def test_kubernetes_service_points_at_apiserver(api, cluster):
    svc = await api.get(api.resource("services"), "default", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    assert svc["spec"]["ports"][0]["targetPort"] == cluster.port


async def test_kubernetes_endpoints_at_advertised_address(tmp_path):
    from ketch.api.registry import REGISTRY
    from ketch.apiserver.allocator import ensure_kubernetes_service
    from ketch.apiserver.resources import ResourceService, ensure_namespaces
    from ketch.store.sqlite import SQLiteStore
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.start()
    svc = ResourceService(store, REGISTRY)
    await svc.start()
    try:
        await ensure_namespaces(svc, ["default"])
        await ensure_kubernetes_service(svc, "192.0.2.10:6443")
        await ensure_kubernetes_service(svc, "192.0.2.10:6443")   # idempotent
        s = await svc.get(REGISTRY.get("", "v1", "services"), "default", "kubernetes")
        assert s.obj["spec"]["clusterIP"] == "10.43.0.1"
        ep = await svc.get(REGISTRY.get("", "v1", "endpoints"), "default", "kubernetes")
        assert ep.obj["subsets"][0]["addresses"] == [{"ip": "192.0.2.10"}]
        assert ep.obj["subsets"][0]["ports"][0]["port"] == 6443
        sl = await svc.get(REGISTRY.get("discovery.k8s.io", "v1", "endpointslices"), "default", "kubernetes")
        assert sl.obj["endpoints"][0]["addresses"] == ["192.0.2.10"]
    finally:
        await svc.close()
        await store.close()


async def test_concurrent_creates_get_distinct_addresses_and_ports(api, ns):
    ri = api.resource("services")
    made = await asyncio.gather(*(api.create(ri, ns, service(f"s{i}", "NodePort")) for i in range(40)))
    ips = [s["spec"]["clusterIP"] for s in made]
    ports = [s["spec"]["ports"][0]["nodePort"] for s in made]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    net = ipaddress.ip_network("10.43.0.0/16")
    assert all(ipaddress.ip_address(ip) in net and ip != "10.43.0.1" for ip in ips)
    assert all(30000 <= p <= 32767 for p in ports)
    assert all(s["spec"]["clusterIPs"] == [s["spec"]["clusterIP"]] for s in made)


async def _free_values(api) -> tuple[int, str]:
    """A NodePort and a ClusterIP no service holds yet (earlier tests allocate at random)."""
    items = (await api.list(api.resource("services")))["items"]
    ports = {p.get("nodePort") for s in items for p in s["spec"].get("ports", [])}
    ips = {s["spec"].get("clusterIP") for s in items}
    port = next(p for p in range(31234, 32767) if p not in ports)
    ip = next(f"10.43.200.{i}" for i in range(7, 250) if f"10.43.200.{i}" not in ips)
    return port, ip


async def test_requested_values_taken_refused_released_on_delete(api, ns):
    ri = api.resource("services")
    port, ip = await _free_values(api)
    await api.create(ri, ns, service("a", "NodePort", [{"port": 80, "nodePort": port}], clusterIP=ip))
    with pytest.raises(StatusError) as e:
        await api.create(ri, ns, service("b", clusterIP=ip))
    assert e.value.code == 422 and "already allocated" in str(e.value)
    with pytest.raises(StatusError) as e:
        await api.create(ri, ns, service("b", "NodePort", [{"port": 80, "nodePort": port}]))
    assert e.value.code == 422 and "already allocated" in str(e.value)
    with pytest.raises(StatusError) as e:
        await api.create(ri, ns, service("b", clusterIP="10.99.0.5"))
    assert e.value.code == 422 and "valid range" in str(e.value)
    # A failed create leaks nothing: the same values are still free for another service.
    await api.delete(ri, ns, "a")
    b = await api.create(ri, ns, service("b", "NodePort", [{"port": 80, "nodePort": port}], clusterIP=ip))
    assert b["spec"]["clusterIP"] == ip


async def test_type_changes_allocate_and_release_node_ports(api, ns):
    ri = api.resource("services")
    a = await api.create(ri, ns, service("a"))
    ip = a["spec"]["clusterIP"]
    a = await api.patch(ri, ns, "a", {"spec": {"type": "NodePort"}})
    np_ = a["spec"]["ports"][0]["nodePort"]
    assert a["spec"]["clusterIP"] == ip and 30000 <= np_ <= 32767
    a = await api.patch(ri, ns, "a", {"spec": {"type": "ClusterIP", "externalTrafficPolicy": None,
                                               "ports": [{"port": 80, "targetPort": 80, "nodePort": None}]}})
    assert "nodePort" not in a["spec"]["ports"][0]
    b = await api.create(ri, ns, service("b", "NodePort", [{"port": 80, "nodePort": np_}]))
    assert b["spec"]["ports"][0]["nodePort"] == np_
    h = await api.create(ri, ns, service("h", clusterIP="None"))
    assert h["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("port,msg", [
    ({"port": 0}, "spec.ports[0].port"),
    ({"port": 80, "protocol": "ICMP"}, "spec.ports[0].protocol"),
    ({"port": 80, "targetPort": "not_a_name!"}, "spec.ports[0].targetPort"),
    ({"port": 80, "targetPort": 70000}, "spec.ports[0].targetPort"),
])
async def test_port_validation(api, ns, port, msg):
    with pytest.raises(StatusError) as e:
        await api.create(api.resource("services"), ns, service("bad", ports=[port]))
    assert e.value.code == 422 and msg in str(e.value)


async def test_named_target_port_accepted(api, ns):
    s = await api.create(api.resource("services"), ns, service("n", ports=[{"port": 80, "targetPort": "http"}]))
    assert s["spec"]["ports"][0]["targetPort"] == "http"


def test_allocations_survive_restart(tmp_path):
    c = start_cluster(tmp_path / "k")
    try:
        c.kubectl("create", "service", "nodeport", "keep", "--tcp=80:80", "--node-port=30123")
        ip = c.kubectl("get", "svc", "keep", "-o", "jsonpath={.spec.clusterIP}").stdout
        assert c.stop() == 0
        c = start_cluster(tmp_path / "k", port=c.port)
        r = c.kubectl("create", "service", "nodeport", "other", "--tcp=80:80", "--node-port=30123", check=False)
        assert r.returncode != 0 and "already allocated" in r.stderr
        r = c.kubectl("create", "service", "clusterip", "other2", "--tcp=80:80", f"--clusterip={ip}", check=False)
        assert r.returncode != 0 and "already allocated" in r.stderr
        c.kubectl("delete", "service", "keep")
        c.kubectl("create", "service", "nodeport", "other", "--tcp=80:80", "--node-port=30123")
        assert c.kubectl("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}").stdout == "10.43.0.1"
    finally:
        c.stop()
