"""Validation of the built-in kinds: realistic objects pass, each rule fails with Kubernetes' field path."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable

import pytest

from ketch.api.defaults import apply_defaults
from ketch.api.quantity import canonical_quantity, format_quantity, parse_quantity
from ketch.api.validation import FieldError, format_errors, validate, validate_name


def check(obj: dict, old: dict | None = None) -> list[FieldError]:
    """Default (as the server does), then validate."""
    obj = apply_defaults(copy.deepcopy(obj))
    if old is not None:
        old = apply_defaults(copy.deepcopy(old))
    return validate(obj, old)


def one(errs: list[FieldError], field: str, reason: str | None = None) -> FieldError:
    """The single error of a failing case, at exactly `field`."""
    assert [e.field for e in errs] == [field], [e.message for e in errs]
    if reason:
        assert errs[0].reason == reason
    return errs[0]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


# --------------------------------------------------------------------------- fixtures


def docs_pod() -> dict:
    """The pod from the Kubernetes docs (pods/simple-pod.yaml)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}


def rich_pod() -> dict:
    """A pod using most of the spec (probes, env, volumes, resources, init containers)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web", "app.kubernetes.io/name": "web"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "Note": "x"}},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
            "containers": [{
                "name": "web", "image": "registry.example.com:5000/team/web@sha256:" + "0" * 64,
                "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}],
                "envFrom": [{"configMapRef": {"name": "web-config"}, "prefix": "CFG_"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 3},
                "readinessProbe": {"tcpSocket": {"port": 8080}, "successThreshold": 2},
                "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}},
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "config", "mountPath": "/etc/web",
                                                                          "readOnly": True}],
            }],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "config", "configMap": {"name": "web-config", "items": [{"key": "a", "path": "a.conf"}]}}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
            "restartPolicy": "Always",
        },
    }


def kubectl_create_deployment() -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"creationTimestamp": None, "labels": {"app": "web"}, "name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"image": "nginx", "name": "nginx", "resources": {}}]},
            },
        },
        "status": {},
    }


def kubectl_create_service() -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"labels": {"app": "web"}, "name": "web", "namespace": "default"},
            "spec": {"ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                     "selector": {"app": "web"}, "type": "ClusterIP"}, "status": {"loadBalancer": {}}}


def kubectl_create_job() -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"metadata": {}, "spec": {
                "containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl", "-e", "print 1"]}],
                "restartPolicy": "Never"}}}}


def kubectl_create_cronjob() -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"name": "hello"},
                                                                 "spec": kubectl_create_job()["spec"]}}}


VALID = {
    "docs pod": docs_pod,
    "rich pod": rich_pod,
    "deployment": kubectl_create_deployment,
    "service": kubectl_create_service,
    "job": kubectl_create_job,
    "cronjob": kubectl_create_cronjob,
    "replicaset": lambda: {**kubectl_create_deployment(), "kind": "ReplicaSet"},
    "statefulset": lambda: {**kubectl_create_deployment(), "kind": "StatefulSet",
                            "spec": {**kubectl_create_deployment()["spec"], "serviceName": "web", "strategy": None}},
    "daemonset": lambda: {**kubectl_create_deployment(), "kind": "DaemonSet",
                          "spec": {k: v for k, v in kubectl_create_deployment()["spec"].items()
                                   if k not in ("replicas", "strategy")}},
    "headless service": lambda: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "d"},
                                 "spec": {"clusterIP": "None", "selector": {"app": "db"}}},
    "externalname": lambda: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "d"},
                             "spec": {"type": "ExternalName", "externalName": "db.example.com."}},
    "nodeport": lambda: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np", "namespace": "d"},
                         "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}],
                                  "clusterIP": "10.96.0.10", "selector": {"app": "x"}}},
    "configmap": lambda: {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "game-config", "namespace": "d"},
                          "data": {"game.properties": "enemies=aliens\nlives=3\n", "ui_mode": "dark"},
                          "binaryData": {"logo.png": b64("\x89PNG")}},
    "secret": lambda: {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-user-pass", "namespace": "d"},
                       "data": {"username": b64("admin"), "password": b64("S!B\\*d$zDsb=")}},
    "tls secret": lambda: {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                           "metadata": {"name": "tls", "namespace": "d"},
                           "data": {"tls.crt": b64("cert"), "tls.key": b64("key")}},
    "docker secret": lambda: {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                              "metadata": {"name": "regcred", "namespace": "d"},
                              "data": {".dockerconfigjson": b64('{"auths": {}}')}},
    "serviceaccount": lambda: {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "build-robot",
                                                                                         "namespace": "d"}},
    "namespace": lambda: {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
    "node": lambda: {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1.example.com",
                                                                     "labels": {"kubernetes.io/hostname": "node-1"}},
                     "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                              "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
                     "status": {"capacity": {"cpu": "4", "memory": "16363904Ki", "pods": "110"}}},
    "endpoints": lambda: {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "d"},
                          "subsets": [{"addresses": [{"ip": "10.244.1.5", "nodeName": "node-1",
                                                      "targetRef": {"kind": "Pod", "name": "web-0"}}],
                                       "ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]}]},
    "endpointslice": lambda: {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                              "metadata": {"name": "web-abc12", "namespace": "d",
                                           "labels": {"kubernetes.io/service-name": "web"}},
                              "addressType": "IPv4",
                              "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True},
                                             "nodeName": "node-1"}],
                              "ports": [{"name": "http", "port": 8080}]},
    "lease": lambda: {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
                      "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                               "renewTime": "2024-01-01T00:00:00.000000Z"}},
    "core event": lambda: {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web-0.17a8b", "namespace": "d"},
                           "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "d"},
                           "reason": "Scheduled", "message": "assigned", "type": "Normal",
                           "source": {"component": "default-scheduler"}, "count": 1},
    "events event": lambda: {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                             "metadata": {"name": "web-0.17a8c", "namespace": "d"},
                             "regarding": {"kind": "Pod", "name": "web-0", "namespace": "d"},
                             "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "ketch/scheduler",
                             "reportingInstance": "scheduler-1", "action": "Binding", "reason": "Scheduled",
                             "note": "assigned", "type": "Normal"},
}


@pytest.mark.parametrize("name", list(VALID))
def test_realistic_objects_are_valid(name):
    obj = VALID[name]()
    assert check(obj) == [], [e.message for e in check(obj)]
    # An unchanged update is valid too.
    assert check(obj, obj) == []


def test_unknown_kind_passes():
    assert validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}) == []


def test_error_shape_and_messages():
    pod = docs_pod()
    pod["spec"]["containers"][0]["image"] = ""
    e = one(check(pod), "spec.containers[0].image", "FieldValueRequired")
    assert e.message == "spec.containers[0].image: Required value"
    assert e.body == "Required value"
    assert format_errors([e]) == e.message
    assert format_errors([e, e]) == f"[{e.message}, {e.message}]"


# --------------------------------------------------------------------------- names & metadata


def test_validate_name():
    assert validate_name("Pod", "web-0.example") is None
    assert validate_name("Pod", "Web").startswith("a lowercase RFC 1123 subdomain")
    assert validate_name("Namespace", "a.b").startswith("a lowercase RFC 1123 label")
    assert validate_name("Namespace", "x" * 64).startswith("must be no more than 63 characters")
    assert validate_name("Service", "1web").startswith("a DNS-1035 label")
    assert validate_name("Service", "web-1") is None
    assert validate_name("ClusterRole", "system:controller:x") is None
    assert validate_name("Role", "a/b") == "may not contain '/'"
    assert validate_name("Role", "..") == "may not be '..'"
    assert validate_name("ConfigMap", "a" * 254) == "must be no more than 253 characters"
    assert validate_name("CronJob", "a" * 53) == "must be no more than 52 characters"


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda m: m.pop("name"), "metadata.name", "FieldValueRequired"),
    (lambda m: m.update(name="Nginx"), "metadata.name", "FieldValueInvalid"),
    (lambda m: m.update(name="a_b"), "metadata.name", "FieldValueInvalid"),
    (lambda m: m.update(namespace="Bad_NS"), "metadata.namespace", "FieldValueInvalid"),
    (lambda m: m.update(labels={"bad key!": "x"}), "metadata.labels", "FieldValueInvalid"),
    (lambda m: m.update(labels={"app": "-bad"}), "metadata.labels", "FieldValueInvalid"),
    (lambda m: m.update(labels={"app": "x" * 64}), "metadata.labels", "FieldValueInvalid"),
    (lambda m: m.update(labels={"Example.com/app": "x"}), "metadata.labels", "FieldValueInvalid"),
    (lambda m: m.update(labels={"a/b/c": "x"}), "metadata.labels", "FieldValueInvalid"),
    (lambda m: m.update(annotations={"bad key": "x"}), "metadata.annotations", "FieldValueInvalid"),
    (lambda m: m.update(annotations={"a": "x" * (256 * 1024)}), "metadata.annotations", "FieldValueTooLong"),
    (lambda m: m.update(finalizers=["bad finalizer"]), "metadata.finalizers", "FieldValueInvalid"),
    (lambda m: m.update(finalizers=["orphan", "foregroundDeletion"]), "metadata.finalizers", "FieldValueInvalid"),
    (lambda m: m.update(generation=-1), "metadata.generation", "FieldValueInvalid"),
    (lambda m: m.update(ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}]),
     "metadata.ownerReferences.uid", "FieldValueInvalid"),
    (lambda m: m.update(ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True}]),
     "metadata.ownerReferences", "FieldValueInvalid"),
    (lambda m: m.update(generateName="Web-"), "metadata.generateName", "FieldValueInvalid"),
])
def test_metadata_rules(mutate, field, reason):
    pod = docs_pod()
    mutate(pod["metadata"])
    one(check(pod), field, reason)


def test_metadata_messages():
    pod = docs_pod()
    pod["metadata"] = {"namespace": "default"}
    assert one(check(pod), "metadata.name").message == "metadata.name: Required value: name or generateName is required"
    pod["metadata"] = {"name": "Nginx"}
    assert one(check(pod), "metadata.name").message.startswith(
        'metadata.name: Invalid value: "Nginx": a lowercase RFC 1123 subdomain must consist of')
    pod["metadata"] = {"name": "x", "labels": {"app": "-bad"}}
    assert one(check(pod), "metadata.labels").message.startswith(
        'metadata.labels: Invalid value: "-bad": a valid label must be an empty string or consist of')
    pod["metadata"] = {"name": "x", "annotations": {"a": "x" * (256 * 1024)}}
    assert one(check(pod), "metadata.annotations").message == \
        "metadata.annotations: Too long: may not be more than 262144 bytes"


def test_generate_name_prefix_with_trailing_dash_is_fine():
    pod = docs_pod()
    pod["metadata"] = {"generateName": "web-", "namespace": "default"}
    assert check(pod) == []


def test_namespace_forbidden_on_cluster_scoped():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "namespace": "b"}}
    one(check(ns), "metadata.namespace", "FieldValueForbidden")


def test_metadata_identity_immutable():
    old = docs_pod()
    old["metadata"]["uid"] = "u1"
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "u2"
    one(check(new, old), "metadata.uid", "FieldValueInvalid")
    cm = VALID["configmap"]()
    cm2 = copy.deepcopy(cm)
    cm2["metadata"]["name"] = "other"
    assert one(check(cm2, cm), "metadata.name").message.endswith("field is immutable")


# --------------------------------------------------------------------------- pods

def _c(pod: dict, i: int = 0) -> dict:
    return pod["spec"]["containers"][i]


POD_RULES: list[tuple[str, Callable[[dict], object], str, str]] = [
    ("no containers", lambda p: p["spec"].update(containers=[]), "spec.containers", "FieldValueRequired"),
    ("missing containers", lambda p: p["spec"].pop("containers"), "spec.containers", "FieldValueRequired"),
    ("container name missing", lambda p: _c(p).pop("name"), "spec.containers[0].name", "FieldValueRequired"),
    ("container name invalid", lambda p: _c(p).update(name="Web_1"), "spec.containers[0].name", "FieldValueInvalid"),
    ("duplicate container", lambda p: p["spec"]["containers"].append(copy.deepcopy(_c(p)) | {"ports": []}),
     "spec.containers[1].name", "FieldValueDuplicate"),
    ("init duplicates container", lambda p: p["spec"].update(initContainers=[{"name": "nginx", "image": "busybox"}]),
     "spec.initContainers[0].name", "FieldValueDuplicate"),
    ("image missing", lambda p: _c(p).pop("image"), "spec.containers[0].image", "FieldValueRequired"),
    ("init image missing", lambda p: p["spec"].update(initContainers=[{"name": "init"}]),
     "spec.initContainers[0].image", "FieldValueRequired"),
    ("image whitespace", lambda p: _c(p).update(image=" nginx"), "spec.containers[0].image", "FieldValueInvalid"),
    ("port zero", lambda p: _c(p)["ports"][0].update(containerPort=0), "spec.containers[0].ports[0].containerPort",
     "FieldValueRequired"),
    ("port too big", lambda p: _c(p)["ports"][0].update(containerPort=70000),
     "spec.containers[0].ports[0].containerPort", "FieldValueInvalid"),
    ("host port", lambda p: _c(p)["ports"][0].update(hostPort=-1), "spec.containers[0].ports[0].hostPort",
     "FieldValueInvalid"),
    ("protocol", lambda p: _c(p)["ports"][0].update(protocol="HTTP"), "spec.containers[0].ports[0].protocol",
     "FieldValueNotSupported"),
    ("port name", lambda p: _c(p)["ports"][0].update(name="http_port"), "spec.containers[0].ports[0].name",
     "FieldValueInvalid"),
    ("duplicate port name", lambda p: _c(p).update(ports=[{"name": "http", "containerPort": 80},
                                                          {"name": "http", "containerPort": 81}]),
     "spec.containers[0].ports[1].name", "FieldValueDuplicate"),
    ("hostNetwork port mismatch", lambda p: (p["spec"].update(hostNetwork=True),
                                             _c(p)["ports"][0].update(hostPort=8080)),
     "spec.containers[0].ports[0].hostPort", "FieldValueInvalid"),
    ("restartPolicy", lambda p: p["spec"].update(restartPolicy="Sometimes"), "spec.restartPolicy",
     "FieldValueNotSupported"),
    ("dnsPolicy", lambda p: p["spec"].update(dnsPolicy="Google"), "spec.dnsPolicy", "FieldValueNotSupported"),
    ("dnsPolicy None needs config", lambda p: p["spec"].update(dnsPolicy="None"), "spec.dnsConfig",
     "FieldValueRequired"),
    ("imagePullPolicy", lambda p: _c(p).update(imagePullPolicy="Sometimes"), "spec.containers[0].imagePullPolicy",
     "FieldValueNotSupported"),
    ("terminationMessagePolicy", lambda p: _c(p).update(terminationMessagePolicy="Log"),
     "spec.containers[0].terminationMessagePolicy", "FieldValueNotSupported"),
    ("volume two sources", lambda p: p["spec"].update(volumes=[{"name": "v", "emptyDir": {},
                                                                "hostPath": {"path": "/x"}}]),
     "spec.volumes[0].hostPath", "FieldValueForbidden"),
    ("volume name", lambda p: p["spec"].update(volumes=[{"name": "V"}]), "spec.volumes[0].name", "FieldValueInvalid"),
    ("volume name missing", lambda p: p["spec"].update(volumes=[{"emptyDir": {}}]), "spec.volumes[0].name",
     "FieldValueRequired"),
    ("duplicate volume", lambda p: p["spec"].update(volumes=[{"name": "v"}, {"name": "v"}]), "spec.volumes[1].name",
     "FieldValueDuplicate"),
    ("secret volume", lambda p: p["spec"].update(volumes=[{"name": "v", "secret": {}}]),
     "spec.volumes[0].secret.secretName", "FieldValueRequired"),
    ("configMap volume", lambda p: p["spec"].update(volumes=[{"name": "v", "configMap": {"name": "c",
                                                                                          "defaultMode": 1000}}]),
     "spec.volumes[0].configMap.defaultMode", "FieldValueInvalid"),
    ("configMap item path", lambda p: p["spec"].update(volumes=[{"name": "v", "configMap": {
        "name": "c", "items": [{"key": "k", "path": "/etc/x"}]}}]),
     "spec.volumes[0].configMap.items[0].path", "FieldValueInvalid"),
    ("pvc volume", lambda p: p["spec"].update(volumes=[{"name": "v", "persistentVolumeClaim": {}}]),
     "spec.volumes[0].persistentVolumeClaim.claimName", "FieldValueRequired"),
    ("hostPath type", lambda p: p["spec"].update(volumes=[{"name": "v", "hostPath": {"path": "/x", "type": "Dir"}}]),
     "spec.volumes[0].hostPath.type", "FieldValueNotSupported"),
    ("mount unknown volume", lambda p: _c(p).update(volumeMounts=[{"name": "nope", "mountPath": "/x"}]),
     "spec.containers[0].volumeMounts[0].name", "FieldValueNotFound"),
    ("mount path missing", lambda p: (p["spec"].update(volumes=[{"name": "v"}]),
                                      _c(p).update(volumeMounts=[{"name": "v"}])),
     "spec.containers[0].volumeMounts[0].mountPath", "FieldValueRequired"),
    ("mount path duplicate", lambda p: (p["spec"].update(volumes=[{"name": "v"}, {"name": "w"}]),
                                        _c(p).update(volumeMounts=[{"name": "v", "mountPath": "/x"},
                                                                   {"name": "w", "mountPath": "/x"}])),
     "spec.containers[0].volumeMounts[1].mountPath", "FieldValueInvalid"),
    ("subPath escapes", lambda p: (p["spec"].update(volumes=[{"name": "v"}]),
                                   _c(p).update(volumeMounts=[{"name": "v", "mountPath": "/x", "subPath": "../y"}])),
     "spec.containers[0].volumeMounts[0].subPath", "FieldValueInvalid"),
    ("bad quantity", lambda p: _c(p).update(resources={"requests": {"cpu": "1 core"}}),
     "spec.containers[0].resources.requests[cpu]", "FieldValueInvalid"),
    ("negative quantity", lambda p: _c(p).update(resources={"requests": {"memory": "-1Mi"}}),
     "spec.containers[0].resources.requests[memory]", "FieldValueInvalid"),
    ("requests above limits", lambda p: _c(p).update(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
     "spec.containers[0].resources.requests", "FieldValueInvalid"),
    ("unknown resource", lambda p: _c(p).update(resources={"requests": {"gpu": "1"}}),
     "spec.containers[0].resources.requests[gpu]", "FieldValueInvalid"),
    ("extended resource needs limit", lambda p: _c(p).update(resources={"requests": {"example.com/gpu": "1"}}),
     "spec.containers[0].resources.limits", "FieldValueRequired"),
    ("extended resource equal", lambda p: _c(p).update(resources={"limits": {"example.com/gpu": "2"},
                                                                 "requests": {"example.com/gpu": "1"}}),
     "spec.containers[0].resources.requests", "FieldValueInvalid"),
    ("env name missing", lambda p: _c(p).update(env=[{"value": "x"}]), "spec.containers[0].env[0].name",
     "FieldValueRequired"),
    ("env name invalid", lambda p: _c(p).update(env=[{"name": "1ABC", "value": "x"}]),
     "spec.containers[0].env[0].name", "FieldValueInvalid"),
    ("env value and valueFrom", lambda p: _c(p).update(env=[{"name": "A", "value": "x", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}]), "spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
    ("env valueFrom empty", lambda p: _c(p).update(env=[{"name": "A", "valueFrom": {}}]),
     "spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
    ("env valueFrom two", lambda p: _c(p).update(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}, "secretKeyRef": {"name": "s", "key": "k"}}}]),
     "spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
    ("env fieldPath", lambda p: _c(p).update(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}]),
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "FieldValueNotSupported"),
    ("env secret key", lambda p: _c(p).update(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
     "spec.containers[0].env[0].valueFrom.secretKeyRef.key", "FieldValueRequired"),
    ("envFrom empty", lambda p: _c(p).update(envFrom=[{}]), "spec.containers[0].envFrom", "FieldValueInvalid"),
    ("probe without handler", lambda p: _c(p).update(livenessProbe={"periodSeconds": 5}),
     "spec.containers[0].livenessProbe", "FieldValueRequired"),
    ("probe two handlers", lambda p: _c(p).update(readinessProbe={"exec": {"command": ["true"]},
                                                                  "httpGet": {"port": 80}}),
     "spec.containers[0].readinessProbe.httpGet", "FieldValueForbidden"),
    ("probe exec command", lambda p: _c(p).update(livenessProbe={"exec": {}}),
     "spec.containers[0].livenessProbe.exec.command", "FieldValueRequired"),
    ("probe port", lambda p: _c(p).update(livenessProbe={"tcpSocket": {"port": 0}}),
     "spec.containers[0].livenessProbe.tcpSocket.port", "FieldValueInvalid"),
    ("probe negative", lambda p: _c(p).update(readinessProbe={"tcpSocket": {"port": 80}, "initialDelaySeconds": -1}),
     "spec.containers[0].readinessProbe.initialDelaySeconds", "FieldValueInvalid"),
    ("liveness successThreshold", lambda p: _c(p).update(livenessProbe={"tcpSocket": {"port": 80},
                                                                        "successThreshold": 2}),
     "spec.containers[0].livenessProbe.successThreshold", "FieldValueInvalid"),
    ("init container probe", lambda p: p["spec"].update(initContainers=[{
        "name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}]),
     "spec.initContainers[0].readinessProbe", "FieldValueForbidden"),
    ("lifecycle handler", lambda p: _c(p).update(lifecycle={"postStart": {}}),
     "spec.containers[0].lifecycle.postStart", "FieldValueRequired"),
    ("container restartPolicy", lambda p: _c(p).update(restartPolicy="Always"), "spec.containers[0].restartPolicy",
     "FieldValueForbidden"),
    ("activeDeadlineSeconds", lambda p: p["spec"].update(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds",
     "FieldValueInvalid"),
    ("nodeName", lambda p: p["spec"].update(nodeName="Node_1"), "spec.nodeName", "FieldValueInvalid"),
    ("serviceAccountName", lambda p: p["spec"].update(serviceAccountName="Bad SA"), "spec.serviceAccountName",
     "FieldValueInvalid"),
    ("hostname", lambda p: p["spec"].update(hostname="a.b"), "spec.hostname", "FieldValueInvalid"),
    ("nodeSelector", lambda p: p["spec"].update(nodeSelector={"disk": "ssd fast"}), "spec.nodeSelector",
     "FieldValueInvalid"),
    ("toleration operator", lambda p: p["spec"].update(tolerations=[{"key": "k", "operator": "Maybe"}]),
     "spec.tolerations[0].operator", "FieldValueNotSupported"),
    ("toleration Exists with value", lambda p: p["spec"].update(tolerations=[{"key": "k", "operator": "Exists",
                                                                               "value": "v"}]),
     "spec.tolerations[0].operator", "FieldValueInvalid"),
    ("toleration empty key", lambda p: p["spec"].update(tolerations=[{"operator": "Equal", "value": "v"}]),
     "spec.tolerations[0].operator", "FieldValueInvalid"),
    ("toleration effect", lambda p: p["spec"].update(tolerations=[{"key": "k", "operator": "Exists",
                                                                    "effect": "NoRun"}]),
     "spec.tolerations[0].effect", "FieldValueNotSupported"),
    ("tolerationSeconds needs NoExecute", lambda p: p["spec"].update(tolerations=[{
        "key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]),
     "spec.tolerations[0].effect", "FieldValueInvalid"),
    ("topology spread", lambda p: p["spec"].update(topologySpreadConstraints=[{
        "maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
     "spec.topologySpreadConstraints[0].maxSkew", "FieldValueInvalid"),
    ("runAsUser", lambda p: p["spec"].update(securityContext={"runAsUser": -1}), "spec.securityContext.runAsUser",
     "FieldValueInvalid"),
    ("ephemeral on create", lambda p: p["spec"].update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
     "spec.ephemeralContainers", "FieldValueForbidden"),
]


@pytest.mark.parametrize("mutate,field,reason", [r[1:] for r in POD_RULES], ids=[r[0] for r in POD_RULES])
def test_pod_rules(mutate, field, reason):
    pod = docs_pod()
    mutate(pod)
    one(check(pod), field, reason)


def test_pod_messages():
    pod = docs_pod()
    _c(pod)["ports"][0]["containerPort"] = 70000
    assert one(check(pod), "spec.containers[0].ports[0].containerPort").message == \
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
    pod = docs_pod()
    _c(pod)["ports"][0]["protocol"] = "HTTP"
    assert one(check(pod), "spec.containers[0].ports[0].protocol").message == \
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
    pod = docs_pod()
    pod["spec"]["restartPolicy"] = "Sometimes"
    assert one(check(pod), "spec.restartPolicy").message == \
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
    pod = docs_pod()
    _c(pod)["resources"] = {"requests": {"cpu": "2000m"}, "limits": {"cpu": "1"}}
    assert one(check(pod), "spec.containers[0].resources.requests").message == \
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'
    pod = docs_pod()
    _c(pod)["volumeMounts"] = [{"name": "nope", "mountPath": "/x"}]
    assert one(check(pod), "spec.containers[0].volumeMounts[0].name").message == \
        'spec.containers[0].volumeMounts[0].name: Not found: "nope"'
    pod = docs_pod()
    pod["spec"]["containers"].append({"name": "nginx", "image": "x"})
    assert one(check(pod), "spec.containers[1].name").message == 'spec.containers[1].name: Duplicate value: "nginx"'
    pod = docs_pod()
    _c(pod)["livenessProbe"] = {"exec": {"command": ["true"]}, "tcpSocket": {"port": 1}}
    assert one(check(pod), "spec.containers[0].livenessProbe.tcpSocket").message == \
        "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"


def test_pod_volume_without_source():
    pod = apply_defaults(docs_pod())
    pod["spec"]["volumes"] = [{"name": "v"}]  # defaulting would have made it an emptyDir
    e = one(validate(pod), "spec.volumes[0]", "FieldValueRequired")
    assert e.message == "spec.volumes[0]: Required value: must specify a volume type"


def test_pod_extended_resource_must_be_integer():
    pod = docs_pod()
    _c(pod)["resources"] = {"limits": {"example.com/gpu": "500m"}}
    errs = check(pod)  # requests are defaulted from limits, so both are reported
    assert [e.field for e in errs] == ["spec.containers[0].resources.limits[example.com/gpu]",
                                       "spec.containers[0].resources.requests[example.com/gpu]"]
    assert errs[0].message.endswith('Invalid value: "500m": must be an integer')


def test_pod_sidecar_init_container_may_have_probes():
    pod = docs_pod()
    pod["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                                      "readinessProbe": {"tcpSocket": {"port": 15000}}}]
    assert check(pod) == []


def test_pod_equal_extended_resources_fine():
    pod = docs_pod()
    _c(pod)["resources"] = {"limits": {"example.com/gpu": "2", "hugepages-2Mi": "100Mi", "memory": "200Mi"}}
    assert check(pod) == []


# --------------------------------------------------------------------------- pod updates


def _running_pod() -> dict:
    pod = apply_defaults(rich_pod())
    pod["metadata"]["uid"] = "abc"
    pod["spec"]["nodeName"] = "node-1"
    return pod


def test_pod_update_image_allowed():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "web:2"
    new["spec"]["initContainers"][0]["image"] = "busybox:1.37"
    assert check(new, old) == []


def test_pod_update_other_field_forbidden():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["env"][0]["value"] = "dev"
    e = one(check(new, old), "spec", "FieldValueForbidden")
    assert e.message.startswith("spec: Forbidden: pod updates may not change fields other than "
                                "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                                "tolerations),`spec.terminationGracePeriodSeconds`")
    assert "spec.containers" in e.message


def test_pod_update_node_name_forbidden():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "node-2"
    one(check(new, old), "spec", "FieldValueForbidden")


def test_pod_update_add_container_forbidden():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "x", "image": "x"})
    one(check(new, old), "spec.containers", "FieldValueForbidden")


def test_pod_update_empty_image():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = ""
    one(check(new, old), "spec.containers[0].image", "FieldValueRequired")


def test_pod_update_tolerations():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["tolerations"].append({"key": "extra", "operator": "Exists"})
    assert check(new, old) == []
    new = copy.deepcopy(old)
    new["spec"]["tolerations"][0]["value"] = "other"
    one(check(new, old), "spec.tolerations", "FieldValueForbidden")
    new = copy.deepcopy(old)
    new["spec"]["tolerations"][1]["tolerationSeconds"] = 60  # not-ready: only its seconds change
    assert check(new, old) == []


def test_pod_update_active_deadline():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 100
    assert check(new, old) == []
    newer = copy.deepcopy(new)
    newer["spec"]["activeDeadlineSeconds"] = 200
    e = one(check(newer, new), "spec.activeDeadlineSeconds", "FieldValueInvalid")
    assert e.message.endswith("must be less than or equal to previous value")
    removed = copy.deepcopy(new)
    del removed["spec"]["activeDeadlineSeconds"]
    one(check(removed, new), "spec.activeDeadlineSeconds", "FieldValueInvalid")


def test_pod_update_termination_grace():
    old = _running_pod()
    old["spec"]["terminationGracePeriodSeconds"] = -1
    new = copy.deepcopy(old)
    new["spec"]["terminationGracePeriodSeconds"] = 1
    assert check(new, old) == []
    new["spec"]["terminationGracePeriodSeconds"] = 10
    one(check(new, old), "spec", "FieldValueForbidden")


def test_pod_update_labels_and_status_allowed():
    old = _running_pod()
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["version"] = "2"
    new["status"] = {"phase": "Running"}
    assert check(new, old) == []
    new["metadata"]["labels"]["bad"] = "not valid!"
    one(check(new, old), "metadata.labels", "FieldValueInvalid")


def test_pod_update_scheduling_gates_removal_only():
    old = _running_pod()
    del old["spec"]["nodeName"]
    old["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    new = copy.deepcopy(old)
    new["spec"]["schedulingGates"] = []
    new["spec"]["nodeSelector"]["zone"] = "a"  # gated pods may gain node selectors
    assert check(new, old) == []
    new["spec"]["schedulingGates"] = [{"name": "example.com/wait"}, {"name": "example.com/more"}]
    one(check(new, old), "spec.schedulingGates", "FieldValueForbidden")


# --------------------------------------------------------------------------- deployments / replicasets


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
@pytest.mark.parametrize("mutate,field,reason", [
    (lambda s: s.pop("selector"), "spec.selector", "FieldValueRequired"),
    (lambda s: s.update(selector={}), "spec.selector", "FieldValueInvalid"),
    (lambda s: s.update(selector={"matchLabels": {"app": "other"}}), "spec.template.metadata.labels",
     "FieldValueInvalid"),
    (lambda s: s.update(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
     "spec.selector.matchExpressions[0].values", "FieldValueRequired"),
    (lambda s: s.update(selector={"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "app", "operator": "Exists", "values": ["x"]}]}),
     "spec.selector.matchExpressions[0].values", "FieldValueForbidden"),
    (lambda s: s.update(selector={"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "app", "operator": "Like"}]}), "spec.selector.matchExpressions[0].operator", "FieldValueInvalid"),
    (lambda s: s.update(replicas=-1), "spec.replicas", "FieldValueInvalid"),
    (lambda s: s.update(minReadySeconds=-1), "spec.minReadySeconds", "FieldValueInvalid"),
    (lambda s: s["template"]["spec"].update(restartPolicy="Never"), "spec.template.spec.restartPolicy",
     "FieldValueNotSupported"),
    (lambda s: s["template"]["spec"].update(activeDeadlineSeconds=10), "spec.template.spec.activeDeadlineSeconds",
     "FieldValueForbidden"),
    (lambda s: s["template"]["spec"]["containers"][0].pop("image"), "spec.template.spec.containers[0].image",
     "FieldValueRequired"),
    (lambda s: s["template"]["spec"].update(containers=[]), "spec.template.spec.containers", "FieldValueRequired"),
    (lambda s: s["template"]["metadata"]["labels"].update({"bad key": "x"}), "spec.template.metadata.labels",
     "FieldValueInvalid"),
])
def test_replicated_workload_rules(kind, mutate, field, reason):
    d = kubectl_create_deployment()
    d["kind"] = kind
    if kind == "ReplicaSet":
        del d["spec"]["strategy"]
    mutate(d["spec"])
    one(check(d), field, reason)


def test_selector_mismatch_message():
    d = kubectl_create_deployment()
    d["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert one(check(d), "spec.template.metadata.labels").message == (
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`")


def test_selector_match_expressions_match():
    d = kubectl_create_deployment()
    d["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]},
                                                  {"key": "canary", "operator": "DoesNotExist"}]}
    assert check(d) == []


@pytest.mark.parametrize("strategy,field,reason", [
    ({"type": "BlueGreen"}, "spec.strategy.type", "FieldValueNotSupported"),
    ({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}, "spec.strategy.rollingUpdate", "FieldValueForbidden"),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
     "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid"),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}},
     "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid"),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "abc", "maxUnavailable": 1}},
     "spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid"),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "150%"}},
     "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid"),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": -1, "maxUnavailable": 1}},
     "spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid"),
])
def test_deployment_strategy(strategy, field, reason):
    d = kubectl_create_deployment()
    d["spec"]["strategy"] = strategy
    one(check(d), field, reason)


def test_deployment_both_zero_message():
    d = kubectl_create_deployment()
    d["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    assert one(check(d), "spec.strategy.rollingUpdate.maxUnavailable").message == \
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"


def test_deployment_progress_deadline():
    d = kubectl_create_deployment()
    d["spec"].update(minReadySeconds=600, progressDeadlineSeconds=600)
    one(check(d), "spec.progressDeadlineSeconds", "FieldValueInvalid")
    d["spec"].update(revisionHistoryLimit=-1, progressDeadlineSeconds=601)
    one(check(d), "spec.revisionHistoryLimit", "FieldValueInvalid")


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_selector_immutable(kind):
    old = kubectl_create_deployment()
    old["kind"] = kind
    if kind != "Deployment":
        del old["spec"]["strategy"]
    if kind == "DaemonSet":
        del old["spec"]["replicas"]
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"]["tier"] = "front"
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    e = one(check(new, old), "spec.selector", "FieldValueInvalid")
    assert e.message.endswith("field is immutable")
    scaled = copy.deepcopy(old)
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert check(scaled, old) == []


# --------------------------------------------------------------------------- statefulsets / daemonsets


def _sts() -> dict:
    return VALID["statefulset"]()


def test_statefulset_rules():
    s = _sts()
    s["spec"]["podManagementPolicy"] = "Random"
    one(check(s), "spec.podManagementPolicy", "FieldValueInvalid")
    s = _sts()
    s["spec"]["updateStrategy"] = {"type": "OnDelete", "rollingUpdate": {"partition": 1}}
    one(check(s), "spec.updateStrategy.rollingUpdate", "FieldValueInvalid")
    s = _sts()
    s["spec"]["selector"] = {"matchLabels": {"app": "db"}}
    one(check(s), "spec.template.metadata.labels", "FieldValueInvalid")
    s = _sts()
    s["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    one(check(s), "spec.template.spec.restartPolicy", "FieldValueNotSupported")


def test_statefulset_update_forbidden_fields():
    old = _sts()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert check(new, old) == []
    new["spec"]["serviceName"] = "other"
    e = one(check(new, old), "spec", "FieldValueForbidden")
    assert "updates to statefulset spec for fields other than 'replicas'" in e.message


def test_daemonset_rules():
    ds = VALID["daemonset"]()
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    one(check(ds), "spec.updateStrategy.rollingUpdate.maxSurge", "FieldValueInvalid")
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    one(check(ds), "spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueRequired")
    ds["spec"]["updateStrategy"] = {"type": "Sometimes"}
    one(check(ds), "spec.updateStrategy.type", "FieldValueNotSupported")


# --------------------------------------------------------------------------- jobs / cronjobs


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda s: s["template"]["spec"].update(restartPolicy="Always"), "spec.template.spec.restartPolicy",
     "FieldValueRequired"),
    (lambda s: s["template"]["spec"].pop("restartPolicy"), "spec.template.spec.restartPolicy", "FieldValueRequired"),
    (lambda s: s.update(parallelism=-1), "spec.parallelism", "FieldValueInvalid"),
    (lambda s: s.update(completions=-1), "spec.completions", "FieldValueInvalid"),
    (lambda s: s.update(backoffLimit=-1), "spec.backoffLimit", "FieldValueInvalid"),
    (lambda s: s.update(activeDeadlineSeconds=-1), "spec.activeDeadlineSeconds", "FieldValueInvalid"),
    (lambda s: s.update(ttlSecondsAfterFinished=-1), "spec.ttlSecondsAfterFinished", "FieldValueInvalid"),
    (lambda s: s.update(completionMode="Sorted"), "spec.completionMode", "FieldValueNotSupported"),
    (lambda s: s.update(completionMode="Indexed", parallelism=2), "spec.completions", "FieldValueRequired"),
    (lambda s: s.update(manualSelector=True), "spec.selector", "FieldValueRequired"),
    (lambda s: s.update(manualSelector=True, selector={"matchLabels": {"a": "b"}}), "spec.template.metadata.labels",
     "FieldValueInvalid"),
    (lambda s: s["template"]["spec"]["containers"][0].update(name="Pi"), "spec.template.spec.containers[0].name",
     "FieldValueInvalid"),
])
def test_job_rules(mutate, field, reason):
    job = kubectl_create_job()
    mutate(job["spec"])
    one(check(job), field, reason)


def test_job_restart_policy_message():
    job = kubectl_create_job()
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert one(check(job), "spec.template.spec.restartPolicy").message == \
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'


def test_job_with_generated_selector_and_updates():
    job = kubectl_create_job()
    job["metadata"]["uid"] = "3b1c"
    job = apply_defaults(job)
    assert validate(job) == []
    new = copy.deepcopy(job)
    new["spec"]["parallelism"] = 4
    new["spec"]["suspend"] = True
    assert validate(new, job) == []
    new = copy.deepcopy(job)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:6"
    one(validate(new, job), "spec.template", "FieldValueInvalid")
    new = copy.deepcopy(job)
    new["spec"]["completions"] = 5
    one(validate(new, job), "spec.completions", "FieldValueInvalid")
    new = copy.deepcopy(job)
    new["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}}
    errs = validate(new, job)
    assert {e.field for e in errs} == {"spec.selector", "spec.template.metadata.labels"}


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 0 * * 0", "@hourly", "@every 1h30m", "0 9-17 * * mon-fri",
                                      "15 3 1,15 * ?", "0 0 1 jan *"])
def test_cron_schedules_valid(schedule):
    cj = kubectl_create_cronjob()
    cj["spec"]["schedule"] = schedule
    assert check(cj) == []


@pytest.mark.parametrize("schedule,detail", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("@sometimes", "unrecognized descriptor: @sometimes"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
])
def test_cron_schedules_invalid(schedule, detail):
    cj = kubectl_create_cronjob()
    cj["spec"]["schedule"] = schedule
    assert one(check(cj), "spec.schedule", "FieldValueInvalid").message == \
        f'spec.schedule: Invalid value: "{schedule}": {detail}'


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda s: s.pop("schedule"), "spec.schedule", "FieldValueRequired"),
    (lambda s: s.update(schedule="TZ=UTC 0 * * * *"), "spec.schedule", "FieldValueInvalid"),
    (lambda s: s.update(concurrencyPolicy="Sometimes"), "spec.concurrencyPolicy", "FieldValueNotSupported"),
    (lambda s: s.update(startingDeadlineSeconds=-5), "spec.startingDeadlineSeconds", "FieldValueInvalid"),
    (lambda s: s.update(successfulJobsHistoryLimit=-1), "spec.successfulJobsHistoryLimit", "FieldValueInvalid"),
    (lambda s: s.update(failedJobsHistoryLimit=-1), "spec.failedJobsHistoryLimit", "FieldValueInvalid"),
    (lambda s: s["jobTemplate"]["spec"].update(selector={"matchLabels": {"a": "b"}}),
     "spec.jobTemplate.spec.selector", "FieldValueInvalid"),
    (lambda s: s["jobTemplate"]["spec"]["template"]["spec"].update(restartPolicy="Always"),
     "spec.jobTemplate.spec.template.spec.restartPolicy", "FieldValueRequired"),
    (lambda s: s["jobTemplate"]["spec"]["template"]["spec"].update(containers=[]),
     "spec.jobTemplate.spec.template.spec.containers", "FieldValueRequired"),
])
def test_cronjob_rules(mutate, field, reason):
    cj = kubectl_create_cronjob()
    mutate(cj["spec"])
    one(check(cj), field, reason)


def test_cronjob_name_length():
    cj = kubectl_create_cronjob()
    cj["metadata"]["name"] = "a" * 53
    assert one(check(cj), "metadata.name").message.endswith("must be no more than 52 characters")


# --------------------------------------------------------------------------- services


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda s: s.update(ports=[]), "spec.ports", "FieldValueRequired"),
    (lambda s: s["ports"][0].update(port=0), "spec.ports[0].port", "FieldValueInvalid"),
    (lambda s: s["ports"][0].update(port=65536), "spec.ports[0].port", "FieldValueInvalid"),
    (lambda s: s["ports"][0].update(protocol="ICMP"), "spec.ports[0].protocol", "FieldValueNotSupported"),
    (lambda s: s["ports"][0].update(targetPort=70000), "spec.ports[0].targetPort", "FieldValueInvalid"),
    (lambda s: s["ports"][0].update(targetPort="http_alt"), "spec.ports[0].targetPort", "FieldValueInvalid"),
    (lambda s: s["ports"][0].update(targetPort="1234"), "spec.ports[0].targetPort", "FieldValueInvalid"),
    (lambda s: s["ports"][0].update(name="HTTP"), "spec.ports[0].name", "FieldValueInvalid"),
    (lambda s: s["ports"].append({"port": 443}), "spec.ports[1].name", "FieldValueRequired"),
    (lambda s: s["ports"].append({"name": "80-8080", "port": 443}), "spec.ports[1].name", "FieldValueDuplicate"),
    (lambda s: s["ports"].append({"name": "dup", "port": 80}), "spec.ports[1]", "FieldValueDuplicate"),
    (lambda s: s["ports"][0].update(nodePort=30001), "spec.ports[0].nodePort", "FieldValueForbidden"),
    (lambda s: s.update(type="NodePort") or s["ports"][0].update(nodePort=80), "spec.ports[0].nodePort",
     "FieldValueInvalid"),
    (lambda s: s.update(type="Internal"), "spec.type", "FieldValueNotSupported"),
    (lambda s: s.update(sessionAffinity="Sticky"), "spec.sessionAffinity", "FieldValueNotSupported"),
    (lambda s: s.update(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}),
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "FieldValueInvalid"),
    (lambda s: s.update(clusterIP="10.0.0.300"), "spec.clusterIPs[0]", "FieldValueInvalid"),
    (lambda s: s.update(externalIPs=["127.0.0.1"]), "spec.externalIPs[0]", "FieldValueInvalid"),
    (lambda s: s.update(externalTrafficPolicy="Local"), "spec.externalTrafficPolicy", "FieldValueInvalid"),
    (lambda s: s.update(internalTrafficPolicy="Nearby"), "spec.internalTrafficPolicy", "FieldValueNotSupported"),
    (lambda s: s.update(ipFamilies=["IPv5"]), "spec.ipFamilies[0]", "FieldValueNotSupported"),
    (lambda s: s.update(ipFamilyPolicy="Sometimes"), "spec.ipFamilyPolicy", "FieldValueNotSupported"),
    (lambda s: s.update(selector={"app": "bad value!"}), "spec.selector", "FieldValueInvalid"),
    (lambda s: s.update(type="LoadBalancer") or s["ports"][0].update(port=10250), "spec.ports[0]",
     "FieldValueInvalid"),
    (lambda s: s.update(type="NodePort", clusterIP="None"), "spec.clusterIPs[0]", "FieldValueInvalid"),
])
def test_service_rules(mutate, field, reason):
    svc = kubectl_create_service()
    mutate(svc["spec"])
    one(check(svc), field, reason)


def test_service_name_is_dns1035():
    svc = kubectl_create_service()
    svc["metadata"]["name"] = "1web"
    assert one(check(svc), "metadata.name").message.startswith(
        'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of')


def test_service_external_name_rules():
    svc = VALID["externalname"]()
    svc["spec"]["externalName"] = ""
    one(check(svc), "spec.externalName", "FieldValueRequired")
    svc["spec"]["externalName"] = "Bad_Name"
    one(check(svc), "spec.externalName", "FieldValueInvalid")
    svc = VALID["externalname"]()
    svc["spec"]["clusterIP"] = "10.0.0.1"
    one(check(svc), "spec.clusterIPs", "FieldValueForbidden")


def test_service_headless_without_ports():
    assert check(VALID["headless service"]()) == []


def test_service_cluster_ip_immutable():
    old = kubectl_create_service()
    old["spec"]["clusterIP"] = "10.96.0.5"
    old["spec"]["clusterIPs"] = ["10.96.0.5"]
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.6"
    new["spec"]["clusterIPs"] = ["10.96.0.6"]
    e = one(check(new, old), "spec.clusterIPs[0]", "FieldValueInvalid")
    assert e.message.endswith("may not change once set")
    # An update that leaves clusterIP out is fine (the server keeps the allocated one).
    new = copy.deepcopy(old)
    del new["spec"]["clusterIP"], new["spec"]["clusterIPs"]
    assert check(new, old) == []
    # Changing to ExternalName releases the IP.
    new = VALID["externalname"]()
    new["metadata"] = old["metadata"]
    assert check(new, old) == []


# --------------------------------------------------------------------------- configmaps & secrets


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda o: o["data"].update({"bad key": "x"}), "data[bad key]", "FieldValueInvalid"),
    (lambda o: o["data"].update({"..": "x"}), "data[..]", "FieldValueInvalid"),
    (lambda o: o["data"].update({"logo.png": "x"}), "data[logo.png]", "FieldValueInvalid"),
    (lambda o: o["data"].update({"big": "x" * (1024 * 1024)}), "data", "FieldValueTooLong"),
    (lambda o: o["binaryData"].update({"b": "not base64!"}), "binaryData[b]", "FieldValueInvalid"),
])
def test_configmap_rules(mutate, field, reason):
    cm = VALID["configmap"]()
    mutate(cm)
    one(check(cm), field, reason)


def test_configmap_key_message():
    cm = VALID["configmap"]()
    cm["data"] = {"bad key": "x"}
    assert one(check(cm), "data[bad key]").message.startswith(
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters')


def test_configmap_immutable():
    old = VALID["configmap"]()
    old["immutable"] = True
    new = copy.deepcopy(old)
    new["data"]["ui_mode"] = "light"
    e = one(check(new, old), "data", "FieldValueForbidden")
    assert e.message == "data: Forbidden: field is immutable when `immutable` is set"
    new = copy.deepcopy(old)
    new["immutable"] = False
    one(check(new, old), "immutable", "FieldValueForbidden")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    assert check(new, old) == []
    # A mutable configmap may become immutable.
    mutable = VALID["configmap"]()
    assert check(old, mutable) == []


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda o: o["data"].update({"bad/key": b64("x")}), "data[bad/key]", "FieldValueInvalid"),
    (lambda o: o["data"].update({"k": "%%%"}), "data[k]", "FieldValueInvalid"),
    (lambda o: o["data"].update({"k": b64("x" * (1024 * 1024))}), "data", "FieldValueTooLong"),
    (lambda o: o.update(type="kubernetes.io/tls"), "data[tls.crt]", None),
    (lambda o: o.update(type="kubernetes.io/dockerconfigjson"), "data[.dockerconfigjson]", "FieldValueRequired"),
    (lambda o: o.update(type="kubernetes.io/ssh-auth"), "data[ssh-privatekey]", "FieldValueRequired"),
    (lambda o: o.update(type="kubernetes.io/service-account-token"),
     "metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired"),
])
def test_secret_rules(mutate, field, reason):
    s = VALID["secret"]()
    mutate(s)
    errs = check(s)
    if field == "data[tls.crt]":
        assert [e.field for e in errs] == ["data[tls.crt]", "data[tls.key]"]
    else:
        one(errs, field, reason)


def test_secret_basic_auth_and_docker_json():
    s = VALID["secret"]()
    s["type"] = "kubernetes.io/basic-auth"
    assert check(s) == []
    s["data"] = {"other": b64("x")}
    assert [e.field for e in check(s)] == ["data[username]", "data[password]"]
    s = VALID["docker secret"]()
    s["data"][".dockerconfigjson"] = b64("{not json")
    one(check(s), "data[.dockerconfigjson]", "FieldValueInvalid")


def test_secret_string_data_counts():
    s = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
         "metadata": {"name": "s", "namespace": "d"}, "stringData": {"username": "admin"}}
    assert check(s) == []
    assert validate(s) == []  # undefaulted (stringData not yet merged) is understood too


def test_secret_update_rules():
    old = VALID["secret"]()
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/basic-auth"
    one(check(new, old), "type", "FieldValueInvalid")
    old["immutable"] = True
    new = copy.deepcopy(old)
    new["data"]["username"] = b64("root")
    one(check(new, old), "data", "FieldValueForbidden")


# --------------------------------------------------------------------------- namespaces, nodes, accounts


def test_namespace_rules():
    ns = VALID["namespace"]()
    ns["metadata"]["name"] = "team.a"
    one(check(ns), "metadata.name", "FieldValueInvalid")
    ns = VALID["namespace"]()
    ns["spec"] = {"finalizers": ["custom"]}
    one(check(ns), "spec.finalizers", "FieldValueInvalid")
    ns["spec"] = {"finalizers": ["example.com/cleanup", "kubernetes"]}
    assert check(ns) == []


def test_node_rules():
    node = VALID["node"]()
    node["spec"]["taints"].append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
    e = one(check(node), "spec.taints[1]", "FieldValueDuplicate")
    assert e.message.endswith("taints must be unique by key and effect pair")
    node = VALID["node"]()
    node["spec"]["taints"] = [{"key": "k", "effect": "Never"}]
    one(check(node), "spec.taints[0].effect", "FieldValueNotSupported")
    node["spec"]["taints"] = [{"key": "k"}]
    one(check(node), "spec.taints[0].effect", "FieldValueRequired")
    node = VALID["node"]()
    node["spec"]["podCIDRs"] = ["10.244.0.0/33"]
    del node["spec"]["podCIDR"]
    one(check(node), "spec.podCIDRs[0]", "FieldValueInvalid")
    node["spec"]["podCIDRs"] = ["10.244.0.0/24", "10.245.0.0/24"]
    one(check(node), "spec.podCIDRs", "FieldValueInvalid")
    node = VALID["node"]()
    node["status"]["allocatable"] = {"cpu": "4"}
    node["status"]["capacity"]["cpu"] = "four"
    one(check(node), "status.capacity.cpu", "FieldValueInvalid")


def test_node_update_pod_cidr():
    old = VALID["node"]()
    new = copy.deepcopy(old)
    new["spec"]["podCIDR"] = "10.244.1.0/24"
    new["spec"]["podCIDRs"] = ["10.244.1.0/24"]
    one(check(new, old), "spec.podCIDRs", "FieldValueForbidden")
    fresh = copy.deepcopy(old)
    del fresh["spec"]["podCIDR"], fresh["spec"]["podCIDRs"]
    assert check(old, fresh) == []  # "" -> valid is how the IPAM controller assigns it
    old["spec"]["providerID"] = "kind://node-1"
    new = copy.deepcopy(old)
    new["spec"]["providerID"] = "kind://node-2"
    one(check(new, old), "spec.providerID", "FieldValueForbidden")


def test_serviceaccount_rules():
    sa = VALID["serviceaccount"]()
    sa["metadata"]["name"] = "Build Robot"
    one(check(sa), "metadata.name", "FieldValueInvalid")
    sa = VALID["serviceaccount"]()
    sa["imagePullSecrets"] = [{}]
    one(check(sa), "imagePullSecrets[0].name", "FieldValueRequired")


# --------------------------------------------------------------------------- endpoints & slices


def test_endpoints_rules():
    ep = VALID["endpoints"]()
    ep["subsets"][0]["addresses"][0]["ip"] = "not-an-ip"
    one(check(ep), "subsets[0].addresses[0].ip", "FieldValueInvalid")
    ep = VALID["endpoints"]()
    ep["subsets"][0]["addresses"][0]["ip"] = "127.0.0.1"
    one(check(ep), "subsets[0].addresses[0].ip", "FieldValueInvalid")
    ep = VALID["endpoints"]()
    ep["subsets"][0]["ports"][1].pop("name")
    one(check(ep), "subsets[0].ports[1].name", "FieldValueRequired")
    ep = VALID["endpoints"]()
    ep["subsets"][0]["ports"][0]["port"] = 0
    one(check(ep), "subsets[0].ports[0].port", "FieldValueInvalid")
    ep = VALID["endpoints"]()
    ep["subsets"][0]["addresses"] = []
    one(check(ep), "subsets[0]", "FieldValueRequired")


def test_endpointslice_rules():
    es = VALID["endpointslice"]()
    es.pop("addressType")
    one(check(es), "addressType", "FieldValueRequired")
    es["addressType"] = "IPv7"
    e = one(check(es), "addressType", "FieldValueNotSupported")
    assert e.message == 'addressType: Unsupported value: "IPv7": supported values: "FQDN", "IPv4", "IPv6"'
    es = VALID["endpointslice"]()
    es["endpoints"][0]["addresses"] = ["fd00::1"]
    one(check(es), "endpoints[0].addresses[0]", "FieldValueInvalid")
    es["endpoints"][0]["addresses"] = []
    one(check(es), "endpoints[0].addresses", "FieldValueRequired")
    es = VALID["endpointslice"]()
    es["ports"].append({"name": "http", "port": 9090})
    one(check(es), "ports[1].name", "FieldValueDuplicate")
    es = VALID["endpointslice"]()
    es["ports"][0]["protocol"] = "HTTP"
    one(check(es), "ports[0].protocol", "FieldValueNotSupported")
    es = VALID["endpointslice"]()
    es["addressType"] = "FQDN"
    es["endpoints"][0]["addresses"] = ["db.example.com"]
    assert check(es) == []


def test_endpointslice_address_type_immutable():
    old = VALID["endpointslice"]()
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    new["endpoints"] = []
    e = one(check(new, old), "addressType", "FieldValueInvalid")
    assert e.message == 'addressType: Invalid value: "IPv6": field is immutable'


# --------------------------------------------------------------------------- leases & events


def test_lease_rules():
    lease = VALID["lease"]()
    lease["spec"]["leaseDurationSeconds"] = 0
    e = one(check(lease), "spec.leaseDurationSeconds", "FieldValueInvalid")
    assert e.message == "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    lease = VALID["lease"]()
    lease["spec"]["leaseTransitions"] = -1
    one(check(lease), "spec.leaseTransitions", "FieldValueInvalid")
    lease = VALID["lease"]()
    lease["spec"]["renewTime"] = "yesterday"
    one(check(lease), "spec.renewTime", "FieldValueInvalid")
    lease = VALID["lease"]()
    lease["spec"]["preferredHolder"] = "node-2"
    one(check(lease), "spec.preferredHolder", "FieldValueForbidden")


def test_core_event_rules():
    ev = VALID["core event"]()
    del ev["involvedObject"]
    errs = check(ev)
    assert errs[0].field == "involvedObject" and errs[0].reason == "FieldValueRequired"
    ev = VALID["core event"]()
    ev["involvedObject"]["namespace"] = "other"
    e = one(check(ev), "involvedObject.namespace", "FieldValueInvalid")
    assert e.message == 'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ev = VALID["core event"]()
    ev["involvedObject"] = {"kind": "Node", "name": "node-1"}
    ev["metadata"]["namespace"] = "default"
    assert check(ev) == []  # cluster-scoped objects' events live in "default"
    ev = VALID["core event"]()
    ev["eventTime"] = "2024-01-01T00:00:00.000000Z"
    assert {e.field for e in check(ev)} == {"reportingComponent", "reportingInstance", "action"}


def test_events_event_rules():
    ev = VALID["events event"]()
    for key in ("reportingController", "reportingInstance", "action", "reason", "eventTime"):
        broken = copy.deepcopy(ev)
        del broken[key]
        one(check(broken), key, "FieldValueRequired")
    broken = copy.deepcopy(ev)
    broken["type"] = "Info"
    one(check(broken), "type", "FieldValueInvalid")
    broken = copy.deepcopy(ev)
    broken["note"] = "x" * 1025
    one(check(broken), "note", "FieldValueInvalid")
    broken = copy.deepcopy(ev)
    broken["deprecatedCount"] = 3
    one(check(broken), "deprecatedCount", "FieldValueInvalid")
    broken = copy.deepcopy(ev)
    broken["series"] = {"count": 1}
    assert [e.field for e in check(broken)] == ["series.count", "series.lastObservedTime"]
    updated = copy.deepcopy(ev)
    updated["series"] = {"count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z"}
    assert check(updated, ev) == []
    updated["note"] = "changed"
    one(check(updated, ev), "note", "FieldValueInvalid")


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize("text,value", [
    ("100m", "0.1"), ("1", "1"), ("1.5", "1.5"), ("1Ki", "1024"), ("1Mi", "1048576"), ("2Gi", "2147483648"),
    ("1k", "1000"), ("1M", "1000000"), ("1G", "1e9"), ("1T", "1e12"), ("1P", "1e15"), ("1E", "1e18"),
    ("1Ti", str(1024 ** 4)), ("1Pi", str(1024 ** 5)), ("1Ei", str(1024 ** 6)), ("1e3", "1000"), ("1E3", "1000"),
    ("5e-3", "0.005"), ("10n", "1e-8"), ("10u", "1e-5"), ("-1", "-1"), ("+2", "2"), (".5", "0.5"), (3, "3"),
    (0.25, "0.25"),
])
def test_parse_quantity(text, value):
    from decimal import Decimal
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1 Gi", "1KB", "Mi", "1e", "1Gib", " 1", None, True, "0x10"])
def test_parse_quantity_rejects(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


@pytest.mark.parametrize("text,canonical", [
    ("1000m", "1"), ("0.5", "500m"), ("1500m", "1500m"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("15000", "15k"),
    ("1e3", "1e3"), ("100m", "100m"), ("0", "0"), ("0.1n", "1n"), ("512Ki", "512Ki"), ("1G", "1G"),
])
def test_canonical_quantity(text, canonical):
    assert canonical_quantity(text) == canonical


def test_format_quantity():
    from decimal import Decimal
    assert format_quantity(Decimal("0.25")) == "250m"
    assert format_quantity(Decimal(2 ** 30), "BinarySI") == "1Gi"
    assert format_quantity(Decimal(1000), "BinarySI") == "1k"
    assert format_quantity(Decimal(3000), "DecimalExponent") == "3e3"


def test_service_type_change_with_prepared_update():
    from ketch.api.defaults import prepare_service_update
    old = apply_defaults(VALID["nodeport"]())
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    assert {e.field for e in validate(apply_defaults(copy.deepcopy(new)), old)} == \
        {"spec.ports[0].nodePort", "spec.externalTrafficPolicy"}
    assert validate(apply_defaults(prepare_service_update(new, old)), old) == []
