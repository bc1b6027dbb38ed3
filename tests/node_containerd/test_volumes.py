"""Volumes and image-pull reasons on the containerd runtime.

What a container sees is reported by the container itself: it copies what it reads from its
volumes into an emptyDir every 0.2 s, and the test reads that file on the host (the emptyDir is a
directory under the agent's data dir).
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading

from ketch.node import images
from tests.conftest import KUBECTL
from tests.node.conftest import apply, get_json, running_ready, wait_for

from .conftest import container_status

IMAGE = images.TEST_IMAGE

REPORT = r"""
r() { printf '%s=%s\n' "$1" "$(tr '\n' ';' < "$2" 2>&1)"; }
while :; do
  {
    r greeting /etc/cfg/greeting; r color /etc/cfg/color; r password /etc/sec/password; r item /etc/items/sub/hi.txt
    r labels /etc/info/labels; r name /etc/info/name; r pcolor /etc/all/color; r puser /etc/all/creds/user
    r one /etc/one.txt; r ptoken /etc/all/token
    echo "env=$GREETING/$PASSWORD"
    echo "itemmode=$(stat -L -c %a /etc/items/sub/hi.txt)"; echo "secmode=$(stat -L -c %a /etc/sec/password)"
    if touch /etc/cfg/new 2>/dev/null; then echo "cfgwrite=yes"; else echo "cfgwrite=no"; fi
  } > /out/seen.tmp
  mv /out/seen.tmp /out/seen
  sleep 0.2
done
"""


def cm(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def seen(node, uid: str) -> dict[str, str]:
    try:
        text = (node.data_dir / "volumes" / uid / "out" / "seen").read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def waiting(c, name: str) -> dict:
    return container_status(c, name).get("state", {}).get("waiting") or {}


def test_configmap_secret_files_env_and_update(ctd):
    c, node = ctd
    apply(c, cm("ctd-cfg", {"greeting": "hello", "color": "blue"}))
    apply(c, secret("ctd-sec", {"password": "s3cret", "user": "admin"}))
    volumes = [
        {"name": "out", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "ctd-cfg"}},
        {"name": "items", "configMap": {"name": "ctd-cfg", "items": [{"key": "greeting", "path": "sub/hi.txt",
                                                                      "mode": 0o600}]}},
        {"name": "sec", "secret": {"secretName": "ctd-sec", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                   {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "all", "projected": {"sources": [
            {"configMap": {"name": "ctd-cfg", "items": [{"key": "color", "path": "color"}]}},
            {"secret": {"name": "ctd-sec", "items": [{"key": "user", "path": "creds/user"}]}},
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
    ]
    mounts = [{"name": "out", "mountPath": "/out"}, {"name": "cfg", "mountPath": "/etc/cfg"},
              {"name": "items", "mountPath": "/etc/items"}, {"name": "sec", "mountPath": "/etc/sec"},
              {"name": "info", "mountPath": "/etc/info"}, {"name": "all", "mountPath": "/etc/all"},
              {"name": "cfg", "mountPath": "/etc/one.txt", "subPath": "greeting"}]
    env = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "ctd-cfg", "key": "greeting"}}},
           {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "ctd-sec", "key": "password"}}}]
    apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vols", "labels": {"app": "vols"}},
              "spec": {"terminationGracePeriodSeconds": 1, "volumes": volumes, "containers": [
                  {"name": "main", "image": IMAGE, "command": ["sh", "-c", REPORT], "volumeMounts": mounts,
                   "env": env}]}})
    p = wait_for(lambda: running_ready(c, "vols"), timeout=60, what="Running")
    uid = p["metadata"]["uid"]
    s = wait_for(lambda: seen(node, uid), timeout=30, what="the container's report")
    assert s["greeting"] == "hello" and s["color"] == "blue" and s["password"] == "s3cret", s
    assert s["item"] == "hello" and s["itemmode"] == "600" and s["secmode"] == "400", s
    assert s["labels"] == 'app="vols"' and s["name"] == "vols", s
    assert s["pcolor"] == "blue" and s["puser"] == "admin" and s["one"] == "hello", s
    claims = json.loads(base64.urlsafe_b64decode(s["ptoken"].split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:default:default", claims
    assert s["env"] == "hello/s3cret" and s["cfgwrite"] == "no", s      # file volumes are read-only

    apply(c, cm("ctd-cfg", {"greeting": "bonjour", "color": "red"}))
    c.kubectl("label", "pod", "vols", "tier=db")
    want = {"greeting": "bonjour", "color": "red", "item": "bonjour", "pcolor": "red", "labels": 'app="vols";tier="db"'}
    s = wait_for(lambda: (lambda s: all(s.get(k) == v for k, v in want.items()) and s)(seen(node, uid)),
                 timeout=30, what="the update seen inside the container")
    assert s["env"] == "hello/s3cret" and s["one"] == "hello", s   # env and subPath keep what they started with
    c.kubectl("delete", "pod", "vols", "--timeout=30s")
    wait_for(lambda: not (node.data_dir / "volumes" / uid).exists(), timeout=20, what="volume dirs removed")


def test_missing_configmap_optional_and_required(ctd):
    c, _ = ctd

    def manifest(name: str, vol: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 1, "volumes": [{"name": "v", **vol}], "containers": [
                    {"name": "main", "image": IMAGE, "command": ["sh", "-c", "ls /v; exec sleep 600"],
                     "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                     "readinessProbe": {"exec": {"command": ["sh", "-c", "test ! -e /v/k || grep -qx v1 /v/k"]},
                                        "periodSeconds": 1}}]}}

    apply(c, manifest("ctd-opt", {"configMap": {"name": "ctd-absent", "optional": True}}))
    apply(c, manifest("ctd-req", {"configMap": {"name": "ctd-later"}}))
    wait_for(lambda: running_ready(c, "ctd-opt"), timeout=60, what="Running with an optional missing configMap")
    w = wait_for(lambda: waiting(c, "ctd-req").get("reason") == "CreateContainerConfigError" and waiting(c, "ctd-req"),
                 timeout=30, what="CreateContainerConfigError")
    assert 'configmap "ctd-later" not found' in w["message"], w
    apply(c, cm("ctd-later", {"k": "v1"}))
    wait_for(lambda: running_ready(c, "ctd-req"), timeout=60, what="Running once the configMap exists")
    c.kubectl("delete", "pod", "ctd-opt", "ctd-req", "--grace-period=0", "--wait=false")


def test_unknown_image_err_image_pull_then_back_off(ctd, registry):
    c, _ = ctd
    ref = f"{registry}/vol/nothing:1"
    apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ctd-ghost"},
              "spec": {"terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": ref, "command": ["true"]}]}})
    # Every status the pod goes through (a watch misses none): a failed pull, then the back-off.
    watch = subprocess.Popen([KUBECTL, "--kubeconfig", c.kubeconfig, "get", "pod", "ctd-ghost", "-w", "-o",
                              "jsonpath={.status.containerStatuses[0].state.waiting.reason}{'|'}"
                              "{.status.containerStatuses[0].state.waiting.message}{'\\n'}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(60, watch.kill)     # a guard, not an assertion on time
    timer.start()
    seq: list[str] = []
    reasons: dict[str, str] = {}
    try:
        for line in watch.stdout:
            reason, _, msg = line.strip().partition("|")
            if reason and (not seq or seq[-1] != reason):
                seq.append(reason)
                reasons[reason] = msg
            if "ErrImagePull" in seq and "ImagePullBackOff" in seq[seq.index("ErrImagePull"):]:
                break
    finally:
        timer.cancel()
        watch.kill()
        watch.wait()
    assert set(seq) <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}, seq
    assert "ErrImagePull" in seq and "ImagePullBackOff" in seq[seq.index("ErrImagePull"):], seq
    assert reasons["ErrImagePull"].startswith(f'Failed to pull image "{ref}": ') and "not found" in \
        reasons["ErrImagePull"], reasons
    assert reasons["ImagePullBackOff"].startswith(f'Back-off pulling image "{ref}": '), reasons
    events = get_json(c, "events", "--field-selector", "involvedObject.name=ctd-ghost")["items"]
    assert {"Failed", "BackOff"} <= {e["reason"] for e in events}
    assert get_json(c, "pod", "ctd-ghost")["status"]["phase"] == "Pending"
    c.kubectl("delete", "pod", "ctd-ghost", "--grace-period=0", "--wait=false")


def test_never_pull_absent_image(ctd):
    c, _ = ctd
    apply(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ctd-never"},
              "spec": {"containers": [{"name": "main", "image": "ketch.local/absent:3", "imagePullPolicy": "Never"}]}})
    w = wait_for(lambda: waiting(c, "ctd-never").get("reason") == "ErrImageNeverPull" and waiting(c, "ctd-never"),
                 timeout=30, what="ErrImageNeverPull")
    assert w["message"] == 'Container image "ketch.local/absent:3" is not present with pull policy of Never'
    c.kubectl("delete", "pod", "ctd-never", "--grace-period=0", "--wait=false")
