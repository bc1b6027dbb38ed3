"""Playing kubelet for service tests: pods bound to a node, given an IP and a readiness."""

from __future__ import annotations

import contextlib

from ketch.api.errors import StatusError
from ketch.api.meta import now_rfc3339
from ketch.client.rest import Client


async def ensure_node(api: Client, name: str = "node-a") -> None:
    with contextlib.suppress(StatusError):
        await api.create(api.resource("nodes"), None, {"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": now_rfc3339(),
             "lastTransitionTime": now_rfc3339()}]}})


def pod_body(name: str, labels: dict, ports: list | None = None, node: str = "node-a", **spec) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "ports": ports or []}],
                     **spec}}


async def set_pod(api: Client, ns: str, name: str, ip: str, ready: bool = True) -> None:
    """PATCH pods/x/status the way a kubelet does: Running, an IP, Ready True/False."""
    now = now_rfc3339()
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": now}]}
    await api.patch(api.resource("pods"), ns, name, {"status": status}, sub="status")


async def run_pod(api: Client, ns: str, name: str, labels: dict, ip: str, ready: bool = True,
                  ports: list | None = None, **spec) -> None:
    await api.create(api.resource("pods"), ns, pod_body(name, labels, ports, **spec))
    await set_pod(api, ns, name, ip, ready)
