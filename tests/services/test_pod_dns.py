"""A pod's resolv.conf from dnsPolicy + dnsConfig (ketch/node/dnsconfig.py), as the kubelet builds it."""

from __future__ import annotations

import pytest

from ketch.node.dnsconfig import pod_dns_config

HOST = "nameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch corp.example\noptions edns0 ndots:2\n"


@pytest.fixture
def host(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text(HOST)
    return str(p)


def pod(ns: str = "shop", **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": ns}, "spec": {"containers": [{"name": "c"}], **spec}}


def test_cluster_first_points_at_the_cluster_dns(host):
    cfg = pod_dns_config(pod(), ["10.43.0.10"], "cluster.local", host)
    assert cfg == {"servers": ["10.43.0.10"],
                   "searches": ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"],
                   "options": ["ndots:5", "edns0"]}
    cfg = pod_dns_config(pod("default", dnsPolicy="ClusterFirst"), ["10.43.0.10"], "k.test.", host)
    assert cfg["searches"][:3] == ["default.svc.k.test", "svc.k.test", "k.test"]


def test_without_cluster_dns_or_with_host_network_the_host_resolv_conf(host):
    assert pod_dns_config(pod(), [], "cluster.local", host) is None
    assert pod_dns_config(pod(hostNetwork=True), ["10.43.0.10"], "cluster.local", host) is None
    assert pod_dns_config(pod(dnsPolicy="Default"), ["10.43.0.10"], "cluster.local", host) is None


def test_cluster_first_with_host_net(host):
    cfg = pod_dns_config(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), ["10.43.0.10"],
                         "cluster.local", host)
    assert cfg["servers"] == ["10.43.0.10"] and cfg["searches"][0] == "shop.svc.cluster.local"


def test_none_takes_only_dns_config(host):
    cfg = pod_dns_config(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.1.1.1"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "1"}]}),
        ["10.43.0.10"], "cluster.local", host)
    assert cfg == {"servers": ["1.1.1.1"], "searches": ["a.example"], "options": ["ndots:1"]}


def test_dns_config_merges_into_every_policy(host):
    cfg = pod_dns_config(pod(dnsConfig={"nameservers": ["1.1.1.1", "10.43.0.10"], "searches": ["x.example"],
                                        "options": [{"name": "ndots", "value": "3"}, {"name": "single-request"}]}),
                         ["10.43.0.10"], "cluster.local", host)
    assert cfg["servers"] == ["10.43.0.10", "1.1.1.1"]
    assert cfg["searches"][-1] == "x.example"
    assert cfg["options"] == ["ndots:3", "edns0", "single-request"]
    cfg = pod_dns_config(pod(dnsPolicy="Default", dnsConfig={"nameservers": ["1.1.1.1"]}), [], "cluster.local", host)
    assert cfg["servers"] == ["192.0.2.1", "192.0.2.2", "1.1.1.1"]
    assert cfg["searches"] == ["corp.example"] and cfg["options"] == ["edns0", "ndots:2"]
