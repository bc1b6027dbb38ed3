"""kubectl's generator commands against a real `ketch up`.

`kubectl create deployment|namespace|configmap|secret|serviceaccount|service|job|cronjob|token`,
`autoscale`, `auth can-i` and `auth whoami` POST `application/vnd.kubernetes.protobuf` bodies
(there is no JSON fallback: a 415 fails the command).  Each command must succeed and the object
must read back as a real apiserver would store it.
"""

from __future__ import annotations

import base64
import json

import pytest

NS = "kc-create"


def self_signed_pair() -> tuple[str, str]:
    """A throwaway self-signed certificate and key (PEM) for `create secret tls`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ketch-test.io")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@pytest.fixture(scope="module")
def ns(cluster):
    r = cluster.kubectl("create", "namespace", NS)
    assert f"namespace/{NS} created" in r.stdout
    return NS


def get(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_create_namespace(cluster, ns):
    obj = get(cluster, "namespace", ns)
    assert obj["kind"] == "Namespace" and obj["metadata"]["name"] == ns
    assert obj["status"]["phase"] == "Active"


def test_create_deployment(cluster, ns):
    r = cluster.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=2", "--port=80", "-n", ns)
    assert "deployment.apps/web created" in r.stdout
    d = get(cluster, "deployment", "web", "-n", ns)
    assert d["metadata"]["labels"] == {"app": "web"}
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    tmpl = d["spec"]["template"]
    assert tmpl["metadata"]["labels"] == {"app": "web"}
    (c,) = tmpl["spec"]["containers"]
    assert c["name"] == "nginx" and c["image"] == "nginx:1.25"
    assert c["ports"][0]["containerPort"] == 80
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted from the empty strategy


def test_create_deployment_zero_replicas(cluster, ns):
    cluster.kubectl("create", "deployment", "idle", "--image=nginx:1.25", "--replicas=0", "-n", ns)
    assert get(cluster, "deployment", "idle", "-n", ns)["spec"]["replicas"] == 0


def test_create_configmap(cluster, ns):
    r = cluster.kubectl("create", "configmap", "cm1", "--from-literal=a=1", "--from-literal=b=two", "-n", ns)
    assert "configmap/cm1 created" in r.stdout
    assert get(cluster, "configmap", "cm1", "-n", ns)["data"] == {"a": "1", "b": "two"}


def test_create_secret_generic(cluster, ns):
    cluster.kubectl("create", "secret", "generic", "s1", "--from-literal=user=admin",
                    "--from-literal=pw=p@ss w0rd", "-n", ns)
    s = get(cluster, "secret", "s1", "-n", ns)
    assert s["type"] == "Opaque"
    assert s["data"] == {"user": b64("admin"), "pw": b64("p@ss w0rd")}


def test_create_secret_tls(cluster, ns, tmp_path):
    crt, key = self_signed_pair()
    (tmp_path / "tls.crt").write_text(crt)
    (tmp_path / "tls.key").write_text(key)
    cluster.kubectl("create", "secret", "tls", "tls1", f"--cert={tmp_path / 'tls.crt'}",
                    f"--key={tmp_path / 'tls.key'}", "-n", ns)
    s = get(cluster, "secret", "tls1", "-n", ns)
    assert s["type"] == "kubernetes.io/tls"
    assert base64.b64decode(s["data"]["tls.crt"]).decode() == crt
    assert base64.b64decode(s["data"]["tls.key"]).decode() == key


def test_create_secret_docker_registry(cluster, ns):
    cluster.kubectl("create", "secret", "docker-registry", "reg1", "--docker-server=r.example.com",
                    "--docker-username=u", "--docker-password=p", "--docker-email=e@x.io", "-n", ns)
    s = get(cluster, "secret", "reg1", "-n", ns)
    assert s["type"] == "kubernetes.io/dockerconfigjson"
    cfg = json.loads(base64.b64decode(s["data"][".dockerconfigjson"]))
    assert cfg["auths"]["r.example.com"]["username"] == "u"


def test_create_serviceaccount(cluster, ns):
    r = cluster.kubectl("create", "serviceaccount", "sa1", "-n", ns)
    assert "serviceaccount/sa1 created" in r.stdout
    assert get(cluster, "serviceaccount", "sa1", "-n", ns)["metadata"]["name"] == "sa1"


@pytest.mark.parametrize("kind,name,args,svc_type", [
    ("clusterip", "svc1", ["--tcp=80:8080"], "ClusterIP"),
    ("nodeport", "np1", ["--tcp=80:8080", "--node-port=30081"], "NodePort"),
    ("loadbalancer", "lb1", ["--tcp=443:8443"], "LoadBalancer"),
])
def test_create_service(cluster, ns, kind, name, args, svc_type):
    r = cluster.kubectl("create", "service", kind, name, *args, "-n", ns)
    assert f"service/{name} created" in r.stdout
    s = get(cluster, "service", name, "-n", ns)
    assert s["spec"]["type"] == svc_type
    assert s["spec"]["selector"] == {"app": name}
    (port,) = s["spec"]["ports"]
    port_num, target = (int(x) for x in args[0].split("=")[1].split(":"))
    assert port["port"] == port_num and port["targetPort"] == target and port["protocol"] == "TCP"
    if svc_type == "NodePort":
        assert port["nodePort"] == 30081


def test_create_job(cluster, ns):
    r = cluster.kubectl("create", "job", "j1", "--image=busybox:1.36", "-n", ns, "--", "echo", "hi")
    assert "job.batch/j1 created" in r.stdout
    j = get(cluster, "job", "j1", "-n", ns)
    tspec = j["spec"]["template"]["spec"]
    assert tspec["restartPolicy"] == "Never"
    assert tspec["containers"][0]["command"] == ["echo", "hi"]


def test_create_cronjob_and_job_from_it(cluster, ns):
    r = cluster.kubectl("create", "cronjob", "cj1", "--image=busybox:1.36", "--schedule=*/5 * * * *",
                        "-n", ns, "--", "date")
    assert "cronjob.batch/cj1 created" in r.stdout
    cj = get(cluster, "cronjob", "cj1", "-n", ns)
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]
    cluster.kubectl("create", "job", "j2", "--from=cronjob/cj1", "-n", ns)
    j = get(cluster, "job", "j2", "-n", ns)
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"


def test_autoscale(cluster, ns):
    cluster.kubectl("create", "deployment", "scaled", "--image=nginx:1.25", "-n", ns)
    r = cluster.kubectl("autoscale", "deployment", "scaled", "--min=2", "--max=5", "--cpu=70%", "-n", ns)
    assert "autoscaled" in r.stdout
    hpa = get(cluster, "hpa", "scaled", "-n", ns)
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"}
    assert spec["minReplicas"] == 2 and spec["maxReplicas"] == 5
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]


def test_create_token(cluster, ns):
    cluster.kubectl("create", "serviceaccount", "tok", "-n", ns)
    token = cluster.kubectl("create", "token", "tok", "--duration=10m", "-n", ns).stdout.strip()
    assert token.count(".") == 2  # a JWT


def test_auth_can_i(cluster, ns):
    r = cluster.kubectl("auth", "can-i", "create", "pods", "-n", ns)
    assert r.stdout.strip() == "yes"


def test_auth_whoami(cluster):
    r = cluster.kubectl("auth", "whoami", "-o", "json")
    assert json.loads(r.stdout)["kind"] == "SelfSubjectReview"


def test_unknown_protobuf_kind_is_415_not_500(cluster):
    # a kind outside the decoder's table must fail cleanly (415 naming the kind), never crash the server
    r = cluster.kubectl("create", "priorityclass", "pc-proto", "--value=10", check=False)
    if r.returncode == 0:
        return  # the server learned to decode it
    assert "PriorityClass" in r.stderr or "not find the requested resource" in r.stderr, r.stderr
    assert cluster.proc.poll() is None


def test_server_still_healthy(cluster, ns):
    assert cluster.kubectl("get", "ns", ns, "-o", "name").stdout.strip() == f"namespace/{ns}"
