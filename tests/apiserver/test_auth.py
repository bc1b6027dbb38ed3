"""Security by default: TLS with the cluster CA, tokens and client certificates, 401/403, node restriction."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request

import pytest

from ketch.apiserver.pki import PKI
from tests.conftest import start_cluster


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("secure"), secure=True)
    yield c
    assert c.stop() == 0


def _ctx(c, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(c.data_dir / "pki" / "ca.crt"))
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def call(c, method: str, path: str, token: str | None = None, body: dict | None = None,
         cert: tuple[str, str] | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if method == "PATCH":
        headers["Content-Type"] = "application/merge-patch+json"
    req = urllib.request.Request(c.url + path, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, context=_ctx(c, cert), timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw[:1] == b"{" else {"raw": raw.decode()}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def join_token(c) -> str:
    m = re.search(r"join token for more nodes: (\S+)", c.log_path.read_text())
    assert m, c.log_path.read_text()
    return m.group(1)


def test_kubectl_and_python_client_use_tls_and_the_admin_token(secure):
    assert secure.url.startswith("https://")
    out = secure.kubectl("get", "ns", "-o", "name").stdout.split()
    assert "namespace/default" in out
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(config_file=secure.kubeconfig))
    assert "kube-system" in [n.metadata.name for n in api.list_namespace().items]


def test_anonymous_and_wrong_tokens_are_rejected(secure):
    assert call(secure, "GET", "/api/v1/namespaces")[0] == 401
    code, st = call(secure, "GET", "/api/v1/namespaces", token="not-a-token")
    assert code == 401 and st["reason"] == "Unauthorized"
    assert call(secure, "GET", "/readyz")[0] == 200      # health stays public
    # a client that does not trust the cluster CA cannot talk to it at all
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(secure.url + "/readyz", context=ssl.create_default_context(), timeout=5)


def test_client_certificates_authenticate_as_cn_with_groups(secure, tmp_path):
    pki = PKI(str(secure.data_dir / "pki"))
    paths = {}
    for user, groups in (("alice", ["system:masters"]), ("bob", [])):
        cert, key = pki.issue(user, groups)
        (tmp_path / f"{user}.crt").write_bytes(cert)
        (tmp_path / f"{user}.key").write_bytes(key)
        paths[user] = (str(tmp_path / f"{user}.crt"), str(tmp_path / f"{user}.key"))
    assert call(secure, "GET", "/api/v1/namespaces", cert=paths["alice"])[0] == 200
    code, st = call(secure, "GET", "/api/v1/namespaces", cert=paths["bob"])
    assert code == 403 and st["reason"] == "Forbidden" and 'User "bob"' in st["message"]


def test_a_joined_node_can_only_act_as_itself(secure):
    code, st = call(secure, "GET", "/api/v1/pods", token=join_token(secure))
    assert code == 403                                  # the join token only joins
    code, creds = call(secure, "POST", "/ketch/join", token=join_token(secure), body={"nodeName": "n1"})
    assert code == 200 and creds["user"] == "system:node:n1"
    tok = creds["token"]
    code, again = call(secure, "POST", "/ketch/join", token=join_token(secure), body={"nodeName": "n1"})
    assert again["token"] == tok                         # stable per node
    assert call(secure, "POST", "/ketch/join", token=join_token(secure), body={"nodeName": "Bad_Name"})[0] == 400
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    assert call(secure, "POST", "/api/v1/nodes", token=tok, body=node)[0] == 201
    other = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}
    code, st = call(secure, "POST", "/api/v1/nodes", token=tok, body=other)
    assert code == 403 and 'node "n1"' in st["message"]
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
             "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}
    assert call(secure, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                token=tok, body=lease)[0] == 201
    assert call(secure, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", token=tok)[0] == 200
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert call(secure, "POST", "/api/v1/namespaces/default/configmaps", token=tok, body=cm)[0] == 403
    # the admin made n2; node n1 may not touch it
    secure.kubectl("apply", "-f", "-", input=json.dumps(other))
    code, st = call(secure, "PATCH", "/api/v1/nodes/n2", token=tok, body={"metadata": {"labels": {"x": "y"}}})
    assert code == 403


async def test_join_pins_the_ca_and_writes_node_credentials(secure, tmp_path):
    from ketch.client.join import JoinError, join
    from ketch.client.rest import Client
    token = join_token(secure)
    assert token.startswith("K10") and "::" in token
    path = await join(secure.url, token, "worker-1", str(tmp_path / "node.kubeconfig"))
    client = Client.from_kubeconfig(path)
    try:
        node = await client.create(client.resource("nodes"), None, {"metadata": {"name": "worker-1"}})
        assert node["metadata"]["name"] == "worker-1"
    finally:
        await client.close()
    forged = "K10" + "0" * 64 + "::" + token.split("::", 1)[1]
    with pytest.raises(JoinError, match="does not match"):
        await join(secure.url, forged, "worker-2", str(tmp_path / "x.kubeconfig"))
    with pytest.raises(JoinError, match="refused"):
        await join(secure.url, token.split("::")[0] + "::wrong", "worker-2", str(tmp_path / "y.kubeconfig"))


def test_reviews_and_service_account_tokens(secure):
    who = json.loads(secure.kubectl("auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == "ketch-admin"
    assert secure.kubectl("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"
    secure.kubectl("apply", "-f", "-", input='{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"robot"}}')
    token = secure.kubectl("create", "token", "robot", "--duration=15m").stdout.strip()
    assert token.count(".") == 2
    code, review = call(secure, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token=token,
                        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201 and review["status"]["userInfo"]["username"] == "system:serviceaccount:default:robot"
    assert "system:serviceaccounts:default" in review["status"]["userInfo"]["groups"]
    code, ssar = call(secure, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", token=token,
                      body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                            "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}})
    assert code == 201 and ssar["status"]["allowed"] is False     # no RBAC grants yet: denied
    assert call(secure, "GET", "/api/v1/namespaces/default/pods", token=token)[0] == 403
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert call(secure, "GET", "/api/v1/namespaces/default/pods", token=tampered)[0] == 401
    r = secure.kubectl("create", "token", "nobody-here", check=False)
    assert r.returncode == 1 and 'serviceaccounts "nobody-here" not found' in r.stderr


def test_kubectl_auth_can_i_answers_no_with_exit_code_1(secure):
    secure.kubectl("apply", "-f", "-", input='{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"limited"}}')
    token = secure.kubectl("create", "token", "limited").stdout.strip()
    r = secure.kubectl("--token", token, "auth", "can-i", "list", "pods", check=False)
    assert (r.returncode, r.stdout.strip()) == (1, "no")
    r = secure.kubectl("auth", "can-i", "list", "pods")
    assert (r.returncode, r.stdout.strip()) == (0, "yes")


def test_a_node_gets_service_account_tokens_only_for_its_pods(secure):
    """Projected serviceAccountToken volumes: TokenRequest bound to a pod the node runs, of that pod's account."""
    code, creds = call(secure, "POST", "/ketch/join", token=join_token(secure), body={"nodeName": "vol-n3"})
    assert code == 200
    tok = creds["token"]
    for name, node in (("vol-mine", "vol-n3"), ("vol-theirs", "vol-n4")):
        secure.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))
    mine = json.loads(secure.kubectl("get", "pod", "vol-mine", "-o", "json").stdout)
    path = "/api/v1/namespaces/default/serviceaccounts/default/token"

    def request(spec: dict) -> tuple[int, dict]:
        return call(secure, "POST", path, token=tok, body={"apiVersion": "authentication.k8s.io/v1",
                                                          "kind": "TokenRequest", "spec": spec})

    bound = {"kind": "Pod", "apiVersion": "v1", "name": "vol-mine", "uid": mine["metadata"]["uid"]}
    code, resp = request({"boundObjectRef": bound, "expirationSeconds": 600})
    assert code == 201 and resp["status"]["token"].count(".") == 2, resp
    code, st = request({"boundObjectRef": {**bound, "name": "vol-theirs", "uid": ""}})
    assert code == 403 and "pods bound to it" in st["message"], st
    code, st = request({})
    assert code == 403 and "boundObjectRef" in st["message"], st
    code, st = request({"boundObjectRef": {**bound, "uid": "not-the-uid"}})
    assert code == 403, st
    secure.kubectl("apply", "-f", "-", input='{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"vol-sa"}}')
    code, st = call(secure, "POST", "/api/v1/namespaces/default/serviceaccounts/vol-sa/token", token=tok,
                    body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"boundObjectRef": bound}})
    assert code == 403 and 'does not use service account "vol-sa"' in st["message"], st
    assert secure.kubectl("create", "token", "vol-sa").stdout.count(".") == 2    # the admin still may
    secure.kubectl("delete", "pod", "vol-mine", "vol-theirs", "--grace-period=0", "--force", "--wait=false")


def test_a_node_reads_only_the_secrets_and_configmaps_of_its_pods(secure):
    """The Node authorizer's rule: one object at a time, and only what a pod bound to the node references."""
    code, creds = call(secure, "POST", "/ketch/join", token=join_token(secure), body={"nodeName": "ref-n5"})
    assert code == 200
    tok = creds["token"]
    for kind, name in (("secret", "ref-mine"), ("secret", "ref-theirs"), ("secret", "ref-unused"),
                       ("configmap", "ref-env")):
        secure.kubectl("create", kind, *(["generic"] if kind == "secret" else []), name, "--from-literal=k=v")
    pods = [("ref-pod-mine", "ref-n5", {"volumes": [{"name": "s", "secret": {"secretName": "ref-mine"}}],
                                        "envFrom": [{"configMapRef": {"name": "ref-env"}}]}),
            ("ref-pod-theirs", "ref-n6", {"volumes": [{"name": "s", "secret": {"secretName": "ref-theirs"}}]})]
    for name, node, refs in pods:
        secure.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "volumes": refs.get("volumes", []),
                     "containers": [{"name": "c", "image": "busybox", "envFrom": refs.get("envFrom", [])}]}}))
    base = "/api/v1/namespaces/default"
    assert call(secure, "GET", f"{base}/secrets/ref-mine", token=tok)[0] == 200
    assert call(secure, "GET", f"{base}/configmaps/ref-env", token=tok)[0] == 200
    for path in ("secrets/ref-theirs", "secrets/ref-unused", "configmaps/kube-root-ca.crt"):
        code, st = call(secure, "GET", f"{base}/{path}", token=tok)
        assert code == 403 and "no relationship found between node 'ref-n5'" in st["message"], (path, st)
    # list and watch: only of one referenced object, by fieldSelector
    code, st = call(secure, "GET", f"{base}/secrets", token=tok)
    assert code == 403 and "one at a time" in st["message"], st
    assert call(secure, "GET", "/api/v1/secrets", token=tok)[0] == 403
    code, lst = call(secure, "GET", f"{base}/secrets?fieldSelector=metadata.name%3Dref-mine", token=tok)
    assert code == 200 and [i["metadata"]["name"] for i in lst["items"]] == ["ref-mine"]
    assert call(secure, "GET", f"{base}/secrets?fieldSelector=metadata.name%3Dref-theirs", token=tok)[0] == 403
    code, st = call(secure, "GET", f"{base}/secrets?watch=1&fieldSelector=metadata.name%3Dref-theirs", token=tok)
    assert code == 403
    # the relationship ends with the pod
    secure.kubectl("delete", "pod", "ref-pod-mine", "--grace-period=0", "--force", "--wait=false")
    code, st = call(secure, "GET", f"{base}/secrets/ref-mine", token=tok)
    assert code == 403, st
    # the admin reads everything, as before
    assert secure.kubectl("get", "secret", "ref-theirs", "-o", "name").stdout.strip() == "secret/ref-theirs"
    secure.kubectl("delete", "pod", "ref-pod-theirs", "--grace-period=0", "--force", "--wait=false")
