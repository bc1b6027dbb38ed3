"""Generate ketch/api/data/protobuf_schema.json from Kubernetes ``generated.proto`` files.

Development-time only.  The input is a directory of ``.proto`` files as published by
kubernetes/api and kubernetes/apimachinery (``core/v1/generated.proto``, ``apps/v1/...``,
``pkg/apis/meta/v1/...``, ``pkg/runtime/...``, ``pkg/util/intstr/...``,
``pkg/api/resource/...``); comments may be present or stripped.  Field numbers are wire facts
read from those files; what the .proto text does not carry comes from two small tables below:

* INLINE: fields that are Go embedded structs (``json:",inline"``), whose members the JSON
  form hoists into the parent object (``Volume.volumeSource``, ``Probe.handler``, ...);
* KEEP_ZERO: pointer scalars (``*int32``, ``*bool``, ``*string``) for which an explicit zero
  is different from "unset" (``DeploymentSpec.replicas: 0``).  The protobuf encoding writes
  every non-pointer scalar even when zero, so a decoder that wants the JSON that the Go
  serializer would print drops zero scalars except these.

Output format (JSON)::

    {"kinds": {"apps/v1/Deployment": "k8s.io.api.apps.v1.Deployment", ...},
     "messages": {"k8s.io.api.apps.v1.Deployment":
                    {"1": ["metadata", "message", 0, "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", 0],
                     ...}}}

Each field is ``[json name, type, repeated, ref, flags]``; type is a protobuf scalar type
(``string``, ``bool``, ``int32``, ``int64``, ``bytes``, ...), ``message`` (ref = full message
name) or ``map`` (ref = [key type, value type or full message name]); flags is a bit set
(1 = inline, 2 = keep zero).

Usage: ``.venv/bin/python tools/gen_protobuf_schema.py PROTO_DIR [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "ketch" / "api" / "data" / "protobuf_schema.json"

SCALARS = {"string", "bool", "bytes", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float"}

# package -> apiVersion of the kinds it holds
API_VERSIONS = {
    "k8s.io.api.core.v1": "v1",
    "k8s.io.api.apps.v1": "apps/v1",
    "k8s.io.api.batch.v1": "batch/v1",
    "k8s.io.api.autoscaling.v1": "autoscaling/v1",
    "k8s.io.api.autoscaling.v2": "autoscaling/v2",
    "k8s.io.api.authentication.v1": "authentication.k8s.io/v1",
    "k8s.io.api.authorization.v1": "authorization.k8s.io/v1",
}

OBJECT_META = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# (field name, short type name) of Go embedded structs (json:",inline")
INLINE = {
    ("localObjectReference", "LocalObjectReference"),
    ("volumeSource", "VolumeSource"),
    ("persistentVolumeSource", "PersistentVolumeSource"),
    ("ephemeralContainerCommon", "EphemeralContainerCommon"),
    ("handler", "ProbeHandler"),
    ("ingressRuleValue", "IngressRuleValue"),
    ("ruleWithOperations", "RuleWithOperations"),
}

# protobuf field names that differ from the JSON name (go-to-protobuf lower-cases only the first rune)
JSON_NAMES = {"uID": "uid", "aPIVersion": "apiVersion", "aPIGroup": "apiGroup"}

# Message.field of pointer scalars whose explicit zero means something (the Go *T fields)
KEEP_ZERO = {
    "apps.v1.DeploymentSpec": {"replicas", "revisionHistoryLimit", "progressDeadlineSeconds"},
    "apps.v1.ReplicaSetSpec": {"replicas"},
    "apps.v1.StatefulSetSpec": {"replicas", "revisionHistoryLimit"},
    "apps.v1.DaemonSetSpec": {"revisionHistoryLimit"},
    "apps.v1.RollingUpdateStatefulSetStrategy": {"partition"},
    "apps.v1.StatefulSetOrdinals": {"start"},
    "batch.v1.JobSpec": {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                         "backoffLimitPerIndex", "maxFailedIndexes", "manualSelector",
                         "ttlSecondsAfterFinished", "suspend"},
    "batch.v1.CronJobSpec": {"startingDeadlineSeconds", "suspend", "successfulJobsHistoryLimit",
                             "failedJobsHistoryLimit"},
    "batch.v1.SuccessPolicyRule": {"succeededCount"},
    "core.v1.ReplicationControllerSpec": {"replicas"},
    "core.v1.PodSpec": {"terminationGracePeriodSeconds", "activeDeadlineSeconds",
                        "automountServiceAccountToken", "shareProcessNamespace", "priority",
                        "enableServiceLinks", "setHostnameAsFQDN", "hostUsers"},
    "core.v1.PodSecurityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup"},
    "core.v1.SecurityContext": {"privileged", "runAsUser", "runAsGroup", "runAsNonRoot",
                                "readOnlyRootFilesystem", "allowPrivilegeEscalation"},
    "core.v1.WindowsSecurityContextOptions": {"hostProcess"},
    "core.v1.Probe": {"terminationGracePeriodSeconds"},
    "core.v1.ServiceAccount": {"automountServiceAccountToken"},
    "core.v1.ConfigMap": {"immutable"},
    "core.v1.Secret": {"immutable"},
    "core.v1.ConfigMapVolumeSource": {"defaultMode", "optional"},
    "core.v1.SecretVolumeSource": {"defaultMode", "optional"},
    "core.v1.ProjectedVolumeSource": {"defaultMode"},
    "core.v1.DownwardAPIVolumeSource": {"defaultMode"},
    "core.v1.DownwardAPIVolumeFile": {"mode"},
    "core.v1.KeyToPath": {"mode"},
    "core.v1.ConfigMapKeySelector": {"optional"},
    "core.v1.SecretKeySelector": {"optional"},
    "core.v1.ConfigMapEnvSource": {"optional"},
    "core.v1.SecretEnvSource": {"optional"},
    "core.v1.ConfigMapProjection": {"optional"},
    "core.v1.SecretProjection": {"optional"},
    "core.v1.CSIVolumeSource": {"readOnly"},
    "core.v1.ServiceAccountTokenProjection": {"expirationSeconds"},
    "core.v1.ClientIPConfig": {"timeoutSeconds"},
    "core.v1.ServiceSpec": {"allocateLoadBalancerNodePorts"},
    "core.v1.Toleration": {"tolerationSeconds"},
    "core.v1.TopologySpreadConstraint": {"minDomains"},
    "core.v1.PersistentVolumeClaimSpec": {"storageClassName"},
    "core.v1.ContainerStatus": {"started"},
    "autoscaling.v1.HorizontalPodAutoscalerSpec": {"minReplicas", "targetCPUUtilizationPercentage"},
    "autoscaling.v2.HorizontalPodAutoscalerSpec": {"minReplicas"},
    "autoscaling.v2.HPAScalingRules": {"stabilizationWindowSeconds"},
    "autoscaling.v2.MetricTarget": {"averageUtilization"},
    "authentication.v1.TokenRequestSpec": {"expirationSeconds"},
    "meta.v1.ObjectMeta": {"deletionGracePeriodSeconds"},
    "meta.v1.OwnerReference": {"controller", "blockOwnerDeletion"},
}

FIELD_RE = re.compile(
    r"^\s*(?:(optional|required|repeated)\s+([.\w]+)|map\s*<\s*([.\w]+)\s*,\s*([.\w]+)\s*>)"
    r"\s+(\w+)\s*=\s*(\d+)\s*[;\[]")


def strip_comments(text: str) -> str:
    """Drop // and /* */ comments."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_proto(text: str) -> tuple[str, dict[str, list[tuple]]]:
    """(package, {message name: [(label, type, name, number, map key, map value)]}) of one file."""
    text = strip_comments(text)
    m = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
    if not m:
        raise ValueError("no package statement")
    package = m.group(1)
    messages: dict[str, list[tuple]] = {}
    for mm in re.finditer(r"\bmessage\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
        fields = []
        for line in mm.group(2).splitlines():
            fm = FIELD_RE.match(line)
            if not fm:
                continue
            label, ftype, mkey, mval, name, num = fm.groups()
            if mkey:
                fields.append(("map", None, name, int(num), mkey, mval))
            else:
                fields.append((label, ftype, name, int(num), None, None))
        messages[mm.group(1)] = fields
    return package, messages


def resolve(type_name: str, package: str, known: set[str]) -> str:
    """Full name of a message type referenced from `package`."""
    if type_name.startswith("."):
        return type_name[1:]
    if "." in type_name and type_name in known:
        return type_name
    local = f"{package}.{type_name}"
    if local in known:
        return local
    if type_name in known:
        return type_name
    raise KeyError(f"unknown message type {type_name} (from {package})")


def short_pkg(full: str) -> str:
    """'k8s.io.api.apps.v1.DeploymentSpec' -> 'apps.v1.DeploymentSpec' (KEEP_ZERO keys)."""
    for prefix in ("k8s.io.api.", "k8s.io.apimachinery.pkg.apis."):
        if full.startswith(prefix):
            return full[len(prefix):]
    return full


def build(proto_dir: Path) -> dict:
    """Parse every .proto under proto_dir into the decoder's table."""
    parsed: list[tuple[str, dict[str, list[tuple]]]] = []
    for path in sorted(proto_dir.rglob("*.proto")):
        parsed.append(parse_proto(path.read_text()))
    known = {f"{pkg}.{name}" for pkg, msgs in parsed for name in msgs}
    messages: dict[str, dict[str, list]] = {}
    kinds: dict[str, str] = {}
    for pkg, msgs in parsed:
        for name, fields in msgs.items():
            full = f"{pkg}.{name}"
            keep = KEEP_ZERO.get(short_pkg(full), set())
            table: dict[str, list] = {}
            for label, ftype, fname, num, mkey, mval in fields:
                json_name = JSON_NAMES.get(fname, fname)
                flags = 2 if fname in keep else 0
                if label == "map":
                    val = mval if mval in SCALARS else resolve(mval, pkg, known)
                    table[str(num)] = [json_name, "map", 0, [mkey, val], flags]
                elif ftype in SCALARS:
                    table[str(num)] = [json_name, ftype, int(label == "repeated"), None, flags]
                else:
                    ref = resolve(ftype, pkg, known)
                    if (fname, ref.rsplit(".", 1)[1]) in INLINE:
                        flags |= 1
                    table[str(num)] = [json_name, "message", int(label == "repeated"), ref, flags]
            messages[full] = table
            first = table.get("1")
            if (pkg in API_VERSIONS and first and first[0] == "metadata" and first[3] == OBJECT_META
                    and not name.endswith("Spec") and name != "PersistentVolumeClaimTemplate"):
                kinds[f"{API_VERSIONS[pkg]}/{name}"] = full
    for full, keep_names in KEEP_ZERO.items():
        for candidate in (f"k8s.io.api.{full}", f"k8s.io.apimachinery.pkg.apis.{full}"):
            if candidate in messages:
                missing = keep_names - {f[0] for f in messages[candidate].values()}
                if missing:
                    raise KeyError(f"KEEP_ZERO names unknown fields of {full}: {sorted(missing)}")
    return {"kinds": dict(sorted(kinds.items())), "messages": dict(sorted(messages.items()))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("proto_dir", type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    table = build(args.proto_dir)
    args.out.write_text(json.dumps(table, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"{args.out}: {len(table['kinds'])} kinds, {len(table['messages'])} messages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
