"""Pod status as the kubelet reports it: phase, conditions, container statuses."""

from __future__ import annotations

import time

from ..api.podutil import qos_class
from .runtime import ContainerRecord

TERMINAL = ("Succeeded", "Failed")


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def go_duration(seconds: float) -> str:
    """Go's time.Duration formatting for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def should_restart(policy: str, exit_code: int | None) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def terminated_state(rec: ContainerRecord) -> dict:
    t = {"exitCode": rec.exit_code if rec.exit_code is not None else 0, "reason": rec.reason or "Error",
         "startedAt": rfc3339(rec.started_at), "finishedAt": rfc3339(rec.finished_at or rec.started_at),
         "containerID": rec.id}
    if rec.message:
        t["message"] = rec.message
    return {"terminated": t}


def container_status(container: dict, runs: list[ContainerRecord], waiting: tuple[str, str] | None,
                     started: bool, ready: bool, image_id: str) -> dict:
    """One entry of containerStatuses/initContainerStatuses."""
    rec = runs[-1] if runs else None
    cs: dict = {"name": container["name"], "image": container.get("image") or "", "imageID": image_id,
                "ready": False, "restartCount": rec.attempt if rec else 0, "started": False,
                "state": {}, "lastState": {}}
    if rec is None:
        reason, msg = waiting or ("ContainerCreating", "")
        cs["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
        return cs
    cs["containerID"] = rec.id
    prev = runs[-2] if len(runs) > 1 else None
    if rec.running:
        cs["state"] = {"running": {"startedAt": rfc3339(rec.started_at)}}
        cs["started"] = started
        cs["ready"] = ready and started
        if prev is not None:
            cs["lastState"] = terminated_state(prev)
    elif waiting is not None:
        reason, msg = waiting
        cs["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
        cs["lastState"] = terminated_state(rec)
    else:
        cs["state"] = terminated_state(rec)
        if prev is not None:
            cs["lastState"] = terminated_state(prev)
    return cs


def init_progress(init: list[dict], statuses: list[dict], policy: str) -> tuple[bool, bool, list[str]]:
    """(initialized, failed, names still incomplete) from the init container statuses."""
    incomplete, failed = [], False
    for c, cs in zip(init, statuses, strict=True):
        term = cs["state"].get("terminated")
        if term and term["exitCode"] == 0:
            continue
        incomplete.append(c["name"])
        last = term or cs["lastState"].get("terminated")
        if last and last["exitCode"] != 0 and policy == "Never":
            failed = True
    return not incomplete, failed, incomplete


def pod_phase(statuses: list[dict], policy: str) -> str:
    """The kubelet's getPhase for the regular containers."""
    running = waiting = stopped = succeeded = 0
    for cs in statuses:
        st = cs["state"]
        if "running" in st:
            running += 1
        elif "terminated" in st:
            stopped += 1
            succeeded += st["terminated"]["exitCode"] == 0
        elif cs["lastState"].get("terminated"):
            stopped += 1
            succeeded += cs["lastState"]["terminated"]["exitCode"] == 0
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(ctype: str, ok: bool, reason: str = "", message: str = "") -> dict:
    c = {"type": ctype, "status": "True" if ok else "False"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def conditions(pod: dict, prev: list[dict], initialized: bool, incomplete: list[str], phase: str,
               unready: list[str]) -> list[dict]:
    """Initialized, Ready, ContainersReady and PodScheduled, keeping other conditions as they are."""
    prev_by_type = {c.get("type"): c for c in prev}
    completed = phase == "Succeeded"
    out = [_condition("Initialized", initialized, "" if initialized else "ContainersNotInitialized",
                      "" if initialized else f"containers with incomplete status: [{' '.join(incomplete)}]")]
    ready = not unready and phase == "Running"
    reason = "PodCompleted" if completed else "ContainersNotReady"
    msg = "" if completed or ready else f"containers with unready status: [{' '.join(unready)}]"
    gates_missing = [g.get("conditionType") for g in (pod["spec"].get("readinessGates") or ())
                     if (prev_by_type.get(g.get("conditionType")) or {}).get("status") != "True"]
    if ready and gates_missing:
        out.append(_condition("Ready", False, "ReadinessGatesNotReady",
                              f"corresponding condition of pod readiness gate \"{gates_missing[0]}\" does not exist."))
    else:
        out.append(_condition("Ready", ready, "" if ready else reason, msg))
    out.append(_condition("ContainersReady", ready, "" if ready else reason, msg))
    out.append(prev_by_type.get("PodScheduled") or _condition("PodScheduled", True))
    now = rfc3339(time.time())
    mine = {"Initialized", "Ready", "ContainersReady", "PodScheduled"}
    for c in out:
        p = prev_by_type.get(c["type"])
        c["lastTransitionTime"] = p["lastTransitionTime"] if p and p.get("status") == c["status"] \
            and p.get("lastTransitionTime") else now
    out.extend(c for c in prev if c.get("type") not in mine)
    return out


def qos(pod: dict) -> str:
    return (pod.get("status") or {}).get("qosClass") or qos_class(pod.get("spec") or {})
