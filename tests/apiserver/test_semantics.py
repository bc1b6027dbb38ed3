"""API semantics over real HTTP: concurrency, generation, subresources, finalizers, watch, errors."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import orjson
import pytest


def call(cluster, method: str, path: str, body: Any = None, ct: str = "application/json",
         headers: dict | None = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(cluster.url + path, data=data, method=method,
                                 headers={"Content-Type": ct, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and raw[:1] in b"[{" else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw[:1] == b"{" else raw


def ns_create(cluster, name: str) -> None:
    code, body = call(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_sets_server_fields_and_defaults(cluster):
    ns_create(cluster, "sem1")
    code, d = call(cluster, "POST", "/apis/apps/v1/namespaces/sem1/deployments", deployment("web"))
    assert code == 201, d
    meta = d["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    code, again = call(cluster, "POST", "/apis/apps/v1/namespaces/sem1/deployments", deployment("web"))
    assert code == 409 and again["reason"] == "AlreadyExists"
    code, g = call(cluster, "GET", "/apis/apps/v1/namespaces/sem1/deployments/web")
    assert code == 200 and g["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert g["kind"] == "Deployment" and g["apiVersion"] == "apps/v1"


def test_generate_name_and_missing_namespace(cluster):
    ns_create(cluster, "sem2")
    body = {"metadata": {"generateName": "job-"}, "data": {}}
    code, o = call(cluster, "POST", "/api/v1/namespaces/sem2/configmaps", body)
    assert code == 201 and o["metadata"]["name"].startswith("job-") and len(o["metadata"]["name"]) == 9
    code, err = call(cluster, "POST", "/api/v1/namespaces/nope/configmaps", cm("x"))
    assert code == 404 and err["reason"] == "NotFound" and "nope" in err["message"]


def test_generation_bumps_on_spec_change_only_and_status_split(cluster):
    ns_create(cluster, "sem3")
    _, d = call(cluster, "POST", "/apis/apps/v1/namespaces/sem3/deployments", deployment("g"))
    path = "/apis/apps/v1/namespaces/sem3/deployments/g"
    code, d2 = call(cluster, "PATCH", path, {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
    assert code == 200 and d2["metadata"]["generation"] == 1
    assert int(d2["metadata"]["resourceVersion"]) > int(d["metadata"]["resourceVersion"])
    code, d3 = call(cluster, "PATCH", path, {"spec": {"replicas": 3}}, "application/merge-patch+json")
    assert d3["metadata"]["generation"] == 2
    # status writes through the main resource are ignored ...
    code, d4 = call(cluster, "PATCH", path, {"status": {"replicas": 7}}, "application/merge-patch+json")
    assert code == 200 and "replicas" not in d4.get("status", {})
    # ... and spec writes through status are ignored
    code, d5 = call(cluster, "PATCH", path + "/status", {"status": {"replicas": 7}, "spec": {"replicas": 9}},
                    "application/merge-patch+json")
    assert code == 200 and d5["status"]["replicas"] == 7 and d5["spec"]["replicas"] == 3
    assert d5["metadata"]["generation"] == 2


def test_stale_update_conflicts_and_noop_keeps_resource_version(cluster):
    ns_create(cluster, "sem4")
    _, o = call(cluster, "POST", "/api/v1/namespaces/sem4/configmaps", cm("c", a="1"))
    path = "/api/v1/namespaces/sem4/configmaps/c"
    stale = json.loads(json.dumps(o))
    o["data"]["a"] = "2"
    code, o2 = call(cluster, "PUT", path, o)
    assert code == 200 and o2["data"]["a"] == "2"
    stale["data"]["a"] = "3"
    code, err = call(cluster, "PUT", path, stale)
    assert code == 409 and err["reason"] == "Conflict" and "has been modified" in err["message"]
    code, o3 = call(cluster, "PUT", path, o2)
    assert code == 200 and o3["metadata"]["resourceVersion"] == o2["metadata"]["resourceVersion"]


def test_dry_run_writes_nothing(cluster):
    ns_create(cluster, "sem5")
    code, o = call(cluster, "POST", "/api/v1/namespaces/sem5/configmaps?dryRun=All", cm("dry"))
    assert code == 201 and o["metadata"]["name"] == "dry"
    code, _ = call(cluster, "GET", "/api/v1/namespaces/sem5/configmaps/dry")
    assert code == 404


def test_finalizers_hold_deletion_until_removed(cluster):
    ns_create(cluster, "sem6")
    body = cm("f")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    call(cluster, "POST", "/api/v1/namespaces/sem6/configmaps", body)
    path = "/api/v1/namespaces/sem6/configmaps/f"
    code, o = call(cluster, "DELETE", path)
    assert code == 200 and o["metadata"]["deletionTimestamp"]
    code, o = call(cluster, "GET", path)
    assert code == 200 and o["metadata"]["finalizers"] == ["example.com/hold"]
    code, o = call(cluster, "PATCH", path, {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert code == 200
    code, _ = call(cluster, "GET", path)
    assert code == 404


def test_delete_preconditions(cluster):
    ns_create(cluster, "sem7")
    _, o = call(cluster, "POST", "/api/v1/namespaces/sem7/configmaps", cm("p"))
    path = "/api/v1/namespaces/sem7/configmaps/p"
    code, err = call(cluster, "DELETE", path, {"preconditions": {"uid": "wrong"}})
    assert code == 409 and "Precondition failed" in err["message"]
    code, _ = call(cluster, "DELETE", path, {"preconditions": {"uid": o["metadata"]["uid"]}})
    assert code == 200


def test_scale_and_binding_subresources(cluster):
    ns_create(cluster, "sem8")
    call(cluster, "POST", "/apis/apps/v1/namespaces/sem8/deployments", deployment("s", 2))
    code, sc = call(cluster, "GET", "/apis/apps/v1/namespaces/sem8/deployments/s/scale")
    assert code == 200 and sc["kind"] == "Scale" and sc["spec"]["replicas"] == 2 and sc["status"]["selector"] == "app=s"
    code, sc = call(cluster, "PATCH", "/apis/apps/v1/namespaces/sem8/deployments/s/scale",
                    {"spec": {"replicas": 5}}, "application/merge-patch+json")
    assert code == 200 and sc["spec"]["replicas"] == 5
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}], "schedulerName": "test-binds-it"}}
    code, p = call(cluster, "POST", "/api/v1/namespaces/sem8/pods", pod)
    assert code == 201 and p["status"]["phase"] == "Pending" and p["status"]["qosClass"] == "BestEffort"
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}}
    code, st = call(cluster, "POST", "/api/v1/namespaces/sem8/pods/p/binding", binding)
    assert code == 201 and st["status"] == "Success"
    code, p = call(cluster, "GET", "/api/v1/namespaces/sem8/pods/p")
    assert p["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    code, err = call(cluster, "POST", "/api/v1/namespaces/sem8/pods/p/binding", binding)
    assert code == 409
    # a bound pod is deleted gracefully: it stays, marked, until its kubelet confirms
    code, p = call(cluster, "DELETE", "/api/v1/namespaces/sem8/pods/p")
    assert code == 200 and p["metadata"]["deletionGracePeriodSeconds"] == 30
    code, _ = call(cluster, "DELETE", "/api/v1/namespaces/sem8/pods/p", {"gracePeriodSeconds": 0})
    assert code == 200
    assert call(cluster, "GET", "/api/v1/namespaces/sem8/pods/p")[0] == 404


def test_bad_input_gets_clear_status(cluster):
    ns_create(cluster, "sem9")
    code, err = call(cluster, "POST", "/api/v1/namespaces/sem9/configmaps", b"{not json")
    assert code == 400 and err["reason"] == "BadRequest" and "not valid JSON" in err["message"]
    code, err = call(cluster, "POST", "/api/v1/namespaces/sem9/configmaps", b"a: [", ct="application/yaml")
    assert code == 400 and "YAML" in err["message"]
    big = cm("big", blob="x" * (3 * 1024 * 1024 + 10))
    code, err = call(cluster, "POST", "/api/v1/namespaces/sem9/configmaps", big)
    assert code == 413 and err["code"] == 413
    code, err = call(cluster, "POST", "/api/v1/namespaces/sem9/configmaps", cm("Bad_Name"))
    assert code == 422 and err["reason"] == "Invalid" and err["details"]["causes"][0]["field"] == "metadata.name"
    code, err = call(cluster, "POST", "/api/v1/namespaces/sem9/pods", {"apiVersion": "apps/v1", "kind": "Pod"})
    assert code == 400
    code, err = call(cluster, "GET", "/api/v1/namespaces/sem9/configmaps?labelSelector=a%20in%20(")
    assert code == 400
    code, err = call(cluster, "GET", "/api/v1/namespaces/sem9/pods?fieldSelector=spec.bogus%3Dx")
    assert code == 400 and "field label not supported" in err["message"]
    code, err = call(cluster, "PATCH", "/api/v1/namespaces/sem9/configmaps/none", {"data": {}},
                     "application/merge-patch+json")
    assert code == 404
    code, err = call(cluster, "DELETE", "/api/v1/namespaces/default")
    assert code == 403
    code, err = call(cluster, "GET", "/apis/nope/v1/things")
    assert code == 404 and err["kind"] == "Status"


def test_list_selectors_and_pagination(cluster):
    ns_create(cluster, "sem10")
    for i in range(7):
        body = cm(f"c{i}")
        body["metadata"]["labels"] = {"i": str(i), "even": str(i % 2 == 0).lower()}
        call(cluster, "POST", "/api/v1/namespaces/sem10/configmaps", body)
    code, lst = call(cluster, "GET", "/api/v1/namespaces/sem10/configmaps?labelSelector=even%3Dtrue")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["c0", "c2", "c4", "c6"]
    code, lst = call(cluster, "GET", "/api/v1/namespaces/sem10/configmaps?labelSelector=i%20in%20(1,5),even!%3Dtrue")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["c1", "c5"]
    names, cont, pages = [], "", 0
    while True:
        code, lst = call(cluster, "GET", f"/api/v1/namespaces/sem10/configmaps?limit=3&continue={cont}")
        pages += 1
        names += [i["metadata"]["name"] for i in lst["items"]]
        cont = lst["metadata"].get("continue", "")
        if not cont:
            break
        assert lst["metadata"]["remainingItemCount"] == 7 - len(names)
    assert names == [f"c{i}" for i in range(7)] and pages == 3
    code, lst = call(cluster, "GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dsem10,metadata.name%3Dc3")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["c3"]
    assert lst["items"] and lst["metadata"]["resourceVersion"]


async def _read_events(resp: aiohttp.ClientResponse, n: int, timeout: float = 5) -> list[dict]:
    out: list[dict] = []
    buf = b""

    async def go() -> None:
        nonlocal buf
        async for chunk in resp.content.iter_any():
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                out.append(orjson.loads(line))
                if len(out) >= n:
                    return
    await asyncio.wait_for(go(), timeout)
    return out


async def test_watch_from_resource_version_selectors_and_bookmark(cluster):
    ns_create(cluster, "sem11")
    async with aiohttp.ClientSession() as s:
        base = f"{cluster.url}/api/v1/namespaces/sem11/configmaps"
        async with s.post(base, json=cm("w0")) as r:
            rv0 = (await r.json())["metadata"]["resourceVersion"]
        async with s.get(base, params={"watch": "1", "resourceVersion": rv0, "labelSelector": "sel=yes"}) as w:
            body = cm("w1")
            body["metadata"]["labels"] = {"sel": "yes"}
            async with s.post(base, json=body) as r:
                assert r.status == 201
            async with s.post(base, json=cm("w2")) as r:   # not selected
                assert r.status == 201
            async with s.patch(base + "/w1", data=b'{"metadata":{"labels":{"sel":"no"}}}',
                               headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200
            evs = await _read_events(w, 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "w1"), ("DELETED", "w1")]
        # WatchList: initial events then a bookmark marking their end
        params = {"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                  "allowWatchBookmarks": "true"}
        async with s.get(base, params=params) as w:
            evs = await _read_events(w, 4)
        assert [e["type"] for e in evs] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]
        ann = evs[-1]["object"]["metadata"]["annotations"]
        assert ann["k8s.io/initial-events-end"] == "true"
        blueprint = json.loads(base64.b64decode(ann["k8s.io/initial-events-list-blueprint"]))
        assert blueprint["kind"] == "ConfigMapList" and blueprint["items"] == []
        params.pop("resourceVersionMatch")
        async with s.get(base, params=params) as w:
            assert w.status == 422
        # timeoutSeconds closes the stream
        async with s.get(base, params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1"}) as w:
            data = await asyncio.wait_for(w.read(), 5)
        assert data.count(b"\n") == 3


@pytest.mark.parametrize("policy", ["Background", "Orphan"])
def test_delete_propagation_policy_is_recorded(cluster, policy):
    name = f"sem12-{policy.lower()}"
    ns_create(cluster, name)
    call(cluster, "POST", f"/api/v1/namespaces/{name}/configmaps", cm("d"))
    code, o = call(cluster, "DELETE", f"/api/v1/namespaces/{name}/configmaps/d", {"propagationPolicy": policy})
    assert code == 200
    if policy == "Orphan":   # held by the orphan finalizer until the garbage collector handles it
        assert o["metadata"]["finalizers"] == ["orphan"]
    else:
        assert call(cluster, "GET", f"/api/v1/namespaces/{name}/configmaps/d")[0] == 404


def test_events_k8s_io_is_a_view_of_core_events(cluster):
    ns_create(cluster, "sem13")
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
          "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "test/ctl", "reportingInstance": "i1",
          "action": "Testing", "reason": "Tested", "type": "Normal", "note": "hello",
          "regarding": {"kind": "Pod", "namespace": "sem13", "name": "p", "apiVersion": "v1"}}
    code, out = call(cluster, "POST", "/apis/events.k8s.io/v1/namespaces/sem13/events", ev)
    assert code == 201, out
    assert out["note"] == "hello" and out["regarding"]["name"] == "p" and out["apiVersion"] == "events.k8s.io/v1"
    code, core = call(cluster, "GET", "/api/v1/namespaces/sem13/events/e1")
    assert code == 200 and core["message"] == "hello" and core["involvedObject"]["name"] == "p"
    assert core["reportingComponent"] == "test/ctl" and core["apiVersion"] == "v1"
    code, lst = call(cluster, "GET", "/apis/events.k8s.io/v1/namespaces/sem13/events")
    assert lst["kind"] == "EventList" and [i["note"] for i in lst["items"]] == ["hello"]
    code, lst = call(cluster, "GET", "/api/v1/namespaces/sem13/events?fieldSelector=involvedObject.name%3Dp")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["e1"]
    code, out = call(cluster, "PATCH", "/apis/events.k8s.io/v1/namespaces/sem13/events/e1", {"note": "changed"},
                     "application/merge-patch+json")
    assert code == 200 and out["note"] == "changed"
    assert call(cluster, "GET", "/api/v1/namespaces/sem13/events/e1")[1]["message"] == "changed"


async def test_indexed_watch_on_node_name_sees_binding_and_unbinding(cluster):
    ns_create(cluster, "sem14")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ix"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}], "schedulerName": "nobody"}}
    async with aiohttp.ClientSession() as s:
        url = f"{cluster.url}/api/v1/pods"
        params = {"watch": "1", "resourceVersion": "0", "fieldSelector": "spec.nodeName=n-ix"}
        async with s.get(url, params=params) as w, \
                s.get(f"{cluster.url}/api/v1/namespaces/sem14/pods", params={"watch": "1", "resourceVersion": "0"}) as wn:
            async with s.post(f"{cluster.url}/api/v1/namespaces/sem14/pods", json=pod) as r:
                assert r.status == 201
            async with s.post(f"{cluster.url}/api/v1/namespaces/sem14/pods/ix/binding",
                              json={"target": {"kind": "Node", "name": "n-ix"}}) as r:
                assert r.status == 201
            async with s.delete(f"{cluster.url}/api/v1/namespaces/sem14/pods/ix", json={"gracePeriodSeconds": 0}) as r:
                assert r.status == 200
            evs = await _read_events(w, 2)
            nevs = await _read_events(wn, 3)
    assert [(e["type"], e["object"]["spec"].get("nodeName")) for e in evs] == [("ADDED", "n-ix"), ("DELETED", "n-ix")]
    assert [e["type"] for e in nevs] == ["ADDED", "MODIFIED", "DELETED"]


def test_priority_admission(cluster):
    ns_create(cluster, "sem15")
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
          "value": 1000, "preemptionPolicy": "Never"}
    assert call(cluster, "POST", "/apis/scheduling.k8s.io/v1/priorityclasses", pc)[0] == 201

    def pod(name: str, **spec: Any) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "busybox"}], "schedulerName": "none", **spec}}
    code, p = call(cluster, "POST", "/api/v1/namespaces/sem15/pods", pod("a", priorityClassName="high"))
    assert code == 201 and p["spec"]["priority"] == 1000 and p["spec"]["preemptionPolicy"] == "Never"
    code, st = call(cluster, "POST", "/api/v1/namespaces/sem15/pods", pod("b", priorityClassName="nope"))
    assert code == 403 and "no PriorityClass with name nope was found" in st["message"]
    code, p = call(cluster, "POST", "/api/v1/namespaces/sem15/pods",
                   pod("c", priorityClassName="system-node-critical"))
    assert code == 201 and p["spec"]["priority"] == 2000001000
    code, st = call(cluster, "POST", "/api/v1/namespaces/sem15/pods", pod("d", priorityClassName="high", priority=5))
    assert code == 403 and "computed 1000" in st["message"]
    code, p = call(cluster, "POST", "/api/v1/namespaces/sem15/pods", pod("e"))
    assert code == 201 and p["spec"]["priority"] == 0


def _histogram(cluster, name: str, *extra: str) -> dict[str, float]:
    """The buckets (by le) of histogram `name` on /metrics, plus its _count and the `extra` series."""
    code, raw = call(cluster, "GET", "/metrics")
    assert code == 200
    out = {}
    for line in raw.decode().splitlines():
        if line.startswith(name + "_bucket"):
            out[line.split('le="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith((name + "_count ", name + "_sum ", *(e + " " for e in extra))):
            out[line.split(" ")[0]] = float(line.rsplit(" ", 1)[1])
    return out


def _commit_histogram(cluster) -> dict[str, float]:
    return _histogram(cluster, "ketch_store_commit_duration_seconds", "ketch_store_committed_writes_total")


def test_metrics_count_store_commits(cluster):
    """/metrics has the store's commit-time histogram (a slow disk shows there), cumulative buckets."""
    before = _commit_histogram(cluster)
    ns_create(cluster, "metrics1")
    for i in range(5):
        code, body = call(cluster, "POST", "/api/v1/namespaces/metrics1/configmaps", cm(f"c{i}", k="v"))
        assert code == 201, body
    after = _commit_histogram(cluster)
    assert after["ketch_store_committed_writes_total"] - before["ketch_store_committed_writes_total"] >= 6
    assert 1 <= after["+Inf"] - before["+Inf"] <= 6 + 10   # one commit per batch; others may write too
    assert after["ketch_store_commit_duration_seconds_count"] == after["+Inf"]
    buckets = [v for k, v in after.items() if not k.startswith("ketch")]
    assert buckets == sorted(buckets)


def test_metrics_watch_dispatch_latency(cluster):
    """/metrics has Kubernetes' watch latency SLI: from a change's commit to its event handed to every
    watcher, one observation per change, in cumulative buckets."""
    name = "ketch_watch_dispatch_seconds"
    before = _histogram(cluster, name)
    ns_create(cluster, "metrics2")
    url = cluster.url + "/api/v1/namespaces/metrics2/configmaps?watch=true&timeoutSeconds=20"
    with urllib.request.urlopen(url, timeout=30) as stream:
        for i in range(3):
            code, body = call(cluster, "POST", "/api/v1/namespaces/metrics2/configmaps", cm(f"d{i}", k="v"))
            assert code == 201, body
        seen = [json.loads(stream.readline())["object"]["metadata"]["name"] for _ in range(3)]
    assert seen == ["d0", "d1", "d2"]
    after = _histogram(cluster, name)
    # the namespace and the three configMaps at least; other writers (leases, events) may add more
    assert after[name + "_count"] - before.get(name + "_count", 0) >= 4
    assert after[name + "_count"] == after["+Inf"]
    assert after[name + "_sum"] > before.get(name + "_sum", 0)
    buckets = [v for k, v in after.items() if not k.startswith("ketch")]
    assert len(buckets) == 13 and buckets == sorted(buckets)
