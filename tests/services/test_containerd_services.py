"""Services end to end with real containers: `ketch up` with its defaults (containerd pods, the
node proxy, cluster DNS) inside a network namespace this test creates (tests/services/nodens.py).

A 3-replica busybox httpd deployment, each replica serving a page that names its pod, behind a
ClusterIP service: requests from the node and from another pod, by ClusterIP and by DNS name,
reach every replica; scaling, a replica going not-ready, NodePort on the node address, a
LoadBalancer ingress, pod resolv.conf per dnsPolicy, and a rolling update under a steady request
loop (readiness probes + preStop, as users deploy).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter

import pytest

from tests.services.nodens import PY, TOOL, NodeCluster, NodeNS, requirements, wait_for

NS = "shop"
IMAGE = "ketch.local/busybox:1"

# The page names the pod; /ready is what the readiness probe reads; CGI scripts let the test make a
# replica unready and ready again from outside (the containerd runtime has no exec yet).
WEB_CMD = ("mkdir -p /www/cgi-bin && echo \"hello from $POD_NAME\" > /www/index.html && echo ok > /www/ready && "
           "printf '#!/bin/sh\\nrm -f /www/ready\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nunready\\\\n\"\\n'"
           " > /www/cgi-bin/unready && "
           "printf '#!/bin/sh\\necho ok > /www/ready\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nready\\\\n\"\\n'"
           " > /www/cgi-bin/ready && chmod +x /www/cgi-bin/* && exec httpd -f -p 8080 -h /www")


def web_deployment(replicas: int = 3, version: str = "1") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 10,
                         "containers": [{
                             "name": "httpd", "image": IMAGE, "command": ["sh", "-c", WEB_CMD],
                             "env": [{"name": "VERSION", "value": version},
                                     {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                             "ports": [{"name": "http", "containerPort": 8080}],
                             "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
                                                "failureThreshold": 1},
                             "lifecycle": {"preStop": {"exec": {"command": ["sleep", "3"]}}}}]}}}}


def service(name: str, stype: str = "ClusterIP") -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"type": stype, "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    requirements()
    n = NodeNS()
    c = None
    try:
        c = NodeCluster(n, tmp_path_factory.mktemp("svc-ctd"))
        c.kubectl("create", "namespace", NS)
        c.apply(web_deployment())
        c.apply(service("web"))
        wait_for(lambda: len(_ready_pods(c)) == 3, 180, "3 web replicas ready")
        wait_for(lambda: len(_ready_ips(c, "web")) == 3, 60, "3 endpoints")
        yield c
    finally:
        if c is not None:
            c.stop()
        n.remove()


def _ready_ips(c: NodeCluster, name: str) -> list[str]:
    ep = c.json("endpoints", name, "-n", NS)
    return sorted(a["ip"] for s in ep.get("subsets") or () for a in s.get("addresses") or ())


def _ready_pods(c: NodeCluster) -> list[dict]:
    return [p for p in c.json("pods", "-n", NS, "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"
            and any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or ())]


def _names(tally: dict[str, int]) -> Counter:
    return Counter({k.strip().removeprefix("hello from "): v for k, v in tally.items()})


def _cluster_ip(c: NodeCluster, name: str) -> str:
    return c.json("service", name, "-n", NS)["spec"]["clusterIP"]


def _run_pod(c: NodeCluster, name: str, script: str, **spec) -> str:
    """Run a busybox pod to completion in NS; its output."""
    c.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
             "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                      "containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", script]}], **spec}})
    phase = wait_for(lambda: c.json("pod", name, "-n", NS)["status"].get("phase") in ("Succeeded", "Failed") and
                     c.json("pod", name, "-n", NS)["status"]["phase"], 120, f"pod {name} to finish")
    out = _logs(c, name)
    assert phase == "Succeeded", out
    return out


def _logs(c: NodeCluster, pod: str) -> str:
    out = c.kubectl("logs", "-n", NS, pod).stdout
    return "\n".join(re.sub(r"^\S+ (stdout|stderr) [FP] ", "", line) for line in out.splitlines())


def test_clusterip_from_the_node_reaches_every_replica(node):
    c = node
    names = {p["metadata"]["name"] for p in _ready_pods(c)}
    tally = _names(c.node.get(_cluster_ip(c, "web"), 80, 60))
    assert set(tally) == names, tally


def test_pod_reaches_every_replica_by_cluster_ip_and_by_dns_name(node):
    c = node
    ip = _cluster_ip(c, "web")
    names = {p["metadata"]["name"] for p in _ready_pods(c)}
    req = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {} 80 | tail -n 1"
    script = (f"cat /etc/resolv.conf; "
              f"echo resolved $(nslookup web.{NS}.svc.cluster.local | awk '/^Address/ && $2 !~ /:53$/ {{a=$2}} "
              f"END {{print a}}'); "
              f"for i in $(seq 30); do echo byip $({req.format(ip)}); echo byname $({req.format('web')}); done")
    out = _run_pod(c, "client", script)
    assert "nameserver 10.43.0.10" in out, out
    search = next(line for line in out.splitlines() if line.startswith("search "))
    assert search.split()[1:4] == [f"{NS}.svc.cluster.local", "svc.cluster.local", "cluster.local"], out
    assert "options ndots:5" in out, out
    assert f"resolved {ip}" in out, out
    by_ip = Counter(line.split()[-1] for line in out.splitlines() if line.startswith("byip "))
    by_name = Counter(line.split()[-1] for line in out.splitlines() if line.startswith("byname "))
    assert set(by_ip) == names and sum(by_ip.values()) == 30, out
    assert set(by_name) == names and sum(by_name.values()) == 30, out


def test_scale_to_one_and_back(node):
    c = node
    ip = _cluster_ip(c, "web")
    c.kubectl("scale", "deployment", "web", "-n", NS, "--replicas=1")
    wait_for(lambda: len(_ready_ips(c, "web")) == 1, 120, "one endpoint left")
    one = {p["metadata"]["name"] for p in _ready_pods(c)}
    assert len(one) == 1
    assert set(_names(c.node.get(ip, 80, 20))) == one
    c.kubectl("scale", "deployment", "web", "-n", NS, "--replicas=3")
    wait_for(lambda: len(_ready_ips(c, "web")) == 3, 180, "three endpoints again")
    names = {p["metadata"]["name"] for p in _ready_pods(c)}
    assert len(names) == 3 and one < names
    assert set(_names(c.node.get(ip, 80, 60))) == names


def _cgi(c: NodeCluster, pod_ip: str, script: str) -> str:
    code = (f"import urllib.request; print(urllib.request.urlopen('http://{pod_ip}:8080/cgi-bin/{script}', "
            f"timeout=5).read().decode().strip())")
    return c.node.run(PY, "-c", code).stdout.strip()


def test_a_replica_that_goes_not_ready_leaves_the_rotation(node):
    c = node
    ip = _cluster_ip(c, "web")
    pods = _ready_pods(c)
    victim = pods[0]
    others = {p["metadata"]["name"] for p in pods[1:]}
    assert _cgi(c, victim["status"]["podIP"], "unready") == "unready"
    try:
        wait_for(lambda: len(_ready_ips(c, "web")) == 2, 60, "the unready replica out of the endpoints")
        assert victim["status"]["podIP"] not in _ready_ips(c, "web")
        tally = _names(c.node.get(ip, 80, 40))
        assert set(tally) == others, tally
    finally:
        _cgi(c, victim["status"]["podIP"], "ready")
    wait_for(lambda: len(_ready_ips(c, "web")) == 3, 60, "the replica back in the endpoints")
    assert set(_names(c.node.get(ip, 80, 60))) == others | {victim["metadata"]["name"]}


def test_nodeport_on_the_node_address_and_a_loadbalancer_ingress(node):
    c = node
    names = {p["metadata"]["name"] for p in _ready_pods(c)}
    c.apply(service("web-np", "NodePort"))
    port = c.json("service", "web-np", "-n", NS)["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    assert set(_names(wait_for(lambda: (t := c.node.get(c.node.node_ip, port, 60)) and
                               not any(k.startswith("error") for k in t) and t, 30, "the NodePort answering"))) == names
    c.apply(service("web-lb", "LoadBalancer"))
    ingress = wait_for(lambda: ((c.json("service", "web-lb", "-n", NS).get("status") or {}).get("loadBalancer")
                                or {}).get("ingress"), 30, "a LoadBalancer ingress")
    assert ingress[0]["ip"] == c.node.node_ip
    tally = wait_for(lambda: (t := c.node.get(ingress[0]["ip"], 80, 60)) and
                     not any(k.startswith("error") for k in t) and t, 30, "the LoadBalancer answering")
    assert set(_names(tally)) == names
    c.kubectl("delete", "service", "web-np", "web-lb", "-n", NS)


def test_pod_resolv_conf_follows_dns_policy(node):
    c = node
    out = _run_pod(c, "dns-none", "cat /etc/resolv.conf", dnsPolicy="None", dnsConfig={
        "nameservers": ["192.0.2.53"], "searches": ["example.test"], "options": [{"name": "ndots", "value": "2"}]})
    lines = [line for line in out.splitlines() if line.strip()]
    assert sorted(lines) == sorted(["nameserver 192.0.2.53", "search example.test", "options ndots:2"]), out
    host = [line.split()[1] for line in open("/etc/resolv.conf") if line.startswith("nameserver")]
    out = _run_pod(c, "dns-default", "cat /etc/resolv.conf", dnsPolicy="Default")
    assert [line.split()[1] for line in out.splitlines() if line.startswith("nameserver")] == host, out
    assert "10.43.0.10" not in out
    out = _run_pod(c, "dns-hostnet", "cat /etc/resolv.conf", hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert "nameserver 10.43.0.10" in out and f"search {NS}.svc.cluster.local" in out, out
    out = _run_pod(c, "dns-hostnet-default", "cat /etc/resolv.conf", hostNetwork=True)    # ClusterFirst
    assert "10.43.0.10" not in out, out
    out = _run_pod(c, "dns-merge", "cat /etc/resolv.conf", dnsConfig={
        "searches": ["extra.test"], "options": [{"name": "ndots", "value": "3"}, {"name": "edns0"}]})
    assert "nameserver 10.43.0.10" in out and "extra.test" in out and "ndots:3" in out and "ndots:5" not in out, out


def test_rolling_update_under_a_steady_request_loop(node, tmp_path):
    c = node
    ip = _cluster_ip(c, "web")
    before = {p["metadata"]["name"] for p in _ready_pods(c)}
    stop_file = tmp_path / "stop"
    loop = c.node.popen([PY, TOOL, "loop", ip, "80", str(stop_file), "0.02"], stdin=subprocess.DEVNULL)
    try:
        c.apply(web_deployment(version="2"))
        c.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=300s", timeout=320)
        wait_for(lambda: len(_ready_ips(c, "web")) == 3 and not ({p["metadata"]["name"] for p in _ready_pods(c)}
                                                                  & before), 60, "only new replicas serving")
        after = {p["metadata"]["name"] for p in _ready_pods(c)}
        # until the old replicas are gone (preStop, SIGTERM, removal), then a few more requests
        wait_for(lambda: not ({p["metadata"]["name"] for p in c.json("pods", "-n", NS, "-l", "app=web")["items"]}
                              & before), 120, "the old replicas gone")
        time.sleep(1)
    finally:
        stop_file.touch()
        out, _ = loop.communicate(timeout=60)
    tally = _names(json.loads(out))
    failed = sum(v for k, v in tally.items() if k.startswith("error"))
    total = sum(tally.values())
    print(f"\nrolling update under load: {total} requests, {failed} failed, answered by {dict(tally)}")
    assert before & set(tally) and after & set(tally), tally
    assert failed == 0, f"{failed} of {total} requests failed during the rolling update: {dict(tally)}"
