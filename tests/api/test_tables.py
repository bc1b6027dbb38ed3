"""Server-side Table output, cell for cell as kube-apiserver's printers."""

from datetime import UTC, datetime

import pytest

from ketch.api.tables import column_definitions, human_duration, row_cells, supported_kinds, table

NOW = 1_750_000_000.0


def ago(seconds: float) -> str:
    """An RFC 3339 timestamp `seconds` before NOW."""
    return datetime.fromtimestamp(NOW - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def names(kind: str, wide: bool = True) -> list[str]:
    return [c["name"] for c in column_definitions(kind) if wide or c["priority"] == 0]


# ----------------------------------------------------------------- human_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (5, "5s"), (119.9, "119s"), (120, "2m"), (150, "2m30s"),
        (599, "9m59s"), (600, "10m"), (10799, "179m"), (10800, "3h"), (11100, "3h5m"), (28799, "7h59m"),
        (28800, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (7 * 86400 + 3600, "7d1h"), (8 * 86400, "8d"),
        (729 * 86400, "729d"), (2 * 365 * 86400 + 120 * 86400, "2y120d"), (3 * 365 * 86400, "3y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# ----------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ("kind", "default_cols", "wide_cols"),
    [
        ("Pod", ["Name", "Ready", "Status", "Restarts", "Age"], ["IP", "Node", "Nominated Node", "Readiness Gates"]),
        ("Deployment", ["Name", "Ready", "Up-to-date", "Available", "Age"], ["Containers", "Images", "Selector"]),
        ("ReplicaSet", ["Name", "Desired", "Current", "Ready", "Age"], ["Containers", "Images", "Selector"]),
        ("Service", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], ["Selector"]),
        ("Endpoints", ["Name", "Endpoints", "Age"], []),
        ("Namespace", ["Name", "Status", "Age"], []),
        ("Node", ["Name", "Status", "Roles", "Age", "Version"],
         ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]),
        ("ConfigMap", ["Name", "Data", "Age"], []),
        ("Secret", ["Name", "Type", "Data", "Age"], []),
        ("ServiceAccount", ["Name", "Secrets", "Age"], []),
        ("Event", ["Last Seen", "Type", "Reason", "Object", "Message"],
         ["Subobject", "Source", "First Seen", "Count", "Name"]),
        ("Lease", ["Name", "Holder", "Age"], []),
        ("EndpointSlice", ["Name", "AddressType", "Ports", "Endpoints", "Age"], []),
        ("Job", ["Name", "Status", "Completions", "Duration", "Age"], ["Containers", "Images", "Selector"]),
        ("CronJob", ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"],
         ["Containers", "Images", "Selector"]),
        ("StatefulSet", ["Name", "Ready", "Age"], ["Containers", "Images"]),
        ("DaemonSet", ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"],
         ["Containers", "Images", "Selector"]),
        ("HorizontalPodAutoscaler", ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"], []),
        ("Widget", ["Name", "Age"], []),
    ],
)
def test_columns(kind: str, default_cols: list[str], wide_cols: list[str]) -> None:
    cols = column_definitions(kind)
    assert names(kind, wide=False) == default_cols
    assert [c["name"] for c in cols if c["priority"] == 1] == wide_cols
    for c in cols:
        assert set(c) == {"name", "type", "format", "description", "priority"}
        assert c["type"] in ("string", "integer", "boolean")
        assert c["description"]
    name_cols = [c for c in cols if c["name"] == "Name"]
    assert len(name_cols) == 1 and name_cols[0]["format"] == "name"
    if kind != "Event":
        assert cols[0]["name"] == "Name"
    # a row has exactly one cell per column, even for an almost empty object
    assert len(row_cells(kind, {"metadata": {"name": "x"}}, NOW)) == len(cols)


def test_pod_column_types_and_descriptions() -> None:
    cols = column_definitions("Pod")
    assert [c["type"] for c in cols] == ["string"] * 9
    assert cols[0]["description"].startswith("Name must be unique within a namespace.")
    assert cols[4]["description"].startswith("CreationTimestamp is a timestamp")
    assert "\n\nPopulated by the system." in cols[4]["description"]
    assert cols[3]["description"] == ("The number of times the containers in this pod have been restarted and "
                                      "when the last container in this pod has restarted.")


def test_columns_are_fresh_copies() -> None:
    column_definitions("Pod")[0]["name"] = "mutated"
    assert column_definitions("Pod")[0]["name"] == "Name"


def test_supported_kinds() -> None:
    assert {"Pod", "Deployment", "Event", "Lease", "EndpointSlice"} <= set(supported_kinds())


# ----------------------------------------------------------------- pods


def pod(name: str = "web-1", phase: str = "Running", statuses: list | None = None, **extra: object) -> dict:
    p: dict = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": "u1", "resourceVersion": "7",
                     "creationTimestamp": ago(3 * 3600 + 300), "labels": {"app": "web"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "main", "image": "nginx"}]},
        "status": {"phase": phase, "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                   "containerStatuses": statuses or []},
    }
    for k, v in extra.items():
        p[k].update(v)  # type: ignore[union-attr]
    return p


def running(name: str = "main", restarts: int = 0, ready: bool = True, finished: float | None = None) -> dict:
    cs: dict = {"name": name, "ready": ready, "restartCount": restarts, "started": True,
                "state": {"running": {"startedAt": ago(600)}}}
    if finished is not None:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(finished)}}
    return cs


def test_running_pod_with_one_restart() -> None:
    p = pod(statuses=[running(restarts=1, finished=300)],
            status={"conditions": [{"type": "Ready", "status": "True"}]})
    assert row_cells("Pod", p, NOW) == ["web-1", "1/1", "Running", "1 (5m ago)", "3h5m",
                                        "10.0.0.5", "node1", "<none>", "<none>"]


def test_running_pod_no_restarts_matches_kubectl_trace() -> None:
    # kubectl-traces/getpods_wide.stdout: x  1/1  Running  0  5m  10.0.0.5  node1  <none>  <none>
    p = pod("x", statuses=[running()], metadata={"creationTimestamp": ago(300)})
    assert row_cells("Pod", p, NOW) == ["x", "1/1", "Running", "0", "5m", "10.0.0.5", "node1", "<none>", "<none>"]


def test_pending_unscheduled_pod() -> None:
    p = pod("pending", phase="Pending", spec={"nodeName": None},
            status={"podIP": None, "podIPs": None,
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]})
    assert row_cells("Pod", p, NOW) == ["pending", "0/1", "Pending", "0", "3h5m", "<none>", "<none>", "<none>",
                                        "<none>"]


def test_pending_pod_container_creating() -> None:
    p = pod("new", phase="Pending", metadata={"creationTimestamp": ago(4)},
            statuses=[{"name": "main", "ready": False, "restartCount": 0,
                       "state": {"waiting": {"reason": "ContainerCreating"}}}],
            status={"podIP": None, "podIPs": []})
    assert row_cells("Pod", p, NOW)[:5] == ["new", "0/1", "ContainerCreating", "0", "4s"]


def test_scheduling_gated_pod() -> None:
    p = pod("gated", phase="Pending", status={"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})
    assert row_cells("Pod", p, NOW)[2] == "SchedulingGated"


def test_crashloop_two_containers() -> None:
    p = pod(statuses=[running("a", restarts=1, finished=120),
                      {"name": "b", "ready": False, "restartCount": 4,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"exitCode": 2, "finishedAt": ago(40)}}}],
            spec={"containers": [{"name": "a"}, {"name": "b"}]})
    assert row_cells("Pod", p, NOW)[1:4] == ["1/2", "CrashLoopBackOff", "5 (40s ago)"]


def test_terminating_pod() -> None:
    p = pod("old", statuses=[running()], metadata={"deletionTimestamp": ago(-30)})
    assert row_cells("Pod", p, NOW)[2] == "Terminating"
    lost = pod("lost", statuses=[running()], metadata={"deletionTimestamp": ago(-30)}, status={"reason": "NodeLost"})
    assert row_cells("Pod", lost, NOW)[2] == "Unknown"
    # a terminal pod being deleted keeps its terminal status
    done = pod("done", phase="Succeeded", metadata={"deletionTimestamp": ago(-30)},
               statuses=[{"name": "main", "ready": False, "restartCount": 0,
                          "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    assert row_cells("Pod", done, NOW)[2] == "Completed"


def test_completed_and_failed_pods_and_row_conditions() -> None:
    done = pod("job-abc", phase="Succeeded", statuses=[
        {"name": "main", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    assert row_cells("Pod", done, NOW)[1:3] == ["0/1", "Completed"]
    row = table("Pod", [done], now=NOW)["rows"][0]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    failed = pod("f", phase="Failed", statuses=[
        {"name": "main", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}])
    assert row_cells("Pod", failed, NOW)[2] == "ExitCode:137"
    assert table("Pod", [failed], now=NOW)["rows"][0]["conditions"][0]["reason"] == "Failed"
    sig = pod("s", phase="Failed", statuses=[
        {"name": "main", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "signal": 9}}}])
    assert row_cells("Pod", sig, NOW)[2] == "Signal:9"
    assert "conditions" not in table("Pod", [pod()], now=NOW)["rows"][0]


def test_evicted_pod_uses_status_reason() -> None:
    p = pod("ev", phase="Failed", status={"reason": "Evicted"})
    assert row_cells("Pod", p, NOW)[2] == "Evicted"


def test_init_containers() -> None:
    spec = {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "main"}]}
    waiting_main = [{"name": "main", "ready": False, "restartCount": 0,
                     "state": {"waiting": {"reason": "PodInitializing"}}}]
    first = pod("p", phase="Pending", spec=spec, statuses=waiting_main, status={"initContainerStatuses": [
        {"name": "i1", "ready": False, "restartCount": 0, "state": {"running": {}}},
        {"name": "i2", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]})
    assert row_cells("Pod", first, NOW)[1:4] == ["0/1", "Init:0/2", "0"]
    second = pod("p", phase="Pending", spec=spec, statuses=waiting_main, status={"initContainerStatuses": [
        {"name": "i1", "ready": True, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "ready": False, "restartCount": 0, "state": {"running": {}}}]})
    assert row_cells("Pod", second, NOW)[2] == "Init:1/2"
    crash = pod("p", phase="Pending", spec=spec, statuses=waiting_main, status={"initContainerStatuses": [
        {"name": "i1", "ready": False, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}}]})
    assert row_cells("Pod", crash, NOW)[2:4] == ["Init:CrashLoopBackOff", "3 (90s ago)"]
    err = pod("p", phase="Pending", spec=spec, statuses=waiting_main, status={"initContainerStatuses": [
        {"name": "i1", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]})
    assert row_cells("Pod", err, NOW)[2] == "Init:ExitCode:3"


def test_sidecar_init_container_counts_toward_ready() -> None:
    spec = {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "main"}]}
    p = pod(spec=spec, statuses=[running()], status={
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "ready": True, "started": True, "restartCount": 2,
                                   "state": {"running": {}},
                                   "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(700)}}}]})
    assert row_cells("Pod", p, NOW)[1:4] == ["2/2", "Running", "2 (11m ago)"]


def test_pod_readiness_gates_and_nominated_node() -> None:
    p = pod(statuses=[running()], spec={"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
            status={"nominatedNodeName": "node2",
                    "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]})
    assert row_cells("Pod", p, NOW)[7:] == ["node2", "1/2"]


def test_pod_ip_falls_back_to_pod_ip_field() -> None:
    p = pod(statuses=[running()], status={"podIPs": None, "podIP": "10.1.1.1"})
    assert row_cells("Pod", p, NOW)[5] == "10.1.1.1"


# ----------------------------------------------------------------- workloads

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}


def test_deployment_two_of_three() -> None:
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "creationTimestamp": ago(86400 * 3 + 7200)},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
         "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert row_cells("Deployment", d, NOW) == ["web", "2/3", 3, 2, "3d2h", "web,log", "nginx:1.27,busybox", "app=web"]


def test_deployment_fresh_defaults() -> None:
    d = {"metadata": {"name": "new", "creationTimestamp": ago(1)},
         "spec": {"selector": {"matchLabels": {"app": "new"},
                               "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]},
                  "template": TEMPLATE}}
    assert row_cells("Deployment", d, NOW) == ["new", "0/1", 0, 0, "1s", "web,log", "nginx:1.27,busybox",
                                               "app=new,tier notin (x)"]


def test_replicaset() -> None:
    rs = {"metadata": {"name": "web-5d8f", "creationTimestamp": ago(3600)},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}},
                   "template": TEMPLATE},
          "status": {"replicas": 3, "readyReplicas": 1}}
    assert row_cells("ReplicaSet", rs, NOW) == ["web-5d8f", 3, 3, 1, "60m", "web,log", "nginx:1.27,busybox",
                                                "app=web,pod-template-hash=5d8f"]
    old = {"metadata": {"name": "web-old", "creationTimestamp": ago(3600)},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
           "status": {"replicas": 0}}
    assert row_cells("ReplicaSet", old, NOW)[1:4] == [0, 0, 0]


def test_statefulset_and_daemonset() -> None:
    sts = {"metadata": {"name": "db", "creationTimestamp": ago(60)},
           "spec": {"replicas": 3, "template": TEMPLATE}, "status": {"readyReplicas": 2}}
    assert row_cells("StatefulSet", sts, NOW) == ["db", "2/3", "60s", "web,log", "nginx:1.27,busybox"]
    ds = {"metadata": {"name": "agent", "creationTimestamp": ago(60)},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                         "containers": [{"name": "a", "image": "agent:1"}]}}},
          "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}}
    assert row_cells("DaemonSet", ds, NOW) == ["agent", 2, 2, 1, 2, 1, "kubernetes.io/os=linux", "60s", "a",
                                               "agent:1", "app=agent"]


def test_jobs() -> None:
    base = {"metadata": {"name": "pi", "creationTimestamp": ago(600)},
            "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"job-name": "pi"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}}
    running_job = {**base, "status": {"startTime": ago(590), "active": 1}}
    assert row_cells("Job", running_job, NOW) == ["pi", "Running", "0/1", "9m50s", "10m", "pi", "perl",
                                                  "job-name=pi"]
    done = {**base, "status": {"startTime": ago(590), "completionTime": ago(555), "succeeded": 1,
                               "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                              {"type": "Complete", "status": "True"}]}}
    assert row_cells("Job", done, NOW)[1:4] == ["Complete", "1/1", "35s"]
    failed = {**base, "status": {"startTime": ago(590), "conditions": [{"type": "Failed", "status": "True"}]}}
    assert row_cells("Job", failed, NOW)[1] == "Failed"
    suspended = {**base, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}
    assert row_cells("Job", suspended, NOW)[1:4] == ["Suspended", "0/1", ""]
    par = {**base, "spec": {**base["spec"], "completions": None, "parallelism": 3}, "status": {"succeeded": 2}}
    assert row_cells("Job", par, NOW)[2] == "2/1 of 3"


def test_cronjob() -> None:
    cj = {"metadata": {"name": "nightly", "creationTimestamp": ago(86400 * 10)},
          "spec": {"schedule": "0 3 * * *", "suspend": False,
                   "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}}},
          "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600 * 5)}}
    assert row_cells("CronJob", cj, NOW) == ["nightly", "0 3 * * *", "<none>", "False", 1, "5h", "10d", "b",
                                             "busybox", "<none>"]
    cj2 = {"metadata": {"name": "tz"}, "spec": {"schedule": "@hourly", "timeZone": "Etc/UTC"}}
    assert row_cells("CronJob", cj2, NOW)[1:6] == ["@hourly", "Etc/UTC", "<unset>", 0, "<none>"]


def test_hpa() -> None:
    hpa = {"metadata": {"name": "web", "creationTimestamp": ago(120)},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
           "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {
               "name": "cpu", "current": {"averageUtilization": 35, "averageValue": "35m"}}}]}}
    assert row_cells("HorizontalPodAutoscaler", hpa, NOW) == ["web", "Deployment/web", "35%/80%", "1", 5, 2, "2m"]
    fresh = {"metadata": {"name": "w"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"},
                                                 "maxReplicas": 3, "metrics": [
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                        "averageValue": "100Mi"}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                        "averageValue": "10"}}},
        {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "5"}}}]}}
    assert row_cells("HorizontalPodAutoscaler", fresh, NOW)[2:6] == [
        "<unknown>/100Mi, <unknown>/10 + 1 more...", "<unset>", 3, 0]
    v1 = {"metadata": {"name": "v1"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "v1"},
                                               "maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
          "status": {"currentCPUUtilizationPercentage": 10}}
    assert row_cells("HorizontalPodAutoscaler", v1, NOW)[2] == "10%/50%"
    assert row_cells("HorizontalPodAutoscaler", {"metadata": {"name": "n"}, "spec": {}}, NOW)[2] == "<none>"


# ----------------------------------------------------------------- core kinds


def test_services() -> None:
    svc = {"metadata": {"name": "web", "creationTimestamp": ago(30)},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "selector": {"app": "web"},
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}}
    assert row_cells("Service", svc, NOW) == ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "30s",
                                              "app=web"]
    np = {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.11",
                                               "ports": [{"port": 80, "nodePort": 30080}],
                                               "externalIPs": ["1.2.3.4"]}}
    assert row_cells("Service", np, NOW) == ["np", "NodePort", "10.96.0.11", "1.2.3.4", "80:30080/TCP",
                                             "<unknown>", "<none>"]
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                                               "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}}
    assert row_cells("Service", lb, NOW)[3] == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}}
    assert row_cells("Service", lb, NOW)[3] == "203.0.113.7,lb.example.com"
    headless = {"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}}
    assert row_cells("Service", headless, NOW)[1:5] == ["ClusterIP", "None", "<none>", "<none>"]
    ext = {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}
    assert row_cells("Service", ext, NOW)[1:4] == ["ExternalName", "<none>", "example.com"]


def test_endpoints() -> None:
    ep = {"metadata": {"name": "web", "creationTimestamp": ago(10)},
          "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                       "ports": [{"port": 8080, "protocol": "TCP"}]}]}
    assert row_cells("Endpoints", ep, NOW) == ["web", "10.0.0.1:8080,10.0.0.2:8080", "10s"]
    many = {"metadata": {"name": "m"}, "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)],
                                                    "ports": [{"port": 80}]}]}
    assert row_cells("Endpoints", many, NOW)[1] == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."
    v6 = {"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}
    assert row_cells("Endpoints", v6, NOW)[1] == "[fd00::1]:80"
    headless = {"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}
    assert row_cells("Endpoints", headless, NOW)[1] == "10.0.0.9"
    assert row_cells("Endpoints", {"metadata": {"name": "e"}}, NOW)[1] == "<none>"


def test_endpointslice() -> None:
    es = {"metadata": {"name": "web-abcde", "creationTimestamp": ago(10)}, "addressType": "IPv4",
          "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}
    assert row_cells("EndpointSlice", es, NOW) == ["web-abcde", "IPv4", "8080", "10.0.0.1,10.0.0.2", "10s"]
    empty = {"metadata": {"name": "e"}, "addressType": "IPv4", "ports": [], "endpoints": []}
    assert row_cells("EndpointSlice", empty, NOW)[2:4] == ["<unset>", "<unset>"]
    many = {"metadata": {"name": "m"}, "addressType": "IPv4", "ports": [{"name": "a"}, {}, {"port": 1}, {"port": 2}],
            "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    assert row_cells("EndpointSlice", many, NOW)[2:4] == ["a,*,1 + 1 more...", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]


def test_node() -> None:
    node = {"metadata": {"name": "node1", "creationTimestamp": ago(86400 * 40),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
                                    "kubernetes.io/hostname": "node1"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                                     {"type": "Hostname", "address": "node1"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0", "containerRuntimeVersion": "ketch://0.1.0"}}}
    assert row_cells("Node", node, NOW) == ["node1", "Ready,SchedulingDisabled", "control-plane,worker", "40d",
                                            "v1.37.1", "192.168.1.10", "<none>", "Debian GNU/Linux 12 (bookworm)",
                                            "6.1.0", "ketch://0.1.0"]
    bare = {"metadata": {"name": "n2", "labels": {"kubernetes.io/role": "edge"}},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert row_cells("Node", bare, NOW) == ["n2", "NotReady", "edge", "<unknown>", "", "<none>", "<none>",
                                            "<unknown>", "<unknown>", "<unknown>"]
    assert row_cells("Node", {"metadata": {"name": "n3"}}, NOW)[1:3] == ["Unknown", "<none>"]


def test_core_event() -> None:
    ev = {"apiVersion": "v1", "kind": "Event",
          "metadata": {"name": "web-1.17a", "namespace": "default", "creationTimestamp": ago(300)},
          "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default",
                             "fieldPath": "spec.containers{main}"},
          "reason": "Pulled", "message": "Container image \"nginx\" already present on machine\n",
          "source": {"component": "kubelet", "host": "node1"},
          "firstTimestamp": ago(300), "lastTimestamp": ago(60), "count": 3, "type": "Normal"}
    assert row_cells("Event", ev, NOW) == [
        "60s", "Normal", "Pulled", "pod/web-1", "spec.containers{main}", "kubelet, node1",
        "Container image \"nginx\" already present on machine", "5m", 3, "web-1.17a"]
    new_style = {"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"}, "type": "Warning",
                 "reason": "X", "message": "m", "eventTime": "2025-06-15T15:05:00.123456Z",
                 "reportingComponent": "ketch-scheduler", "reportingInstance": "",
                 "firstTimestamp": None, "lastTimestamp": None}
    now = datetime(2025, 6, 15, 15, 10, 0, tzinfo=UTC).timestamp()
    assert row_cells("Event", new_style, now) == ["4m59s", "Warning", "X", "node", "", "ketch-scheduler", "m",
                                                  "4m59s", 1, "e2"]
    series = {**new_style, "series": {"count": 7, "lastObservedTime": "2025-06-15T15:09:50.000000Z"}}
    assert row_cells("Event", series, now)[0] == "10s"
    assert row_cells("Event", series, now)[8] == 7


def test_events_k8s_io_event() -> None:
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
          "regarding": {"kind": "Deployment", "name": "web"}, "note": "Scaled up", "reason": "ScalingReplicaSet",
          "type": "Normal", "reportingController": "deployment-controller", "deprecatedCount": 2,
          "deprecatedFirstTimestamp": ago(600), "deprecatedLastTimestamp": ago(120)}
    assert row_cells("Event", ev, NOW) == ["2m", "Normal", "ScalingReplicaSet", "deployment/web", "",
                                           "deployment-controller", "Scaled up", "10m", 2, "e"]


@pytest.mark.parametrize(
    ("kind", "obj", "cells"),
    [
        ("Namespace", {"metadata": {"name": "default", "creationTimestamp": ago(4 * 3600)},
                       "status": {"phase": "Active"}}, ["default", "Active", "4h"]),
        ("Namespace", {"metadata": {"name": "gone", "creationTimestamp": ago(5), "deletionTimestamp": ago(1)},
                       "status": {"phase": "Terminating"}}, ["gone", "Terminating", "5s"]),
        ("ConfigMap", {"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(100)},
                       "data": {"ca.crt": "x"}, "binaryData": {"b": "AA=="}}, ["kube-root-ca.crt", 2, "100s"]),
        ("ConfigMap", {"metadata": {"name": "empty", "creationTimestamp": ago(100)}}, ["empty", 0, "100s"]),
        ("Secret", {"metadata": {"name": "tls", "creationTimestamp": ago(100)}, "type": "kubernetes.io/tls",
                    "data": {"tls.crt": "", "tls.key": ""}}, ["tls", "kubernetes.io/tls", 2, "100s"]),
        ("Secret", {"metadata": {"name": "s"}}, ["s", "Opaque", 0, "<unknown>"]),
        ("ServiceAccount", {"metadata": {"name": "default", "creationTimestamp": ago(100)}}, ["default", 0, "100s"]),
        ("ServiceAccount", {"metadata": {"name": "sa"}, "secrets": [{"name": "t"}]}, ["sa", 1, "<unknown>"]),
        ("Lease", {"metadata": {"name": "node1", "creationTimestamp": ago(100)},
                   "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40}}, ["node1", "node1", "100s"]),
        ("Lease", {"metadata": {"name": "free"}, "spec": {}}, ["free", "", "<unknown>"]),
        ("Widget", {"metadata": {"name": "w", "creationTimestamp": ago(100)}}, ["w", "100s"]),
    ],
)
def test_simple_kinds(kind: str, obj: dict, cells: list) -> None:
    assert row_cells(kind, obj, NOW) == cells


# ----------------------------------------------------------------- table()


def test_table_with_metadata_objects() -> None:
    p = pod(statuses=[running()])
    t = table("Pod", [p], resource_version="42", now=NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    assert t["columnDefinitions"] == column_definitions("Pod")
    assert len(t["rows"]) == 1
    row = t["rows"][0]
    assert row["cells"] == row_cells("Pod", p, NOW)
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": p["metadata"]}


def test_table_include_object_modes() -> None:
    p = pod()
    assert "object" not in table("Pod", [p], include_object="None", now=NOW)["rows"][0]
    assert table("Pod", [p], include_object="Object", now=NOW)["rows"][0]["object"] is p
    assert table("Pod", [p], include_object="Metadata", now=NOW)["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    with pytest.raises(ValueError):
        table("Pod", [p], include_object="Everything")


def test_table_paging_and_watch_shape() -> None:
    t = table("ConfigMap", [], resource_version="9", continue_token="abc", remaining=12)
    assert t["metadata"] == {"resourceVersion": "9", "continue": "abc", "remainingItemCount": 12}
    assert t["rows"] == []
    assert table("ConfigMap", [], resource_version="")["metadata"] == {}
    ev = table("Pod", [pod()], with_columns=False, now=NOW)
    assert ev["columnDefinitions"] == [] and len(ev["rows"]) == 1


def test_row_cells_default_now_is_current_time() -> None:
    cm = {"metadata": {"name": "c", "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    assert row_cells("ConfigMap", cm)[2] in ("0s", "1s", "2s")
