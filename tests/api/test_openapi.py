"""OpenAPI v3 documents and strict field validation (ketch.api.openapi)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ketch.api import openapi
from ketch.api.registry import REGISTRY, Registry, ResourceInfo

REF = "#/components/schemas/"
KUBECTL = Path(sys.executable).parent / "kubectl"


def _all_gvs() -> list[tuple[str, str]]:
    return [(g, v) for g, vs in REGISTRY.group_versions().items() for v in vs]


def _refs(x: object) -> set[str]:
    out: set[str] = set()
    if isinstance(x, dict):
        r = x.get("$ref")
        if isinstance(r, str):
            out.add(r)
        for v in x.values():
            out |= _refs(v)
    elif isinstance(x, list):
        for v in x:
            out |= _refs(v)
    return out


def test_index_lists_every_group_version_with_stable_hash() -> None:
    idx = openapi.openapi_v3_index(REGISTRY)
    expected = {("api/" + v) if not g else f"apis/{g}/{v}" for g, v in _all_gvs()}
    assert set(idx["paths"]) == expected
    again = openapi.openapi_v3_index(REGISTRY)
    assert idx == again
    url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    raw, digest = openapi.openapi_v3_document_bytes(REGISTRY, "apps", "v1")
    assert url.endswith(digest)
    assert digest == hashlib.sha512(raw).hexdigest().upper()
    assert json.loads(raw) == openapi.openapi_v3_document(REGISTRY, "apps", "v1")


def test_unknown_group_version() -> None:
    assert openapi.openapi_v3_document(REGISTRY, "nope.example.com", "v1") is None
    assert openapi.openapi_v3_document_bytes(REGISTRY, "apps", "v9") is None


@pytest.mark.parametrize(("group", "version"), _all_gvs())
def test_documents_shape(group: str, version: str) -> None:
    doc = openapi.openapi_v3_document(REGISTRY, group, version)
    assert doc is not None and doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith(REF) and ref[len(REF):] in schemas, ref
    prefix = "/api/v1" if not group else f"/apis/{group}/{version}"
    for ri in REGISTRY.in_group_version(group, version):
        gvk = {"group": group, "version": version, "kind": ri.kind}
        base = f"{prefix}/namespaces/{{namespace}}/{ri.plural}" if ri.namespaced else f"{prefix}/{ri.plural}"
        if ri.verbs == ("create",):     # reviews: a collection you POST to, nothing else
            assert doc["paths"][base]["post"]["x-kubernetes-group-version-kind"] == gvk
            assert base + "/{name}" not in doc["paths"]
            continue
        item = doc["paths"][base + "/{name}"]
        if "patch" in ri.verbs:
            patch = item["patch"]
            assert patch["x-kubernetes-group-version-kind"] == gvk
            assert patch["x-kubernetes-action"] == "patch"
            assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
        else:
            assert "patch" not in item
        assert item["get"]["x-kubernetes-action"] == "get"
        coll = doc["paths"][base]
        assert coll["get"]["x-kubernetes-action"] == "list"
        if "create" in ri.verbs:
            assert coll["post"]["x-kubernetes-action"] == "post"
        if ri.namespaced:
            assert doc["paths"][f"{prefix}/{ri.plural}"]["get"]["x-kubernetes-group-version-kind"] == gvk
        kind_schema = schemas[ri.definition]
        assert gvk in kind_schema["x-kubernetes-group-version-kind"]
        assert {"apiVersion", "kind", "metadata"} <= set(kind_schema["properties"])
    # kubectl stops at the first PATCH operation carrying the GVK: every one must list fieldValidation
    for path, item in doc["paths"].items():
        if "patch" in item:
            names = {(p["name"], p["in"]) for p in item["patch"]["parameters"]}
            assert ("fieldValidation", "query") in names, path
            assert ("fieldManager", "query") in names, path
        for method in ("post", "put"):
            if method in item and item[method]["x-kubernetes-action"] != "connect":
                names = {p["name"] for p in item[method].get("parameters", [])}
                assert "fieldValidation" in names, path


def test_subresources() -> None:
    doc = openapi.openapi_v3_document(REGISTRY, "apps", "v1")
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1",
                                                                  "kind": "Scale"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    status = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert status["put"]["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    core = openapi.openapi_v3_document(REGISTRY, "", "v1")
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" in core["paths"]
    ev = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert ev["x-kubernetes-group-version-kind"]["kind"] == "Eviction"


def test_pod_schema() -> None:
    doc = openapi.openapi_v3_document(REGISTRY, "", "v1")
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    spec_ref = pod["properties"]["spec"]["allOf"][0]["$ref"]
    assert spec_ref == REF + "io.k8s.api.core.v1.PodSpec"
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["items"]["$ref"] == REF + "io.k8s.api.core.v1.Container"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    container = schemas["io.k8s.api.core.v1.Container"]
    assert "name" in container["required"]
    assert container["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["$ref"] == REF + "io.k8s.apimachinery.pkg.api.resource.Quantity"
    port = schemas["io.k8s.api.core.v1.HTTPGetAction"]["properties"]["port"]
    assert port["allOf"][0]["$ref"] == REF + "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"] is True
    ts = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["creationTimestamp"]
    assert ts["allOf"][0]["$ref"] == REF + "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
    time_schema = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]
    assert (time_schema["type"], time_schema["format"]) == ("string", "date-time")
    assert "io.k8s.api.core.v1.Event" in schemas


def test_definition_names_across_groups() -> None:
    defs = openapi.definitions()
    for name in (
        "io.k8s.api.core.v1.Event", "io.k8s.api.events.v1.Event", "io.k8s.api.events.v1.EventSeries",
        "io.k8s.api.discovery.v1.EndpointSlice", "io.k8s.api.discovery.v1.Endpoint",
        "io.k8s.api.discovery.v1.EndpointPort", "io.k8s.api.core.v1.EndpointPort",
        "io.k8s.api.apps.v1.Deployment", "io.k8s.api.batch.v1.CronJob", "io.k8s.api.autoscaling.v2.MetricSpec",
        "io.k8s.api.coordination.v1.Lease", "io.k8s.api.policy.v1.PodDisruptionBudget",
        "io.k8s.api.networking.v1.Ingress", "io.k8s.api.rbac.v1.ClusterRole", "io.k8s.api.rbac.v1.Subject",
        "io.k8s.api.storage.v1.StorageClass", "io.k8s.api.authentication.v1.TokenReview",
        "io.k8s.api.authorization.v1.SubjectAccessReview", "io.k8s.api.core.v1.TopologySelectorTerm",
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", "io.k8s.apimachinery.pkg.api.resource.Quantity",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ):
        assert name in defs, name
    lease = defs["io.k8s.api.coordination.v1.LeaseSpec"]["properties"]["renewTime"]
    assert lease["allOf"][0]["$ref"].endswith("meta.v1.MicroTime")


FULL_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "x/y": "z"},
                 "annotations": {"any": "thing"}, "creationTimestamp": "2024-01-01T00:00:00Z",
                 "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "1"}],
                 "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                    "command": ["nginx"], "args": ["-g", "daemon off;"],
                    "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"},
                            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu",
                                                                             "divisor": "1m"}}}],
                    "envFrom": [{"configMapRef": {"name": "cm"}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.1}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http",
                                                  "httpHeaders": [{"name": "X", "value": "y"}]},
                                      "initialDelaySeconds": 3, "periodSeconds": 10},
                    "readinessProbe": {"tcpSocket": {"port": 80}},
                    "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                    "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                }],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
                "volumes": [
                    {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a"}]}},
                    {"name": "sec", "secret": {"secretName": "s", "defaultMode": 420}},
                    {"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}},
                ],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "k", "operator": "Exists"}]}]}}},
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                "nodeSelector": {"disk": "ssd"},
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "securityContext": {"fsGroup": 2000},
            },
        },
    },
    "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True",
                                               "lastUpdateTime": "2024-01-01T00:00:00Z"}]},
}


def test_unknown_fields_accepts_valid_objects() -> None:
    assert openapi.unknown_fields("io.k8s.api.apps.v1.Deployment", FULL_DEPLOYMENT) == []
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"a": "b", "nested.key": "x"}, "binaryData": {"b": "AAA="}}
    assert openapi.unknown_fields("io.k8s.api.core.v1.ConfigMap", cm) == []
    cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
          "data": {"anything": {"goes": [1, 2]}}, "revision": 1}
    assert openapi.unknown_fields("io.k8s.api.apps.v1.ControllerRevision", cr) == []
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
             "spec": {"holderIdentity": "a", "renewTime": "2024-01-01T00:00:00.000000Z"}}
    assert openapi.unknown_fields("io.k8s.api.coordination.v1.Lease", lease) == []


def test_unknown_fields_finds_nested_fields() -> None:
    bad = json.loads(json.dumps(FULL_DEPLOYMENT))
    bad["bogusTop"] = 1
    bad["metadata"]["bogusMeta"] = 1
    bad["spec"]["bogusField"] = True
    bad["spec"]["template"]["spec"]["containers"][0]["foo"] = "bar"
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["bar"] = 1
    bad["spec"]["template"]["spec"]["volumes"][2]["secret"]["nope"] = 1
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["limitz"] = {}
    # document order, as the Kubernetes decoder reports them
    assert openapi.unknown_fields("io.k8s.api.apps.v1.Deployment", bad) == [
        "metadata.bogusMeta",
        "spec.template.spec.containers[0].ports[0].bar",
        "spec.template.spec.containers[0].resources.limitz",
        "spec.template.spec.containers[0].foo",
        "spec.template.spec.volumes[2].secret.nope",
        "spec.bogusField",
        "bogusTop",
    ]


def test_unknown_fields_tolerates_odd_input() -> None:
    assert openapi.unknown_fields("io.example.Unknown", {"x": 1}) == []
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": "not-an-object", "metadata": None,
           "status": {"conditions": "nope"}}
    assert openapi.unknown_fields("io.k8s.api.core.v1.Pod", pod) == []


def test_duplicate_fields() -> None:
    raw = b'{"spec":{"replicas":1,"replicas":2,"template":{"spec":{"containers":[{"name":"a","name":"b"}]}}},' \
          b'"kind":"Deployment","kind":"Deployment"}'
    assert openapi.duplicate_fields(raw) == [
        "kind", "spec.replicas", "spec.template.spec.containers[0].name"]
    assert openapi.duplicate_fields(b'{"a":1}') == []
    assert openapi.duplicate_fields(b"not json") == []


def test_resource_without_builtin_schema() -> None:
    ri = ResourceInfo(group="example.com", version="v1", kind="Widget", plural="widgets", namespaced=True,
                      definition="com.example.v1.Widget")
    reg = Registry([ri])
    doc = openapi.openapi_v3_document(reg, "example.com", "v1")
    schemas = doc["components"]["schemas"]
    assert schemas["com.example.v1.Widget"]["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "kind": "Widget", "version": "v1"}]
    assert "com.example.v1.WidgetList" in schemas
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    for ref in _refs(doc):
        assert ref[len(REF):] in schemas
    assert openapi.unknown_fields("com.example.v1.Widget", {"spec": {"x": 1}}) == []


def test_group_derived_names_are_canonicalized() -> None:
    ri = ResourceInfo(group="apiextensions.k8s.io", version="v1", kind="CustomResourceDefinition",
                      plural="customresourcedefinitions", namespaced=False,
                      definition="io.k8s.api.apiextensions.v1.CustomResourceDefinition")
    doc = openapi.openapi_v3_document(Registry([ri]), "apiextensions.k8s.io", "v1")
    real = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    crd = doc["components"]["schemas"][real]
    assert crd["x-kubernetes-group-version-kind"][0]["kind"] == ri.kind
    assert "x-kubernetes-preserve-unknown-fields" not in crd
    assert openapi.unknown_fields(ri.definition, {"spec": {"group": "x", "bogus": 1}}) == ["spec.bogus"]


def test_runtime_does_not_import_kubernetes() -> None:
    code = ("import sys; from ketch.api import openapi; from ketch.api.registry import REGISTRY; "
            "openapi.openapi_v3_index(REGISTRY); openapi.unknown_fields('io.k8s.api.core.v1.Pod', {}); "
            "assert 'kubernetes' not in sys.modules, 'kubernetes imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------
# the real kubectl against a tiny stub serving the documents


class _Stub(BaseHTTPRequestHandler):
    store: dict[str, dict] = {}
    patches: list[tuple[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, obj: object) -> None:
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _status(self, code: int, reason: str, msg: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                          "code": code, "message": msg})

    @staticmethod
    def _resources(group: str, version: str) -> list[dict]:
        return [{"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                 "verbs": list(r.verbs), "shortNames": list(r.short_names)}
                for r in REGISTRY.in_group_version(group, version)]

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/openapi/v3":
            return self._send(200, openapi.openapi_v3_index(REGISTRY))
        if path.startswith("/openapi/v3/"):
            rest = path[len("/openapi/v3/"):].split("/")
            group, version = ("", rest[1]) if rest[0] == "api" else (rest[1], rest[2])
            built = openapi.openapi_v3_document_bytes(REGISTRY, group, version)
            return self._send(200, built[0]) if built else self._status(404, "NotFound", "no")
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                       "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                      for g, vs in REGISTRY.group_versions().items() if g]
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        parts = path.split("/")
        if path == "/api/v1" or (len(parts) == 4 and parts[1] == "apis"):
            gv = "v1" if path == "/api/v1" else f"{parts[2]}/{parts[3]}"
            group, _, version = gv.rpartition("/")
            return self._send(200, {"kind": "APIResourceList", "groupVersion": gv,
                                    "resources": self._resources(group, version)})
        if path in self.store:
            return self._send(200, self.store[path])
        return self._status(404, "NotFound", "not found")

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        ri = REGISTRY.by_kind(body["apiVersion"], body["kind"])
        if parse_qs(url.query).get("fieldValidation") == ["Strict"]:
            bad = openapi.unknown_fields(ri.definition, body)
            if bad:
                return self._status(400, "BadRequest", "strict decoding error: " + ", ".join(
                    f'unknown field "{f}"' for f in bad))
        body["metadata"].update(namespace="default", resourceVersion="1", uid="u1")
        self.store[f"{url.path}/{body['metadata']['name']}"] = body
        return self._send(201, body)

    def do_PATCH(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.patches.append((self.headers.get("Content-Type", ""), body))
        return self._send(200, self.store[url.path])


@pytest.fixture
def kubectl(tmp_path: Path):
    if not KUBECTL.exists() and not shutil.which("kubectl"):
        pytest.skip("kubectl not installed")
    exe = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    _Stub.store, _Stub.patches = {}, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "s", "users": [],
        "clusters": [{"name": "s", "cluster": {"server": f"http://127.0.0.1:{srv.server_address[1]}"}}],
        "contexts": [{"name": "s", "context": {"cluster": "s", "namespace": "default"}}]}))
    env = dict(os.environ, KUBECONFIG=str(cfg), HOME=str(tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=60)

    yield run
    srv.shutdown()
    srv.server_close()


def _manifest(tmp_path: Path, name: str, obj: dict) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return str(p)


def test_kubectl_apply_strict_and_explain(kubectl, tmp_path: Path) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": json.loads(json.dumps(FULL_DEPLOYMENT["spec"]))}
    r = kubectl("apply", "-f", _manifest(tmp_path, "ok.json", dep))
    assert r.returncode == 0, r.stderr
    assert "deployment.apps/web created" in r.stdout

    # second apply: kubectl builds the strategic merge patch from our schema's merge keys
    dep2 = json.loads(json.dumps(dep))
    dep2["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    r = kubectl("apply", "-f", _manifest(tmp_path, "ok2.json", dep2))
    assert r.returncode == 0, r.stderr
    ctype, patch = _Stub.patches[-1]
    assert ctype == "application/strategic-merge-patch+json"
    assert '"$setElementOrder/containers":[{"name":"nginx"}]' in patch

    bad = json.loads(json.dumps(dep))
    bad["metadata"]["name"] = "bad"
    bad["spec"]["bogusField"] = 1
    r = kubectl("apply", "-f", _manifest(tmp_path, "bad.json", bad))
    assert r.returncode != 0
    assert 'strict decoding error: unknown field "spec.bogusField"' in r.stderr

    r = kubectl("explain", "pods.spec.containers")
    assert r.returncode == 0, r.stderr
    assert "FIELD: containers <[]Container>" in r.stdout
    assert "name\t<string> -required-" in r.stdout
    r = kubectl("explain", "deployments.spec.template.spec.containers.resources.limits")
    assert r.returncode == 0, r.stderr
    assert "<map[string]Quantity>" in r.stdout
