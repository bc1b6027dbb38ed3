"""End-to-end scenarios: the real kubectl 1.37 against a fresh `ketch up`.

Every expectation is what a real Kubernetes apiserver answers.  Objects are created from YAML
(`apply -f -` / `create -f -`): the generator commands (`kubectl create deployment ...`) send
protobuf bodies, which are out of scope here.  `ketch up --no-agent` runs the scheduler and the
controller-manager but no node: as in a real cluster without nodes, Deployments get a
ReplicaSet and pods, and every pod stays Pending, marked PodScheduled=False (Unschedulable) by the
scheduler.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import start_cluster

KUBECTL = str(Path(sys.executable).parent / "kubectl")

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# the alphabet of generated name suffixes and pod-template-hash values (apimachinery rand.SafeEncodeString)
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"


# ---------------------------------------------------------------------------------------------
# helpers


def dump(*objs: dict) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(name: str, ns: str, labels: dict | None = None, image: str = "busybox:1.36") -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}]}}


def deployment(name: str, ns: str, replicas: int = 2, image: str = "nginx:1.25",
               sidecar: bool = False) -> dict:
    containers = [{"name": "main", "image": image, "ports": [{"containerPort": 80}]}]
    if sidecar:
        containers.append({"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "3600"]})
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": containers}}}}


def configmap(name: str, ns: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


def lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


def jp(cluster, kind_name: str, ns: str, path: str) -> str:
    return cluster.kubectl("get", kind_name, "-n", ns, "-o", f"jsonpath={path}").stdout


def poll_jp(cluster, kind_name: str, ns: str, path: str, want: str, timeout: float = 15) -> None:
    """Wait until a jsonpath over a controller-managed object reads `want` (its status is eventually consistent)."""
    deadline = time.time() + timeout
    while (got := jp(cluster, kind_name, ns, path)) != want:
        assert time.time() < deadline, f"{kind_name} {path}: {got!r}, still not {want!r} after {timeout}s"
        time.sleep(0.1)


def kenv(cluster, **extra: str) -> dict:
    return dict(os.environ, KUBECONFIG=cluster.kubeconfig, HOME=str(cluster.data_dir / "home"), **extra)


def popen(cluster, out: Path, *args: str) -> subprocess.Popen:
    f = open(out, "w")
    try:
        return subprocess.Popen([KUBECTL, *args], stdout=f, stderr=subprocess.STDOUT, text=True, env=kenv(cluster))
    finally:
        f.close()


def wait_output(path: Path, pattern: str, timeout: float = 15, count: int = 1) -> str:
    """Wait until `pattern` matches at least `count` times in the file."""
    rx = re.compile(pattern, re.M)
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = path.read_text()
        if len(rx.findall(text)) >= count:
            return text
        time.sleep(0.05)
    raise AssertionError(f"pattern {pattern!r} not seen {count}x within {timeout}s; output so far:\n{text}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ketch up` without its built-in node agent: a control plane (apiserver, scheduler,
    controller-manager) and no nodes, so that every pod stays Pending."""
    c = start_cluster(tmp_path_factory.mktemp("ketch"), extra=["--no-agent"])
    yield c
    rc = c.stop()
    assert rc == 0, f"ketch up did not stop cleanly ({rc}):\n{c.log_path.read_text()[-3000:]}"


@pytest.fixture
def ns(cluster, request) -> str:
    """A namespace of its own for each test, created through `kubectl apply`."""
    name = "kc-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-")
    r = cluster.kubectl("apply", "-f", "-", input=dump(namespace(name)))
    assert r.stdout == f"namespace/{name} created\n"
    return name


# ---------------------------------------------------------------------------------------------
# discovery


def test_version(cluster):
    r = cluster.kubectl("version", "-o", "json")
    v = json.loads(r.stdout)
    assert v["clientVersion"]["gitVersion"].startswith("v1.37.")
    sv = v["serverVersion"]
    assert sv["major"] == "1"
    assert re.fullmatch(r"\d+\+?", sv["minor"])
    assert re.match(r"v1\.\d+\.\d+", sv["gitVersion"])
    assert sv["gitVersion"].startswith(f"v1.{sv['minor'].rstrip('+')}.")
    assert "/" in sv["platform"]
    r = cluster.kubectl("version")
    assert re.search(r"^Server Version: v1\.\d+\.\d+", r.stdout, re.M)


def test_cluster_info(cluster):
    r = cluster.kubectl("cluster-info")
    assert ANSI.sub("", r.stdout).splitlines()[0] == f"Kubernetes control plane is running at {cluster.url}"


def test_api_resources(cluster):
    names = cluster.kubectl("api-resources", "-o", "name").stdout.split()
    for n in ("pods", "namespaces", "configmaps", "secrets", "services", "nodes", "events",
              "deployments.apps", "replicasets.apps", "leases.coordination.k8s.io"):
        assert n in names, n
    rows = table(cluster.kubectl("api-resources").stdout)
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert ["pods", "po", "v1", "true", "Pod"] in rows
    assert ["namespaces", "ns", "v1", "false", "Namespace"] in rows
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in rows
    assert ["leases", "coordination.k8s.io/v1", "true", "Lease"] in rows
    cluster_scoped = cluster.kubectl("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert "namespaces" in cluster_scoped and "nodes" in cluster_scoped and "pods" not in cluster_scoped
    apps = cluster.kubectl("api-resources", "--api-group=apps", "-o", "name").stdout.split()
    assert "deployments.apps" in apps and "pods" not in apps
    versions = cluster.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "coordination.k8s.io/v1"):
        assert gv in versions


# ---------------------------------------------------------------------------------------------
# apply / create


def test_apply_create_configure_unchanged(cluster, ns):
    cm = configmap("cfg", ns, {"a": "1", "b": "2"})
    dep = deployment("web", ns)
    r = cluster.kubectl("apply", "-f", "-", input=dump(cm, dep))
    assert r.stdout == "configmap/cfg created\ndeployment.apps/web created\n"
    r = cluster.kubectl("apply", "-f", "-", input=dump(cm, dep))
    assert r.stdout == "configmap/cfg unchanged\ndeployment.apps/web unchanged\n"
    # change one key, drop another: the three-way merge removes "b" on the server
    cm["data"] = {"a": "10", "c": "3"}
    dep["spec"]["replicas"] = 3
    r = cluster.kubectl("apply", "-f", "-", input=dump(cm, dep))
    assert r.stdout == "configmap/cfg configured\ndeployment.apps/web configured\n"
    got = json.loads(cluster.kubectl("get", "cm", "cfg", "-n", ns, "-o", "json").stdout)
    assert got["data"] == {"a": "10", "c": "3"}
    last = json.loads(got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["data"] == {"a": "10", "c": "3"}
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas} {.metadata.generation}") == "3 2"
    r = cluster.kubectl("apply", "-f", "-", input=dump(cm, dep))
    assert r.stdout == "configmap/cfg unchanged\ndeployment.apps/web unchanged\n"


def test_apply_strict_validation(cluster, ns):
    bad = deployment("strict", ns)
    bad["spec"]["bogusField"] = True
    r = cluster.kubectl("apply", "-f", "-", input=dump(bad), check=False)
    assert r.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogusField"' in r.stderr
    assert "Error from server (BadRequest)" in r.stderr
    assert cluster.kubectl("get", "deploy", "strict", "-n", ns, check=False).returncode == 1
    # an unknown field on an existing object is caught on the PATCH path too
    good = deployment("strict", ns)
    assert cluster.kubectl("apply", "-f", "-", input=dump(good)).stdout == "deployment.apps/strict created\n"
    bad["spec"]["replicas"] = 5
    r = cluster.kubectl("apply", "-f", "-", input=dump(bad), check=False)
    assert r.returncode == 1
    assert 'unknown field "spec.bogusField"' in r.stderr
    assert jp(cluster, "deploy/strict", ns, "{.spec.replicas}") == "2"
    # --validate=warn: a warning, and the field is dropped
    bad2 = configmap("warned", ns, {"k": "v"})
    bad2["bogusTop"] = 1
    r = cluster.kubectl("apply", "--validate=warn", "-f", "-", input=dump(bad2))
    assert r.stdout == "configmap/warned created\n"
    # (the last-applied annotation keeps the manifest as sent, as in Kubernetes: look at the object)
    stored = json.loads(cluster.kubectl("get", "cm", "warned", "-n", ns, "-o", "json").stdout)
    assert ('Warning: unknown field "bogusTop"' in r.stderr, "bogusTop" in stored) == (True, False), r.stderr
    # --validate=false: silently dropped
    bad3 = configmap("ignored", ns, {"k": "v"})
    bad3["bogusTop"] = 1
    r = cluster.kubectl("apply", "--validate=false", "-f", "-", input=dump(bad3))
    assert r.stdout == "configmap/ignored created\n"
    assert "bogusTop" not in json.loads(cluster.kubectl("get", "cm", "ignored", "-n", ns, "-o", "json").stdout)


def test_apply_dry_run_and_server_side(cluster, ns):
    cm = configmap("dry", ns, {"k": "v"})
    r = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=dump(cm))
    assert r.stdout == "configmap/dry created (server dry run)\n"
    r = cluster.kubectl("get", "cm", "dry", "-n", ns, check=False)
    assert r.returncode == 1 and 'configmaps "dry" not found' in r.stderr
    ss = configmap("ssa", ns, {"k": "v"})
    r = cluster.kubectl("apply", "--server-side", "-f", "-", input=dump(ss))
    assert r.stdout == "configmap/ssa serverside-applied\n"
    got = json.loads(cluster.kubectl("get", "cm", "ssa", "-n", ns, "-o", "json", "--show-managed-fields").stdout)
    assert got["data"] == {"k": "v"}
    assert [m["manager"] for m in got["metadata"]["managedFields"]] == ["kubectl"]
    assert got["metadata"]["managedFields"][0]["operation"] == "Apply"


def test_apply_into_missing_namespace(cluster):
    r = cluster.kubectl("apply", "-f", "-", input=dump(configmap("x", "no-such-ns-here", {})), check=False)
    assert r.returncode == 1
    assert 'namespaces "no-such-ns-here" not found' in r.stderr


def test_create_f(cluster, ns):
    r = cluster.kubectl("create", "-f", "-", input=dump(pod("c1", ns)))
    assert r.stdout == "pod/c1 created\n"
    r = cluster.kubectl("create", "-f", "-", input=dump(pod("c1", ns)), check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ('Error from server (AlreadyExists): error when creating "STDIN": '
                                'pods "c1" already exists')
    r = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=dump(pod("c2", ns)))
    assert r.stdout == "pod/c2 created (server dry run)\n"
    assert cluster.kubectl("get", "pod", "c2", "-n", ns, check=False).returncode == 1
    got = json.loads(cluster.kubectl("get", "pod", "c1", "-n", ns, "-o", "json").stdout)
    # server-side defaults and metadata
    assert got["metadata"]["uid"] and got["metadata"]["resourceVersion"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", got["metadata"]["creationTimestamp"])
    assert got["spec"]["restartPolicy"] == "Always"
    assert got["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert got["spec"]["serviceAccountName"] == "default"
    assert got["status"]["phase"] == "Pending"


# ---------------------------------------------------------------------------------------------
# get


@pytest.fixture
def three_pods(cluster, ns) -> str:
    pods = [pod("c", ns, {"app": "shop", "tier": "be", "rank": "2"}),
            pod("a", ns, {"app": "shop", "tier": "fe", "rank": "3"}, image="nginx:1.25"),
            pod("b", ns, {"app": "blog", "rank": "1"})]
    r = cluster.kubectl("create", "-f", "-", input=dump(*pods))
    assert r.stdout == "pod/c created\npod/a created\npod/b created\n"
    return ns


def test_get_table_and_wide(cluster, three_pods):
    ns = three_pods
    rows = table(cluster.kubectl("get", "pods", "-n", ns).stdout)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:4] for r in rows[1:]] == [["a", "0/1", "Pending", "0"], ["b", "0/1", "Pending", "0"],
                                         ["c", "0/1", "Pending", "0"]]
    assert all(re.fullmatch(r"\d+s", r[4]) for r in rows[1:])
    rows = table(cluster.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                       "READINESS", "GATES"]
    assert rows[1][:4] + rows[1][5:] == ["a", "0/1", "Pending", "0", "<none>", "<none>", "<none>", "<none>"]
    rows = table(cluster.kubectl("get", "pods", "-n", ns, "--no-headers").stdout)
    assert [r[0] for r in rows] == ["a", "b", "c"]
    rows = table(cluster.kubectl("get", "pods", "-n", ns, "-L", "tier", "--show-labels").stdout)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "TIER", "LABELS"]
    assert rows[1][0] == "a" and rows[1][5:] == ["fe", "app=shop,rank=3,tier=fe"]
    r = cluster.kubectl("get", "pod", "nope", "-n", ns, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'


def test_get_deployment_table(cluster, ns):
    cluster.kubectl("apply", "-f", "-", input=dump(deployment("web", ns, sidecar=True)))
    r = cluster.kubectl("get", "nodes")
    assert (r.stdout, r.stderr.strip()) == ("", "No resources found")
    # the deployment controller makes a ReplicaSet, the ReplicaSet controller two pods; with no
    # nodes nothing is ever ready: 2 up to date, 0 available, 2 unavailable
    poll_jp(cluster, "deploy/web", ns, "{.status.observedGeneration} {.status.replicas} {.status.updatedReplicas} "
                                       "{.status.unavailableReplicas}", "1 2 2 2")
    rows = table(cluster.kubectl("get", "deployments", "-n", ns).stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:4] == ["web", "0/2", "2", "0"] and len(rows) == 2
    rows = table(cluster.kubectl("get", "deploy", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows[1][:4] + rows[1][5:] == ["web", "0/2", "2", "0", "main,sidecar", "nginx:1.25,busybox:1.36",
                                         "app=web"]
    # one ReplicaSet, named after the deployment and its pod-template-hash, owned by the deployment
    rs = jp(cluster, "replicasets", ns, "{.items[*].metadata.name}")
    assert re.fullmatch(rf"web-{SAFE}{{1,10}}", rs), rs
    pth = rs.removeprefix("web-")
    assert jp(cluster, f"rs/{rs}", ns, "{.metadata.labels.pod-template-hash} {.spec.replicas} "
                                       "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} "
                                       "{.metadata.ownerReferences[0].controller}") == f"{pth} 2 Deployment/web true"
    rows = table(cluster.kubectl("get", "rs", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows[1][:4] + rows[1][5:] == [rs, "2", "2", "0", "main,sidecar", "nginx:1.25,busybox:1.36",
                                         f"app=web,pod-template-hash={pth}"]
    assert len(rows) == 2
    # two pods of the ReplicaSet, Pending on no node, each marked unschedulable by the scheduler
    r = cluster.kubectl("wait", "--for=condition=PodScheduled=False", "pods", "-l", "app=web", "-n", ns,
                        "--timeout=15s")
    assert len(lines(r.stdout)) == 2, r.stdout
    rows = table(cluster.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout)
    assert len(rows) == 3
    for row in rows[1:]:
        assert re.fullmatch(rf"{rs}-{SAFE}{{5}}", row[0]), row
        assert row[1:4] + row[5:] == ["0/2", "Pending", "0", "<none>", "<none>", "<none>", "<none>"]
    got = jp(cluster, "pods", ns, "{range .items[*]}{.metadata.ownerReferences[0].kind}/"
                                  "{.metadata.ownerReferences[0].name} {.metadata.labels.pod-template-hash} "
                                  "{.status.conditions[*].type}={.status.conditions[*].status} "
                                  "{.status.conditions[*].reason}{'\\n'}{end}")
    assert got == f"ReplicaSet/{rs} {pth} PodScheduled=False Unschedulable\n" * 2
    rows = table(cluster.kubectl("get", "ns", ns).stdout)
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    assert rows[1][:2] == [ns, "Active"]


def test_get_output_formats(cluster, three_pods):
    ns = three_pods
    doc = yaml.safe_load(cluster.kubectl("get", "pod", "a", "-n", ns, "-o", "yaml").stdout)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "Pod")
    assert doc["metadata"]["name"] == "a" and doc["metadata"]["namespace"] == ns
    assert doc["metadata"]["labels"] == {"app": "shop", "tier": "fe", "rank": "3"}
    assert doc["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert doc["status"]["phase"] == "Pending"
    lst = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)
    assert (lst["apiVersion"], lst["kind"]) == ("v1", "List")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a", "b", "c"]
    assert all(i["kind"] == "Pod" and i["apiVersion"] == "v1" for i in lst["items"])
    lst = yaml.safe_load(cluster.kubectl("get", "pods", "-n", ns, "-o", "yaml").stdout)
    assert len(lst["items"]) == 3
    assert cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout == "pod/a\npod/b\npod/c\n"
    assert jp(cluster, "pods", ns, "{.items[*].metadata.name}") == "a b c"
    assert jp(cluster, "pod/c", ns, "{.spec.containers[0].image}|{.metadata.labels.tier}") == "busybox:1.36|be"
    r = cluster.kubectl("get", "pods", "-n", ns, "-o",
                        "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{'\\n'}{end}")
    assert r.stdout == "a=Pending\nb=Pending\nc=Pending\n"
    r = cluster.kubectl("get", "pods", "-n", ns, "-o", "custom-columns=N:.metadata.name,IMG:.spec.containers[0].image")
    assert table(r.stdout) == [["N", "IMG"], ["a", "nginx:1.25"], ["b", "busybox:1.36"], ["c", "busybox:1.36"]]


def test_get_selectors_and_sorting(cluster, three_pods):
    ns = three_pods

    def names(*args: str) -> list[str]:
        r = cluster.kubectl("get", "pods", "-n", ns, "-o", "name", *args)
        return [n.removeprefix("pod/") for n in r.stdout.split()]

    assert names("-l", "app=shop") == ["a", "c"]
    assert names("-l", "app=shop,tier=fe") == ["a"]
    assert names("-l", "tier in (fe,be)") == ["a", "c"]
    assert names("-l", "!tier") == ["b"]
    assert names("-l", "app!=shop") == ["b"]
    assert names("--field-selector", "metadata.name=b") == ["b"]
    assert names("--field-selector", "metadata.name!=b") == ["a", "c"]
    assert names("--field-selector", "status.phase=Pending", "-l", "app=shop") == ["a", "c"]
    r = cluster.kubectl("get", "pods", "-n", ns, "--field-selector", "status.phase=Running", check=False)
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.strip() == f"No resources found in {ns} namespace."
    r = cluster.kubectl("get", "pods", "-n", ns, "--field-selector", "spec.bogus=x", check=False)
    assert r.returncode == 1
    assert "field label not supported: spec.bogus" in r.stderr
    r = cluster.kubectl("get", "pods", "-n", ns, "-l", "app in (", check=False)
    assert r.returncode == 1
    assert names("--sort-by=.metadata.name") == ["a", "b", "c"]
    assert names("--sort-by=.metadata.labels.rank") == ["b", "c", "a"]
    rows = table(cluster.kubectl("get", "pods", "-n", ns, "--sort-by=.metadata.labels.rank").stdout)
    assert rows[0][0] == "NAME" and [r[0] for r in rows[1:]] == ["b", "c", "a"]
    # chunked list: limit + continue
    assert names("--chunk-size=1") == ["a", "b", "c"]


def test_get_all_namespaces(cluster, three_pods):
    ns = three_pods
    rows = table(cluster.kubectl("get", "pods", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    mine = [r[:4] for r in rows[1:] if r[0] == ns]
    assert mine == [[ns, "a", "0/1", "Pending"], [ns, "b", "0/1", "Pending"], [ns, "c", "0/1", "Pending"]]
    r = cluster.kubectl("get", "pods", "-A", "-l", "app=blog", "-o",
                        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}")
    assert f"{ns}/b" in r.stdout.split()
    rows = table(cluster.kubectl("get", "ns").stdout)
    assert {"default", "kube-system", "kube-public", "kube-node-lease", ns} <= {r[0] for r in rows[1:]}


def test_get_watch(cluster, ns, tmp_path):
    events_out, plain_out = tmp_path / "events.txt", tmp_path / "plain.txt"
    w_events = popen(cluster, events_out, "get", "pods", "-n", ns, "-w", "--output-watch-events")
    w_plain = popen(cluster, plain_out, "get", "pods", "-n", ns, "-w")
    try:
        time.sleep(1.0)  # both watches listed the (empty) namespace and are waiting
        cluster.kubectl("create", "-f", "-", input=dump(pod("w1", ns, {"step": "one"})))
        wait_output(events_out, r"^ADDED\s+w1\s")
        # with no nodes the scheduler writes PodScheduled=False (Unschedulable): a MODIFIED event of its own
        cluster.kubectl("wait", "--for=condition=PodScheduled=False", "pod/w1", "-n", ns, "--timeout=15s")
        wait_output(events_out, r"^MODIFIED\s+w1\s")
        wait_output(plain_out, r"^w1\s", count=2)
        cluster.kubectl("label", "pod", "w1", "-n", ns, "step=two", "--overwrite")
        wait_output(events_out, r"^MODIFIED\s+w1\s", count=2)
        cluster.kubectl("delete", "pod", "w1", "-n", ns)
        wait_output(events_out, r"^DELETED\s+w1\s")
        cluster.kubectl("create", "-f", "-", input=dump(pod("w2", ns)))
        cluster.kubectl("wait", "--for=condition=PodScheduled=False", "pod/w2", "-n", ns, "--timeout=15s")
        ev = wait_output(events_out, r"^MODIFIED\s+w2\s")
        plain = wait_output(plain_out, r"^w2\s", count=2)
        assert w_events.poll() is None and w_plain.poll() is None, "watch ended early"
    finally:
        stop(w_events)
        stop(w_plain)
    rows = table(ev)
    assert rows[0] == ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:5] for r in rows[1:]] == [["ADDED", "w1", "0/1", "Pending", "0"],
                                         ["MODIFIED", "w1", "0/1", "Pending", "0"],  # the scheduler
                                         ["MODIFIED", "w1", "0/1", "Pending", "0"],  # the label
                                         ["DELETED", "w1", "0/1", "Pending", "0"],
                                         ["ADDED", "w2", "0/1", "Pending", "0"],
                                         ["MODIFIED", "w2", "0/1", "Pending", "0"]]
    rows = table(plain)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:4] for r in rows[1:]] == [["w1", "0/1", "Pending", "0"]] * 4 + [["w2", "0/1", "Pending", "0"]] * 2


# ---------------------------------------------------------------------------------------------
# describe


def test_describe(cluster, ns):
    cluster.kubectl("apply", "-f", "-", input=dump(deployment("web", ns)))
    # wait for the controllers to settle: two pods created, none of them available (no nodes)
    poll_jp(cluster, "deploy/web", ns,
            "{.status.observedGeneration} {.status.replicas} {.status.updatedReplicas} {.status.unavailableReplicas} "
            "{.status.conditions[?(@.type=='Progressing')].reason} "
            "{.status.conditions[?(@.type=='Available')].status}/{.status.conditions[?(@.type=='Available')].reason}",
            "1 2 2 2 ReplicaSetUpdated False/MinimumReplicasUnavailable")
    rs = jp(cluster, "replicasets", ns, "{.items[*].metadata.name}")
    assert re.fullmatch(rf"web-{SAFE}{{1,10}}", rs), rs
    poll_jp(cluster, "events", ns, "{.items[?(@.reason=='ScalingReplicaSet')].message}",
            f"Scaled up replica set {rs} from 0 to 2")
    out = cluster.kubectl("describe", "deployment", "web", "-n", ns).stdout
    for rx in (r"^Name:\s+web$", rf"^Namespace:\s+{ns}$", r"^Labels:\s+app=web$", r"^Selector:\s+app=web$",
               r"^Annotations:\s+deployment\.kubernetes\.io/revision: 1$",
               r"^Replicas:\s+2 desired \| 2 updated \| 2 total \| 0 available \| 2 unavailable$",
               r"^StrategyType:\s+RollingUpdate$",
               r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$",
               r"^Pod Template:$", r"^\s+Image:\s+nginx:1\.25$", r"^\s+Port:\s+80/TCP$",
               r"^Conditions:\n\s+Type\s+Status\s+Reason\n\s+----\s+------\s+------\n"
               r"\s+Progressing\s+True\s+ReplicaSetUpdated\n\s+Available\s+False\s+MinimumReplicasUnavailable$",
               r"^OldReplicaSets:\s+<none>$", rf"^NewReplicaSet:\s+{rs} \(2/2 replicas created\)$",
               rf"^Events:\n(.*\n){{2}}\s+Normal\s+ScalingReplicaSet\s+\S+\s+\S+\s+Scaled up replica set {rs} from 0 to 2\n\Z"):
        assert re.search(rx, out, re.M), (rx, out)
    cluster.kubectl("create", "-f", "-", input=dump(pod("p1", ns, {"app": "x"})))
    # no node fits: the scheduler marks the pod unschedulable and records a FailedScheduling event
    cluster.kubectl("wait", "--for=condition=PodScheduled=False", "pod/p1", "-n", ns, "--timeout=15s")
    poll_jp(cluster, "events", ns, "{.items[?(@.involvedObject.name=='p1')].reason}", "FailedScheduling")
    out = cluster.kubectl("describe", "pod", "p1", "-n", ns).stdout
    for rx in (r"^Name:\s+p1$", rf"^Namespace:\s+{ns}$", r"^Service Account:\s+default$", r"^Node:\s+<none>$",
               r"^Labels:\s+app=x$", r"^Annotations:\s+<none>$", r"^Status:\s+Pending$", r"^Containers:$",
               r"^  main:$", r"^\s+Image:\s+busybox:1\.36$", r"^\s+Command:$", r"^QoS Class:\s+BestEffort$",
               r"^Conditions:\n\s+Type\s+Status\n\s+PodScheduled\s+False\s*$",
               r"^Events:\n(.*\n){2}\s+Warning\s+FailedScheduling\s+\S+\s+default-scheduler\s+"
               r"(0/0 nodes are available: )?no nodes available to schedule pods\.?\n\Z"):
        assert re.search(rx, out, re.M), (rx, out)
    r = cluster.kubectl("describe", "pod", "ghost", "-n", ns, check=False)
    assert r.returncode == 1 and 'pods "ghost" not found' in r.stderr


# ---------------------------------------------------------------------------------------------
# label / annotate / patch / scale / replace


def test_label_annotate(cluster, ns):
    cluster.kubectl("create", "-f", "-", input=dump(pod("p", ns, {"app": "x"}), pod("q", ns)))
    assert cluster.kubectl("label", "pod", "p", "-n", ns, "env=prod").stdout == "pod/p labeled\n"
    r = cluster.kubectl("label", "pod", "p", "-n", ns, "env=dev", check=False)
    assert r.returncode == 1
    assert "'env' already has a value (prod), and --overwrite is false" in r.stderr
    assert cluster.kubectl("label", "pod", "p", "-n", ns, "env=dev", "--overwrite").stdout == "pod/p labeled\n"
    assert jp(cluster, "pod/p", ns, "{.metadata.labels}") == '{"app":"x","env":"dev"}'
    assert cluster.kubectl("label", "pod", "p", "-n", ns, "env-").stdout == "pod/p unlabeled\n"
    assert jp(cluster, "pod/p", ns, "{.metadata.labels}") == '{"app":"x"}'
    r = cluster.kubectl("label", "pods", "--all", "-n", ns, "team=blue")
    assert r.stdout == "pod/p labeled\npod/q labeled\n"
    assert cluster.kubectl("get", "pods", "-n", ns, "-l", "team=blue", "-o", "name").stdout == "pod/p\npod/q\n"

    assert cluster.kubectl("annotate", "pod", "p", "-n", ns, "note=hello world").stdout == "pod/p annotated\n"
    assert jp(cluster, "pod/p", ns, "{.metadata.annotations.note}") == "hello world"
    r = cluster.kubectl("annotate", "pod", "p", "-n", ns, "note=x", check=False)
    assert r.returncode == 1 and "--overwrite is false" in r.stderr
    cluster.kubectl("annotate", "pod", "p", "-n", ns, "note=bye", "--overwrite")
    assert jp(cluster, "pod/p", ns, "{.metadata.annotations.note}") == "bye"
    assert cluster.kubectl("annotate", "pod", "p", "-n", ns, "note-").stdout == "pod/p annotated\n"
    assert jp(cluster, "pod/p", ns, "{.metadata.annotations}") in ("", "{}")
    # label with a stale --resource-version is a conflict
    r = cluster.kubectl("label", "pod", "q", "-n", ns, "x=y", "--resource-version=1", check=False)
    assert r.returncode == 1
    assert "Conflict" in r.stderr and "the object has been modified" in r.stderr


def test_patch_three_types(cluster, ns):
    cluster.kubectl("apply", "-f", "-", input=dump(deployment("web", ns, sidecar=True)))
    images = "{.spec.template.spec.containers[*].name}={.spec.template.spec.containers[*].image}"
    # strategic merge: containers merge by name
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}}
    r = cluster.kubectl("patch", "deployment", "web", "-n", ns, "-p", json.dumps(smp))
    assert r.stdout == "deployment.apps/web patched\n"
    assert jp(cluster, "deploy/web", ns, images) == "main sidecar=nginx:1.26 busybox:1.36"
    assert jp(cluster, "deploy/web", ns, "{.spec.template.spec.containers[0].ports[0].containerPort}") == "80"
    r = cluster.kubectl("patch", "deployment", "web", "-n", ns, "-p", json.dumps(smp))
    assert r.stdout == "deployment.apps/web patched (no change)\n"
    # strategic merge directive: $patch: delete
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    cluster.kubectl("patch", "deployment", "web", "-n", ns, "--type=strategic", "-p", json.dumps(smp))
    assert jp(cluster, "deploy/web", ns, images) == "main=nginx:1.26"
    # merge patch: maps merge, lists are replaced wholesale, null deletes
    mp = {"metadata": {"labels": {"tier": "web"}},
          "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "nginx:1.27"}]}}}}
    r = cluster.kubectl("patch", "deploy", "web", "-n", ns, "--type=merge", "-p", json.dumps(mp))
    assert r.stdout == "deployment.apps/web patched\n"
    assert jp(cluster, "deploy/web", ns, "{.metadata.labels}") == '{"app":"web","tier":"web"}'
    assert jp(cluster, "deploy/web", ns, images) == "only=nginx:1.27"
    cluster.kubectl("patch", "deploy", "web", "-n", ns, "--type=merge", "-p", '{"metadata":{"labels":{"tier":null}}}')
    assert jp(cluster, "deploy/web", ns, "{.metadata.labels}") == '{"app":"web"}'
    # json patch
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 5},
           {"op": "add", "path": "/metadata/labels/extra", "value": "yes"}]
    r = cluster.kubectl("patch", "deploy", "web", "-n", ns, "--type=json", "-p", json.dumps(ops))
    assert r.stdout == "deployment.apps/web patched\n"
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas} {.metadata.labels.extra}") == "5 yes"
    r = cluster.kubectl("patch", "deploy", "web", "-n", ns, "--type=json",
                        "-p", '[{"op":"test","path":"/spec/replicas","value":99},'
                              '{"op":"replace","path":"/spec/replicas","value":1}]', check=False)
    assert r.returncode == 1
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas}") == "5"
    # generation moved with each spec change: create(1) smp(2) delete(3) merge(4) json(5)
    assert jp(cluster, "deploy/web", ns, "{.metadata.generation}") == "5"
    # a patch that breaks validation is rejected
    r = cluster.kubectl("patch", "deploy", "web", "-n", ns, "--type=merge",
                        "-p", '{"spec":{"replicas":-1}}', check=False)
    assert r.returncode == 1
    assert "spec.replicas: Invalid value: -1" in r.stderr
    r = cluster.kubectl("patch", "deploy", "nope", "-n", ns, "-p", "{}", check=False)
    assert r.returncode == 1 and 'deployments.apps "nope" not found' in r.stderr


def test_scale(cluster, ns):
    cluster.kubectl("apply", "-f", "-", input=dump(deployment("web", ns, replicas=2)))
    r = cluster.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=4")
    assert r.stdout == "deployment.apps/web scaled\n"
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas}") == "4"
    r = cluster.kubectl("scale", "deployment/web", "-n", ns, "--current-replicas=3", "--replicas=5", check=False)
    assert r.returncode == 1
    assert "Expected replicas to be 3, was 4" in r.stderr
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas}") == "4"
    r = cluster.kubectl("scale", "deployment/web", "-n", ns, "--current-replicas=4", "--replicas=5")
    assert r.stdout == "deployment.apps/web scaled\n"
    scale = json.loads(cluster.kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale").stdout)
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["metadata"]["name"] == "web" and scale["metadata"]["namespace"] == ns
    assert scale["spec"] == {"replicas": 5}
    assert scale["status"]["selector"] == "app=web"
    r = cluster.kubectl("scale", "deployment/web", "-n", ns, "--replicas=0")
    assert r.stdout == "deployment.apps/web scaled\n"
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas}") == "0"


def test_replace_and_conflict(cluster, ns):
    cluster.kubectl("apply", "-f", "-", input=dump(configmap("rc", ns, {"v": "1"})))
    saved = yaml.safe_load(cluster.kubectl("get", "cm", "rc", "-n", ns, "-o", "yaml").stdout)
    fresh = dict(saved, data={"v": "2"})
    r = cluster.kubectl("replace", "-f", "-", input=dump(fresh))
    assert r.stdout == "configmap/rc replaced\n"
    assert jp(cluster, "cm/rc", ns, "{.data.v}") == "2"
    stale = dict(saved, data={"v": "stale"})
    r = cluster.kubectl("replace", "-f", "-", input=dump(stale), check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on '
        'configmaps "rc": the object has been modified; please apply your changes to the latest version '
        'and try again')
    assert jp(cluster, "cm/rc", ns, "{.data.v}") == "2"
    # without a resourceVersion, replace is unconditional
    del stale["metadata"]["resourceVersion"]
    assert cluster.kubectl("replace", "-f", "-", input=dump(stale)).stdout == "configmap/rc replaced\n"
    assert jp(cluster, "cm/rc", ns, "{.data.v}") == "stale"
    r = cluster.kubectl("replace", "-f", "-", input=dump(configmap("absent", ns, {})), check=False)
    assert r.returncode == 1 and 'configmaps "absent" not found' in r.stderr
    # immutable fields: a pod's containers cannot be renamed
    cluster.kubectl("create", "-f", "-", input=dump(pod("imm", ns)))
    p = yaml.safe_load(cluster.kubectl("get", "pod", "imm", "-n", ns, "-o", "yaml").stdout)
    p["spec"]["containers"][0]["image"] = "busybox:1.37"
    assert cluster.kubectl("replace", "-f", "-", input=dump(p)).stdout == "pod/imm replaced\n"
    p = yaml.safe_load(cluster.kubectl("get", "pod", "imm", "-n", ns, "-o", "yaml").stdout)
    p["spec"]["restartPolicy"] = "Never"
    r = cluster.kubectl("replace", "-f", "-", input=dump(p), check=False)
    assert r.returncode == 1
    assert 'The Pod "imm" is invalid' in r.stderr and "spec: Forbidden: pod updates may not change fields" in r.stderr


# ---------------------------------------------------------------------------------------------
# delete / wait


def test_delete(cluster, ns):
    cluster.kubectl("create", "-f", "-", input=dump(pod("d1", ns), pod("d2", ns, {"k": "v"}), pod("d3", ns),
                                                    configmap("c1", ns, {})))
    r = cluster.kubectl("delete", "pod", "d1", "-n", ns)
    assert r.stdout == f'pod "d1" deleted from {ns} namespace\n'
    r = cluster.kubectl("get", "pod", "d1", "-n", ns, check=False)
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): pods "d1" not found'
    r = cluster.kubectl("delete", "pod", "d1", "-n", ns, check=False)
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): pods "d1" not found'
    assert cluster.kubectl("delete", "pod", "d1", "-n", ns, "--ignore-not-found").stdout == ""
    r = cluster.kubectl("delete", "pods", "-n", ns, "-l", "k=v")
    assert r.stdout == f'pod "d2" deleted from {ns} namespace\n'
    cluster.kubectl("create", "-f", "-", input=dump(pod("d4", ns)))
    r = cluster.kubectl("delete", "pods", "--all", "-n", ns)
    assert r.stdout == f'pod "d3" deleted from {ns} namespace\npod "d4" deleted from {ns} namespace\n'
    r = cluster.kubectl("get", "pods", "-n", ns)
    assert r.stdout == "" and r.stderr.strip() == f"No resources found in {ns} namespace."
    assert cluster.kubectl("get", "cm", "-n", ns, "-o", "name").stdout == "configmap/c1\n"
    r = cluster.kubectl("delete", "-f", "-", input=dump(configmap("c1", ns, {})))
    assert r.stdout == f'configmap "c1" deleted from {ns} namespace\n'
    # a deleted name can be reused at once, with a fresh uid
    cluster.kubectl("create", "-f", "-", input=dump(pod("d1", ns)))
    assert cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout == "pod/d1\n"


def test_delete_namespace(cluster, tmp_path):
    name = "kc-doomed"
    r = cluster.kubectl("apply", "-f", "-", input=dump(namespace(name), configmap("cm", name, {"a": "b"}),
                                                       deployment("web", name), pod("p", name)))
    assert r.stdout == (f"namespace/{name} created\nconfigmap/cm created\ndeployment.apps/web created\n"
                        "pod/p created\n")
    r = cluster.kubectl("delete", "namespace", name, "--timeout=15s")
    assert r.stdout == f'namespace "{name}" deleted\n'
    deadline = time.time() + 10
    while True:
        r = cluster.kubectl("get", "ns", name, check=False)
        if r.returncode != 0 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.returncode == 1 and r.stderr.strip() == f'Error from server (NotFound): namespaces "{name}" not found'
    for res in ("configmaps", "pods"):
        got = json.loads(cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{name}/{res}").stdout)
        assert got["items"] == [], res
    got = json.loads(cluster.kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{name}/deployments").stdout)
    assert got["items"] == []
    r = cluster.kubectl("get", "cm,deploy,pods", "-n", name)
    assert r.stdout == "" and r.stderr.strip() == f"No resources found in {name} namespace."
    # the name is free again
    r = cluster.kubectl("apply", "-f", "-", input=dump(namespace(name)))
    assert r.stdout == f"namespace/{name} created\n"
    assert cluster.kubectl("get", "cm", "-n", name, "-o", "name").stdout == ""


def test_terminating_namespace_refuses_content(cluster):
    name = "kc-terminating"
    fin = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "held", "namespace": name, "finalizers": ["example.com/hold"]}}
    cluster.kubectl("apply", "-f", "-", input=dump(namespace(name), fin))
    cluster.kubectl("delete", "namespace", name, "--wait=false")
    assert jp(cluster, f"ns/{name}", "default", "{.status.phase}") == "Terminating"
    r = cluster.kubectl("create", "-f", "-", input=dump(configmap("late", name, {})), check=False)
    assert r.returncode == 1
    assert "because it is being terminated" in r.stderr
    # release the finalizer: the namespace goes away
    cluster.kubectl("patch", "cm", "held", "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    cluster.kubectl("wait", "--for=delete", f"namespace/{name}", "--timeout=15s")
    assert cluster.kubectl("get", "ns", name, check=False).returncode == 1


def test_wait(cluster, ns, tmp_path):
    cluster.kubectl("create", "-f", "-", input=dump(pod("a", ns), pod("b", ns)))
    r = cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Pending", "pod/a", "-n", ns, "--timeout=10s")
    assert r.stdout == "pod/a condition met\n"
    out_label, out_del = tmp_path / "label.txt", tmp_path / "del.txt"
    w_label = popen(cluster, out_label, "wait", "--for=jsonpath={.metadata.labels.ready}=yes", "pod/a",
                    "-n", ns, "--timeout=20s")
    w_del = popen(cluster, out_del, "wait", "--for=delete", "pod/b", "-n", ns, "--timeout=20s")
    try:
        time.sleep(1.0)
        assert w_label.poll() is None and w_del.poll() is None, (out_label.read_text(), out_del.read_text())
        cluster.kubectl("label", "pod", "a", "-n", ns, "ready=yes")
        cluster.kubectl("delete", "pod", "b", "-n", ns, "--wait=false")
        assert w_label.wait(15) == 0, out_label.read_text()
        assert w_del.wait(15) == 0, out_del.read_text()
    finally:
        stop(w_label)
        stop(w_del)
    assert out_label.read_text() == "pod/a condition met\n"
    assert out_del.read_text() == "pod/b condition met\n"
    # already gone: immediate success
    r = cluster.kubectl("wait", "--for=delete", "pod/b", "-n", ns, "--timeout=5s")
    assert r.returncode == 0
    t0 = time.time()
    r = cluster.kubectl("wait", "--for=condition=Ready", "pod/a", "-n", ns, "--timeout=1s", check=False)
    assert r.returncode == 1
    assert "timed out waiting for the condition on pods/a" in r.stderr
    assert time.time() - t0 < 10


# ---------------------------------------------------------------------------------------------
# explain / diff / edit


def test_explain(cluster):
    out = cluster.kubectl("explain", "pods.spec.containers").stdout
    assert re.search(r"^KIND:\s+Pod$", out, re.M)
    assert re.search(r"^VERSION:\s+v1$", out, re.M)
    assert re.search(r"^FIELD: containers <\[\]Container>$", out, re.M)
    assert re.search(r"^DESCRIPTION:$", out, re.M) and re.search(r"^FIELDS:$", out, re.M)
    assert re.search(r"^  image\t<string>$", out, re.M)
    assert re.search(r"^  name\t<string> -required-$", out, re.M)
    assert re.search(r"^  ports\t<\[\]ContainerPort>$", out, re.M)
    out = cluster.kubectl("explain", "deployment.spec.replicas").stdout
    assert re.search(r"^GROUP:\s+apps$", out, re.M)
    assert re.search(r"^KIND:\s+Deployment$", out, re.M)
    assert re.search(r"^FIELD: replicas <integer>$", out, re.M)
    r = cluster.kubectl("explain", "pods.spec.bogus", check=False)
    assert r.returncode == 1 and 'field "bogus" does not exist' in r.stderr


def test_diff(cluster, ns):
    dep = deployment("web", ns, replicas=2)
    cluster.kubectl("apply", "-f", "-", input=dump(dep))
    r = cluster.kubectl("diff", "-f", "-", input=dump(dep), check=False)
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    dep["spec"]["replicas"] = 3
    r = cluster.kubectl("diff", "-f", "-", input=dump(dep), check=False)
    assert r.returncode == 1, r.stderr
    assert re.search(r"^-  replicas: 2$", r.stdout, re.M), r.stdout
    assert re.search(r"^\+  replicas: 3$", r.stdout, re.M), r.stdout
    assert re.search(r"^-  generation: 1$", r.stdout, re.M), r.stdout
    assert re.search(r"^\+  generation: 2$", r.stdout, re.M), r.stdout
    # a diff is a dry run: nothing changed on the server
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas} {.metadata.generation}") == "2 1"
    # a new object diffs as all-added
    r = cluster.kubectl("diff", "-f", "-", input=dump(configmap("newcm", ns, {"k": "v"})), check=False)
    assert r.returncode == 1
    assert re.search(r"^\+  name: newcm$", r.stdout, re.M) and re.search(r"^\+  k: v$", r.stdout, re.M)
    assert cluster.kubectl("get", "cm", "newcm", "-n", ns, check=False).returncode == 1
    # kubectl diff sends no fieldValidation: the server default (Warn) drops the unknown field and warns
    dep["spec"]["bogusField"] = 1
    r = cluster.kubectl("diff", "-f", "-", input=dump(dep), check=False)
    assert r.returncode == 1
    assert re.search(r"^\+  replicas: 3$", r.stdout, re.M), r.stdout
    assert ("bogusField" in r.stdout, 'Warning: unknown field "spec.bogusField"' in r.stderr) == (False, True), r


def test_edit(cluster, ns, tmp_path):
    cluster.kubectl("apply", "-f", "-", input=dump(deployment("web", ns, replicas=2)))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i -e 's/^  replicas: 2$/  replicas: 6/' \"$1\"\n")
    editor.chmod(0o755)
    r = cluster.kubectl("edit", "deployment/web", "-n", ns, env={"KUBE_EDITOR": str(editor), "EDITOR": str(editor)})
    assert r.stdout == "deployment.apps/web edited\n", r.stderr
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas}") == "6"
    r = cluster.kubectl("edit", "deployment/web", "-n", ns, env={"KUBE_EDITOR": "true", "EDITOR": "true"})
    assert r.stderr.strip() == "Edit cancelled, no changes made."
    # an edit that the server rejects: kubectl reports the error and exits non-zero
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/sh\nsed -i -e 's/^  replicas: 6$/  replicas: -3/' \"$1\"\n")
    bad.chmod(0o755)
    r = cluster.kubectl("edit", "deployment/web", "-n", ns, env={"KUBE_EDITOR": str(bad), "EDITOR": str(bad)},
                        check=False)
    assert r.returncode == 1
    assert 'error: deployments.apps "web" is invalid' in r.stderr
    # kubectl keeps the rejected edit, with the server's causes as a comment at the top
    m = re.search(r'A copy of your changes has been stored to "([^"]+)"', r.stderr)
    assert m, r.stderr
    saved = Path(m.group(1)).read_text()
    os.unlink(m.group(1))
    assert re.search(r"^# \* spec\.replicas: Invalid value: -3: must be greater than or equal to 0$", saved, re.M), saved
    assert jp(cluster, "deploy/web", ns, "{.spec.replicas}") == "6"


# ---------------------------------------------------------------------------------------------
# bad input


def test_invalid_names(cluster, ns):
    r = cluster.kubectl("create", "-f", "-", input=dump(configmap("Bad_Name", ns, {})), check=False)
    assert r.returncode == 1
    assert 'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ' \
           "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters" in r.stderr
    r = cluster.kubectl("apply", "-f", "-", input=dump(namespace("Bad.NS")), check=False)
    assert r.returncode == 1
    assert 'The Namespace "Bad.NS" is invalid: metadata.name: Invalid value: "Bad.NS"' in r.stderr
    assert "RFC 1123 label" in r.stderr
    r = cluster.kubectl("create", "-f", "-", input=dump(configmap("x" * 254, ns, {})), check=False)
    assert r.returncode == 1 and "must be no more than 253 characters" in r.stderr


def test_malformed_yaml(cluster, ns):
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: {ns}\ndata: [unclosed\n"
    r = cluster.kubectl("apply", "-f", "-", input=text, check=False)
    assert r.returncode == 1
    assert "error parsing STDIN" in r.stderr or "error converting YAML to JSON" in r.stderr, r.stderr
    assert cluster.kubectl("get", "cm", "broken", "-n", ns, check=False).returncode == 1
    # data values must be strings: the server cannot decode the body
    r = cluster.kubectl("apply", "-f", "-", input=dump(configmap("typed", ns, {"n": 5})), check=False)
    assert r.returncode == 1
    assert "Error from server (BadRequest)" in r.stderr, r.stderr
    assert cluster.kubectl("get", "cm", "typed", "-n", ns, check=False).returncode == 1


def test_unknown_kind(cluster, ns):
    r = cluster.kubectl("apply", "-f", "-", input=dump({"apiVersion": "v1", "kind": "Gadget",
                                                        "metadata": {"name": "g", "namespace": ns}}), check=False)
    assert r.returncode == 1
    assert 'no matches for kind "Gadget" in version "v1"' in r.stderr


def test_invalid_objects(cluster, ns):
    bad = deployment("bad", ns)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    r = cluster.kubectl("apply", "-f", "-", input=dump(bad), check=False)
    assert r.returncode == 1
    assert 'The Deployment "bad" is invalid' in r.stderr
    assert "spec.template.metadata.labels: Invalid value" in r.stderr
    assert "`selector` does not match template `labels`" in r.stderr
    assert cluster.kubectl("get", "deploy", "bad", "-n", ns, check=False).returncode == 1
    nocont = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty", "namespace": ns},
              "spec": {"containers": []}}
    r = cluster.kubectl("create", "-f", "-", input=dump(nocont), check=False)
    assert r.returncode == 1
    assert 'The Pod "empty" is invalid: spec.containers: Required value' in r.stderr
    noimg = pod("noimg", ns)
    del noimg["spec"]["containers"][0]["image"]
    r = cluster.kubectl("create", "-f", "-", input=dump(noimg), check=False)
    assert r.returncode == 1
    assert "spec.containers[0].image: Required value" in r.stderr
    dup = pod("dup", ns)
    dup["spec"]["containers"].append(dict(dup["spec"]["containers"][0]))
    r = cluster.kubectl("create", "-f", "-", input=dump(dup), check=False)
    assert r.returncode == 1
    assert 'spec.containers[1].name: Duplicate value: "main"' in r.stderr
    neg = deployment("neg", ns, replicas=-1)
    r = cluster.kubectl("apply", "-f", "-", input=dump(neg), check=False)
    assert r.returncode == 1
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in r.stderr
