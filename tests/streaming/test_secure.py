"""Over TLS with tokens: the admin's kubectl streams work; node credentials open no stream and read no log."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from ketch.apiserver.auth import TokenFile
from tests.conftest import start_cluster
from tests.node.conftest import apply, running_ready, wait_for


def test_streams_are_for_authorized_users_only(tmp_path):
    c = start_cluster(tmp_path / "sec", secure=True,
                      extra=["--runtime", "process", "--node-name", "sec-node", "--kubelet-port", "0"])
    try:
        apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                      {"name": "main", "image": "x", "command": ["sh", "-c", "echo secret; sleep 600"]}]}})
        wait_for(lambda: running_ready(c, "p"), what="p Running")
        assert c.kubectl("exec", "p", "--", "echo", "over TLS").stdout == "over TLS\n"
        wait_for(lambda: c.kubectl("logs", "p").stdout == "secret\n", what="log")
        tokens = TokenFile(str(c.data_dir / "pki" / "tokens.json"))
        tokens.add("node-token-for-test", "system:node:sec-node", ["system:nodes", "system:authenticated"])
        tokens.add("nobody-token-for-test", "nobody", ["system:authenticated"])
        ctx = ssl.create_default_context(cafile=str(c.data_dir / "pki" / "ca.crt"))
        for token in ("node-token-for-test", "nobody-token-for-test"):
            for sub in ("log", "exec?command=ls&stdout=true", "portforward?ports=80"):
                req = urllib.request.Request(f"{c.url}/api/v1/namespaces/default/pods/p/{sub}",
                                             headers={"Authorization": f"Bearer {token}"})
                try:
                    urllib.request.urlopen(req, context=ctx, timeout=10)
                    raise AssertionError(f"{token} got pods/{sub}")
                except urllib.error.HTTPError as e:
                    st = json.loads(e.read())
                    assert e.code == 403 and st["reason"] == "Forbidden", st
    finally:
        c.kubectl("delete", "pods", "--all", "--timeout=30s", check=False)
        assert c.stop() == 0
