"""A minimal protobuf codec for the CRI v1 messages ketch uses (field numbers from cri-api api.proto).

A schema maps a field name to (number, kind, repeated); kind is one of "string", "bytes", "int"
(int32/int64/uint*/enum), "bool", "map" (map<string, string>) or the name of another message.
Messages are plain dicts; unknown fields are skipped when decoding.
"""

from __future__ import annotations

Field = tuple[int, str, bool]

S, N, B = "string", "int", "bool"


def _f(num: int, kind: str, rep: bool = False) -> Field:
    return (num, kind, rep)


SCHEMAS: dict[str, dict[str, Field]] = {
    "Empty": {},
    "VersionRequest": {"version": _f(1, S)},
    "VersionResponse": {"version": _f(1, S), "runtime_name": _f(2, S), "runtime_version": _f(3, S),
                        "runtime_api_version": _f(4, S)},
    "PortMapping": {"protocol": _f(1, N), "container_port": _f(2, N), "host_port": _f(3, N), "host_ip": _f(4, S)},
    "Mount": {"container_path": _f(1, S), "host_path": _f(2, S), "readonly": _f(3, B), "propagation": _f(5, N)},
    "NamespaceOption": {"network": _f(1, N), "pid": _f(2, N), "ipc": _f(3, N), "target_id": _f(4, S)},
    "Int64Value": {"value": _f(1, N)},
    "LinuxSandboxSecurityContext": {"namespace_options": _f(1, "NamespaceOption"), "run_as_user": _f(3, "Int64Value"),
                                    "readonly_rootfs": _f(4, B), "privileged": _f(6, B),
                                    "run_as_group": _f(8, "Int64Value")},
    "LinuxPodSandboxConfig": {"cgroup_parent": _f(1, S), "security_context": _f(2, "LinuxSandboxSecurityContext"),
                              "sysctls": _f(3, "map")},
    "PodSandboxMetadata": {"name": _f(1, S), "uid": _f(2, S), "namespace": _f(3, S), "attempt": _f(4, N)},
    "DNSConfig": {"servers": _f(1, S, True), "searches": _f(2, S, True), "options": _f(3, S, True)},
    "PodSandboxConfig": {"metadata": _f(1, "PodSandboxMetadata"), "hostname": _f(2, S), "log_directory": _f(3, S),
                         "dns_config": _f(4, "DNSConfig"), "port_mappings": _f(5, "PortMapping", True),
                         "labels": _f(6, "map"), "annotations": _f(7, "map"),
                         "linux": _f(8, "LinuxPodSandboxConfig")},
    "RunPodSandboxRequest": {"config": _f(1, "PodSandboxConfig"), "runtime_handler": _f(2, S)},
    "RunPodSandboxResponse": {"pod_sandbox_id": _f(1, S)},
    "PodSandboxIdRequest": {"pod_sandbox_id": _f(1, S), "verbose": _f(2, B)},
    "PodIP": {"ip": _f(1, S)},
    "PodSandboxNetworkStatus": {"ip": _f(1, S), "additional_ips": _f(2, "PodIP", True)},
    "PodSandboxStatus": {"id": _f(1, S), "metadata": _f(2, "PodSandboxMetadata"), "state": _f(3, N),
                         "created_at": _f(4, N), "network": _f(5, "PodSandboxNetworkStatus"),
                         "labels": _f(7, "map"), "annotations": _f(8, "map")},
    "PodSandboxStatusResponse": {"status": _f(1, "PodSandboxStatus"), "info": _f(2, "map")},   # info: verbose
    "PodSandboxStateValue": {"state": _f(1, N)},
    "PodSandboxFilter": {"id": _f(1, S), "state": _f(2, "PodSandboxStateValue"), "label_selector": _f(3, "map")},
    "ListPodSandboxRequest": {"filter": _f(1, "PodSandboxFilter")},
    "PodSandbox": {"id": _f(1, S), "metadata": _f(2, "PodSandboxMetadata"), "state": _f(3, N),
                   "created_at": _f(4, N), "labels": _f(5, "map"), "annotations": _f(6, "map")},
    "ListPodSandboxResponse": {"items": _f(1, "PodSandbox", True)},
    "ImageSpec": {"image": _f(1, S), "annotations": _f(2, "map")},
    "KeyValue": {"key": _f(1, S), "value": _f(2, S)},
    "LinuxContainerResources": {"cpu_period": _f(1, N), "cpu_quota": _f(2, N), "cpu_shares": _f(3, N),
                                "memory_limit_in_bytes": _f(4, N), "oom_score_adj": _f(5, N)},
    "Capability": {"add_capabilities": _f(1, S, True), "drop_capabilities": _f(2, S, True)},
    "LinuxContainerSecurityContext": {"capabilities": _f(1, "Capability"), "privileged": _f(2, B),
                                      "namespace_options": _f(3, "NamespaceOption"),
                                      "run_as_user": _f(5, "Int64Value"), "run_as_username": _f(6, S),
                                      "readonly_rootfs": _f(7, B), "run_as_group": _f(12, "Int64Value")},
    "LinuxContainerConfig": {"resources": _f(1, "LinuxContainerResources"),
                             "security_context": _f(2, "LinuxContainerSecurityContext")},
    "ContainerMetadata": {"name": _f(1, S), "attempt": _f(2, N)},
    "ContainerConfig": {"metadata": _f(1, "ContainerMetadata"), "image": _f(2, "ImageSpec"), "command": _f(3, S, True),
                        "args": _f(4, S, True), "working_dir": _f(5, S), "envs": _f(6, "KeyValue", True),
                        "mounts": _f(7, "Mount", True), "labels": _f(9, "map"), "annotations": _f(10, "map"),
                        "log_path": _f(11, S), "stdin": _f(12, B), "stdin_once": _f(13, B), "tty": _f(14, B),
                        "linux": _f(15, "LinuxContainerConfig")},
    "CreateContainerRequest": {"pod_sandbox_id": _f(1, S), "config": _f(2, "ContainerConfig"),
                               "sandbox_config": _f(3, "PodSandboxConfig")},
    "CreateContainerResponse": {"container_id": _f(1, S)},
    "ContainerIdRequest": {"container_id": _f(1, S), "timeout": _f(2, N)},   # Start/Stop/Remove/Status
    "ContainerStateValue": {"state": _f(1, N)},
    "ContainerFilter": {"id": _f(1, S), "state": _f(2, "ContainerStateValue"), "pod_sandbox_id": _f(3, S),
                        "label_selector": _f(4, "map")},
    "ListContainersRequest": {"filter": _f(1, "ContainerFilter")},
    "Container": {"id": _f(1, S), "pod_sandbox_id": _f(2, S), "metadata": _f(3, "ContainerMetadata"),
                  "image": _f(4, "ImageSpec"), "image_ref": _f(5, S), "state": _f(6, N), "created_at": _f(7, N),
                  "labels": _f(8, "map"), "annotations": _f(9, "map")},
    "ListContainersResponse": {"containers": _f(1, "Container", True)},
    "ContainerStatus": {"id": _f(1, S), "metadata": _f(2, "ContainerMetadata"), "state": _f(3, N),
                        "created_at": _f(4, N), "started_at": _f(5, N), "finished_at": _f(6, N),
                        "exit_code": _f(7, N), "image": _f(8, "ImageSpec"), "image_ref": _f(9, S),
                        "reason": _f(10, S), "message": _f(11, S), "labels": _f(12, "map"),
                        "annotations": _f(13, "map"), "log_path": _f(15, S)},
    "ContainerStatusResponse": {"status": _f(1, "ContainerStatus")},
    "AttachRequest": {"container_id": _f(1, S), "stdin": _f(2, B), "tty": _f(3, B), "stdout": _f(4, B),
                      "stderr": _f(5, B)},
    "AttachResponse": {"url": _f(1, S)},
    "ExecSyncRequest": {"container_id": _f(1, S), "cmd": _f(2, S, True), "timeout": _f(3, N)},
    "ExecSyncResponse": {"stdout": _f(1, "bytes"), "stderr": _f(2, "bytes"), "exit_code": _f(3, N)},
    "ImageStatusRequest": {"image": _f(1, "ImageSpec"), "verbose": _f(2, B)},
    "Image": {"id": _f(1, S), "repo_tags": _f(2, S, True), "repo_digests": _f(3, S, True), "size": _f(4, N)},
    "ImageStatusResponse": {"image": _f(1, "Image")},
    "PullImageRequest": {"image": _f(1, "ImageSpec"), "sandbox_config": _f(3, "PodSandboxConfig")},
    "PullImageResponse": {"image_ref": _f(1, S)},
    "ListImagesRequest": {},
    "ListImagesResponse": {"images": _f(1, "Image", True)},
    "RemoveImageRequest": {"image": _f(1, "ImageSpec")},
    "UInt64Value": {"value": _f(1, N)},
    "FilesystemIdentifier": {"mountpoint": _f(1, S)},
    "FilesystemUsage": {"timestamp": _f(1, N), "fs_id": _f(2, "FilesystemIdentifier"),
                        "used_bytes": _f(3, "UInt64Value"), "inodes_used": _f(4, "UInt64Value")},
    "ImageFsInfoResponse": {"image_filesystems": _f(1, "FilesystemUsage", True)},
    "RuntimeCondition": {"type": _f(1, S), "status": _f(2, B), "reason": _f(3, S), "message": _f(4, S)},
    "RuntimeStatus": {"conditions": _f(1, "RuntimeCondition", True)},
    "StatusResponse": {"status": _f(1, "RuntimeStatus")},
    # containerd's own event service (containerd/api/services/events/v1, api/events/task.proto)
    "SubscribeRequest": {"filters": _f(1, S, True)},
    "Timestamp": {"seconds": _f(1, N), "nanos": _f(2, N)},
    "Any": {"type_url": _f(1, S), "value": _f(2, "bytes")},
    "Envelope": {"timestamp": _f(1, "Timestamp"), "namespace": _f(2, S), "topic": _f(3, S), "event": _f(4, "Any")},
    "TaskExit": {"container_id": _f(1, S), "id": _f(2, S), "pid": _f(3, N), "exit_status": _f(4, N),
                 "exited_at": _f(5, "Timestamp")},
}


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _len(num: int, data: bytes) -> bytes:
    return _key(num, 2) + _varint(len(data)) + data


def encode(msg: str, value: dict) -> bytes:
    """Encode a dict as the message `msg`."""
    schema = SCHEMAS[msg]
    out = bytearray()
    for name, v in value.items():
        if v is None:
            continue
        num, kind, rep = schema[name]
        if kind == "map":
            for k, x in v.items():
                out += _len(num, _len(1, k.encode()) + _len(2, str(x).encode()))
            continue
        for x in (v if rep else (v,)):
            if kind == S:
                out += _len(num, x.encode())
            elif kind == "bytes":
                out += _len(num, bytes(x))
            elif kind in (N, B):
                out += _key(num, 0) + _varint(int(x))
            else:
                out += _len(num, encode(kind, x))
    return bytes(out)


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


_BY_NUM: dict[str, dict[int, tuple[str, str, bool]]] = {}


def decode(msg: str, buf: bytes) -> dict:
    """Decode the message `msg` into a dict (absent fields are absent)."""
    by_num = _BY_NUM.get(msg)
    if by_num is None:
        by_num = _BY_NUM[msg] = {f[0]: (name, f[1], f[2]) for name, f in SCHEMAS[msg].items()}
    out: dict = {}
    i, end = 0, len(buf)
    while i < end:
        key, i = _read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _read_varint(buf, i)
        elif wire == 2:
            ln, i = _read_varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        f = by_num.get(num)
        if f is None:
            continue
        name, kind, rep = f
        if kind == "map":
            kv = decode("KeyValue", val)
            out.setdefault(name, {})[kv.get("key", "")] = kv.get("value", "")
            continue
        if kind == S:
            x = val.decode(errors="replace")
        elif kind == "bytes":
            x = bytes(val)
        elif kind == N:
            x = val - (1 << 64) if val >= 1 << 63 else val
        elif kind == B:
            x = bool(val)
        else:
            x = decode(kind, val)
        if rep:
            out.setdefault(name, []).append(x)
        else:
            out[name] = x
    return out
