"""ketch.api.protobuf: kubectl's protobuf request bodies decode to the JSON the Go serializer prints.

Real bodies come from /work/shared/kubectl-traces/*.reqlog (kubectl 1.37 against a logging
server) and from bodies captured from kubectl 1.37 against a local ketch (CAPTURED below);
the special types are checked on hand-built messages.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from ketch.api import protobuf
from ketch.api.protobuf import ProtobufError, decode_request

TRACES = Path(__file__).resolve().parents[3] / "shared" / "kubectl-traces"

CAPTURED = {  # kubectl 1.37 bodies (base64) captured against a local ketch up
    "namespace": (
        "azhzAAoPCgJ2MRIJTmFtZXNwYWNlEhwKFAoEcGJucxIAGgAiACoAMgA4AEIAEgAaAgoAGgAiAA=="
    ),
    "deployment_zero": (
        "azhzAAoVCgdhcHBzL3YxEgpEZXBsb3ltZW50EsYBCiUKBHplcm8SABoEcGJucyIAKgAyADgAQgBaCwoDYXBwEgR6"
        "ZXJvEo4BCAASDQoLCgNhcHASBHplcm8acwodCgASABoAIgAqADIAOABCAFoLCgNhcHASBHplcm8SUhI0CgVuZ2lu"
        "eBIKbmdpbng6MS4yNSoAMgsKABAAGJA/IgAqAEIAagByAIABAIgBAJABAKIBABoAMgBCAEoAUgBYAGAAaACCAQCK"
        "AQCaAQDCAQAiAgoAKAA4ABoMCAAQABgAIAAoADgAGgAiAA=="
    ),
    "configmap": (
        "azhzAAoPCgJ2MRIJQ29uZmlnTWFwEisKFwoDY20xEgAaBHBibnMiACoAMgA4AEIAEgYKAWESATESCAoBYhIDdHdv"
        "GgAiAA=="
    ),
    "secret_generic": (
        "azhzAAoMCgJ2MRIGU2VjcmV0EjUKFgoCczESABoEcGJucyIAKgAyADgAQgASCgoCcHcSBHBAc3MSDQoEdXNlchIF"
        "YWRtaW4aABoAIgA="
    ),
    "secret_docker_registry": (
        "azhzAAoMCgJ2MRIGU2VjcmV0EqsBChgKBHJlZzESABoEcGJucyIAKgAyADgAQgASbwoRLmRvY2tlcmNvbmZpZ2pz"
        "b24SWnsiYXV0aHMiOnsici5leGFtcGxlLmNvbSI6eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJlbWFp"
        "bCI6ImVAeC5pbyIsImF1dGgiOiJkVHB3In19fRoea3ViZXJuZXRlcy5pby9kb2NrZXJjb25maWdqc29uGgAiAA=="
    ),
    "serviceaccount": (
        "azhzAAoUCgJ2MRIOU2VydmljZUFjY291bnQSGQoXCgNzYTESABoEcGJucyIAKgAyADgAQgAaACIA"
    ),
    "service_clusterip": (
        "azhzAAoNCgJ2MRIHU2VydmljZRJwCiUKBHN2YzESABoEcGJucyIAKgAyADgAQgBaCwoDYXBwEgRzdmMxEkMKGwoH"
        "ODAtODA4MBIDVENQGFAiBwgAEJA/GgAoABILCgNhcHASBHN2YzEaACIJQ2x1c3RlcklQOgBCAFIAWgBgAGgAGgIK"
        "ABoAIgA="
    ),
    "service_nodeport": (
        "azhzAAoNCgJ2MRIHU2VydmljZRJuCiMKA25wMRIAGgRwYm5zIgAqADIAOABCAFoKCgNhcHASA25wMRJDCh0KBzgw"
        "LTgwODASA1RDUBhQIgcIABCQPxoAKIDrARIKCgNhcHASA25wMRoAIghOb2RlUG9ydDoAQgBSAFoAYABoABoCCgAa"
        "ACIA"
    ),
    "job": (
        "azhzAAoPCghiYXRjaC92MRIDSm9iEo0BChYKAmoxEgAaBHBibnMiACoAMgA4AEIAEmkyZwoQCgASABoAIgAqADIA"
        "OABCABJTEjAKAmoxEgxidXN5Ym94OjEuMzYaBGVjaG8aAmhpKgBCAGoAcgCAAQCIAQCQAQCiAQAaBU5ldmVyMgBC"
        "AEoAUgBYAGAAaACCAQCKAQCaAQDCAQAaCCAAKAAwADoAGgAiAA=="
    ),
    "cronjob": (
        "azhzAAoTCghiYXRjaC92MRIHQ3JvbkpvYhKxAQoXCgNjajESABoEcGJucyIAKgAyADgAQgASkwEKCyovNSAqICog"
        "KiAqGgAqgQEKEwoDY2oxEgAaACIAKgAyADgAQgASajJoChAKABIAGgAiACoAMgA4AEIAElQSLQoDY2oxEgxidXN5"
        "Ym94OjEuMzYaBGRhdGUqAEIAagByAIABAIgBAJABAKIBABoJT25GYWlsdXJlMgBCAEoAUgBYAGAAaACCAQCKAQCa"
        "AQDCAQAaABoAIgA="
    ),
    "hpa_v2": (
        "azhzAAopCg5hdXRvc2NhbGluZy92MhIXSG9yaXpvbnRhbFBvZEF1dG9zY2FsZXISZQoXCgN3ZWISABoEcGJucyIA"
        "KgAyADgAQgASRAoaCgpEZXBsb3ltZW50EgN3ZWIaB2FwcHMvdjEQAhgFIiIKCFJlc291cmNlIhYKA2NwdRIPCgtV"
        "dGlsaXphdGlvbiBGGgQYACAAGgAiAA=="
    ),
    "priorityclass": (
        "azhzAAolChRzY2hlZHVsaW5nLms4cy5pby92MRINUHJpb3JpdHlDbGFzcxIxChMKA3BjMRIAGgAiACoAMgA4AEIA"
        "EAoYACIAKhRQcmVlbXB0TG93ZXJQcmlvcml0eRoAIgA="
    ),
}


def trace_bodies(name: str) -> list[bytes]:
    """The protobuf request bodies of one reqlog (body_b64 when logged, else the lossless text body)."""
    path = TRACES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if "protobuf" not in (r["headers"].get("Content-Type") or ""):
            continue
        if r.get("body_b64"):
            out.append(base64.b64decode(r["body_b64"]))
        else:
            assert "\ufffd" not in r["body"], "text body lost bytes"
            out.append(r["body"].encode("utf-8"))
    assert out, f"no protobuf body in {name}"
    return out


def captured(name: str) -> dict:
    return decode_request(base64.b64decode(CAPTURED[name]))


# ---------------------------------------------------------------------------------------------
# hand-built messages


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vf(num: int, value: int) -> bytes:
    """A varint field."""
    return varint(num << 3) + varint(value)


def lf(num: int, value: bytes | str) -> bytes:
    """A length-delimited field."""
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def entry(num: int, key: str, value: bytes | str) -> bytes:
    """A map entry."""
    return lf(num, lf(1, key) + lf(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return b"k8s\x00" + lf(1, lf(1, api_version) + lf(2, kind)) + lf(2, raw) + lf(3, "") + lf(4, "")


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "resources": {}}]}},
             "strategy": {}},
    "status": {},
}


# ---------------------------------------------------------------------------------------------
# real kubectl bodies


def test_create_deployment_trace():
    assert decode_request(trace_bodies("create_deploy.reqlog")[0]) == DEPLOYMENT


def test_auth_can_i_trace():
    assert decode_request(trace_bodies("cani.reqlog")[0]) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
        "status": {}}


def test_auth_can_i_list_trace():
    assert decode_request(trace_bodies("cani_list.reqlog")[0]) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "metadata": {},
        "spec": {"namespace": "default"}, "status": {}}


def test_auth_whoami_trace():
    assert decode_request(trace_bodies("whoami.reqlog")[0]) == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {},
        "status": {"userInfo": {}}}


def test_captured_namespace():
    assert captured("namespace") == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pbns"},
                                     "spec": {}, "status": {}}


def test_captured_deployment_zero_replicas_and_port():
    d = captured("deployment_zero")
    assert d["spec"]["replicas"] == 0  # *int32 zero survives
    assert d["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 8080}], "resources": {}}]


def test_captured_configmap():
    assert captured("configmap") == {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "cm1", "namespace": "pbns"},
                                     "data": {"a": "1", "b": "two"}}


def test_captured_secrets():
    assert captured("secret_generic") == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "namespace": "pbns"},
        "data": {"pw": base64.b64encode(b"p@ss").decode(), "user": base64.b64encode(b"admin").decode()}}
    reg = captured("secret_docker_registry")
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    cfg = json.loads(base64.b64decode(reg["data"][".dockerconfigjson"]))
    assert cfg["auths"]["r.example.com"]["username"] == "u"


def test_captured_serviceaccount():
    assert captured("serviceaccount") == {"apiVersion": "v1", "kind": "ServiceAccount",
                                          "metadata": {"name": "sa1", "namespace": "pbns"}}


def test_captured_services():
    svc = captured("service_clusterip")
    assert svc["spec"] == {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                           "selector": {"app": "svc1"}, "type": "ClusterIP"}
    assert svc["status"] == {"loadBalancer": {}}
    np = captured("service_nodeport")
    assert np["spec"]["type"] == "NodePort" and np["spec"]["ports"][0]["nodePort"] == 30080


def test_captured_job_and_cronjob():
    job = captured("job")
    assert job["spec"] == {"template": {"metadata": {}, "spec": {
        "containers": [{"name": "j1", "image": "busybox:1.36", "command": ["echo", "hi"], "resources": {}}],
        "restartPolicy": "Never"}}}
    cj = captured("cronjob")
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    assert cj["spec"]["jobTemplate"]["metadata"] == {"name": "cj1"}
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_captured_hpa_v2():
    assert captured("hpa_v2") == {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "pbns"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                 "minReplicas": 2, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        "status": {}}


def test_unknown_kind_is_an_error_naming_it():
    with pytest.raises(ProtobufError, match="PriorityClass"):
        captured("priorityclass")
    with pytest.raises(ProtobufError, match="'Widget'"):
        decode_request(envelope("example.com/v1", "Widget", b""))


# ---------------------------------------------------------------------------------------------
# special types, hand-built


def test_time_and_condition():
    # Namespace.status.conditions[0].lastTransitionTime; metadata.creationTimestamp
    cond = lf(1, "NamespaceDeletionDiscoveryFailure") + lf(2, "False") + lf(4, vf(1, 1700000000) + vf(2, 5))
    meta = lf(1, "ns") + lf(8, vf(1, 86400))
    ns = decode_request(envelope("v1", "Namespace", lf(1, meta) + lf(3, lf(1, "Active") + lf(2, cond))))
    assert ns["metadata"] == {"name": "ns", "creationTimestamp": "1970-01-02T00:00:00Z"}
    assert ns["status"]["conditions"] == [{"type": "NamespaceDeletionDiscoveryFailure", "status": "False",
                                           "lastTransitionTime": "2023-11-14T22:13:20Z"}]
    # a zero Time (what kubectl writes for creationTimestamp) is dropped, like JSON's null
    assert decode_request(envelope("v1", "Namespace", lf(1, lf(1, "x") + lf(8, b""))))["metadata"] == {"name": "x"}


def test_micro_time():
    raw = vf(1, 1700000000) + vf(2, 123456789)
    assert protobuf._value(protobuf._MICRO_TIME, raw, 0, len(raw)) == "2023-11-14T22:13:20.123456Z"


def test_duration():
    raw = vf(1, 90 * 60 * 10**9)
    assert protobuf._value(protobuf._DURATION, raw, 0, len(raw)) == "1h30m0s"
    assert protobuf._go_duration(1_500_000) == "1.5ms"


def test_int_or_string_quantity_and_inline():
    container = (lf(1, "c") + lf(2, "img")
                 + lf(8, entry(1, "cpu", lf(1, "500m")) + entry(2, "memory", lf(1, "64Mi")))
                 + lf(10, lf(1, lf(2, lf(1, "/healthz") + lf(2, vf(1, 1) + lf(3, "http")))) + vf(2, 0)))
    volume = lf(1, "cfg") + lf(2, lf(19, lf(1, lf(1, "my-cm")) + vf(3, 420)))
    env = lf(1, "PW") + lf(3, lf(4, lf(1, lf(1, "sec")) + lf(2, "pw")))
    container += lf(7, env)
    pod_spec = lf(1, volume) + lf(2, container)
    strategy = lf(1, "RollingUpdate") + lf(2, lf(1, vf(1, 0) + vf(2, 1)) + lf(2, vf(1, 1) + lf(3, "25%")))
    spec = vf(1, 0) + lf(3, lf(1, b"") + lf(2, pod_spec)) + lf(4, strategy)
    d = decode_request(envelope("apps/v1", "Deployment", lf(1, lf(1, "d")) + lf(2, spec)))
    assert d["spec"]["replicas"] == 0
    assert d["spec"]["strategy"] == {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}}
    ps = d["spec"]["template"]["spec"]
    assert ps["volumes"] == [{"name": "cfg", "configMap": {"name": "my-cm", "defaultMode": 420}}]
    c = ps["containers"][0]
    assert c["resources"] == {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}}
    assert c["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": "http"}}  # ProbeHandler inlined
    assert c["env"] == [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}}]


def test_int_or_string_zero_int():
    port = lf(1, "p") + vf(3, 80) + lf(4, vf(1, 0) + vf(2, 0) + lf(3, ""))
    svc = decode_request(envelope("v1", "Service", lf(1, lf(1, "s")) + lf(2, lf(1, port))))
    assert svc["spec"]["ports"] == [{"name": "p", "port": 80, "targetPort": 0}]


def test_bytes_and_maps():
    data = entry(2, "bin", b"\x00\xff\xfe") + entry(2, "empty", b"")
    sec = decode_request(envelope("v1", "Secret", lf(1, lf(1, "s")) + data + entry(4, "plain", "text")
                                  + lf(3, "Opaque") + vf(5, 0)))
    assert sec == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"bin": "AP/+", "empty": ""}, "stringData": {"plain": "text"},
                   "type": "Opaque", "immutable": False}
    cm = decode_request(envelope("v1", "ConfigMap", lf(1, lf(1, "c")) + entry(3, "b", b"\x01\x02")))
    assert cm["binaryData"] == {"b": "AQI="}


def test_raw_extension_and_fields_v1():
    managed = lf(1, "kubectl") + lf(2, "Update") + lf(6, "FieldsV1") + lf(7, lf(1, b'{"f:data":{}}'))
    meta = lf(1, "rev") + lf(17, managed)
    rev = decode_request(envelope("apps/v1", "ControllerRevision",
                                  lf(1, meta) + lf(2, lf(1, b'{"spec":{"x":1}}')) + vf(3, 2)))
    assert rev["data"] == {"spec": {"x": 1}}
    assert rev["revision"] == 2
    assert rev["metadata"]["managedFields"] == [{"manager": "kubectl", "operation": "Update",
                                                 "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]


def test_negative_ints_and_unknown_fields_skipped():
    sc = vf(2, -1) + vf(99, 7) + lf(98, "future")
    pod = decode_request(envelope("v1", "Pod", lf(1, lf(1, "p")) + lf(2, lf(14, sc) + lf(2, lf(1, "c")))))
    assert pod["spec"]["securityContext"] == {"runAsUser": -1}


def test_token_request():
    spec = lf(1, "api") + vf(4, 600) + lf(3, lf(1, "Pod") + lf(2, "v1") + lf(3, "p") + lf(4, "uid-1"))
    tr = decode_request(envelope("authentication.k8s.io/v1", "TokenRequest", lf(1, b"") + lf(2, spec)))
    assert tr["spec"] == {"audiences": ["api"], "expirationSeconds": 600,
                          "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "uid-1"}}


def test_malformed_bodies():
    with pytest.raises(ProtobufError, match="k8s"):
        decode_request(b'{"kind":"Pod"}')
    with pytest.raises(ProtobufError):
        decode_request(b"k8s\x00\x0a\xff")
    with pytest.raises(ProtobufError, match="ConfigMap"):
        decode_request(envelope("v1", "ConfigMap", b"\x0a\x05ab"))  # length past the end
    with pytest.raises(ProtobufError, match="contentEncoding"):
        decode_request(b"k8s\x00" + lf(1, lf(1, "v1") + lf(2, "Pod")) + lf(3, "gzip"))


def test_supported_kinds_cover_kubectl_generators():
    kinds = set(protobuf.supported_kinds())
    for k in ("v1/Namespace", "v1/ConfigMap", "v1/Secret", "v1/ServiceAccount", "v1/Service", "v1/Pod",
              "apps/v1/Deployment", "batch/v1/Job", "batch/v1/CronJob", "autoscaling/v1/HorizontalPodAutoscaler",
              "autoscaling/v2/HorizontalPodAutoscaler", "authentication.k8s.io/v1/TokenRequest",
              "authentication.k8s.io/v1/SelfSubjectReview", "authorization.k8s.io/v1/SelfSubjectAccessReview",
              "authorization.k8s.io/v1/SelfSubjectRulesReview"):
        assert k in kinds


def test_decode_speed():
    body = base64.b64decode(CAPTURED["deployment_zero"])
    decode_request(body)
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        decode_request(body)
    per = (time.perf_counter() - t) / n
    assert per < 0.005, f"{per * 1e6:.0f} µs per Deployment"
