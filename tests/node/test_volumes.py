"""Volumes on the `process` runtime: configMap, secret, downwardAPI and projected files.

The process runtime has no mount namespace: a volumeMount is a symlink at its mountPath to the
volume's directory under the agent's data dir, so what the test reads through the mountPath is
exactly what the container process reads.
"""

from __future__ import annotations

import base64
import json
import os
import stat

from .conftest import apply, get_json, running_ready, wait_for


def cm(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def pod(name: str, command: list[str], volumes: list[dict], mounts: list[dict], **ctr) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name, "tier": "web"}},
            "spec": {"terminationGracePeriodSeconds": 2, "volumes": volumes,
                     "containers": [{"name": "main", "image": "busybox", "command": command,
                                     "volumeMounts": mounts, **ctr}]}}


def waiting(c, name: str) -> dict:
    cs = (get_json(c, "pod", name).get("status") or {}).get("containerStatuses") or [{}]
    return (cs[0].get("state") or {}).get("waiting") or {}


def read(path) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def test_configmap_secret_downward_projected_files(process_cluster, tmp_path):
    c = process_cluster
    apply(c, cm("vol-cfg", {"greeting": "hello", "color": "blue"}))
    apply(c, secret("vol-sec", {"password": "s3cret", "user": "admin"}))
    m = tmp_path / "mnt"
    out = tmp_path / "seen"
    volumes = [
        {"name": "cfg", "configMap": {"name": "vol-cfg"}},
        {"name": "items", "configMap": {"name": "vol-cfg", "items": [{"key": "greeting", "path": "sub/hi.txt",
                                                                      "mode": 0o600}]}},
        {"name": "sec", "secret": {"secretName": "vol-sec", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "vol-cfg", "items": [{"key": "color", "path": "color"}]}},
            {"secret": {"name": "vol-sec", "items": [{"key": "user", "path": "creds/user"}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
    ]
    mounts = [{"name": n, "mountPath": str(m / n)} for n in ("cfg", "items", "sec", "info", "all")]
    # The files are there before the process starts: it copies one at once.
    apply(c, pod("files", ["sh", "-c", f"cat {m}/cfg/greeting {m}/sec/password > {out}.tmp; mv {out}.tmp {out}; exec sleep 600"], volumes,
                 mounts, env=[{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "vol-cfg",
                                                                                     "key": "greeting"}}}],
                 resources={"limits": {"memory": "64Mi"}}))
    wait_for(lambda: running_ready(c, "files"), timeout=30, what="Running")
    assert wait_for(lambda: read(out), what="files copied") == "hellos3cret"
    assert read(m / "cfg" / "color") == "blue"
    assert os.path.islink(m / "cfg" / "..data") and os.readlink(m / "cfg" / "greeting") == "..data/greeting"
    assert read(m / "items" / "sub" / "hi.txt") == "hello" and not os.path.exists(m / "items" / "color")
    assert stat.S_IMODE(os.stat(m / "items" / "sub" / "hi.txt").st_mode) == 0o600
    assert read(m / "sec" / "user") == "admin"
    assert stat.S_IMODE(os.stat(m / "sec" / "password").st_mode) == 0o400
    assert read(m / "info" / "labels") == 'app="files"\ntier="web"'
    assert read(m / "info" / "name") == "files" and read(m / "info" / "mem") == "64"
    assert read(m / "all" / "color") == "blue" and read(m / "all" / "creds" / "user") == "admin"
    assert read(m / "all" / "ns") == "default"
    assert stat.S_IMODE(os.stat(m / "all" / "color").st_mode) == 0o440
    token = read(m / "all" / "token")      # a TokenRequest token of the pod's service account
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:default:default" and claims["exp"] - claims["iat"] == 3600

    # An update reaches the files (not the env, as in Kubernetes); one rename switches the whole set.
    apply(c, cm("vol-cfg", {"greeting": "bonjour", "color": "red"}))
    wait_for(lambda: read(m / "cfg" / "greeting") == "bonjour", timeout=30, what="configMap update in the volume")
    assert read(m / "cfg" / "color") == "red"
    wait_for(lambda: read(m / "all" / "color") == "red", timeout=30, what="projected update")
    assert read(m / "items" / "sub" / "hi.txt") == "bonjour"
    wait_for(lambda: len([n for n in os.listdir(m / "cfg") if n.startswith("..") and n != "..data"]) == 1,
             what="the old version removed")
    c.kubectl("label", "pod", "files", "tier=db", "--overwrite")
    wait_for(lambda: read(m / "info" / "labels") == 'app="files"\ntier="db"', timeout=30, what="labels update")

    uid = get_json(c, "pod", "files")["metadata"]["uid"]
    c.kubectl("delete", "pod", "files", "--timeout=30s")
    wait_for(lambda: not any(os.path.lexists(m / n) for n in ("cfg", "items", "sec", "info", "all")), timeout=20,
             what="mount symlinks removed")
    wait_for(lambda: not [p for p in c.data_dir.rglob(uid) if p.parent.name == "volumes"], timeout=20,
             what="volume dirs removed")     # the agent removes them after the API object


def test_missing_configmap_waits_unless_optional(process_cluster, tmp_path):
    c = process_cluster
    m = tmp_path / "mnt"
    apply(c, pod("opt", ["sleep", "600"], [{"name": "v", "configMap": {"name": "vol-absent", "optional": True}},
                                          {"name": "s", "secret": {"secretName": "vol-absent", "optional": True}}],
                 [{"name": "v", "mountPath": str(m / "opt")}, {"name": "s", "mountPath": str(m / "opts")}]))
    wait_for(lambda: running_ready(c, "opt"), timeout=30, what="Running with an optional missing configMap")
    assert [n for n in os.listdir(m / "opt") if not n.startswith("..")] == []

    apply(c, pod("req", ["sleep", "600"], [{"name": "v", "configMap": {"name": "vol-later"}}],
                 [{"name": "v", "mountPath": str(m / "req")}]))
    w = wait_for(lambda: waiting(c, "req").get("reason") == "CreateContainerConfigError" and waiting(c, "req"),
                 timeout=30, what="CreateContainerConfigError")
    assert 'configmap "vol-later" not found' in w["message"] and 'volume "v"' in w["message"]
    assert get_json(c, "pod", "req")["status"]["phase"] == "Pending"
    apply(c, cm("vol-later", {"k": "v1"}))
    wait_for(lambda: running_ready(c, "req"), timeout=30, what="Running once the configMap exists")
    assert read(m / "req" / "k") == "v1"

    apply(c, pod("badkey", ["sleep", "600"], [{"name": "v", "configMap": {
        "name": "vol-later", "items": [{"key": "nokey", "path": "x"}]}}], [{"name": "v", "mountPath": str(m / "bk")}]))
    w = wait_for(lambda: waiting(c, "badkey").get("message"), timeout=30, what="a missing key reported")
    assert "non-existent config key: nokey" in w
    c.kubectl("delete", "pod", "opt", "req", "badkey", "--timeout=30s")
    wait_for(lambda: not os.path.lexists(m / "opt") and not os.path.lexists(m / "req"), timeout=20,
             what="mount symlinks removed")


def test_existing_mount_path_is_not_replaced(process_cluster, tmp_path):
    c = process_cluster
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep").write_text("mine")
    apply(c, pod("taken", ["sleep", "600"], [{"name": "e", "emptyDir": {}}], [{"name": "e", "mountPath": str(target)}]))
    w = wait_for(lambda: waiting(c, "taken").get("message"), timeout=30, what="a config error")
    assert "exists on the host" in w and waiting(c, "taken")["reason"] == "CreateContainerConfigError"
    assert (target / "keep").read_text() == "mine"
    c.kubectl("delete", "pod", "taken", "--timeout=30s")


def test_atomic_writer_never_shows_a_mix(tmp_path):
    """A reader that resolves ..data once sees one whole version, old or new, while versions switch."""
    import threading

    from ketch.node.volumes import remove_orphaned_volumes, write_atomic
    target = tmp_path / "volumes" / "uid-1" / "v"
    stop = threading.Event()
    mixed: list[tuple[str, str]] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            try:
                d = os.path.realpath(target / "..data")
                a, b = read(os.path.join(d, "a")), read(os.path.join(d, "sub", "b"))
            except OSError:
                continue
            if a is None or b is None:      # that version was removed after the switch: read again
                continue
            reads[0] += 1
            if a != b:
                mixed.append((a, b))

    assert write_atomic(str(target), {"a": (b"0", 0o644), "sub/b": (b"0", 0o644)})
    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, 300):
            assert write_atomic(str(target), {"a": (str(i).encode(), 0o644), "sub/b": (str(i).encode(), 0o600)})
    finally:
        stop.set()
        t.join()
    assert not mixed and reads[0] > 0
    assert not write_atomic(str(target), {"a": (b"299", 0o644), "sub/b": (b"299", 0o600)})   # unchanged: no write
    assert len([n for n in os.listdir(target) if n.startswith("..") and n != "..data"]) == 1
    assert read(target / "a") == "299" and os.readlink(target / "sub") == "..data/sub"
    write_atomic(str(target), {"c": (b"x", 0o644)})          # names that left the set disappear
    assert sorted(n for n in os.listdir(target) if not n.startswith("..")) == ["c"]
    (tmp_path / "volumes" / "uid-2").mkdir()
    remove_orphaned_volumes(str(tmp_path), {"uid-2"})
    assert os.listdir(tmp_path / "volumes") == ["uid-2"]


def test_agent_restart_refreshes_and_cleans_volumes(tmp_path):
    """A restarted agent re-adopts the container, brings its volume up to date and removes stray volume dirs."""
    import signal

    from tests.conftest import start_cluster

    from .test_process import _agent
    c = start_cluster(tmp_path / "cluster", extra=["--no-agent"])
    agent = _agent(c, tmp_path, "agent1.log")
    m = tmp_path / "mnt"
    try:
        apply(c, cm("vol-r", {"k": "one"}))
        manifest = pod("vr", ["sleep", "600"], [{"name": "v", "configMap": {"name": "vol-r"}}],
                       [{"name": "v", "mountPath": str(m)}])
        manifest["spec"]["nodeName"] = "restart-node"
        apply(c, manifest)
        wait_for(lambda: running_ready(c, "vr"), timeout=30, what="Running")
        assert read(m / "k") == "one"
        before = get_json(c, "pod", "vr")["status"]["containerStatuses"][0]["containerID"]
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        apply(c, cm("vol-r", {"k": "two"}))
        stray = tmp_path / "agent" / "volumes" / "gone-pod-uid" / "v"
        stray.mkdir(parents=True)
        agent = _agent(c, tmp_path, "agent2.log")
        wait_for(lambda: read(m / "k") == "two", timeout=30, what="the volume refreshed after the restart")
        wait_for(lambda: not stray.parent.exists(), timeout=30, what="stray volume dir removed")
        assert get_json(c, "pod", "vr")["status"]["containerStatuses"][0]["containerID"] == before
        c.kubectl("delete", "pod", "vr", "--timeout=30s")
        wait_for(lambda: not os.path.lexists(m), timeout=20, what="mount symlink removed")
    finally:
        if agent.poll() is None:
            c.kubectl("delete", "pods", "--all", "--timeout=30s", check=False)   # no host process outlives the test
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)
        c.stop()
