"""Generate ketch/api/data/schemas.json.gz from the `kubernetes` Python client's models.

Development-time only: ketch never imports `kubernetes` at runtime.  The client's model
classes (pydantic, generated from the Kubernetes OpenAPI spec) carry the field names
(`attribute_map`), the types (`openapi_types`, `model_fields`), the required flags and the
descriptions.  What they lose is recovered here:

* definition names (``V1Pod`` -> ``io.k8s.api.core.v1.Pod``): the group of a class is found
  from the API class that serves it (``AppsV1Api`` -> apps) and, for nested types, from the
  kinds that reach it;
* Quantity / IntOrString / Time / MicroTime / RawExtension / FieldsV1 (plain ``str``,
  ``object`` or ``datetime`` in the client) come back from tables below;
* ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key`` / list types, which
  kubectl's client-side apply reads from the OpenAPI v3 document to build strategic merge
  patches, come from a table of the Go struct tags.

Usage: ``.venv/bin/python tools/gen_schemas.py [--out PATH]``
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import re
import sys
from collections import deque
from pathlib import Path

import kubernetes.client.api as k8s_api
import kubernetes.client.models as k8s_models

REF = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = META + "Time"
MICRO_TIME = META + "MicroTime"
FIELDS_V1 = META + "FieldsV1"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# API class group prefix -> (OpenAPI package prefix, API group name)
GROUPS: dict[str, tuple[str, str]] = {
    "Core": ("io.k8s.api.core", ""),
    "Admissionregistration": ("io.k8s.api.admissionregistration", "admissionregistration.k8s.io"),
    "Apiextensions": ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions", "apiextensions.k8s.io"),
    "Apiregistration": ("io.k8s.kube-aggregator.pkg.apis.apiregistration", "apiregistration.k8s.io"),
    "Apps": ("io.k8s.api.apps", "apps"),
    "Authentication": ("io.k8s.api.authentication", "authentication.k8s.io"),
    "Authorization": ("io.k8s.api.authorization", "authorization.k8s.io"),
    "Autoscaling": ("io.k8s.api.autoscaling", "autoscaling"),
    "Batch": ("io.k8s.api.batch", "batch"),
    "Certificates": ("io.k8s.api.certificates", "certificates.k8s.io"),
    "Coordination": ("io.k8s.api.coordination", "coordination.k8s.io"),
    "Discovery": ("io.k8s.api.discovery", "discovery.k8s.io"),
    "Events": ("io.k8s.api.events", "events.k8s.io"),
    "FlowcontrolApiserver": ("io.k8s.api.flowcontrol", "flowcontrol.apiserver.k8s.io"),
    "Flowcontrol": ("io.k8s.api.flowcontrol", "flowcontrol.apiserver.k8s.io"),
    "InternalApiserver": ("io.k8s.api.apiserverinternal", "internal.apiserver.k8s.io"),
    "Networking": ("io.k8s.api.networking", "networking.k8s.io"),
    "Node": ("io.k8s.api.node", "node.k8s.io"),
    "Policy": ("io.k8s.api.policy", "policy"),
    "RbacAuthorization": ("io.k8s.api.rbac", "rbac.authorization.k8s.io"),
    "Rbac": ("io.k8s.api.rbac", "rbac.authorization.k8s.io"),
    "Resource": ("io.k8s.api.resource", "resource.k8s.io"),
    "Scheduling": ("io.k8s.api.scheduling", "scheduling.k8s.io"),
    "Storage": ("io.k8s.api.storage", "storage.k8s.io"),
    "Storagemigration": ("io.k8s.api.storagemigration", "storagemigration.k8s.io"),
    "Apidiscovery": ("io.k8s.api.apidiscovery", "apidiscovery.k8s.io"),
    "Lifecycle": ("io.k8s.api.lifecycle", "lifecycle.k8s.io"),
}

# Types of k8s.io/apimachinery/pkg/apis/meta/v1.
META_TYPES = {
    "APIGroup", "APIGroupList", "APIResource", "APIResourceList", "APIVersions", "Condition",
    "DeleteOptions", "FieldSelectorRequirement", "GroupVersionForDiscovery", "LabelSelector",
    "LabelSelectorRequirement", "ListMeta", "ManagedFieldsEntry", "ObjectMeta", "OwnerReference",
    "Preconditions", "ServerAddressByClientCIDR", "GroupVersionKind", "ShardInfo", "GroupResource", "Status", "StatusCause", "StatusDetails", "WatchEvent",
}

# Classes served by one API class but belonging to another group.
CLASS_GROUP_OVERRIDES = {
    "V1Scale": "Autoscaling",
    "V1Eviction": "Policy",
    "V1Binding": "Core",
    "V1TopologySelectorTerm": "Core",
    **{f"V1alpha3WorkloadPodGroup{n}": "Scheduling" for n in (
        "DisruptionMode", "GangSchedulingPolicy", "ResourceClaim", "SchedulingConstraints", "SchedulingPolicy")},
    "V1TopologySelectorLabelRequirement": "Core",
    "V2beta1APIGroupDiscovery": "Apidiscovery",
    "V2beta1APIGroupDiscoveryList": "Apidiscovery",
    "V2beta1APIResourceDiscovery": "Apidiscovery",
    "V2beta1APISubresourceDiscovery": "Apidiscovery",
    "V2beta1APIVersionDiscovery": "Apidiscovery",
    "V2APIGroupDiscovery": "Apidiscovery",
    "V2APIGroupDiscoveryList": "Apidiscovery",
    "V2APIResourceDiscovery": "Apidiscovery",
    "V2APISubresourceDiscovery": "Apidiscovery",
    "V2APIVersionDiscovery": "Apidiscovery",
}

# Kinds not served by any API class of the client but which are kinds all the same.
EXTRA_KINDS = {
    "V1Scale": ("autoscaling", "v1", "Scale"),
    "V1Eviction": ("policy", "v1", "Eviction"),
    "V1Binding": ("", "v1", "Binding"),
    "AuthenticationV1TokenRequest": ("authentication.k8s.io", "v1", "TokenRequest"),
    "V1Status": ("", "v1", "Status"),
    "V1WatchEvent": ("", "v1", "WatchEvent"),
    "V1APIResourceList": ("", "v1", "APIResourceList"),
    "V1APIGroupList": ("", "v1", "APIGroupList"),
    "V1APIGroup": ("", "v1", "APIGroup"),
    "V1APIVersions": ("", "v1", "APIVersions"),
}

# (class name without version prefix, json field) -> Quantity.  Maps get Quantity values.
QUANTITY_FIELDS = {
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("ContainerStatus", "allocatedResources"), ("PodStatus", "allocatedResources"),
    ("NodeStatus", "allocatable"), ("NodeStatus", "capacity"), ("Overhead", "podFixed"),
    ("PersistentVolumeClaimStatus", "allocatedResources"), ("PersistentVolumeClaimStatus", "capacity"),
    ("PersistentVolumeSpec", "capacity"), ("PodSpec", "overhead"), ("ResourceQuotaSpec", "hard"),
    ("ResourceQuotaStatus", "hard"), ("ResourceQuotaStatus", "used"),
    ("LimitRangeItem", "default"), ("LimitRangeItem", "defaultRequest"), ("LimitRangeItem", "max"),
    ("LimitRangeItem", "maxLimitRequestRatio"), ("LimitRangeItem", "min"),
    ("EmptyDirVolumeSource", "sizeLimit"), ("ResourceFieldSelector", "divisor"),
    ("CSIStorageCapacity", "capacity"), ("CSIStorageCapacity", "maximumVolumeSize"),
    ("MetricTarget", "value"), ("MetricTarget", "averageValue"),
    ("MetricValueStatus", "value"), ("MetricValueStatus", "averageValue"),
    ("CapacityRequestPolicyRange", "min"), ("CapacityRequestPolicyRange", "max"),
    ("CapacityRequestPolicyRange", "step"), ("CapacityRequestPolicy", "default"),
    ("CapacityRequestPolicy", "validValues"), ("CapacityRequirements", "requests"),
    ("Counter", "value"), ("DeviceCapacity", "value"), ("DeviceRequestAllocationResult", "consumedCapacity"),
    ("NodeAllocatableMappedResources", "quantity"), ("NodeAllocatableMapping", "capacityMultiplier"),
}

MICRO_TIME_FIELDS = {
    ("LeaseSpec", "acquireTime"), ("LeaseSpec", "renewTime"), ("LeaseCandidateSpec", "pingTime"),
    ("LeaseCandidateSpec", "renewTime"), ("Event", "eventTime"), ("EventSeries", "lastObservedTime"),
}

# object-typed fields that are RawExtension / FieldsV1 in the real API.
OBJECT_REFS = {
    ("ControllerRevision", "data"): RAW_EXTENSION,
    ("WatchEvent", "object"): RAW_EXTENSION,
    ("AllocatedDeviceStatus", "data"): RAW_EXTENSION,
    ("OpaqueDeviceConfiguration", "parameters"): RAW_EXTENSION,
    ("ManagedFieldsEntry", "fieldsV1"): FIELDS_V1,
}

# Go struct tags: (class name without version prefix, json field) -> extensions.
_M = "x-kubernetes-patch-merge-key"
_S = "x-kubernetes-patch-strategy"
_LT = "x-kubernetes-list-type"
_LK = "x-kubernetes-list-map-keys"


def _merge(key: str | None, *map_keys: str, retain: bool = False) -> dict:
    ext: dict = {_S: "merge,retainKeys" if retain else "merge"}
    if key:
        ext[_M] = key
    if map_keys:
        ext[_LT] = "map"
        ext[_LK] = list(map_keys)
    return ext


_CONDITIONS = _merge("type", "type")
PATCH_META: dict[tuple[str, str], dict] = {
    ("PodSpec", "volumes"): _merge("name", "name", retain=True),
    ("PodSpec", "initContainers"): _merge("name", "name"),
    ("PodSpec", "containers"): _merge("name", "name"),
    ("PodSpec", "ephemeralContainers"): _merge("name", "name"),
    ("PodSpec", "imagePullSecrets"): _merge("name", "name"),
    ("PodSpec", "hostAliases"): _merge("ip", "ip"),
    ("PodSpec", "topologySpreadConstraints"): _merge("topologyKey", "topologyKey", "whenUnsatisfiable"),
    ("PodSpec", "resourceClaims"): _merge("name", "name", retain=True),
    ("PodSpec", "schedulingGates"): _merge("name", "name"),
    ("PodSpec", "tolerations"): {_LT: "atomic"},
    ("Container", "ports"): _merge("containerPort", "containerPort", "protocol"),
    ("Container", "env"): _merge("name", "name"),
    ("Container", "volumeMounts"): _merge("mountPath", "mountPath"),
    ("Container", "volumeDevices"): _merge("devicePath", "devicePath"),
    ("EphemeralContainer", "ports"): _merge("containerPort", "containerPort", "protocol"),
    ("EphemeralContainer", "env"): _merge("name", "name"),
    ("EphemeralContainer", "volumeMounts"): _merge("mountPath", "mountPath"),
    ("EphemeralContainer", "volumeDevices"): _merge("devicePath", "devicePath"),
    ("PodStatus", "conditions"): _CONDITIONS,
    ("PodStatus", "podIPs"): _merge("ip", "ip"),
    ("PodStatus", "hostIPs"): _merge("ip"),
    ("PodStatus", "resourceClaimStatuses"): _merge("name", "name", retain=True),
    ("NodeStatus", "conditions"): _CONDITIONS,
    ("NodeStatus", "addresses"): _merge("type", "type"),
    ("NodeSpec", "podCIDRs"): {_S: "merge", _LT: "set"},
    ("ObjectMeta", "finalizers"): {_S: "merge", _LT: "set"},
    ("ObjectMeta", "ownerReferences"): _merge("uid", "uid"),
    ("ServiceSpec", "ports"): _merge("port", "port", "protocol"),
    ("ServiceStatus", "conditions"): _CONDITIONS,
    ("PersistentVolumeClaimStatus", "conditions"): _CONDITIONS,
    ("NamespaceStatus", "conditions"): _CONDITIONS,
    ("ServiceAccount", "secrets"): _merge("name"),
    ("ReplicationControllerStatus", "conditions"): _CONDITIONS,
    ("DeploymentStatus", "conditions"): _CONDITIONS,
    ("ReplicaSetStatus", "conditions"): _CONDITIONS,
    ("StatefulSetStatus", "conditions"): _CONDITIONS,
    ("DaemonSetStatus", "conditions"): _CONDITIONS,
    ("JobStatus", "conditions"): {_S: "merge", _M: "type", _LT: "atomic"},
    ("PodDisruptionBudgetStatus", "conditions"): _CONDITIONS,
    ("HorizontalPodAutoscalerStatus", "conditions"): _CONDITIONS,
}

FALLBACK_DESCRIPTIONS = {
    "metadata": "Standard object's metadata. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "spec": "Specification of the desired behavior of the object. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
            "#spec-and-status",
    "status": "Most recently observed status of the object. Populated by the system. Read-only. More info: "
              "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
              "#spec-and-status",
}
LIST_META_DESCRIPTION = ("Standard list metadata. More info: "
                         "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")

SPECIAL_SCHEMAS = {
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number. It provides convenient "
                       "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
                       "accessors. The serialization format is <quantity> ::= <signedNumber><suffix>, "
                       "e.g. 100m, 1Gi, 500M, 2.",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
                       "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
                       "to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "x-kubernetes-int-or-string": True,
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    },
    TIME: {
        "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  "
                       "Wrappers are provided for many of the factory methods that the time package offers.",
        "type": "string",
        "format": "date-time",
    },
    MICRO_TIME: {
        "description": "MicroTime is version of Time with microsecond level precision.",
        "type": "string",
        "format": "date-time",
    },
    FIELDS_V1: {
        "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
    RAW_EXTENSION: {
        "description": "RawExtension is used to hold extensions in external versions: any embedded object "
                       "(with apiVersion and kind).",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
}

_CLASS_RE = re.compile(r"^([A-Z][a-z]+(?:[A-Z][a-z]+)*?)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$")
_API_RE = re.compile(r"^(\w+?)(V\d+(?:alpha\d+|beta\d+)?)Api$")


def split_class(name: str) -> tuple[str | None, str, str] | None:
    """``CoreV1Event`` -> ("Core", "v1", "Event"); ``V1Pod`` -> (None, "v1", "Pod")."""
    m = _CLASS_RE.match(name)
    if not m:
        return None
    prefix, ver, base = m.groups()
    if prefix and prefix not in GROUPS:
        return None
    return prefix, ver[0].lower() + ver[1:], base


def model_classes() -> dict[str, type]:
    """All generated model classes by name."""
    return {n: c for n, c in inspect.getmembers(k8s_models, inspect.isclass)
            if hasattr(c, "openapi_types") and hasattr(c, "attribute_map")}


def referenced(type_str: str, classes: dict[str, type]) -> list[str]:
    """Model class names mentioned in an ``openapi_types`` string."""
    return [t for t in re.findall(r"[A-Za-z0-9_]+", type_str) if t in classes]


def served_classes(classes: dict[str, type]) -> dict[str, set[str]]:
    """class name -> API group prefixes (``Apps``) whose API class returns/accepts it."""
    out: dict[str, set[str]] = {}
    for api_name, api_cls in inspect.getmembers(k8s_api, inspect.isclass):
        m = _API_RE.match(api_name)
        if not m:
            continue
        prefix = m.group(1)
        if prefix not in GROUPS:
            print(f"warning: unknown API group {api_name}", file=sys.stderr)
            continue
        for mname, fn in inspect.getmembers(api_cls, inspect.isfunction):
            if mname.startswith("_"):
                continue
            hints = getattr(fn, "__annotations__", {})
            for key in ("return", "body"):
                for cname in referenced(str(hints.get(key, "")), classes):
                    out.setdefault(cname, set()).add(prefix)
    return out


def _propagate(classes: dict[str, type], group_of: dict[str, str], cross_version: bool) -> None:
    queue = deque(group_of)
    while queue:
        cname = queue.popleft()
        g = group_of[cname]
        for ftype in classes[cname].openapi_types.values():
            for ref in referenced(ftype, classes):
                parts = split_class(ref)
                if parts is None or parts[2] in META_TYPES:
                    continue
                if parts[0] is not None or ref in CLASS_GROUP_OVERRIDES:
                    new = CLASS_GROUP_OVERRIDES.get(ref) or parts[0]
                else:
                    if split_class(cname)[1] != parts[1] and (not cross_version or ref in group_of):
                        continue
                    new = g
                old = group_of.get(ref)
                if old == new or old == "Core":
                    continue
                if old is not None and new != "Core":
                    if not cross_version:
                        print(f"warning: {ref} reached from {old} and {new}", file=sys.stderr)
                    continue
                group_of[ref] = new
                queue.append(ref)


def assign_groups(classes: dict[str, type]) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """Return (class -> definition name, class -> GVK for kinds)."""
    served = served_classes(classes)
    group_of: dict[str, str] = {}
    kinds: dict[str, tuple[str, str, str]] = {}
    for cname, prefixes in served.items():
        parts = split_class(cname)
        if parts is None:
            continue
        prefix, ver, base = parts
        if base in META_TYPES:
            continue
        g = CLASS_GROUP_OVERRIDES.get(cname) or prefix
        if g is None:
            if len(prefixes) > 1:
                print(f"warning: {cname} served by {sorted(prefixes)}", file=sys.stderr)
            g = sorted(prefixes)[0]
        group_of[cname] = g
        if "kind" in classes[cname].attribute_map.values():
            kinds[cname] = (GROUPS[g][1], ver, base)
    for cname, gvk in EXTRA_KINDS.items():
        if cname in classes:
            kinds[cname] = gvk
    for cname, g in CLASS_GROUP_OVERRIDES.items():
        if cname in classes:
            group_of[cname] = g
    # nested types inherit the group of the kinds that reach them (core wins over others);
    # a second pass lets types only reached from another version inherit that group too
    for cross_version in (False, True):
        _propagate(classes, group_of, cross_version)
    names: dict[str, str] = {}
    for cname in classes:
        if cname == "VersionInfo":
            names[cname] = "io.k8s.apimachinery.pkg.version.Info"
            continue
        parts = split_class(cname)
        if parts is None:
            print(f"warning: cannot parse {cname}", file=sys.stderr)
            continue
        prefix, ver, base = parts
        if base in META_TYPES and prefix is None and ver == "v1":
            names[cname] = META + base
            continue
        g = group_of.get(cname) or prefix
        if g is None:
            # unreached by any served kind: fall back to the only other served version of it
            print(f"warning: no group for {cname}", file=sys.stderr)
            continue
        names[cname] = f"{GROUPS[g][0]}.{ver}.{base}"
    return names, kinds


def _strip(t: str) -> str:
    return t.replace(" ", "")


def field_schema(owner_base: str, json_name: str, type_str: str, annotation: object,
                 names: dict[str, str]) -> dict:
    """OpenAPI schema of one field from its ``openapi_types`` string."""
    t = _strip(type_str)
    key = (owner_base, json_name)
    if t.startswith("List[") and t.endswith("]"):
        return {"type": "array", "items": field_schema(owner_base, json_name, t[5:-1], None, names)}
    if t.startswith("Dict[str,") and t.endswith("]"):
        return {"type": "object",
                "additionalProperties": field_schema(owner_base, json_name, t[9:-1], None, names)}
    if t == "str":
        if key in QUANTITY_FIELDS:
            return {"$ref": REF + QUANTITY}
        return {"type": "string"}
    if t == "int":
        return {"type": "integer"}
    if t == "bool":
        return {"type": "boolean"}
    if t == "float":
        return {"type": "number", "format": "double"}
    if t == "bytes":
        return {"type": "string", "format": "byte"}
    if t == "datetime":
        return {"$ref": REF + (MICRO_TIME if key in MICRO_TIME_FIELDS else TIME)}
    if t == "object":
        if key in OBJECT_REFS:
            return {"$ref": REF + OBJECT_REFS[key]}
        ann = str(annotation)
        if "int" in ann and "str" in ann and "Dict" not in ann:
            return {"$ref": REF + INT_OR_STRING}
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if t in names:
        return {"$ref": REF + names[t]}
    raise ValueError(f"unknown type {type_str!r} in {owner_base}.{json_name}")


def _description(cls: type) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    doc = doc.split("Attributes:")[0].strip()
    return "" if doc.startswith("NOTE: This class is auto generated") else doc


def build(classes: dict[str, type], names: dict[str, str],
          kinds: dict[str, tuple[str, str, str]]) -> dict[str, dict]:
    """Definition name -> schema for every model class."""
    defs: dict[str, dict] = dict(SPECIAL_SCHEMAS)
    descs = {names[c]: _description(cls) for c, cls in classes.items() if c in names}
    for cname, cls in sorted(classes.items()):
        if cname not in names:
            continue
        base = split_class(cname)[2] if cname != "VersionInfo" else "Info"
        schema: dict = {}
        desc = descs[names[cname]]
        if desc:
            schema["description"] = desc
        schema["type"] = "object"
        props: dict[str, dict] = {}
        required: list[str] = []
        is_list = cname.endswith("List") and "items" in cls.attribute_map.values()
        for attr, json_name in cls.attribute_map.items():
            finfo = cls.model_fields.get(attr)
            ann = finfo.annotation if finfo else None
            fs = field_schema(base, json_name, cls.openapi_types[attr], ann, names)
            d = (finfo.description if finfo else None) or ""
            if not d and "$ref" in fs:
                if json_name == "metadata" and is_list:
                    d = LIST_META_DESCRIPTION
                else:
                    d = FALLBACK_DESCRIPTIONS.get(json_name) or descs.get(fs["$ref"][len(REF):], "")
            if "$ref" in fs and d:
                fs = {"allOf": [fs]}
            if d:
                fs = {"description": d, **fs}
            fs.update(PATCH_META.get((base, json_name), {}))
            props[json_name] = fs
            if finfo is not None and finfo.is_required():
                required.append(json_name)
        if props:
            schema["properties"] = props
        else:
            schema["x-kubernetes-preserve-unknown-fields"] = True
        if required:
            schema["required"] = required
        if cname in kinds:
            g, v, k = kinds[cname]
            schema["x-kubernetes-group-version-kind"] = [{"group": g, "kind": k, "version": v}]
        defs[names[cname]] = schema
    return defs


def check_refs(defs: dict[str, dict]) -> list[str]:
    """Names referenced but not defined."""
    missing = set()

    def walk(x: object) -> None:
        if isinstance(x, dict):
            r = x.get("$ref")
            if isinstance(r, str) and r[len(REF):] not in defs:
                missing.add(r)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(defs)
    return sorted(missing)


def main(argv: list[str] | None = None) -> int:
    """Generate the schema data file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "ketch/api/data/schemas.json.gz"))
    args = ap.parse_args(argv)
    classes = model_classes()
    names, kinds = assign_groups(classes)
    dupes: dict[str, list[str]] = {}
    for c, n in names.items():
        dupes.setdefault(n, []).append(c)
    for n, cs in dupes.items():
        if len(cs) > 1:
            print(f"warning: {n} from {cs}", file=sys.stderr)
    defs = build(classes, names, kinds)
    missing = check_refs(defs)
    if missing:
        print(f"error: missing definitions {missing}", file=sys.stderr)
        return 1
    data = {"definitions": dict(sorted(defs.items()))}
    raw = json.dumps(data, separators=(",", ":"), sort_keys=False).encode()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(raw)
    print(f"{len(defs)} definitions, {len(raw)} bytes json, {out.stat().st_size} bytes gz -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
