"""The `fake` runtime: no processes; every container runs at once and forever (scale tests)."""

from __future__ import annotations

import itertools
import time

from .runtime import ContainerRecord, Runtime


class FakeRuntime(Runtime):
    """In-memory containers; one instance serves every simulated node of an agent."""

    name = "fake"
    runs_probes = False

    def __init__(self) -> None:
        super().__init__()
        self._pods: dict[str, dict[str, list[ContainerRecord]]] = {}
        self._ips: dict[str, str] = {}
        self._counter = itertools.count(1)

    def pod_uids(self) -> set[str]:
        return set(self._pods)

    async def run_sandbox(self, pod: dict) -> str:
        uid = pod["metadata"]["uid"]
        if uid not in self._pods:
            self._pods[uid] = {}
            n = next(self._counter)
            self._ips[uid] = f"10.{64 + (n >> 16) % 64}.{(n >> 8) & 255}.{n & 255}"
        return self._ips[uid]

    async def start_container(self, pod: dict, container: dict, env: dict[str, str], attempt: int) -> ContainerRecord:
        uid = pod["metadata"]["uid"]
        rec = ContainerRecord(container["name"], attempt, f"fake://{uid[:8]}-{container['name']}-{attempt}",
                              time.time())
        if any(c.get("name") == rec.name for c in pod["spec"].get("initContainers") or ()):
            rec.running, rec.finished_at, rec.exit_code, rec.reason = False, rec.started_at, 0, "Completed"
        self._pods.setdefault(uid, {}).setdefault(container["name"], []).append(rec)
        return rec

    def containers(self, uid: str) -> dict[str, list[ContainerRecord]]:
        return self._pods.get(uid) or {}

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        runs = (self._pods.get(uid) or {}).get(name)
        if runs and runs[-1].running:
            r = runs[-1]
            r.running, r.finished_at, r.exit_code, r.reason = False, time.time(), 0, "Completed"

    async def remove_pod(self, uid: str) -> None:
        self._pods.pop(uid, None)
        self._ips.pop(uid, None)
