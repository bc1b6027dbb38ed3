"""Each filter decides a placement: only one node passes it."""

from __future__ import annotations

from .conftest import create_nodes, create_pod, node, pod, wait_bound, wait_unschedulable


async def test_resource_fit_cpu_memory_extended_and_pods(kcluster, client):
    await create_nodes(client, node("a", cpu="1", memory="1Gi"), node("b", cpu="8", memory="1Gi"),
                       node("c", cpu="8", memory="16Gi", **{"example.com/gpu": "1"}), node("full", pods=0))
    await create_pod(client, pod("cpu", cpu="2"))
    assert await wait_bound(client, "cpu") in ("b", "c")
    await create_pod(client, pod("mem", memory="4Gi"))
    assert await wait_bound(client, "mem") == "c"
    gpu = pod("gpu")
    gpu["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"},
                                                 "limits": {"example.com/gpu": "1"}}
    await create_pod(client, gpu)
    assert await wait_bound(client, "gpu") == "c"
    # Init containers count by their maximum: 3 cpus of init on a 1-cpu... only b/c have them.
    init = pod("init", cpu="100m")
    init["spec"]["initContainers"] = [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "7"}}}]
    await create_pod(client, init)
    assert await wait_bound(client, "init") in ("b", "c")
    gpu2 = pod("gpu2")
    gpu2["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"},
                                                  "limits": {"example.com/gpu": "1"}}
    await create_pod(client, gpu2)
    msg = await wait_unschedulable(client, "gpu2")
    assert "Insufficient example.com/gpu" in msg and "1 Too many pods" in msg, msg


async def test_taints_and_tolerations(kcluster, client):
    t = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    await create_nodes(client, node("plain", cpu="1"), node("dedicated", cpu="8", taints=t))
    tol = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
    # Only the tainted node has room; a toleration lets the pod go there.
    await create_pod(client, pod("db", cpu="2", tolerations=tol))
    assert await wait_bound(client, "db") == "dedicated"
    await create_pod(client, pod("app", cpu="2"))
    msg = await wait_unschedulable(client, "app")
    assert msg == ("0/2 nodes are available: 1 Insufficient cpu, "
                   "1 node(s) had untolerated taint {dedicated: db}. "
                   "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                   "1 Preemption is not helpful for scheduling."), msg


async def test_node_selector_and_required_node_affinity(kcluster, client):
    await create_nodes(client, node("x", labels={"disk": "hdd", "gen": "3"}),
                       node("y", labels={"disk": "ssd", "gen": "5"}), node("z", labels={"gen": "9"}))
    await create_pod(client, pod("sel", nodeSelector={"disk": "ssd"}))
    assert await wait_bound(client, "sel") == "y"
    cases = {
        "in": ({"key": "disk", "operator": "In", "values": ["hdd"]}, "x"),
        "notin": ({"key": "gen", "operator": "NotIn", "values": ["3", "5"]}, "z"),
        "exists": ({"key": "disk", "operator": "DoesNotExist"}, "z"),
        "gt": ({"key": "gen", "operator": "Gt", "values": ["4"]}, None),
        "lt": ({"key": "gen", "operator": "Lt", "values": ["4"]}, "x"),
    }
    for name, (expr, want) in cases.items():
        exprs = [expr] + ([{"key": "disk", "operator": "Exists"}] if name == "gt" else [])
        aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": exprs}]}}}
        await create_pod(client, pod(name, affinity=aff))
        assert await wait_bound(client, name) == (want or "y"), name
    await create_pod(client, pod("nowhere", nodeSelector={"disk": "nvme"}))
    msg = await wait_unschedulable(client, "nowhere")
    assert msg.startswith("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."), msg


async def test_host_ports(kcluster, client):
    await create_nodes(client, node("p1"), node("p2"))
    ports = [{"containerPort": 80, "hostPort": 8080}]
    await create_pod(client, pod("h1", ports=ports))
    first = await wait_bound(client, "h1")
    await create_pod(client, pod("h2", ports=ports))
    second = await wait_bound(client, "h2")
    assert {first, second} == {"p1", "p2"}
    await create_pod(client, pod("h3", ports=ports))
    msg = await wait_unschedulable(client, "h3")
    assert "2 node(s) didn't have free ports for the requested pod ports" in msg, msg


def _term(labels: dict, key: str = "kubernetes.io/hostname") -> dict:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key}


async def test_inter_pod_affinity_and_anti_affinity(kcluster, client):
    await create_nodes(client, node("m1", labels={"zone": "a"}), node("m2", labels={"zone": "a"}),
                       node("m3", labels={"zone": "b"}))
    await create_pod(client, pod("cache", labels={"app": "cache"}, nodeSelector={"kubernetes.io/hostname": "m3"}))
    assert await wait_bound(client, "cache") == "m3"
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term({"app": "cache"}, "zone")]}}
    await create_pod(client, pod("near", affinity=aff))
    assert await wait_bound(client, "near") == "m3"
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term({"app": "cache"}, "zone")]}}
    await create_pod(client, pod("far", affinity=anti))
    assert await wait_bound(client, "far") in ("m1", "m2")
    # An existing pod's anti-affinity keeps matching pods out of its zone.
    loner_aff = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term({"app": "web"}, "zone")]}}
    await create_pod(client, pod("loner", labels={"app": "loner"}, affinity=loner_aff,
                                 nodeSelector={"zone": "b"}))
    assert await wait_bound(client, "loner") == "m3"
    await create_pod(client, pod("web", labels={"app": "web"}, nodeSelector={"zone": "b"}))
    msg = await wait_unschedulable(client, "web")
    assert "1 node(s) didn't satisfy existing pods anti-affinity rules" in msg, msg
    await create_pod(client, pod("orphan", affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [_term({"app": "nothing"})]}}))
    msg = await wait_unschedulable(client, "orphan")
    assert "3 node(s) didn't match pod affinity rules" in msg, msg


async def test_topology_spread_do_not_schedule(kcluster, client):
    await create_nodes(client, node("s1", labels={"zone": "a"}), node("s2", labels={"zone": "b"}),
                       node("s3"))
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "s"}}}]
    zones = []
    for i in range(4):
        await create_pod(client, pod(f"s{i}", labels={"app": "s"}, topologySpreadConstraints=spread))
        zones.append(await wait_bound(client, f"s{i}"))
    assert sorted(zones) == ["s1", "s1", "s2", "s2"]  # never on s3 (no zone), alternating zones
    # Fill zone b so that a 3rd pod in zone a would make the skew 2.
    await create_pod(client, pod("pin", labels={"app": "s"}, nodeSelector={"zone": "a"}))
    assert await wait_bound(client, "pin") == "s1"
    # Zone b's node is tainted (its domain still counts: nodeTaintsPolicy Ignore): zone a is 3 vs 2.
    ri = client.resource("nodes")
    n = await client.get(ri, None, "s2")
    n["spec"]["taints"] = [{"key": "maint", "effect": "NoSchedule"}]
    await client.update(ri, n)
    await create_pod(client, pod("s-next", labels={"app": "s"}, topologySpreadConstraints=spread))
    msg = await wait_unschedulable(client, "s-next")
    assert msg.startswith("0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
                          "1 node(s) didn't match pod topology spread constraints (missing required label), "
                          "1 node(s) had untolerated taint {maint: }."), msg
