"""The README walkthrough, as CI runs it: `ketch up` with its defaults (containerd pods, the node
proxy, cluster DNS) inside a network namespace this test creates, `kubectl apply -f
examples/web.yaml`, wait for the rollout, `curl` the service's ClusterIP and NodePort from inside
that namespace; then examples/shared-volume.yaml, whose two containers share an emptyDir.

Only the CNI bridge and pod subnet differ from the README's plain `ketch up` (so the namespace
shares nothing with the host's `ketch0`); see tests/services/nodens.py.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.services.nodens import NodeCluster, NodeNS, requirements, wait_for

WEB = str(ROOT / "examples" / "web.yaml")
SHARED = str(ROOT / "examples" / "shared-volume.yaml")


def _plain(out: str) -> str:
    return "\n".join(re.sub(r"^\S+ (stdout|stderr) [FP] ", "", line) for line in out.splitlines())


def test_readme_walkthrough_with_the_examples(tmp_path):
    requirements()
    readme = (ROOT / "README.md").read_text()
    for step in ("kubectl apply -f examples/web.yaml", "kubectl rollout status deployment/web",
                 "curl http://$(kubectl get svc web -o jsonpath='{.spec.clusterIP}')/",
                 "kubectl apply -f examples/shared-volume.yaml", "kubectl logs shared-volume -c reader"):
        assert step in readme, f"the README walkthrough no longer says {step!r}"
    node = NodeNS()
    c = None
    try:
        c = NodeCluster(node, tmp_path / "k")
        log = c.log.read_text()
        assert "runtime containerd" in log and "ketch proxy: on" in log and "published as kube-system/kube-dns" in log, log
        c.kubectl("apply", "-f", WEB)
        c.kubectl("rollout", "status", "deployment/web", "--timeout=300s", timeout=320)
        wait_for(lambda: len(c.endpoints("web")) == 3, 60, "three endpoints")
        pods = {p["metadata"]["name"] for p in c.ready_pods("app=web")}
        assert len(pods) == 3
        ip = c.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
        port = c.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout
        assert port == "30080"
        seen: set[str] = set()
        for url in (f"http://{ip}/", f"http://{node.node_ip}:{port}/"):
            for _ in range(30):
                out = node.run("curl", "-sS", "--max-time", "5", url).stdout.strip()
                assert out.startswith("hello from "), out
                seen.add(out.removeprefix("hello from "))
        assert seen == pods       # 60 requests over random balancing: every replica answered

        c.kubectl("apply", "-f", SHARED)
        wait_for(lambda: c.json("pod", "shared-volume")["status"].get("phase") == "Running", 120,
                 "the shared-volume pod running")
        lines = wait_for(lambda: [line for line in _plain(c.kubectl("logs", "shared-volume", "-c", "reader").stdout)
                                  .splitlines() if "from the writer" in line][:2], 60,
                         "the reader showing what the writer wrote")
        assert lines[0] == "line 1 from the writer", lines
    finally:
        if c is not None:
            c.stop()
        node.remove()
