"""What `ketch up` and `ketch agent` turn on by default: the service proxy and cluster DNS, one line
saying when the proxy is off, and two clusters on one machine that do not clash (their own nftables
table each; the second DNS on another port when 53 is taken). The clusters run inside a network
namespace this test creates, so the host's nftables and addresses are never touched."""

from __future__ import annotations

import re
import signal
import subprocess

from tests.conftest import BIN, free_port, start_cluster
from tests.services.nodens import NodeNS, requirements, sh, wait_for


def test_tests_clusters_run_without_proxy_and_dns_and_say_so(tmp_path):
    c = start_cluster(tmp_path / "k")
    try:
        log = wait_for(lambda: "ketch proxy:" in c.log_path.read_text() and c.log_path.read_text(), 30,
                       "the proxy's line")
        assert "ketch proxy: off (--no-proxy)" in log, log
        assert "cluster DNS on" not in log
    finally:
        assert c.stop() == 0


def test_bad_network_flags_are_refused(tmp_path):
    for flag, value, why in (("--pod-cidr", "10.1.2.3/16", "bad --pod-cidr"), ("--pod-cidr", "nonsense", "bad --pod-cidr"),
                             ("--cni-bridge", "a-name-longer-than-15", "bad --cni-bridge")):
        r = subprocess.run([str(BIN / "ketch"), "agent", "--kubeconfig", str(tmp_path / "none"), flag, value],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and why in r.stderr, r.stderr


def _up(node: NodeNS, d, *extra: str) -> tuple[subprocess.Popen, object]:
    d.mkdir()
    log = d / "ketch.log"
    p = node.popen([str(BIN / "ketch"), "up", "--http", "--data-dir", str(d), "--port", str(free_port()), *extra], log)
    wait_for(lambda: p.poll() is None and b"cluster DNS on" in log.read_bytes() and b"ketch proxy:" in log.read_bytes(),
             60, f"ketch up in {d}")
    return p, log


def test_two_clusters_on_one_machine_keep_apart(tmp_path):
    requirements()
    node = NodeNS()
    try:
        a, log_a = _up(node, tmp_path / "a", "--no-agent", "--proxy")
        b, log_b = _up(node, tmp_path / "b", "--no-agent", "--proxy")
        ta = re.search(r"ketch proxy: on, nftables table ip (\S+)", log_a.read_text()).group(1)
        tb = re.search(r"ketch proxy: on, nftables table ip (\S+)", log_b.read_text()).group(1)
        assert ta != tb and ta.startswith("ketch-") and tb.startswith("ketch-")
        wait_for(lambda: f"table ip {ta}" in node.run("nft", "list", "tables").stdout and
                 f"table ip {tb}" in node.run("nft", "list", "tables").stdout, 30, "both tables programmed")
        dns_a = re.search(r"cluster DNS on (\S+):(\d+) .*published as kube-system/kube-dns 10\.43\.0\.10",
                          log_a.read_text())
        dns_b = re.search(r"cluster DNS on (\S+):(\d+) .*published as kube-system/kube-dns 10\.43\.0\.10",
                          log_b.read_text())
        assert dns_a and dns_b, log_a.read_text() + log_b.read_text()
        assert dns_a.group(1) == dns_b.group(1) == node.node_ip          # pods reach the node's address
        assert dns_a.group(2) == "53" and dns_b.group(2) != "53"         # 53 was taken: another port
        a.send_signal(signal.SIGTERM)
        assert a.wait(30) == 0
        tables = node.run("nft", "list", "tables").stdout
        assert f"table ip {ta}" not in tables and f"table ip {tb}" in tables, tables   # each removes only its own
        b.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0
        assert "ketch-" not in node.run("nft", "list", "tables").stdout
    finally:
        node.remove()
    assert node.name not in sh("ip", "netns", "list").stdout
