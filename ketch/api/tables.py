"""Server-side Table output (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``).

Columns and cells follow kube-apiserver's printers (pkg/printers/internalversion):
the server always generates the wide (priority 1) cells too, ``kubectl get`` hides
them unless ``-o wide``.  Kinds without a printer get the default NAME/AGE table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from ketch.api.selectors import SelectorError, format_label_selector, format_labels, label_selector_from_spec

__all__ = ["column_definitions", "row_cells", "table", "human_duration", "partial_object_metadata", "supported_kinds"]

_DESC: dict[str, str] = {
    'name': 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
    'age': 'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata',
    'podIP': 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.',
    'nodeName': 'NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename',
    'nominatedNodeName': 'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.',
    'readinessGates': 'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
    'rs.spec.replicas': 'Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset',
    'rs.status.replicas': 'Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset',
    'rs.status.readyReplicas': 'The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.',
    'ds.desired': 'The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/',
    'ds.current': 'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/',
    'ds.ready': 'numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.',
    'ds.updated': 'The total number of nodes that are running updated daemon pod',
    'ds.available': 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)',
    'nodeSelector': "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    'job.succeeded': 'The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.',
    'cj.schedule': 'The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.',
    'cj.timeZone': 'The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones',
    'cj.suspend': 'This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.\n\nDefaults to false.',
    'cj.active': 'A list of pointers to currently running jobs.',
    'cj.lastScheduleTime': 'Information when was the last time the job was successfully scheduled.',
    'svc.type': 'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. "ExternalName" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types',
    'svc.clusterIP': 'clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).\n\nValid values are "None", empty string (""), or a valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.\n\nOnly applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies',
    'svc.ports': 'The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies',
    'svc.selector': 'Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/',
    'ep.subsets': 'The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.',
    'node.kubeletVersion': 'Kubelet Version reported by the node.',
    'node.addresses': "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).",
    'node.osImage': 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).',
    'node.kernelVersion': "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    'node.containerRuntimeVersion': 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).',
    'ev.lastTimestamp': 'The time at which the most recent occurrence of this event was recorded.',
    'ev.type': 'Type of this event (Normal, Warning), new types could be added in the future',
    'ev.reason': "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    'ev.fieldPath': 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: "spec.containers{name}" (where "name" refers to the name of the container that triggered the event) or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.',
    'ev.message': 'A human-readable description of the status of this operation.',
    'ev.firstTimestamp': 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)',
    'ev.count': 'The number of times this event has occurred.',
    'secret.type': 'Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types',
    'secret.data': "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    'sa.secrets': 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a "kubernetes.io/enforce-mountable-secrets" annotation set to "true". The "kubernetes.io/enforce-mountable-secrets" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret',
    'deploy.updatedReplicas': 'Total number of non-terminating pods targeted by this deployment that have the desired template spec.',
    'deploy.availableReplicas': 'Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.',
    'hpa.metrics': 'metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).\n\nThe desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.\n\nErgo, metrics used must decrease as the pod count is increased, and vice-versa.\n\nSee the individual metric source types for more information about how each type of metric must respond. If not set, the default metric will be set to 80% average CPU utilization.',
    'hpa.minReplicas': 'minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.\n\nIt defaults to 1 pod.\n\nminReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.\n\nScaling is active as long as at least one metric value is available.',
    'hpa.maxReplicas': 'maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.',
    'hpa.currentReplicas': 'currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.',
    'cm.data': "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    'lease.holderIdentity': 'holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.',
    'eps.addressType': 'addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType "IPv4" and "IPv6". No semantics are defined for the "FQDN" type.',
    'eps.ports': 'ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.',
    'eps.endpoints': 'endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.',
}
_DESC.update({
    "rs.selector": "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "deploy.selector": "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.",
    "ds.selector": "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "job.selector": "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "svc.externalIPs": "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    "ev.involvedObject": "The object that this event is about.",
    "ev.source": "The component reporting this event. Should be a short machine understandable string.",
    "hpa.scaleTargetRef": "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
})


# --------------------------------------------------------------------------- helpers

def human_duration(seconds: float) -> str:
    """apimachinery duration.HumanDuration: '45s', '2m30s', '10m', '3h5m', '4d', '2y120d' ..."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _ts(value: object) -> float | None:
    """An RFC 3339 timestamp as epoch seconds (None when unset or unparsable)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z")).timestamp()
    except ValueError:
        return None


def _since(value: object, now: float) -> str:
    """translateTimestampSince: the age of a timestamp, '<unknown>' when unset."""
    t = _ts(value)
    if t is None:
        return "<unknown>"
    return human_duration(now - t)


def _d(obj: dict | None, *path: str) -> object:
    cur: object = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _dict(obj: dict | None, *path: str) -> dict:
    v = _d(obj, *path)
    return v if isinstance(v, dict) else {}


def _list(obj: dict | None, *path: str) -> list:
    v = _d(obj, *path)
    return v if isinstance(v, list) else []


def _int(v: object, default: int = 0) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _name(obj: dict) -> str:
    return str(_d(obj, "metadata", "name") or "")


def _age(obj: dict, now: float) -> str:
    return _since(_d(obj, "metadata", "creationTimestamp"), now)


def _containers(template_spec: dict) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma-joined."""
    cs = [c for c in _list(template_spec, "containers") if isinstance(c, dict)]
    return ",".join(str(c.get("name", "")) for c in cs), ",".join(str(c.get("image", "")) for c in cs)


def _more(items: list[str], count: int, limit: int, unset: str = "<unset>") -> str:
    ret = ",".join(items)
    if count > limit:
        return f"{ret} + {count - limit} more..."
    return ret or unset


def _bool_ptr(v: object) -> str:
    if v is None:
        return "<unset>"
    return "True" if v else "False"


def _col(name: str, typ: str, desc: str, priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": typ, "format": fmt, "description": _DESC.get(desc, desc), "priority": priority}


def _name_col(priority: int = 0) -> dict:
    return _col("Name", "string", "name", priority, "name")


def _age_col() -> dict:
    return _col("Age", "string", "age")


_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."


# --------------------------------------------------------------------------- pods

def _is_restartable_init(c: dict | None) -> bool:
    return bool(c) and c.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _has_condition(conditions: list, ctype: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == ctype and c.get("status") == "True" for c in conditions)


def _pod_cells(pod: dict, now: float) -> list:
    spec = _dict(pod, "spec")
    status = _dict(pod, "status")
    conditions = _list(status, "conditions")
    restarts = 0
    sidecar_restarts = 0
    total = len(_list(spec, "containers"))
    ready = 0
    last_restart = 0.0
    last_sidecar_restart = 0.0

    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    for c in conditions:
        if isinstance(c, dict) and c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs: dict[str, dict] = {}
    for c in _list(spec, "initContainers"):
        if isinstance(c, dict):
            init_specs[str(c.get("name"))] = c
            if _is_restartable_init(c):
                total += 1

    def finished(cs: dict) -> float:
        return _ts(_d(cs, "lastState", "terminated", "finishedAt")) or 0.0

    initializing = False
    n_init = len(_list(spec, "initContainers"))
    for i, cs in enumerate(_list(status, "initContainerStatuses")):
        if not isinstance(cs, dict):
            continue
        rc = _int(cs.get("restartCount"))
        restarts += rc
        last_restart = max(last_restart, finished(cs))
        sidecar = _is_restartable_init(init_specs.get(str(cs.get("name"))))
        if sidecar:
            sidecar_restarts += rc
            last_sidecar_restart = max(last_sidecar_restart, finished(cs))
        state = _dict(cs, "state")
        term = state.get("terminated") if isinstance(state.get("terminated"), dict) else None
        wait = state.get("waiting") if isinstance(state.get("waiting"), dict) else None
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if _int(term.get("signal")):
                    reason = f"Init:Signal:{_int(term.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_int(term.get('exitCode'))}"
            else:
                reason = "Init:" + str(term["reason"])
        elif wait is not None and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + str(wait["reason"])
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(_list(status, "containerStatuses")):
            if not isinstance(cs, dict):
                continue
            restarts += _int(cs.get("restartCount"))
            last_restart = max(last_restart, finished(cs))
            state = _dict(cs, "state")
            term = state.get("terminated") if isinstance(state.get("terminated"), dict) else None
            wait = state.get("waiting") if isinstance(state.get("waiting"), dict) else None
            if wait is not None and wait.get("reason"):
                reason = str(wait["reason"])
            elif term is not None and term.get("reason"):
                reason = str(term["reason"])
            elif term is not None:
                if _int(term.get("signal")):
                    reason = f"Signal:{_int(term.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(term.get('exitCode'))}"
            elif cs.get("ready") and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(conditions, "Ready") else "NotReady"

    deleting = _d(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last_restart:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"

    ips = _list(status, "podIPs")
    pod_ip = str(ips[0].get("ip") or "") if ips and isinstance(ips[0], dict) else ""
    pod_ip = pod_ip or str(status.get("podIP") or "") or "<none>"
    gates = _list(spec, "readinessGates")
    gates_str = "<none>"
    if gates:
        true_count = 0
        for g in gates:
            ctype = g.get("conditionType") if isinstance(g, dict) else None
            for c in conditions:
                if isinstance(c, dict) and c.get("type") == ctype:
                    true_count += c.get("status") == "True"
                    break
        gates_str = f"{true_count}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_str, _age(pod, now),
            pod_ip, str(spec.get("nodeName") or "<none>"), str(status.get("nominatedNodeName") or "<none>"), gates_str]


def _pod_conditions(pod: dict) -> list[dict] | None:
    phase = _d(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# --------------------------------------------------------------------------- workloads

def _deployment_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    desired = _int(spec.get("replicas"), 1) if spec.get("replicas") is not None else 1
    try:
        selector = str(label_selector_from_spec(spec.get("selector")))
    except SelectorError:
        selector = "<invalid>"
    names, images = _containers(_dict(spec, "template", "spec"))
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{desired}", _int(status.get("updatedReplicas")),
            _int(status.get("availableReplicas")), _age(obj, now), names, images, selector]


def _replicaset_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    desired = _int(spec.get("replicas"), 1) if spec.get("replicas") is not None else 1
    names, images = _containers(_dict(spec, "template", "spec"))
    return [_name(obj), desired, _int(status.get("replicas")), _int(status.get("readyReplicas")), _age(obj, now),
            names, images, format_label_selector(spec.get("selector"))]


def _replicationcontroller_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    desired = _int(spec.get("replicas"), 1) if spec.get("replicas") is not None else 1
    names, images = _containers(_dict(spec, "template", "spec"))
    return [_name(obj), desired, _int(status.get("replicas")), _int(status.get("readyReplicas")), _age(obj, now),
            names, images, format_labels(spec.get("selector"))]


def _statefulset_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    desired = _int(spec.get("replicas"), 1) if spec.get("replicas") is not None else 1
    names, images = _containers(_dict(spec, "template", "spec"))
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{desired}", _age(obj, now), names, images]


def _daemonset_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    names, images = _containers(_dict(spec, "template", "spec"))
    return [_name(obj), _int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
            _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
            _int(status.get("numberAvailable")), format_labels(_dict(spec, "template", "spec", "nodeSelector")),
            _age(obj, now), names, images, format_label_selector(spec.get("selector"))]


def _job_condition(conditions: list, ctype: str) -> bool:
    for c in conditions:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def _job_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    else:
        parallelism = _int(spec.get("parallelism"))
        completions = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start, end = _ts(status.get("startTime")), _ts(status.get("completionTime"))
    if start is None:
        duration = ""
    elif end is None:
        duration = human_duration(now - start)
    else:
        duration = human_duration(end - start)
    conds = _list(status, "conditions")
    if _job_condition(conds, "Complete"):
        state = "Complete"
    elif _job_condition(conds, "Failed"):
        state = "Failed"
    elif _d(obj, "metadata", "deletionTimestamp") is not None:
        state = "Terminating"
    elif _job_condition(conds, "Suspended"):
        state = "Suspended"
    elif _job_condition(conds, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_dict(spec, "template", "spec"))
    return [_name(obj), state, completions, duration, _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))]


def _cronjob_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    last = status.get("lastScheduleTime")
    job_spec = _dict(spec, "jobTemplate", "spec")
    names, images = _containers(_dict(job_spec, "template", "spec"))
    return [_name(obj), str(spec.get("schedule") or ""), str(spec.get("timeZone") or "<none>"),
            _bool_ptr(spec.get("suspend")), len(_list(status, "active")),
            _since(last, now) if last else "<none>", _age(obj, now), names, images,
            format_label_selector(job_spec.get("selector"))]


def _hpa_metrics(specs: list, statuses: list) -> str:
    if not specs:
        return "<none>"
    out: list[str] = []
    for i, m in enumerate(specs):
        m = m if isinstance(m, dict) else {}
        st = statuses[i] if i < len(statuses) and isinstance(statuses[i], dict) else {}
        mtype = m.get("type")
        key = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
               "Object": "object", "External": "external"}.get(str(mtype))
        if key is None:
            out.append("<unknown type>")
            continue
        target = _dict(m, key, "target")
        current = _dict(st, key, "current")
        if key in ("resource", "containerResource") and target.get("averageValue") is None:
            cur = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None and st.get(key) else "<unknown>"
            tgt = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
            out.append(f"{cur}/{tgt}")
        elif key in ("resource", "containerResource", "pods"):
            cur = str(current.get("averageValue")) if st.get(key) and current.get("averageValue") is not None else "<unknown>"
            out.append(f"{cur}/{target.get('averageValue')}")
        elif target.get("averageValue") is not None:
            cur = str(current.get("averageValue")) if st.get(key) and current.get("averageValue") is not None else "<unknown>"
            out.append(f"{cur}/{target.get('averageValue')} (avg)")
        else:
            cur = str(current.get("value")) if st.get(key) and current.get("value") is not None else "<unknown>"
            out.append(f"{cur}/{target.get('value')}")
    if len(out) > 2:
        return ", ".join(out[:2]) + f" + {len(out) - 2} more..."
    return ", ".join(out)


def _hpa_cells(obj: dict, now: float) -> list:
    spec, status = _dict(obj, "spec"), _dict(obj, "status")
    ref = _dict(spec, "scaleTargetRef")
    if spec.get("metrics") is None and spec.get("targetCPUUtilizationPercentage") is not None:
        # autoscaling/v1 shape
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": spec["targetCPUUtilizationPercentage"]}}}]
        cur = status.get("currentCPUUtilizationPercentage")
        statuses = [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cur}}}] \
            if cur is not None else []
    else:
        metrics, statuses = _list(spec, "metrics"), _list(status, "currentMetrics")
    min_pods = str(_int(spec["minReplicas"])) if spec.get("minReplicas") is not None else "<unset>"
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_metrics(metrics, statuses), min_pods,
            _int(spec.get("maxReplicas")), _int(status.get("currentReplicas")), _age(obj, now)]


# --------------------------------------------------------------------------- core

def _service_cells(obj: dict, now: float) -> list:
    spec = _dict(obj, "spec")
    status = _dict(obj, "status")
    stype = str(spec.get("type") or "ClusterIP")
    ips = _list(spec, "clusterIPs")
    cluster_ip = str(ips[0]) if ips else str(spec.get("clusterIP") or "<none>")
    external = [str(x) for x in _list(spec, "externalIPs")]
    if stype in ("ClusterIP", "NodePort"):
        ext = ",".join(external) if external else "<none>"
    elif stype == "LoadBalancer":
        lb = sorted({str(i.get("ip") or i.get("hostname")) for i in _list(status, "loadBalancer", "ingress")
                     if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))})
        if external:
            ext = ",".join(lb + external)
        elif lb:
            ext = ",".join(lb)  # wide: not clipped to 16 characters
        else:
            ext = "<pending>"
    elif stype == "ExternalName":
        ext = str(spec.get("externalName") or "")
    else:
        ext = "<unknown>"
    pieces = []
    for p in _list(spec, "ports"):
        if not isinstance(p, dict):
            continue
        proto = p.get("protocol") or "TCP"
        if _int(p.get("nodePort")) > 0:
            pieces.append(f"{_int(p.get('port'))}:{_int(p.get('nodePort'))}/{proto}")
        else:
            pieces.append(f"{_int(p.get('port'))}/{proto}")
    return [_name(obj), stype, cluster_ip, ext, ",".join(pieces) or "<none>", _age(obj, now),
            format_labels(spec.get("selector"))]


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _endpoints_cells(obj: dict, now: float) -> list:
    subsets = [s for s in _list(obj, "subsets") if isinstance(s, dict)]
    if not subsets:
        text = "<none>"
    else:
        items: list[str] = []
        count = 0
        for ss in subsets:
            addrs = [str(a.get("ip", "")) for a in _list(ss, "addresses") if isinstance(a, dict)]
            ports = [p for p in _list(ss, "ports") if isinstance(p, dict)]
            if not ports:
                count += len(addrs)
                items.extend(addrs[: max(0, 3 - len(items))])
                continue
            for p in ports:
                count += len(addrs)
                for a in addrs:
                    if len(items) == 3:
                        break
                    items.append(_join_host_port(a, _int(p.get("port"))))
        text = ",".join(items)
        if count > 3:
            text = f"{text} + {count - 3} more..."
    return [_name(obj), text, _age(obj, now)]


def _endpointslice_cells(obj: dict, now: float) -> list:
    ports: list[str] = []
    pcount = 0
    for p in _list(obj, "ports"):
        if not isinstance(p, dict):
            continue
        if len(ports) < 3:
            if p.get("port") is not None:
                ports.append(str(_int(p["port"])))
            elif p.get("name") is not None:
                ports.append(str(p["name"]))
            else:
                ports.append("*")
        pcount += 1
    addrs: list[str] = []
    acount = 0
    for e in _list(obj, "endpoints"):
        for a in _list(e, "addresses") if isinstance(e, dict) else []:
            if len(addrs) < 3:
                addrs.append(str(a))
            acount += 1
    return [_name(obj), str(obj.get("addressType") or ""), _more(ports, pcount, 3), _more(addrs, acount, 3),
            _age(obj, now)]


def _node_cells(obj: dict, now: float) -> list:
    status = _dict(obj, "status")
    conds = {c.get("type"): c for c in _list(status, "conditions") if isinstance(c, dict)}
    states: list[str] = []
    ready = conds.get("Ready")
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if _d(obj, "spec", "unschedulable"):
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for k, v in _dict(obj, "metadata", "labels").items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/"):]:
            roles.add(k[len("node-role.kubernetes.io/"):])
        elif k == "kubernetes.io/role" and v:
            roles.add(str(v))
    info = _dict(status, "nodeInfo")

    def addr(kind: str) -> str:
        for a in _list(status, "addresses"):
            if isinstance(a, dict) and a.get("type") == kind:
                return str(a.get("address", ""))
        return "<none>"

    return [_name(obj), ",".join(states), ",".join(sorted(roles)) or "<none>", _age(obj, now),
            str(info.get("kubeletVersion") or ""), addr("InternalIP"), addr("ExternalIP"),
            str(info.get("osImage") or "<unknown>"), str(info.get("kernelVersion") or "<unknown>"),
            str(info.get("containerRuntimeVersion") or "<unknown>")]


def _event_cells(obj: dict, now: float) -> list:
    if str(obj.get("apiVersion", "")).startswith("events.k8s.io/"):
        obj = _events_v1_as_core(obj)
    first = obj.get("firstTimestamp")
    first_s = _since(first, now) if _ts(first) is not None else _since(obj.get("eventTime"), now)
    last = obj.get("lastTimestamp")
    last_s = _since(last, now) if _ts(last) is not None else first_s
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last_s = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    inv = _dict(obj, "involvedObject")
    kind = str(inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = _dict(obj, "source")
    component = str(src.get("component") or obj.get("reportingComponent") or "")
    instance = str(src.get("host") or obj.get("reportingInstance") or "")
    source = f"{component}, {instance}" if instance else component
    return [last_s, str(obj.get("type") or ""), str(obj.get("reason") or ""), target,
            str(inv.get("fieldPath") or ""), source, str(obj.get("message") or "").strip(), first_s, count,
            _name(obj)]


def _events_v1_as_core(ev: dict) -> dict:
    """Map an events.k8s.io/v1 Event onto the core/v1 field names the printer reads."""
    out = dict(ev)
    out["involvedObject"] = ev.get("regarding") or {}
    out["message"] = ev.get("note", "")
    out["source"] = ev.get("deprecatedSource") or {}
    out["firstTimestamp"] = ev.get("deprecatedFirstTimestamp")
    out["lastTimestamp"] = ev.get("deprecatedLastTimestamp")
    out["count"] = ev.get("deprecatedCount", 0)
    out["reportingComponent"] = ev.get("reportingController", "")
    return out


def _namespace_cells(obj: dict, now: float) -> list:
    return [_name(obj), str(_d(obj, "status", "phase") or "Active"), _age(obj, now)]


def _configmap_cells(obj: dict, now: float) -> list:
    return [_name(obj), len(_dict(obj, "data")) + len(_dict(obj, "binaryData")), _age(obj, now)]


def _secret_cells(obj: dict, now: float) -> list:
    return [_name(obj), str(obj.get("type") or "Opaque"), len(_dict(obj, "data")), _age(obj, now)]


def _serviceaccount_cells(obj: dict, now: float) -> list:
    return [_name(obj), len(_list(obj, "secrets")), _age(obj, now)]


def _lease_cells(obj: dict, now: float) -> list:
    return [_name(obj), str(_d(obj, "spec", "holderIdentity") or ""), _age(obj, now)]


def _default_cells(obj: dict, now: float) -> list:
    return [_name(obj), _age(obj, now)]


# --------------------------------------------------------------------------- registry

_PRINTERS: dict[str, tuple[Callable[[], list[dict]], Callable[[dict, float], list]]] = {}


def _printer(kind: str, columns: list[dict], cells: Callable[[dict, float], list]) -> None:
    _PRINTERS[kind] = (lambda: [dict(c) for c in columns], cells)


_printer("Pod", [
    _name_col(),
    _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "string", "The aggregate status of the containers in this pod."),
    _col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    _age_col(),
    _col("IP", "string", "podIP", 1),
    _col("Node", "string", "nodeName", 1),
    _col("Nominated Node", "string", "nominatedNodeName", 1),
    _col("Readiness Gates", "string", "readinessGates", 1),
], _pod_cells)

_printer("Deployment", [
    _name_col(),
    _col("Ready", "string", "Number of the pod with ready state"),
    _col("Up-to-date", "string", "deploy.updatedReplicas"),
    _col("Available", "string", "deploy.availableReplicas"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
    _col("Selector", "string", "deploy.selector", 1),
], _deployment_cells)

_printer("ReplicaSet", [
    _name_col(),
    _col("Desired", "integer", "rs.spec.replicas"),
    _col("Current", "integer", "rs.status.replicas"),
    _col("Ready", "integer", "rs.status.readyReplicas"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
    _col("Selector", "string", "rs.selector", 1),
], _replicaset_cells)

_printer("ReplicationController", [
    _name_col(),
    _col("Desired", "integer", "rs.spec.replicas"),
    _col("Current", "integer", "rs.status.replicas"),
    _col("Ready", "integer", "rs.status.readyReplicas"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
    _col("Selector", "string", "rs.selector", 1),
], _replicationcontroller_cells)

_printer("StatefulSet", [
    _name_col(),
    _col("Ready", "string", "Number of the pod with ready state"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
], _statefulset_cells)

_printer("DaemonSet", [
    _name_col(),
    _col("Desired", "integer", "ds.desired"),
    _col("Current", "integer", "ds.current"),
    _col("Ready", "integer", "ds.ready"),
    _col("Up-to-date", "integer", "ds.updated"),
    _col("Available", "integer", "ds.available"),
    _col("Node Selector", "string", "nodeSelector"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
    _col("Selector", "string", "ds.selector", 1),
], _daemonset_cells)

_printer("Job", [
    _name_col(),
    _col("Status", "string", "Status of the job."),
    _col("Completions", "string", "job.succeeded"),
    _col("Duration", "string", "Time required to complete the job."),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
    _col("Selector", "string", "job.selector", 1),
], _job_cells)

_printer("CronJob", [
    _name_col(),
    _col("Schedule", "string", "cj.schedule"),
    _col("Timezone", "string", "cj.timeZone"),
    _col("Suspend", "boolean", "cj.suspend"),
    _col("Active", "integer", "cj.active"),
    _col("Last Schedule", "string", "cj.lastScheduleTime"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS, 1),
    _col("Images", "string", _IMAGES, 1),
    _col("Selector", "string", "job.selector", 1),
], _cronjob_cells)

_printer("HorizontalPodAutoscaler", [
    _name_col(),
    _col("Reference", "string", "hpa.scaleTargetRef"),
    _col("Targets", "string", "hpa.metrics"),
    _col("MinPods", "string", "hpa.minReplicas"),
    _col("MaxPods", "string", "hpa.maxReplicas"),
    _col("Replicas", "string", "hpa.currentReplicas"),
    _age_col(),
], _hpa_cells)

_printer("Service", [
    _name_col(),
    _col("Type", "string", "svc.type"),
    _col("Cluster-IP", "string", "svc.clusterIP"),
    _col("External-IP", "string", "svc.externalIPs"),
    _col("Port(s)", "string", "svc.ports"),
    _age_col(),
    _col("Selector", "string", "svc.selector", 1),
], _service_cells)

_printer("Endpoints", [
    _name_col(),
    _col("Endpoints", "string", "ep.subsets"),
    _age_col(),
], _endpoints_cells)

_printer("EndpointSlice", [
    _name_col(),
    _col("AddressType", "string", "eps.addressType"),
    _col("Ports", "string", "eps.ports"),
    _col("Endpoints", "string", "eps.endpoints"),
    _age_col(),
], _endpointslice_cells)

_printer("Node", [
    _name_col(),
    _col("Status", "string", "The status of the node"),
    _col("Roles", "string", "The roles of the node"),
    _age_col(),
    _col("Version", "string", "node.kubeletVersion"),
    _col("Internal-IP", "string", "node.addresses", 1),
    _col("External-IP", "string", "node.addresses", 1),
    _col("OS-Image", "string", "node.osImage", 1),
    _col("Kernel-Version", "string", "node.kernelVersion", 1),
    _col("Container-Runtime", "string", "node.containerRuntimeVersion", 1),
], _node_cells)

_printer("Event", [
    _col("Last Seen", "string", "ev.lastTimestamp"),
    _col("Type", "string", "ev.type"),
    _col("Reason", "string", "ev.reason"),
    _col("Object", "string", "ev.involvedObject"),
    _col("Subobject", "string", "ev.fieldPath", 1),
    _col("Source", "string", "ev.source", 1),
    _col("Message", "string", "ev.message"),
    _col("First Seen", "string", "ev.firstTimestamp", 1),
    _col("Count", "string", "ev.count", 1),
    _name_col(priority=1),
], _event_cells)

_printer("Namespace", [
    _name_col(),
    _col("Status", "string", "The status of the namespace"),
    _age_col(),
], _namespace_cells)

_printer("ConfigMap", [
    _name_col(),
    _col("Data", "string", "cm.data"),
    _age_col(),
], _configmap_cells)

_printer("Secret", [
    _name_col(),
    _col("Type", "string", "secret.type"),
    _col("Data", "string", "secret.data"),
    _age_col(),
], _secret_cells)

_printer("ServiceAccount", [
    _name_col(),
    _col("Secrets", "string", "sa.secrets"),
    _age_col(),
], _serviceaccount_cells)

_printer("Lease", [
    _name_col(),
    _col("Holder", "string", "lease.holderIdentity"),
    _age_col(),
], _lease_cells)

_DEFAULT_COLUMNS = [_name_col(), _age_col()]


def supported_kinds() -> list[str]:
    """Kinds with a dedicated printer (all others get NAME/AGE)."""
    return list(_PRINTERS)


def column_definitions(kind: str) -> list[dict]:
    """The Table column definitions kube-apiserver returns for a kind (priority 1 = ``-o wide``)."""
    entry = _PRINTERS.get(kind)
    return entry[0]() if entry else [dict(c) for c in _DEFAULT_COLUMNS]


def row_cells(kind: str, obj: dict, now: float | None = None) -> list:
    """The cells of one object's row (all columns, including wide ones)."""
    entry = _PRINTERS.get(kind)
    cells = entry[1] if entry else _default_cells
    return cells(obj, time.time() if now is None else now)


def partial_object_metadata(obj: dict) -> dict:
    """A meta.k8s.io/v1 PartialObjectMetadata for an object."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def _row(kind: str, obj: dict, include_object: str, now: float) -> dict:
    row: dict = {"cells": row_cells(kind, obj, now)}
    if kind == "Pod":
        conds = _pod_conditions(obj)
        if conds:
            row["conditions"] = conds
    mode = (include_object or "Metadata").lower()
    if mode == "metadata":
        row["object"] = partial_object_metadata(obj)
    elif mode == "object":
        row["object"] = obj
    return row


def table(kind: str, objs: list[dict], include_object: str = "Metadata", resource_version: str = "",
          continue_token: str = "", remaining: int | None = None, with_columns: bool = True,
          now: float | None = None) -> dict:
    """Build a meta.k8s.io/v1 Table for objects of one kind.

    ``include_object``: ``None`` (no object), ``Metadata`` (PartialObjectMetadata) or ``Object``.
    ``with_columns=False`` leaves ``columnDefinitions`` empty (watch events after the first).
    """
    if include_object not in ("None", "Metadata", "Object", "", None):
        raise ValueError(f"includeObject must be one of None, Metadata, Object; got {include_object!r}")
    t = time.time() if now is None else now
    meta: dict = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": column_definitions(kind) if with_columns else [],
        "rows": [_row(kind, o, include_object or "Metadata", t) for o in objs],
    }
