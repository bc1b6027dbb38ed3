"""The containerd runtime alone (no agent, no API): container exits arrive through containerd's events."""

from __future__ import annotations

import asyncio
import uuid

from ketch.node import images
from ketch.node.containerd import ContainerdRuntime

from .conftest import _requirements


def _pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
            "spec": {"nodeName": "nperf-events", "containers": []}}


def test_exits_seen_through_events_with_polling_off(tmp_path):
    # Polling every hour: only the event subscription can tell the runtime that these containers exited,
    # one after a moment and one at once (possibly before StartContainer has returned).
    _requirements()

    async def main() -> None:
        rt = ContainerdRuntime(str(tmp_path / "agent"), poll=3600, events_poll=3600)
        changed: list[str] = []
        wake = asyncio.Event()

        def on_change(uid: str) -> None:
            changed.append(uid)
            wake.set()
        rt.on_change = on_change
        await rt.start()
        pods = [_pod("nperf-late"), _pod("nperf-soon")]
        try:
            recs = []
            for pod, cmd in zip(pods, ("sleep 1; exit 3", "exit 4"), strict=True):
                await rt.run_sandbox(pod)
                recs.append(await rt.start_container(pod, {"name": "c", "image": images.TEST_IMAGE,
                                                           "command": ["sh", "-c", cmd]}, {}, 0))
            for _ in range(60):
                if not any(r.running for r in recs):
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), 1)
                except TimeoutError:
                    pass
            assert [(r.running, r.exit_code, r.reason) for r in recs] == [(False, 3, "Error"), (False, 4, "Error")]
            assert {p["metadata"]["uid"] for p in pods} <= set(changed)
        finally:
            for pod in pods:
                await rt.remove_pod(pod["metadata"]["uid"])
            await rt.close()

    asyncio.run(main())
