"""Defaulting of the built-in kinds (what `kubectl get -o yaml` shows after a create)."""

from __future__ import annotations

import base64
import copy

import pytest

from ketch.api.defaults import apply_defaults, image_pull_policy


def kubectl_create_deployment() -> dict:
    """What `kubectl create deployment web --image=nginx --dry-run=client -o json` sends."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"creationTimestamp": None, "labels": {"app": "web"}, "name": "web"},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"image": "nginx", "name": "nginx", "resources": {}}]},
            },
        },
        "status": {},
    }


def docs_pod() -> dict:
    """The pod from the Kubernetes docs (pods/simple-pod.yaml)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}


# --------------------------------------------------------------------------- generic


def test_returns_same_object_and_is_idempotent():
    pod = docs_pod()
    out = apply_defaults(pod)
    assert out is pod
    again = apply_defaults(copy.deepcopy(pod))
    assert again == pod


def test_unknown_kind_untouched():
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}
    assert apply_defaults(copy.deepcopy(obj)) == obj
    assert apply_defaults({"kind": "Pod"}) == {"kind": "Pod"}  # no apiVersion: not a known kind


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("registry:5000/nginx", "Always"),
    ("registry:5000/nginx:1.0", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_image_pull_policy(image, policy):
    assert image_pull_policy(image) == policy


# --------------------------------------------------------------------------- pods


def test_pod_spec_defaults():
    spec = apply_defaults(docs_pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["serviceAccountName"] == "default"
    assert spec["serviceAccount"] == "default"


def test_pod_container_defaults():
    c = apply_defaults(docs_pod())["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["resources"] == {}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_pod_default_tolerations_added():
    tolerations = apply_defaults(docs_pod())["spec"]["tolerations"]
    assert tolerations == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]


def test_pod_existing_tolerations_respected():
    pod = docs_pod()
    pod["spec"]["tolerations"] = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 10}]
    tolerations = apply_defaults(pod)["spec"]["tolerations"]
    assert len(tolerations) == 2
    assert tolerations[0]["tolerationSeconds"] == 10
    assert tolerations[1]["key"] == "node.kubernetes.io/unreachable"
    # A toleration of everything (empty key, Exists) needs nothing added.
    pod = docs_pod()
    pod["spec"]["tolerations"] = [{"operator": "Exists"}]
    assert apply_defaults(pod)["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_pod_keeps_explicit_values():
    pod = docs_pod()
    pod["spec"].update(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0,
                       serviceAccountName="builder", enableServiceLinks=False)
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = apply_defaults(pod)["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["dnsPolicy"] == "Default"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "builder"
    assert spec["enableServiceLinks"] is False
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_system_priority_class():
    pod = docs_pod()
    pod["spec"]["priorityClassName"] = "system-node-critical"
    assert apply_defaults(pod)["spec"]["priority"] == 2000001000


def test_pod_probe_and_env_defaults():
    pod = docs_pod()
    c = pod["spec"]["containers"][0]
    c["livenessProbe"] = {"httpGet": {"port": 80}}
    c["readinessProbe"] = {"tcpSocket": {"port": 80}, "periodSeconds": 5}
    c["lifecycle"] = {"preStop": {"httpGet": {"port": 8080}}}
    c["env"] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]
    c = apply_defaults(pod)["spec"]["containers"][0]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["readinessProbe"]["timeoutSeconds"] == 1
    assert c["lifecycle"]["preStop"]["httpGet"]["path"] == "/"
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "metadata.name", "apiVersion": "v1"}
    assert c["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"


def test_pod_init_container_defaults():
    pod = docs_pod()
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1.36"}]
    init = apply_defaults(pod)["spec"]["initContainers"][0]
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert init["terminationMessagePolicy"] == "File"


def test_pod_volume_defaults():
    pod = docs_pod()
    pod["spec"]["volumes"] = [
        {"name": "scratch"},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {"name": "host", "hostPath": {"path": "/var/log"}},
    ]
    vols = {v["name"]: v for v in apply_defaults(pod)["spec"]["volumes"]}
    assert vols["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert vols["cfg"]["configMap"]["defaultMode"] == 420
    assert vols["sec"]["secret"]["defaultMode"] == 256
    assert vols["info"]["downwardAPI"]["defaultMode"] == 420
    assert vols["info"]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
    assert vols["tok"]["projected"]["defaultMode"] == 420
    assert vols["tok"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    assert vols["host"]["hostPath"]["type"] == ""


def test_pod_requests_default_to_limits():
    pod = docs_pod()
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                 "requests": {"cpu": "100m"}}
    res = apply_defaults(pod)["spec"]["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "100m", "memory": "128Mi"}


def test_pod_host_network_host_ports():
    pod = docs_pod()
    pod["spec"]["hostNetwork"] = True
    assert apply_defaults(pod)["spec"]["containers"][0]["ports"][0]["hostPort"] == 80


def test_mirror_pod_gets_no_service_account():
    pod = docs_pod()
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    assert "serviceAccountName" not in apply_defaults(pod)["spec"]


# --------------------------------------------------------------------------- workloads


def test_deployment_defaults():
    d = apply_defaults(kubectl_create_deployment())
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always"
    assert tspec["dnsPolicy"] == "ClusterFirst"
    assert tspec["schedulerName"] == "default-scheduler"
    assert tspec["containers"][0]["imagePullPolicy"] == "Always"
    # No pod-only defaults and no admission on templates.
    for key in ("serviceAccountName", "tolerations", "priority", "enableServiceLinks", "preemptionPolicy"):
        assert key not in tspec


def test_deployment_missing_replicas_and_recreate():
    d = kubectl_create_deployment()
    del d["spec"]["replicas"]
    d["spec"]["strategy"] = {"type": "Recreate"}
    spec = apply_defaults(d)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_replicaset_defaults():
    rs = kubectl_create_deployment()
    rs["kind"] = "ReplicaSet"
    del rs["spec"]["replicas"], rs["spec"]["strategy"]
    spec = apply_defaults(rs)["spec"]
    assert spec["replicas"] == 1
    assert "strategy" not in spec
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_statefulset_and_daemonset_defaults():
    sts = kubectl_create_deployment()
    sts["kind"] = "StatefulSet"
    del sts["spec"]["strategy"], sts["spec"]["replicas"]
    spec = apply_defaults(sts)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    ds = kubectl_create_deployment()
    ds["kind"] = "DaemonSet"
    del ds["spec"]["strategy"], ds["spec"]["replicas"]
    spec = apply_defaults(ds)["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10


def kubectl_create_job() -> dict:
    """`kubectl create job pi --image=perl -- perl -e 'print 1'`."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"template": {"metadata": {}, "spec": {
                "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"], "resources": {}}],
                "restartPolicy": "Never"}}}}


def test_job_defaults():
    job = apply_defaults(kubectl_create_job())
    spec = job["spec"]
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["manualSelector"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert "selector" not in spec  # no uid yet: the selector is generated once the server assigns one


def test_job_restart_policy_stays_as_given():
    job = kubectl_create_job()
    del job["spec"]["template"]["spec"]["restartPolicy"]
    assert "restartPolicy" not in apply_defaults(job)["spec"]["template"]["spec"]


def test_job_parallelism_only():
    job = kubectl_create_job()
    job["spec"]["parallelism"] = 3
    spec = apply_defaults(job)["spec"]
    assert spec["parallelism"] == 3
    assert "completions" not in spec


def test_job_selector_generated_from_uid():
    job = kubectl_create_job()
    job["metadata"]["uid"] = "1234-abcd"
    job = apply_defaults(job)
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels == {"batch.kubernetes.io/job-name": "pi", "job-name": "pi",
                      "batch.kubernetes.io/controller-uid": "1234-abcd", "controller-uid": "1234-abcd"}
    assert job["metadata"]["labels"] == labels


def test_cronjob_defaults():
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
          "spec": {"schedule": "* * * * *", "jobTemplate": {"metadata": {}, "spec": kubectl_create_job()["spec"]}}}
    spec = apply_defaults(cj)["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    tspec = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert tspec["dnsPolicy"] == "ClusterFirst"
    assert tspec["restartPolicy"] == "Never"
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # Job defaults apply to Jobs, not templates


# --------------------------------------------------------------------------- services & co


def kubectl_create_service() -> dict:
    """`kubectl create service clusterip web --tcp=80:8080`."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"labels": {"app": "web"}, "name": "web"},
            "spec": {"ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                     "selector": {"app": "web"}, "type": "ClusterIP"}, "status": {"loadBalancer": {}}}


def test_service_defaults():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    spec = apply_defaults(svc)["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert "externalTrafficPolicy" not in spec
    assert "clusterIP" not in spec  # allocation is the registry's job


def test_service_nodeport_and_loadbalancer_defaults():
    svc = kubectl_create_service()
    svc["spec"]["type"] = "NodePort"
    assert apply_defaults(svc)["spec"]["externalTrafficPolicy"] == "Cluster"
    svc = kubectl_create_service()
    svc["spec"]["type"] = "LoadBalancer"
    spec = apply_defaults(svc)["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True


def test_service_external_name_and_client_ip():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    spec = apply_defaults(svc)["spec"]
    assert "ipFamilies" not in spec and "ipFamilyPolicy" not in spec and "internalTrafficPolicy" not in spec
    svc = kubectl_create_service()
    svc["spec"]["sessionAffinity"] = "ClientIP"
    assert apply_defaults(svc)["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_service_named_target_port_kept():
    svc = kubectl_create_service()
    svc["spec"]["ports"][0]["targetPort"] = "http"
    assert apply_defaults(svc)["spec"]["ports"][0]["targetPort"] == "http"


def test_namespace_defaults():
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_namespace_label_is_forced():
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "other", "x": "y"}}}
    assert apply_defaults(ns)["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a", "x": "y"}


def test_secret_defaults_and_string_data():
    s = apply_defaults({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                        "data": {"a": base64.b64encode(b"1").decode()}, "stringData": {"b": "two"}})
    assert s["type"] == "Opaque"
    assert "stringData" not in s
    assert base64.b64decode(s["data"]["b"]) == b"two"
    assert base64.b64decode(s["data"]["a"]) == b"1"


def test_configmap_untouched():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert apply_defaults(copy.deepcopy(cm)) == cm


def test_endpoints_and_slices_port_protocol():
    ep = apply_defaults({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                         "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    es = apply_defaults({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1"},
                         "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]})
    assert es["ports"][0] == {"port": 80, "protocol": "TCP", "name": ""}


def test_node_allocatable_from_capacity():
    node = apply_defaults({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                           "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}


def test_service_update_keeps_allocated_and_drops_type_fields():
    from ketch.api.defaults import prepare_service_update
    old = apply_defaults({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                          "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}],
                                   "clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"]}})
    # kubectl replace without the allocated values: they are kept.
    new = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    spec = prepare_service_update(new, old)["spec"]
    assert spec["clusterIP"] == "10.96.0.7" and spec["clusterIPs"] == ["10.96.0.7"]
    assert spec["ports"][0]["nodePort"] == 30080
    # NodePort -> ClusterIP with the old fields still in the body: they are dropped.
    import copy
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    spec = apply_defaults(prepare_service_update(new, old))["spec"]
    assert "externalTrafficPolicy" not in spec
    assert "nodePort" not in spec["ports"][0]
    assert spec["clusterIP"] == "10.96.0.7"
    # -> ExternalName drops the cluster IPs and families.
    new = copy.deepcopy(old)
    new["spec"].update(type="ExternalName", externalName="db.example.com")
    spec = prepare_service_update(new, old)["spec"]
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "externalTrafficPolicy"} & set(spec)


def test_missing_image_pull_policy():
    pod = apply_defaults({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                          "spec": {"containers": [{"name": "c"}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
