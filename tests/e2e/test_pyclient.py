"""End-to-end scenarios: the official `kubernetes` Python client (37.x) against a fresh `ketch up`.

Every expectation is what a real Kubernetes cluster answers.  `ketch up --no-agent` runs the scheduler
and the controller-manager but no node: every pod stays Pending, and the scheduler marks it
PodScheduled=False (Unschedulable) -- a status write of its own, with a newer resourceVersion.
Tests about the apiserver's watch semantics alone watch Secrets and ConfigMaps, which no controller
writes.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from kubernetes import client, config, utils, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.conftest import start_cluster

# ---------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ketch up` without its built-in node agent: a control plane and no nodes."""
    c = start_cluster(tmp_path_factory.mktemp("ketch"), extra=["--no-agent"])
    yield c
    rc = c.stop()
    assert rc == 0, f"ketch up did not stop cleanly ({rc}):\n{c.log_path.read_text()[-3000:]}"


@pytest.fixture(scope="module")
def api(cluster) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=cluster.kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def ns(core, request) -> str:
    name = "py-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-")
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.metadata.name == name
    assert created.status.phase == "Active"
    return name


def pod_body(name: str, labels: dict | None = None, image: str = "busybox:1.36") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image=image, command=["sleep", "3600"])]),
    )


def deployment_body(name: str, replicas: int = 2, image: str = "nginx:1.25") -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="main", image=image, ports=[client.V1ContainerPort(container_port=80)])]),
            ),
        ),
    )


def status_of(e: ApiException) -> dict:
    return json.loads(e.body)


UNSCHEDULABLE = [("PodScheduled", "False", "Unschedulable")]


def conditions(p: client.V1Pod) -> list[tuple[str, str, str]]:
    return [(c.type, c.status, c.reason) for c in p.status.conditions or []]


def wait_unschedulable(core: client.CoreV1Api, ns: str, name: str, timeout: float = 10) -> client.V1Pod:
    """The pod once the scheduler has found no node for it: PodScheduled=False, reason Unschedulable."""
    deadline = time.time() + timeout
    while not (p := core.read_namespaced_pod(name, ns)).status.conditions:
        assert time.time() < deadline, f"pod {name} not marked by the scheduler within {timeout}s"
        time.sleep(0.02)
    assert conditions(p) == UNSCHEDULABLE
    assert "no nodes available to schedule pods" in p.status.conditions[0].message
    assert p.status.phase == "Pending" and p.spec.node_name is None
    return p


def secret_body(name: str, labels: dict | None = None) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), string_data={"k": name})


def cm_body(name: str, labels: dict | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data={"k": name})


def events(w: watch.Watch, func, *args, **kwargs) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of every event of one finite watch."""
    return [(ev["type"], ev["object"].metadata.name, ev["object"].metadata.resource_version)
            for ev in w.stream(func, *args, **kwargs)]


# ---------------------------------------------------------------------------------------------
# CRUD


def test_version_and_discovery(api):
    v = client.VersionApi(api).get_code()
    assert v.major == "1" and re.match(r"v1\.\d+\.\d+", v.git_version)
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert groups["apps"].preferred_version.group_version == "apps/v1"
    assert "coordination.k8s.io" in groups
    core_res = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core_res["pods"].namespaced is True and core_res["pods"].kind == "Pod"
    assert "pods/status" in core_res
    assert core_res["namespaces"].namespaced is False


def test_pod_crud(core, ns):
    created = core.create_namespaced_pod(ns, pod_body("p1", {"app": "a"}))
    assert isinstance(created, client.V1Pod)
    assert created.metadata.name == "p1" and created.metadata.namespace == ns
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None  # parsed RFC 3339
    assert created.status.phase == "Pending"
    assert created.spec.containers[0].image == "busybox:1.36"
    assert created.spec.restart_policy == "Always"

    assert created.status.conditions is None  # the scheduler has not seen it yet

    core.create_namespaced_pod(ns, pod_body("p2", {"app": "b"}))
    # no node can take them: the scheduler writes PodScheduled=False, so each pod moves on once
    got = wait_unschedulable(core, ns, "p1")
    got2 = wait_unschedulable(core, ns, "p2")
    assert got.metadata.uid == created.metadata.uid
    assert int(got.metadata.resource_version) > int(created.metadata.resource_version)
    assert got.spec == created.spec and got.metadata.labels == {"app": "a"}
    lst = core.list_namespaced_pod(ns)
    assert isinstance(lst, client.V1PodList)
    assert [(p.metadata.name, p.metadata.resource_version) for p in lst.items] == [
        ("p1", got.metadata.resource_version), ("p2", got2.metadata.resource_version)]
    assert int(lst.metadata.resource_version) >= int(got2.metadata.resource_version)
    # and after that nothing else writes them: a fresh GET is the same revision
    assert core.read_namespaced_pod("p1", ns).metadata.resource_version == got.metadata.resource_version

    # a dict body is sent as a strategic merge patch: labels merge, containers merge by name
    patched = core.patch_namespaced_pod("p1", ns, {"metadata": {"labels": {"tier": "fe"}},
                                                   "spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}})
    assert patched.metadata.labels == {"app": "a", "tier": "fe"}
    assert [(c.name, c.image, c.command) for c in patched.spec.containers] == [
        ("main", "busybox:1.37", ["sleep", "3600"])]
    assert int(patched.metadata.resource_version) > int(got.metadata.resource_version)
    assert conditions(patched) == UNSCHEDULABLE  # a metadata/spec patch leaves the status alone

    # a list body is a JSON patch
    patched = core.patch_namespaced_pod("p1", ns, [{"op": "add", "path": "/metadata/annotations",
                                                    "value": {"note": "hi"}}])
    assert patched.metadata.annotations == {"note": "hi"}

    got.metadata.labels = {"replaced": "yes"}
    with pytest.raises(ApiException) as ei:  # got carries an old resourceVersion
        core.replace_namespaced_pod("p1", ns, got)
    assert ei.value.status == 409 and status_of(ei.value)["reason"] == "Conflict"
    fresh = core.read_namespaced_pod("p1", ns)
    fresh.metadata.labels = {"replaced": "yes"}
    replaced = core.replace_namespaced_pod("p1", ns, fresh)
    assert replaced.metadata.labels == {"replaced": "yes"}

    deleted = core.delete_namespaced_pod("p1", ns)
    assert deleted.metadata.name == "p1"  # a pod without a node is deleted at once; the body is the pod
    with pytest.raises(ApiException) as ei:
        core.read_namespaced_pod("p1", ns)
    assert ei.value.status == 404
    assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == ["p2"]


def test_deployment_crud(apps, ns):
    created = apps.create_namespaced_deployment(ns, deployment_body("web"))
    assert isinstance(created, client.V1Deployment)
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.containers[0].ports[0].protocol == "TCP"
    assert created.spec.revision_history_limit == 10 and created.spec.progress_deadline_seconds == 600

    # strategic merge: a new container is added next to the existing one
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox:1.36"}]}}}})
    # new items go first (apimachinery normalizeElementOrder: patch items lead unless both are live)
    assert [c.name for c in patched.spec.template.spec.containers] == ["sidecar", "main"]
    assert {c.name: c.image for c in patched.spec.template.spec.containers} == {
        "main": "nginx:1.25", "sidecar": "busybox:1.36"}
    assert patched.metadata.generation == 2

    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert isinstance(scale, client.V1Scale)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    scale = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5
    got = apps.read_namespaced_deployment("web", ns)
    assert got.spec.replicas == 5 and got.metadata.generation == 3

    lst = apps.list_namespaced_deployment(ns)
    assert [d.metadata.name for d in lst.items] == ["web"]
    assert "web" in [d.metadata.name for d in apps.list_deployment_for_all_namespaces().items]

    st = apps.delete_namespaced_deployment("web", ns)
    assert st is not None
    with pytest.raises(ApiException) as ei:
        apps.read_namespaced_deployment("web", ns)
    assert ei.value.status == 404
    assert status_of(ei.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "web" not found', "reason": "NotFound",
        "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404}


def test_namespace_lifecycle(core):
    name = "py-lifecycle"
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"x": "y"})))
    assert ns.metadata.labels == {"x": "y", "kubernetes.io/metadata.name": name}
    assert ns.spec.finalizers == ["kubernetes"]
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"),
                                                               data={"k": "v"}))
    core.create_namespaced_pod(name, pod_body("p"))
    assert name in [n.metadata.name for n in core.list_namespace(label_selector="x=y").items]
    patched = core.patch_namespace(name, {"metadata": {"labels": {"extra": "1"}}})
    assert patched.metadata.labels["extra"] == "1"
    core.delete_namespace(name)
    deadline = time.time() + 15
    while True:
        try:
            got = core.read_namespace(name)
        except ApiException as e:
            assert e.status == 404
            break
        assert got.status.phase == "Terminating"
        assert time.time() < deadline, "namespace not gone within 15s"
        time.sleep(0.2)
    assert core.list_namespaced_config_map(name).items == []
    assert core.list_namespaced_pod(name).items == []
    assert name not in [n.metadata.name for n in core.list_namespace().items]


# ---------------------------------------------------------------------------------------------
# watch


def test_watch_sees_added_modified_deleted(core, ns):
    """A pod's history from a watch: created, marked unschedulable by the scheduler, patched, deleted."""
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    created = core.create_namespaced_pod(ns, pod_body("w1"))
    marked = wait_unschedulable(core, ns, "w1")  # so that the scheduler's write comes before the patch
    patched = core.patch_namespaced_pod("w1", ns, {"metadata": {"labels": {"step": "2"}}})
    core.delete_namespaced_pod("w1", ns)
    t0 = time.time()
    w = watch.Watch()
    got = []
    for ev in w.stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=2):
        o = ev["object"]
        assert isinstance(o, client.V1Pod)
        got.append((ev["type"], o.metadata.name, o.metadata.labels, conditions(o), o.metadata.resource_version))
    assert time.time() - t0 < 6, "timeoutSeconds not honoured"
    assert [g[:4] for g in got] == [("ADDED", "w1", None, []),
                                    ("MODIFIED", "w1", None, UNSCHEDULABLE),  # the scheduler's status write
                                    ("MODIFIED", "w1", {"step": "2"}, UNSCHEDULABLE),
                                    ("DELETED", "w1", {"step": "2"}, UNSCHEDULABLE)]
    assert [g[4] for g in got[:3]] == [created.metadata.resource_version, marked.metadata.resource_version,
                                       patched.metadata.resource_version]
    assert int(got[3][4]) > int(patched.metadata.resource_version)


def test_watch_live_events(core, ns):
    """A watch started before the changes sees them as they happen, the scheduler's write included."""
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    got: list = []
    w = watch.Watch()

    def run():
        for ev in w.stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=10):
            got.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.labels,
                        conditions(ev["object"])))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.5)
    assert got == []
    core.create_namespaced_pod(ns, pod_body("live"))
    deadline = time.time() + 8
    while len(got) < 2:  # ADDED, then the scheduler's MODIFIED, delivered live
        assert time.time() < deadline, f"the scheduler's update was not delivered; saw {got}"
        time.sleep(0.02)
    core.patch_namespaced_pod("live", ns, {"metadata": {"labels": {"a": "b"}}})
    core.delete_namespaced_pod("live", ns)
    t.join(8)
    assert not t.is_alive(), f"watch did not deliver DELETED; saw {got}"
    assert got == [("ADDED", "live", None, []), ("MODIFIED", "live", None, UNSCHEDULABLE),
                   ("MODIFIED", "live", {"a": "b"}, UNSCHEDULABLE), ("DELETED", "live", {"a": "b"}, UNSCHEDULABLE)]


def test_watch_resumes_from_last_resource_version(core, ns):
    # Secrets: no controller writes them, so every event is one of ours
    rv0 = core.list_namespaced_secret(ns).metadata.resource_version
    for n in ("r1", "r2", "r3"):
        core.create_namespaced_secret(ns, secret_body(n))
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_secret, ns, resource_version=rv0, timeout_seconds=5):
        assert isinstance(ev["object"], client.V1Secret)
        seen.append((ev["type"], ev["object"].metadata.name))
        last_rv = ev["object"].metadata.resource_version
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "r1"), ("ADDED", "r2")]
    # more changes, then a new watch from the last seen resourceVersion: exactly the newer events
    core.patch_namespaced_secret("r1", ns, {"metadata": {"labels": {"v": "2"}}})
    core.delete_namespaced_secret("r2", ns)
    core.create_namespaced_secret(ns, secret_body("r4"))
    got = events(watch.Watch(), core.list_namespaced_secret, ns, resource_version=last_rv, timeout_seconds=2)
    assert [(t, n) for t, n, _ in got] == [("ADDED", "r3"), ("MODIFIED", "r1"), ("DELETED", "r2"), ("ADDED", "r4")]
    rvs = [int(r) for _, _, r in got]
    assert rvs == sorted(rvs) and rvs[0] > int(last_rv)
    # the last event is the newest revision of the namespace's secrets
    assert got[-1][2] == core.list_namespaced_secret(ns).items[-1].metadata.resource_version
    # and from the newest one: nothing at all
    assert events(watch.Watch(), core.list_namespaced_secret, ns, resource_version=got[-1][2],
                  timeout_seconds=1) == []


def test_watch_filters_by_selectors(core, ns):
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, cm_body("sel-a", {"app": "a"}))
    core.create_namespaced_config_map(ns, cm_body("sel-b", {"app": "b"}))
    core.patch_namespaced_config_map("sel-b", ns, {"metadata": {"labels": {"app": "a"}}})  # enters the selection
    core.patch_namespaced_config_map("sel-a", ns, {"metadata": {"labels": {"app": "c"}}})  # leaves it
    got = events(watch.Watch(), core.list_namespaced_config_map, ns, resource_version=rv, label_selector="app=a",
                 timeout_seconds=2)
    # Kubernetes reports an object entering a selection as ADDED and leaving it as DELETED
    assert [(t, n) for t, n, _ in got] == [("ADDED", "sel-a"), ("ADDED", "sel-b"), ("DELETED", "sel-a")]
    got = events(watch.Watch(), core.list_namespaced_config_map, ns, resource_version=rv,
                 field_selector="metadata.name=sel-b", timeout_seconds=2)
    assert [(t, n) for t, n, _ in got] == [("ADDED", "sel-b"), ("MODIFIED", "sel-b")]
    # pods too, with the scheduler's write: one pod in the selection, one never in it
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    core.create_namespaced_pod(ns, pod_body("in", {"app": "a"}))
    core.create_namespaced_pod(ns, pod_body("out", {"app": "b"}))
    wait_unschedulable(core, ns, "in")
    wait_unschedulable(core, ns, "out")
    core.patch_namespaced_pod("in", ns, {"metadata": {"labels": {"app": "c"}}})  # leaves it
    got = [(ev["type"], ev["object"].metadata.name, conditions(ev["object"]))
           for ev in watch.Watch().stream(core.list_namespaced_pod, ns, resource_version=rv, label_selector="app=a",
                                          timeout_seconds=1)]
    assert got == [("ADDED", "in", []), ("MODIFIED", "in", UNSCHEDULABLE), ("DELETED", "in", UNSCHEDULABLE)]


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """A cluster of our own, restarted once: its watch history starts after the restart."""
    data = tmp_path_factory.mktemp("ketch-restart")
    c = start_cluster(data, extra=["--no-agent"])
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=c.kubeconfig, client_configuration=cfg)
        core = client.CoreV1Api(client.ApiClient(cfg))
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="old")))
        old_rv = core.create_namespaced_config_map("old", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="c0"))).metadata.resource_version
        for i in range(1, 6):
            core.patch_namespaced_config_map("c0", "old", {"data": {"i": str(i)}})
    finally:
        assert c.stop() == 0
    # after the restart the watch window starts at the current revision, and a fast compactor
    # compacts the history behind it: old_rv is gone for good
    c = start_cluster(data, port=c.port, extra=["--no-agent", "--compact-interval", "0.3"])
    cfg = client.Configuration()
    config.load_kube_config(config_file=c.kubeconfig, client_configuration=cfg)
    time.sleep(1.0)
    yield c, client.CoreV1Api(client.ApiClient(cfg)), old_rv
    assert c.stop() == 0


def test_watch_too_old_resource_version_is_410(restarted):
    _, core, old_rv = restarted
    # data survived the restart
    assert core.read_namespaced_config_map("c0", "old").data == {"i": "5"}
    with pytest.raises(ApiException) as ei:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, "old", resource_version=old_rv,
                                      timeout_seconds=2):
            pass
    assert ei.value.status == 410
    assert ei.value.reason.startswith("Expired: ")
    # the raw stream: 200, one ERROR event with a 410 Expired Status, then the end
    resp = core.list_namespaced_config_map("old", watch=True, resource_version=old_rv, timeout_seconds=2,
                                           _preload_content=False)
    assert resp.status == 200
    lines = [json.loads(ln) for ln in resp.data.decode().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["kind"] == "Status"
    assert (lines[0]["object"]["code"], lines[0]["object"]["reason"]) == (410, "Expired")


def test_list_exact_too_old_is_410(restarted):
    _, core, old_rv = restarted
    # a List at an exact, compacted revision is 410 Gone
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_config_map("old", resource_version=old_rv, resource_version_match="Exact")
    assert ei.value.status == 410
    assert status_of(ei.value)["reason"] == "Expired"
    # and an exact, current one is served
    rv = core.list_namespaced_config_map("old").metadata.resource_version
    lst = core.list_namespaced_config_map("old", resource_version=rv, resource_version_match="Exact")
    assert [c.metadata.name for c in lst.items] == ["c0"]


# ---------------------------------------------------------------------------------------------
# create_from_yaml, selectors, errors, dynamic client

MULTI_DOC = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {app: shop}
spec:
  replicas: 3
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector: {app: shop}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
data:
  mode: production
"""


def test_create_from_yaml(api, core, apps, ns, tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(MULTI_DOC)
    created = utils.create_from_yaml(api, str(path), namespace=ns)
    objs = [o for group in created for o in (group if isinstance(group, list) else [group])]
    assert [type(o).__name__ for o in objs] == ["V1Deployment", "V1Service", "V1ConfigMap"]
    d = apps.read_namespaced_deployment("shop", ns)
    assert d.spec.replicas == 3 and d.spec.template.spec.containers[0].ports[0].container_port == 8080
    s = core.read_namespaced_service("shop", ns)
    assert s.spec.type == "ClusterIP" and s.spec.selector == {"app": "shop"}
    assert [(p.port, p.target_port, p.protocol) for p in s.spec.ports] == [(80, 8080, "TCP")]
    assert s.spec.session_affinity == "None"
    assert core.read_namespaced_config_map("shop-config", ns).data == {"mode": "production"}
    # a second time: every document fails with 409 AlreadyExists
    with pytest.raises(utils.FailToCreateError) as ei:
        utils.create_from_yaml(api, str(path), namespace=ns)
    assert [e.status for e in ei.value.api_exceptions] == [409, 409, 409]


def test_list_selectors(core, ns):
    core.create_namespaced_pod(ns, pod_body("a", {"app": "shop", "tier": "fe"}))
    core.create_namespaced_pod(ns, pod_body("b", {"app": "shop", "tier": "be"}))
    core.create_namespaced_pod(ns, pod_body("c", {"app": "blog"}))

    def names(**kw) -> list[str]:
        return [p.metadata.name for p in core.list_namespaced_pod(ns, **kw).items]

    assert names(label_selector="app=shop") == ["a", "b"]
    assert names(label_selector="app=shop,tier!=fe") == ["b"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="tier notin (fe)") == ["b", "c"]
    assert names(label_selector="app in (blog, nothing)") == ["c"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c,status.phase=Pending") == ["a", "b"]
    assert names(field_selector="status.phase=Running") == []
    assert names(field_selector="spec.nodeName=") == ["a", "b", "c"]
    everywhere = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={ns}", label_selector="app=shop")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [(ns, "a"), (ns, "b")]
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_pod(ns, field_selector="spec.bogus=x")
    assert ei.value.status == 400
    assert "field label not supported: spec.bogus" in status_of(ei.value)["message"]
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_pod(ns, label_selector="app in (")
    assert ei.value.status == 400
    # pagination
    page = core.list_namespaced_pod(ns, limit=2)
    assert [p.metadata.name for p in page.items] == ["a", "b"] and page.metadata._continue
    rest = core.list_namespaced_pod(ns, limit=2, _continue=page.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["c"] and not rest.metadata._continue


def test_api_errors(core, apps, ns):
    with pytest.raises(ApiException) as ei:
        core.read_namespaced_pod("ghost", ns)
    assert ei.value.status == 404
    st = status_of(ei.value)
    assert (st["kind"], st["reason"], st["code"], st["message"]) == ("Status", "NotFound", 404, 'pods "ghost" not found')

    with pytest.raises(ApiException) as ei:
        core.create_namespaced_pod("no-such-namespace", pod_body("x"))
    assert ei.value.status == 404
    assert status_of(ei.value)["message"] == 'namespaces "no-such-namespace" not found'

    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dup")))
    with pytest.raises(ApiException) as ei:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dup")))
    assert ei.value.status == 409
    st = status_of(ei.value)
    assert (st["reason"], st["message"]) == ("AlreadyExists", 'configmaps "dup" already exists')
    assert st["details"] == {"name": "dup", "kind": "configmaps"}

    cm = core.read_namespaced_config_map("dup", ns)
    core.patch_namespaced_config_map("dup", ns, {"data": {"v": "1"}})
    cm.data = {"v": "stale"}
    with pytest.raises(ApiException) as ei:
        core.replace_namespaced_config_map("dup", ns, cm)
    assert ei.value.status == 409
    st = status_of(ei.value)
    assert st["reason"] == "Conflict"
    assert st["message"] == ('Operation cannot be fulfilled on configmaps "dup": the object has been modified; '
                             'please apply your changes to the latest version and try again')

    with pytest.raises(ApiException) as ei:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name")))
    assert ei.value.status == 422
    st = status_of(ei.value)
    assert st["reason"] == "Invalid"
    assert st["details"]["kind"] == "ConfigMap" and st["details"]["name"] == "Bad_Name"
    [cause] = st["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "metadata.name")
    assert cause["message"].startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    assert st["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ')

    bad = deployment_body("bad")
    bad.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as ei:
        apps.create_namespaced_deployment(ns, bad)
    assert ei.value.status == 422
    fields = [c["field"] for c in status_of(ei.value)["details"]["causes"]]
    assert fields == ["spec.template.metadata.labels"]

    with pytest.raises(ApiException) as ei:
        core.create_namespaced_pod(ns, client.V1Pod(metadata=client.V1ObjectMeta(name="nocontainers"),
                                                    spec=client.V1PodSpec(containers=[])))
    assert ei.value.status == 422
    assert [(c["reason"], c["field"]) for c in status_of(ei.value)["details"]["causes"]] == [
        ("FieldValueRequired", "spec.containers")]

    with pytest.raises(ApiException) as ei:
        core.delete_namespaced_pod("ghost", ns)
    assert ei.value.status == 404

    with pytest.raises(ApiException) as ei:
        core.patch_namespaced_config_map("dup", ns, [{"op": "test", "path": "/data/v", "value": "nope"}])
    assert ei.value.status == 422


def test_dynamic_client(api, core, ns):
    core.create_namespaced_pod(ns, pod_body("dyn-a", {"app": "dyn"}))
    core.create_namespaced_pod(ns, pod_body("dyn-b"))
    dyn = DynamicClient(api)
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert pods.namespaced is True and pods.name == "pods"
    lst = pods.get(namespace=ns)
    assert lst.kind == "PodList"
    assert [p.metadata.name for p in lst.items] == ["dyn-a", "dyn-b"]
    assert [p.metadata.name for p in pods.get(namespace=ns, label_selector="app=dyn").items] == ["dyn-a"]
    one = pods.get(name="dyn-b", namespace=ns)
    assert one.kind == "Pod" and one.status.phase == "Pending"
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = api.sanitize_for_serialization(deployment_body("dyn-web")) | {"apiVersion": "apps/v1", "kind": "Deployment"}
    created = deployments.create(body=body, namespace=ns)
    assert created.metadata.name == "dyn-web"
    assert [d.metadata.name for d in deployments.get(namespace=ns).items] == ["dyn-web"]
    patched = deployments.patch(name="dyn-web", namespace=ns, body={"spec": {"replicas": 4}},
                                content_type="application/merge-patch+json")
    assert patched.spec.replicas == 4
    leases = dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    assert leases.get(namespace=ns).items == []
    deployments.delete(name="dyn-web", namespace=ns)
    assert deployments.get(namespace=ns).items == []
