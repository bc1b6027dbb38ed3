"""The node proxy for real: nftables programmed inside a network namespace this test creates,
HTTP "pods" on addresses in that namespace, requests to ClusterIPs and NodePorts from inside it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ketch.client.rest import Client
from ketch.proxy.proxier import Proxier
from tests.controllers.kubelet import eventually

from .conftest import service
from .kubelet import ensure_node, run_pod, set_pod

TOOL = str(Path(__file__).with_name("netns_tool.py"))
NODE_IP = "10.99.0.1"
PODS = {"w1": "10.99.0.11", "w2": "10.99.0.12", "w3": "10.99.0.13"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
                                reason="needs root, nft and ip (scripts/ci-deps-net.sh)")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def netns():
    name = f"ketch-test-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    servers = None
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        # A veth pair inside the namespace: its addresses stand in for the node's and the pods',
        # its default route lets packets to service addresses reach the nat hooks.
        _ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        _ip("-n", name, "link", "set", "v0", "up")
        _ip("-n", name, "link", "set", "v1", "up")
        for ip in (NODE_IP, *PODS.values()):
            _ip("-n", name, "addr", "add", f"{ip}/32", "dev", "v0")
        _ip("-n", name, "route", "add", "default", "dev", "v0")
        servers = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, TOOL, "serve",
                                    *(f"{p}={ip}:8080" for p, ip in PODS.items())],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert servers.stdout.readline().strip() == "serving"
        yield name
    finally:
        if servers is not None:
            servers.stdin.close()
            servers.kill()
            servers.wait(5)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


async def _get(netns: str, host: str, port: int, n: int = 30, source: str = "") -> dict[str, int]:
    proc = await asyncio.create_subprocess_exec("ip", "netns", "exec", netns, sys.executable, TOOL, "get", host,
                                                str(port), str(n), *([source] if source else []),
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return json.loads(out)


@contextlib.asynccontextmanager
async def running_proxier(cluster, netns: str, binary: bool = False):
    """A proxy programming `netns`: libnftables from a thread inside it, or the nft binary."""
    client = Client(cluster.url)
    p = Proxier(client, "node-a", table=f"ketch-t{secrets.token_hex(3)}", netns=netns,
                nft_command=["ip", "netns", "exec", netns, "nft"] if binary else None)
    assert isinstance(p.nft, list) == binary
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop))
    await asyncio.wait_for(p.synced.wait(), 20)
    try:
        yield p
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.close()
    out = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "tables"], capture_output=True, text=True)
    assert p.table not in out.stdout, "the proxy left its table behind"


@pytest.fixture
async def proxier(cluster, netns):
    async with running_proxier(cluster, netns) as p:
        yield p


@pytest.fixture(scope="module")
def pod_net():
    """A node namespace and two pod namespaces joined by veth pairs with /32 routes (no bridge),
    each pod serving HTTP on its address: the forward path, as with a CNI."""
    tag = secrets.token_hex(3)
    node = f"ketch-test-{tag}-n"
    pods = {"pa": (f"ketch-test-{tag}-a", "10.99.1.11"), "pb": (f"ketch-test-{tag}-b", "10.99.1.12")}
    made: list[str] = []
    servers = []
    try:
        for name in [node, *(n for n, _ in pods.values())]:
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        for i, (pod, (pns, ip)) in enumerate(pods.items()):
            _ip("-n", node, "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", pns)
            _ip("-n", node, "link", "set", f"h{i}", "up")
            _ip("-n", pns, "link", "set", "eth0", "up")
            _ip("-n", node, "addr", "add", f"{NODE_IP}/32", "dev", f"h{i}")
            _ip("-n", node, "route", "add", f"{ip}/32", "dev", f"h{i}")
            _ip("-n", pns, "addr", "add", f"{ip}/32", "dev", "eth0")
            _ip("-n", pns, "route", "add", f"{NODE_IP}/32", "dev", "eth0")
            _ip("-n", pns, "route", "add", "default", "via", NODE_IP, "dev", "eth0")
            srv = subprocess.Popen(["ip", "netns", "exec", pns, sys.executable, TOOL, "serve", f"{pod}={ip}:8080"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            servers.append(srv)
            assert srv.stdout.readline().strip() == "serving"
        _ip("-n", node, "route", "add", "default", "dev", "h0")    # a node has a default route
        yield node, pods
    finally:
        for srv in servers:
            srv.stdin.close()
            srv.kill()
            srv.wait(5)
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _programmed(p: Proxier, ip: str) -> bool:
    return p.applied is not None and any(f"dnat ip to {ip}:" in r for rules in p.applied.chains.values()
                                         for r in rules)


async def test_cluster_ip_and_node_port_reach_ready_endpoints(api, ns, netns, proxier):
    await ensure_node(api)
    svc = await api.create(api.resource("services"), ns, service(
        "web", "NodePort", [{"port": 80, "targetPort": 8080}], selector={"app": "web"}))
    cip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    for pod, ip in PODS.items():
        await run_pod(api, ns, pod, {"app": "web"}, ip)
    await eventually(lambda: all(_programmed(proxier, ip) for ip in PODS.values()), 10)
    tally = await _get(netns, cip, 80, 60)
    assert set(tally) == set(PODS), tally                      # random balancing reaches all three
    # libnftables ran in a thread that joined the test namespace: the host has no such table.
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert proxier.table not in host
    tally = await _get(netns, NODE_IP, node_port, 30)
    assert set(tally) == set(PODS), tally

    # Not ready: out of rotation, through controller and proxy, within a second.
    t0 = time.monotonic()
    await set_pod(api, ns, "w2", PODS["w2"], ready=False)
    await eventually(lambda: not _programmed(proxier, PODS["w2"]), 5, 0.01)
    latency = time.monotonic() - t0
    assert latency < 1.0, f"readiness change took {latency:.2f}s to reach the kernel"
    tally = await _get(netns, cip, 80, 40)
    assert set(tally) == {"w1", "w3"}, tally

    # Session affinity: one client sticks to one endpoint.
    await api.patch(api.resource("services"), ns, "web", {"spec": {"sessionAffinity": "ClientIP"}})
    await eventually(lambda: proxier.applied and proxier.applied.affinity_sets, 5)
    tally = await _get(netns, cip, 80, 20)
    assert len(tally) == 1 and next(iter(tally)) in ("w1", "w3"), tally

    # No ready endpoints: connections are refused at once, not left to time out.
    for pod in ("w1", "w3"):
        await set_pod(api, ns, pod, PODS[pod], ready=False)
    await eventually(lambda: not any(_programmed(proxier, ip) for ip in PODS.values()), 5)
    assert await _get(netns, cip, 80, 3) == {"error:ConnectionRefusedError": 3}
    assert await _get(netns, NODE_IP, node_port, 3) == {"error:ConnectionRefusedError": 3}

    # Back, then the service goes away and its rules with it.
    await set_pod(api, ns, "w3", PODS["w3"], ready=True)
    await eventually(lambda: _programmed(proxier, PODS["w3"]), 5)
    assert await _get(netns, cip, 80, 5) == {"w3": 5}
    await api.delete(api.resource("services"), ns, "web")
    await eventually(lambda: not proxier.applied.service_ips, 5)
    assert set(await _get(netns, cip, 80, 2)) != {"w3"}


async def test_rebuilds_after_table_removed_behind_its_back(api, ns, netns, cluster):
    async with running_proxier(cluster, netns, binary=True) as proxier:
        await _rebuilds(api, ns, netns, proxier)


async def _rebuilds(api, ns, netns, proxier):
    await ensure_node(api)
    svc = await api.create(api.resource("services"), ns, service(
        "again", ports=[{"port": 81, "targetPort": 8080}], selector={"app": "again"}))
    await run_pod(api, ns, "a1", {"app": "again"}, PODS["w1"])
    await eventually(lambda: _programmed(proxier, PODS["w1"]), 10)
    subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "ip", proxier.table], check=True)
    # The next change fails to apply incrementally; the proxy rebuilds the whole table.
    await run_pod(api, ns, "a2", {"app": "again"}, PODS["w2"])
    await eventually(lambda: _programmed(proxier, PODS["w2"]), 10)
    await eventually(lambda: _get(netns, svc["spec"]["clusterIP"], 81, 1), 5)
    tally = await _get(netns, svc["spec"]["clusterIP"], 81, 30)
    assert set(tally) == {"w1", "w2"}, tally


async def test_pod_to_service_across_namespaces_and_hairpin(api, ns, cluster, pod_net):
    node, pods = pod_net
    await ensure_node(api)
    svc = await api.create(api.resource("services"), ns, service(
        "pair", "NodePort", [{"port": 80, "targetPort": 8080}], selector={"app": "pair"}))
    cip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    for pod, (_, ip) in pods.items():
        await run_pod(api, ns, pod, {"app": "pair"}, ip)
    async with running_proxier(cluster, node) as p:
        await eventually(lambda: all(_programmed(p, ip) for _, ip in pods.values()), 10)
        pa_ns = pods["pa"][0]
        # From pod a: about half the connections come back to pod a itself (hairpin, masqueraded).
        tally = await _get(pa_ns, cip, 80, 40)
        assert set(tally) == {"pa", "pb"}, tally
        tally = await _get(pa_ns, NODE_IP, node_port, 20)
        assert set(tally) == {"pa", "pb"}, tally
        tally = await _get(node, cip, 80, 20)             # from the node itself
        assert set(tally) == {"pa", "pb"}, tally


async def test_load_balancer_gets_node_address_that_answers(api, ns, cluster, pod_net):
    from ketch.proxy.loadbalancer import LoadBalancerProvider
    node, pods = pod_net
    await ensure_node(api)
    svcs = api.resource("services")
    await api.create(svcs, ns, service("lb", "LoadBalancer", [{"port": 8081, "targetPort": 8080}],
                                       selector={"app": "lb"}))
    await api.create(svcs, ns, service("other", "LoadBalancer", [{"port": 8082, "targetPort": 8080}],
                                       selector={"app": "lb"}, loadBalancerClass="example.com/elsewhere"))
    for pod, (_, ip) in pods.items():
        await run_pod(api, ns, pod, {"app": "lb"}, ip)
    client = Client(cluster.url)
    stop = asyncio.Event()
    provider = asyncio.create_task(LoadBalancerProvider(client, [NODE_IP]).run(stop))
    try:
        async def ingress(name):
            s = await api.get(svcs, ns, name)
            return [i["ip"] for i in (s["status"].get("loadBalancer") or {}).get("ingress") or []]
        await eventually(lambda: _eq(ingress("lb"), [NODE_IP]), 10)
        assert await ingress("other") == []                  # another provider's class: not ours
        async with running_proxier(cluster, node) as p:
            await eventually(lambda: p.applied and any(k.startswith(f"{NODE_IP} . tcp . 8081")
                                                       for k in p.applied.service_ips), 10)
            tally = await _get(pods["pa"][0], NODE_IP, 8081, 30)
            assert set(tally) == {"pa", "pb"}, tally
            tally = await _get(node, NODE_IP, 8081, 20)
            assert set(tally) == {"pa", "pb"}, tally
            # No longer a LoadBalancer: the ingress goes, and so does the rule.
            await api.patch(svcs, ns, "lb", {"spec": {"type": "ClusterIP", "externalTrafficPolicy": None,
                                                      "allocateLoadBalancerNodePorts": None,
                                                      "ports": [{"port": 8081, "targetPort": 8080}]}})
            await eventually(lambda: _eq(ingress("lb"), []), 10)
            await eventually(lambda: not any(k.startswith(f"{NODE_IP} . ") for k in p.applied.service_ips), 10)
    finally:
        stop.set()
        await provider
        await client.close()


async def _eq(aw, want):
    return (await aw) == want


async def test_ketch_proxy_command(api, ns, cluster, netns):
    await ensure_node(api)
    svc = await api.create(api.resource("services"), ns, service(
        "cli", ports=[{"port": 82, "targetPort": 8080}], selector={"app": "cli"}))
    await run_pod(api, ns, "c1", {"app": "cli"}, PODS["w3"])
    table = f"ketch-t{secrets.token_hex(3)}"
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "ketch"), "proxy", "--kubeconfig", cluster.kubeconfig,
        "--netns", netns, "--table", table, "--node-name", "node-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        await eventually(lambda: _eq(_get(netns, svc["spec"]["clusterIP"], 82, 1), {"w3": 1}), 15, 0.1)
    finally:
        proc.terminate()
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, out.decode()
    tables = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "tables"], capture_output=True, text=True)
    assert table not in tables.stdout          # removed on the way out


async def test_rolling_replacement_under_load_loses_no_request(api, ns, netns, proxier):
    """Endpoints replaced one by one (new pod ready, old one not ready, then gone) while a client
    opens a new connection every few milliseconds: every transaction is atomic, so no request
    meets a half-programmed or empty service."""
    await ensure_node(api)
    pods_ri = api.resource("pods")
    svc = await api.create(api.resource("services"), ns, service(
        "roll", ports=[{"port": 83, "targetPort": 8080}], selector={"app": "roll"}))
    await run_pod(api, ns, "r1", {"app": "roll"}, PODS["w1"])
    await eventually(lambda: _programmed(proxier, PODS["w1"]), 10)
    client = asyncio.create_task(_get_paced(netns, svc["spec"]["clusterIP"], 83, 400, 0.005))
    for old, new in (("r1", "r2"), ("r2", "r3"), ("r3", "r1b")):
        ip = PODS["w" + new[1]]
        await run_pod(api, ns, new, {"app": "roll"}, ip)
        await eventually(lambda ip=ip: _programmed(proxier, ip), 5, 0.01)
        await set_pod(api, ns, old, PODS["w" + old[1]], ready=False)
        await asyncio.sleep(0.15)
        await api.delete(pods_ri, ns, old, {"gracePeriodSeconds": 0})
        await asyncio.sleep(0.15)
    tally = await client
    errors = {k: v for k, v in tally.items() if k.startswith("error")}
    assert not errors, tally
    assert len(tally) >= 3, tally       # the load really spanned the replacements


async def _get_paced(netns: str, host: str, port: int, n: int, interval: float) -> dict[str, int]:
    proc = await asyncio.create_subprocess_exec("ip", "netns", "exec", netns, sys.executable, TOOL, "get", host,
                                                str(port), str(n), "-", str(interval), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return json.loads(out)
