"""Defaulting of the built-in kinds, as Kubernetes' SetDefaults_* functions (plus the few admission
plugins that always run on pods: ServiceAccount, DefaultTolerationSeconds, Priority) fill them in.

`apply_defaults(obj)` changes the object in place and returns it; unknown kinds are left alone.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["apply_defaults", "default_pod_spec", "default_pod_template", "image_pull_policy",
           "prepare_service_update"]

DEFAULT_TOLERATION_SECONDS = 300
_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"

# Built-in PriorityClasses the Priority admission plugin resolves.
_SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}

# Every volume source a core/v1 Volume may name (a volume with none of them becomes an emptyDir).
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flexVolume", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc",
    "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos",
    "configMap", "scaleIO", "projected", "csi", "ephemeral", "image", "flocker",
)


def _dict(parent: dict, key: str) -> dict:
    """parent[key] as a dict, creating it when absent or null."""
    v = parent.get(key)
    if not isinstance(v, dict):
        v = {}
        parent[key] = v
    return v


def _unset(d: dict, key: str) -> bool:
    return d.get(key) is None or d.get(key) == ""


def _set(d: dict, key: str, value: Any) -> None:
    if _unset(d, key):
        d[key] = value


def _dicts(value: Any) -> list[dict]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- pods


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, IfNotPresent otherwise (a digest counts as a tag)."""
    if not image or "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_handler(h: Any) -> None:
    if not isinstance(h, dict):
        return
    get = h.get("httpGet")
    if isinstance(get, dict):
        _set(get, "path", "/")
        _set(get, "scheme", "HTTP")


def _default_probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    _default_handler(p)
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if p.get(key) in (None, 0):
            p[key] = value


def _default_field_ref(ref: Any) -> None:
    if isinstance(ref, dict):
        _set(ref, "apiVersion", "v1")


def _default_resource_field_ref(ref: Any) -> None:
    if isinstance(ref, dict):
        _set(ref, "divisor", "0")


def _default_container(c: dict, probes: bool = True) -> None:
    if _unset(c, "imagePullPolicy"):
        image = c.get("image")
        # An unparsable (e.g. missing) image has no tag: IfNotPresent, as Kubernetes does.
        c["imagePullPolicy"] = image_pull_policy(image if isinstance(image, str) else "")
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}
    for port in _dicts(c.get("ports")):
        _set(port, "protocol", "TCP")
    for env in _dicts(c.get("env")):
        vf = env.get("valueFrom")
        if isinstance(vf, dict):
            _default_field_ref(vf.get("fieldRef"))
            _default_resource_field_ref(vf.get("resourceFieldRef"))
    if probes:
        for key in ("livenessProbe", "readinessProbe", "startupProbe"):
            _default_probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))


def _default_volume(v: dict) -> None:
    if not any(v.get(src) is not None for src in VOLUME_SOURCES):
        v["emptyDir"] = {}
        return
    for src in ("secret", "configMap", "downwardAPI", "projected"):
        s = v.get(src)
        if isinstance(s, dict):
            _set(s, "defaultMode", 420)
    dapi = v.get("downwardAPI")
    if isinstance(dapi, dict):
        for item in _dicts(dapi.get("items")):
            _default_field_ref(item.get("fieldRef"))
            _default_resource_field_ref(item.get("resourceFieldRef"))
    projected = v.get("projected")
    if isinstance(projected, dict):
        for source in _dicts(projected.get("sources")):
            tok = source.get("serviceAccountToken")
            if isinstance(tok, dict):
                _set(tok, "expirationSeconds", 3600)
            d = source.get("downwardAPI")
            if isinstance(d, dict):
                for item in _dicts(d.get("items")):
                    _default_field_ref(item.get("fieldRef"))
                    _default_resource_field_ref(item.get("resourceFieldRef"))
    host_path = v.get("hostPath")
    if isinstance(host_path, dict) and "type" not in host_path:
        host_path["type"] = ""
    iscsi = v.get("iscsi")
    if isinstance(iscsi, dict):
        _set(iscsi, "iscsiInterface", "default")
    rbd = v.get("rbd")
    if isinstance(rbd, dict):
        _set(rbd, "pool", "rbd")
        _set(rbd, "user", "admin")
        _set(rbd, "keyring", "/etc/ceph/keyring")
    azure = v.get("azureDisk")
    if isinstance(azure, dict):
        _set(azure, "cachingMode", "ReadWrite")
        _set(azure, "fsType", "ext4")
        _set(azure, "kind", "Shared")
        if azure.get("readOnly") is None:
            azure["readOnly"] = False
    eph = v.get("ephemeral")
    if isinstance(eph, dict):
        tmpl = eph.get("volumeClaimTemplate")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            _default_pvc_spec(tmpl["spec"])


def _default_pvc_spec(spec: dict) -> None:
    _set(spec, "volumeMode", "Filesystem")


def default_pod_spec(spec: dict, restart_policy: bool = True) -> dict:
    """SetDefaults_PodSpec and the defaults of everything it contains (templates get exactly this)."""
    _set(spec, "dnsPolicy", "ClusterFirst")
    if restart_policy:
        _set(spec, "restartPolicy", "Always")
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    _set(spec, "schedulerName", "default-scheduler")
    for c in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
        _default_container(c)
    for c in _dicts(spec.get("ephemeralContainers")):
        _default_container(c, probes=False)
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)
    # The deprecated serviceAccount field mirrors serviceAccountName (v1 conversion).
    if _unset(spec, "serviceAccountName") and not _unset(spec, "serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    return spec


def default_pod_template(template: Any, restart_policy: bool = True) -> None:
    """Defaults of a PodTemplateSpec (no pod-only defaults, no admission)."""
    if not isinstance(template, dict):
        return
    default_pod_spec(_dict(template, "spec"), restart_policy)


def _tolerates(tolerations: list[dict], key: str) -> bool:
    for t in tolerations:
        if t.get("key") in (None, "", key) and t.get("effect") in (None, "", "NoExecute"):
            return True
    return False


_DEFAULTED_SPECS: dict[tuple, dict] = {}


def _default_pod_memo(obj: dict) -> None:
    """_default_pod, remembered by the encoding of the spec: the pods of one workload share their
    spec, so most creates take the defaulted spec computed before. Like the objects of the watch
    cache, a remembered spec is shared and never changed in place (writers change copies)."""
    spec = obj.get("spec")
    meta = obj.get("metadata")
    if type(spec) is not dict or type(meta) is not dict:
        _default_pod(obj)
        return
    try:
        key = (orjson.dumps(spec), "kubernetes.io/config.mirror" in (meta.get("annotations") or {}))
    except TypeError:
        _default_pod(obj)
        return
    hit = _DEFAULTED_SPECS.get(key)
    if hit is not None:
        obj["spec"] = hit
        return
    _default_pod(obj)
    if len(_DEFAULTED_SPECS) >= 2048:
        _DEFAULTED_SPECS.clear()
    _DEFAULTED_SPECS[key] = obj["spec"]


def _default_pod(obj: dict) -> None:
    spec = default_pod_spec(_dict(obj, "spec"))
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    # SetDefaults_Pod: pod-only defaults.
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    for c in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
        res = c.get("resources")
        if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
            req = res.get("requests")
            if not isinstance(req, dict):
                req = res["requests"] = {}
            for name, qty in res["limits"].items():
                req.setdefault(name, qty)
        if spec.get("hostNetwork") is True:
            for port in _dicts(c.get("ports")):
                if port.get("hostPort") in (None, 0):
                    port["hostPort"] = port.get("containerPort")
    # ServiceAccount admission (not for mirror pods).
    mirror = "kubernetes.io/config.mirror" in (meta.get("annotations") or {})
    if not mirror and _unset(spec, "serviceAccountName"):
        spec["serviceAccountName"] = "default"
    if not _unset(spec, "serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    # DefaultTolerationSeconds admission.
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    have = _dicts(tolerations)
    added = []
    for key in (_NOT_READY, _UNREACHABLE):
        if not _tolerates(have, key):
            added.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    if added:
        spec["tolerations"] = tolerations + added
    # Priority admission.
    if spec.get("priority") is None:
        spec["priority"] = _SYSTEM_PRIORITIES.get(spec.get("priorityClassName") or "", 0)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")


# --------------------------------------------------------------------------- core kinds


def _default_service(obj: dict) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = _dict(_dict(spec, "sessionAffinityConfig"), "clientIP")
        _set(client_ip, "timeoutSeconds", 10800)
    for port in _dicts(spec.get("ports")):
        _set(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    stype = spec["type"]
    if stype in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if stype != "ExternalName":
        _set(spec, "internalTrafficPolicy", "Cluster")
        _set(spec, "ipFamilyPolicy", "SingleStack")
        if not spec.get("ipFamilies"):
            ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
            family = "IPv6" if ips and ":" in str(ips[0]) else "IPv4"
            spec["ipFamilies"] = [family]


def _cluster_ips(spec: dict) -> list:
    return list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))


def prepare_service_update(new: dict, old: dict) -> dict:
    """What the Service REST strategy does to an update before validation (in place, returned).

    Keeps allocated values an update left out (clusterIP(s), nodePorts, healthCheckNodePort) and
    drops fields the new type no longer uses when the update did not change them
    (Kubernetes' patchAllocatedValues and dropTypeDependentFields).
    """
    spec, ospec = _dict(new, "spec"), old.get("spec") if isinstance(old.get("spec"), dict) else {}
    otype, ntype = ospec.get("type") or "ClusterIP", spec.get("type") or "ClusterIP"

    def same(key: str) -> bool:
        return spec.get(key) == ospec.get(key)

    # patchAllocatedValues
    if otype != "ExternalName" and ntype != "ExternalName":
        if _unset(spec, "clusterIP") and ospec.get("clusterIP"):
            spec["clusterIP"] = ospec["clusterIP"]
        if not spec.get("clusterIPs") and ospec.get("clusterIPs") and spec.get("clusterIP") == ospec.get("clusterIP"):
            spec["clusterIPs"] = list(ospec["clusterIPs"])
    if otype in ("NodePort", "LoadBalancer") and ntype in ("NodePort", "LoadBalancer"):
        allocated = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
                     for p in _dicts(ospec.get("ports")) if p.get("nodePort")}
        for p in _dicts(spec.get("ports")):
            if p.get("nodePort") in (None, 0):
                np_ = allocated.get((p.get("port"), p.get("protocol") or "TCP"))
                if np_:
                    p["nodePort"] = np_
        if spec.get("healthCheckNodePort") in (None, 0) and ospec.get("healthCheckNodePort") \
                and spec.get("externalTrafficPolicy") in (None, "Local") and ntype == "LoadBalancer":
            spec["healthCheckNodePort"] = ospec["healthCheckNodePort"]
    if otype == ntype:
        return new
    # dropTypeDependentFields
    if otype != "ExternalName" and ntype == "ExternalName":
        if _cluster_ips(spec) == _cluster_ips(ospec):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if same(key):
                spec.pop(key, None)
    if otype in ("NodePort", "LoadBalancer") and ntype not in ("NodePort", "LoadBalancer"):
        old_np = [p.get("nodePort") for p in _dicts(ospec.get("ports"))]
        new_np = [p.get("nodePort") for p in _dicts(spec.get("ports"))]
        if old_np == new_np:
            for p in _dicts(spec.get("ports")):
                p.pop("nodePort", None)
    if ntype != "LoadBalancer":
        for key in ("healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if same(key):
                spec.pop(key, None)
    if ntype not in ("NodePort", "LoadBalancer") and same("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    return new


def _default_namespace(obj: dict) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        _dict(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = _dict(obj, "spec")
    if spec.get("finalizers") is None:
        spec["finalizers"] = ["kubernetes"]
    _set(_dict(obj, "status"), "phase", "Active")


def _default_secret(obj: dict) -> None:
    _set(obj, "type", "Opaque")
    # stringData is write-only: it is merged into data (base64) and never stored.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(obj, "data")
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v if v is not None else "").encode()).decode()


def _default_endpoints(obj: dict) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            _set(port, "protocol", "TCP")


def _default_endpoint_slice(obj: dict) -> None:
    for port in _dicts(obj.get("ports")):
        _set(port, "protocol", "TCP")
        if port.get("name") is None:
            port["name"] = ""


def _default_node(obj: dict) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


# --------------------------------------------------------------------------- workloads


def _default_deployment(obj: dict) -> None:
    spec = _dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _dict(spec, "strategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(_dict(spec, "template"))


def _default_replica_set(obj: dict) -> None:
    spec = _dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(_dict(spec, "template"))


def _default_stateful_set(obj: dict) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = _dict(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("partition") is None:
            ru["partition"] = 0
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    policy = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    _set(policy, "whenDeleted", "Retain")
    _set(policy, "whenScaled", "Retain")
    for pvc in _dicts(spec.get("volumeClaimTemplates")):
        _default_pvc_spec(_dict(pvc, "spec"))
    default_pod_template(_dict(spec, "template"))


def _default_daemon_set(obj: dict) -> None:
    spec = _dict(obj, "spec")
    strategy = _dict(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(_dict(spec, "template"))


_JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
_CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")


def _default_job(obj: dict) -> None:
    spec = _dict(obj, "spec")
    meta = _dict(obj, "metadata")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    _set(spec, "completionMode", "NonIndexed")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    _set(spec, "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    template = _dict(spec, "template")
    default_pod_template(template, restart_policy=False)
    # The Job strategy generates the selector from the uid the server has just assigned.
    uid = meta.get("uid")
    if uid and not spec.get("manualSelector"):
        labels = _dict(_dict(template, "metadata"), "labels")
        for key in _JOB_NAME_LABELS:
            labels.setdefault(key, meta.get("name", ""))
        for key in _CONTROLLER_UID_LABELS:
            labels.setdefault(key, uid)
        match = _dict(_dict(spec, "selector"), "matchLabels")
        match.setdefault(_CONTROLLER_UID_LABELS[0], uid)
    tmpl_labels = (template.get("metadata") or {}).get("labels")
    if isinstance(tmpl_labels, dict) and tmpl_labels and not meta.get("labels"):
        meta["labels"] = dict(tmpl_labels)


def _default_cron_job(obj: dict) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "concurrencyPolicy", "Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_spec = _dict(_dict(spec, "jobTemplate"), "spec")
    default_pod_template(_dict(job_spec, "template"), restart_policy=False)


_DEFAULTERS: dict[tuple[str, str], Callable[[dict], None]] = {
    ("v1", "Pod"): _default_pod,
    ("v1", "Service"): _default_service,
    ("v1", "Namespace"): _default_namespace,
    ("v1", "Secret"): _default_secret,
    ("v1", "Endpoints"): _default_endpoints,
    ("v1", "Node"): _default_node,
    ("discovery.k8s.io/v1", "EndpointSlice"): _default_endpoint_slice,
    ("apps/v1", "Deployment"): _default_deployment,
    ("apps/v1", "ReplicaSet"): _default_replica_set,
    ("apps/v1", "StatefulSet"): _default_stateful_set,
    ("apps/v1", "DaemonSet"): _default_daemon_set,
    ("batch/v1", "Job"): _default_job,
    ("batch/v1", "CronJob"): _default_cron_job,
}


def apply_defaults(obj: dict, shared: bool = False) -> dict:
    """Fill in Kubernetes' defaults for a known (apiVersion, kind); in place, and returned.

    shared=True (the apiserver): parts of the result may be shared with other objects defaulted
    before (a pod's spec), for callers that never change them in place."""
    if not isinstance(obj, dict):
        return obj
    if shared and obj.get("kind") == "Pod" and obj.get("apiVersion") == "v1":
        _default_pod_memo(obj)
        return obj
    fn = _DEFAULTERS.get((obj.get("apiVersion"), obj.get("kind")))  # type: ignore[arg-type]
    if fn is not None:
        fn(obj)
    return obj
