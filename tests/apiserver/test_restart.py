"""A second `ketch up` on the same data directory brings the same cluster back."""

from __future__ import annotations

import json
import urllib.request

from tests.conftest import start_cluster


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_restart_keeps_objects_and_old_watches_get_410(tmp_path):
    c = start_cluster(tmp_path / "d")
    try:
        c.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\ndata: {a: '1'}\n")
        before = _get(f"{c.url}/api/v1/namespaces/default/configmaps/keep")
    finally:
        assert c.stop() == 0
    c2 = start_cluster(tmp_path / "d")
    try:
        after = _get(f"{c2.url}/api/v1/namespaces/default/configmaps/keep")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        c2.kubectl("label", "cm", "keep", "x=y")
        newer = _get(f"{c2.url}/api/v1/namespaces/default/configmaps/keep")
        assert int(newer["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
        # a watch from before this server's start is too old: one ERROR event with 410 Expired
        with urllib.request.urlopen(f"{c2.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1",
                                    timeout=10) as r:
            ev = json.loads(r.readline())
        assert ev["type"] == "ERROR" and ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
        names = [n["metadata"]["name"] for n in _get(f"{c2.url}/api/v1/namespaces")["items"]]
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    finally:
        assert c2.stop() == 0
