"""Server-side apply with the real kubectl 1.37: create, update, conflicts, --force-conflicts,
field removal, dry run, and the migration of an object first created by client-side apply."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import yaml


def deploy(name: str, replicas: int = 2, image: str = "nginx:1.25", labels: dict | None = None,
           env: list | None = None) -> str:
    c: dict = {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
    if env:
        c["env"] = env
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}}}})


def get(cluster, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "deploy", name, "-o", "json", "--show-managed-fields").stdout)


def entries(obj: dict) -> dict[tuple[str, str], dict]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields") or []
            if not e.get("subresource")}


def test_create_update_and_managed_fields(cluster):
    r = cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-a"))
    assert "deployment.apps/ssa-a serverside-applied" in r.stdout
    out = cluster.kubectl("get", "deploy", "ssa-a", "-o", "yaml", "--show-managed-fields").stdout
    obj = yaml.safe_load(out)
    e = entries(obj)[("kubectl", "Apply")]
    assert e["apiVersion"] == "apps/v1" and e["fieldsType"] == "FieldsV1"
    spec = e["fieldsV1"]["f:spec"]
    assert "f:replicas" in spec and "f:selector" in spec
    c = spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert "f:image" in c and 'k:{"containerPort":80,"protocol":"TCP"}' in c["f:ports"]
    # without --show-managed-fields kubectl hides them
    assert "managedFields" not in cluster.kubectl("get", "deploy", "ssa-a", "-o", "yaml").stdout

    cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-a", replicas=3, image="nginx:1.26"))
    obj = get(cluster, "ssa-a")
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    # applying the same configuration again changes nothing (no write, same resourceVersion)
    cm = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa-a"}, "data": {"k": "v"}})
    cluster.kubectl("apply", "--server-side", "-f", "-", input=cm)
    rv = json.loads(cluster.kubectl("get", "cm", "ssa-a", "-o", "json").stdout)["metadata"]["resourceVersion"]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=cm)
    assert json.loads(cluster.kubectl("get", "cm", "ssa-a", "-o", "json").stdout)["metadata"]["resourceVersion"] == rv


def test_conflicts_and_force(cluster):
    cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-b"))
    cluster.kubectl("patch", "deploy", "ssa-b", "--type=merge", "-p", '{"spec":{"replicas":4}}')
    r = cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-b", replicas=5), check=False)
    assert r.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas' in r.stderr
    # another applier: conflicts name every field, grouped by manager
    r = cluster.kubectl("apply", "--server-side", "--field-manager=other", "-f", "-",
                        input=deploy("ssa-b", replicas=6, image="nginx:1.27"), check=False)
    assert r.returncode != 0
    assert "Apply failed with 2 conflicts: " in r.stderr
    assert 'conflicts with "kubectl":\n- .spec.template.spec.containers[name="nginx"].image' in r.stderr
    assert 'conflicts with "kubectl-patch" using apps/v1:\n- .spec.replicas' in r.stderr
    assert get(cluster, "ssa-b")["spec"]["replicas"] == 4
    # same value: shared ownership, no conflict
    cluster.kubectl("apply", "--server-side", "--field-manager=other", "-f", "-",
                    input=deploy("ssa-b", replicas=4))
    # --force-conflicts takes the field over
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=deploy("ssa-b", replicas=5))
    obj = get(cluster, "ssa-b")
    assert obj["spec"]["replicas"] == 5
    e = entries(obj)
    assert ("kubectl-patch", "Update") not in e
    assert "f:replicas" not in e[("other", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:replicas" in e[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


def test_field_removal_and_dry_run(cluster):
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    cluster.kubectl("apply", "--server-side", "-f", "-",
                    input=deploy("ssa-c", labels={"app": "ssa-c", "tier": "fe"}, env=env))
    cluster.kubectl("label", "deploy", "ssa-c", "owner=ops")
    # dry run: answered, not stored
    r = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-",
                        input=deploy("ssa-c", replicas=7))
    assert json.loads(r.stdout)["spec"]["replicas"] == 7
    assert get(cluster, "ssa-c")["spec"]["replicas"] == 2
    cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-c", env=env[:1]))
    obj = get(cluster, "ssa-c")
    # tier and env B were applied before and omitted now; owner belongs to kubectl-label
    assert obj["metadata"]["labels"] == {"app": "ssa-c", "owner": "ops"}
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == env[:1]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-c"))
    assert "env" not in get(cluster, "ssa-c")["spec"]["template"]["spec"]["containers"][0]


def test_migration_from_client_side_apply(cluster):
    cluster.kubectl("apply", "-f", "-", input=deploy("ssa-d", labels={"app": "ssa-d", "tier": "fe"}))
    assert ("kubectl-client-side-apply", "Update") in entries(get(cluster, "ssa-d"))
    # the same configuration: no conflict, and kubectl moves the client-side fields to its apply entry
    r = cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-d", labels={"app": "ssa-d", "tier": "fe"}))
    assert "serverside-applied" in r.stdout and "Warning" not in r.stderr
    obj = get(cluster, "ssa-d")
    e = entries(obj)
    assert ("kubectl-client-side-apply", "Update") not in e
    assert ("kubectl", "Apply") in e and ("kubectl-last-applied", "Apply") in e
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    # a field only client-side apply had set is now kubectl's to remove
    cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-d", replicas=3))
    obj = get(cluster, "ssa-d")
    assert obj["metadata"]["labels"] == {"app": "ssa-d"} and obj["spec"]["replicas"] == 3
    # a changed field still owned by client-side apply conflicts
    cluster.kubectl("apply", "-f", "-", input=deploy("ssa-e"))
    r = cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-e", replicas=4), check=False)
    assert 'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas' in r.stderr


def test_status_subresource_apply(cluster):
    cluster.kubectl("apply", "--server-side", "-f", "-", input=deploy("ssa-f"))
    body = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa-f"},
                       "spec": {"replicas": 9}, "status": {"observedGeneration": 42}}).encode()
    url = f"{cluster.url}/apis/apps/v1/namespaces/default/deployments/ssa-f/status?fieldManager=st&force=true"
    req = urllib.request.Request(url, body, method="PATCH", headers={"Content-Type": "application/apply-patch+yaml"})
    with urllib.request.urlopen(req) as r:
        out = json.loads(r.read())
    assert out["spec"]["replicas"] == 2
    mine = [e for e in out["metadata"]["managedFields"] if e["manager"] == "st"]
    assert mine and mine[0]["subresource"] == "status" and list(mine[0]["fieldsV1"]) == ["f:status"]
    # another manager without force conflicts
    req = urllib.request.Request(url.replace("=st&force=true", "=st2"), body.replace(b"42", b"43"), method="PATCH",
                                 headers={"Content-Type": "application/apply-patch+yaml"})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("no conflict")
    except urllib.error.HTTPError as e:
        st = json.loads(e.read())
        assert e.code == 409 and st["reason"] == "Conflict" and ".status.observedGeneration" in st["message"]
        assert st["details"]["causes"][0]["reason"] == "FieldManagerConflict"
