"""The everyday verbs with kubectl 1.20 (Debian kubernetes-client): legacy discovery only, JSON
bodies, client-side apply patches computed from its built-in types (ketch's /openapi/v2 is an
empty protobuf document). The binary comes from scripts/ci-deps-kubectl120.sh."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

KUBECTL120 = os.environ.get("KUBECTL120", "/opt/kubectl120/kubectl")

pytestmark = pytest.mark.skipif(not Path(KUBECTL120).exists(),
                                reason="kubectl 1.20 missing: run scripts/ci-deps-kubectl120.sh")


def k(cluster, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig, HOME=str(cluster.data_dir / "home120"))
    r = subprocess.run([KUBECTL120, *args], input=input, capture_output=True, text=True, timeout=60, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"kubectl 1.20 {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def deploy(replicas: int = 2, image: str = "nginx:1.25", labels: dict | None = None, env: list | None = None) -> str:
    c: dict = {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
    if env:
        c["env"] = env
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "old", "labels": labels or {"app": "old"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "old"}},
                 "template": {"metadata": {"labels": {"app": "old"}}, "spec": {"containers": [c]}}}})


def obj(cluster, *what: str) -> dict:
    return json.loads(k(cluster, "get", *what, "-o", "json").stdout)


def test_version_and_get(cluster):
    r = k(cluster, "version")
    assert 'GitVersion:"v1.20.2"' in r.stdout and "Server Version" in r.stdout
    out = k(cluster, "get", "namespaces").stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"] and "kube-system" in out
    assert "configmaps" in k(cluster, "api-resources").stdout


def test_apply_create_unchanged_configured(cluster):
    env = [{"name": "A", "value": "1"}]
    assert "deployment.apps/old created" in k(cluster, "apply", "-f", "-",
                                              input=deploy(labels={"app": "old", "tier": "fe"}, env=env)).stdout
    assert "deployment.apps/old unchanged" in k(cluster, "apply", "-f", "-",
                                                input=deploy(labels={"app": "old", "tier": "fe"}, env=env)).stdout
    assert "deployment.apps/old configured" in k(cluster, "apply", "-f", "-", input=deploy(3, "nginx:1.26")).stdout
    d = obj(cluster, "deploy", "old")
    assert d["spec"]["replicas"] == 3 and d["metadata"]["labels"] == {"app": "old"}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.26" and "env" not in c
    out = k(cluster, "get", "deploy").stdout
    assert out.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] and "old" in out
    assert "Image:" in k(cluster, "describe", "deploy", "old").stdout


def test_create_describe_scale_label_patch_delete(cluster):
    cm = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c120"}, "data": {"a": "1"}})
    assert "configmap/c120 created" in k(cluster, "create", "-f", "-", input=cm).stdout
    assert "c120" in k(cluster, "describe", "cm", "c120").stdout
    k(cluster, "apply", "-f", "-", input=deploy())
    assert "scaled" in k(cluster, "scale", "deploy", "old", "--replicas=1").stdout
    assert "labeled" in k(cluster, "label", "deploy", "old", "x=y").stdout
    k(cluster, "patch", "deploy", "old", "-p",
      '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}')
    k(cluster, "patch", "cm", "c120", "--type=merge", "-p", '{"data":{"b":"2"}}')
    k(cluster, "patch", "cm", "c120", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]')
    d = obj(cluster, "deploy", "old")
    assert d["spec"]["replicas"] == 1 and d["metadata"]["labels"]["x"] == "y"
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert obj(cluster, "cm", "c120")["data"] == {"b": "2"}
    assert 'configmap "c120" deleted' in k(cluster, "delete", "cm", "c120").stdout
    assert 'deployment.apps "old" deleted' in k(cluster, "delete", "-f", "-", input=deploy()).stdout
    assert "NotFound" in k(cluster, "get", "deploy", "old", check=False).stderr


def test_server_side_apply(cluster):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s120"}, "data": {"a": "1", "b": "2"}}
    assert "serverside-applied" in k(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(cm)).stdout
    k(cluster, "patch", "cm", "s120", "--type=merge", "-p", '{"data":{"a":"x"}}')
    cm["data"] = {"a": "3"}
    r = k(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(cm), check=False)
    assert r.returncode != 0 and 'conflict with "kubectl-patch" using v1: .data.a' in r.stderr
    k(cluster, "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(cm))
    assert obj(cluster, "cm", "s120")["data"] == {"a": "3"}
