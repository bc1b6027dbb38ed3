"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket) for one container attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from .runtime import Runtime

log = logging.getLogger("ketch.node.probes")


def _port(container: dict, port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or ():
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} not found in the container's ports")


class ContainerProbes:
    """The probe loops of one running container attempt; results are read by the pod status."""

    def __init__(self, runtime: Runtime, session: Callable[[], aiohttp.ClientSession], uid: str,
                 container: dict, pod_ip: str, changed: Callable[[], None],
                 kill: Callable[[str], None]):
        self.runtime, self.session, self.uid, self.container = runtime, session, uid, container
        self.pod_ip, self.changed, self.kill = pod_ip, changed, kill
        self.started = "startupProbe" not in container
        self.ready = "readinessProbe" not in container
        self._tasks: list[asyncio.Task] = []
        self._started = asyncio.Event()
        if self.started:
            self._started.set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            spec = self.container.get(kind)
            if spec:
                self._tasks.append(loop.create_task(self._loop(kind, spec)))

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()

    async def probe(self, spec: dict) -> tuple[bool, str]:
        """Run one probe; (succeeded, message)."""
        timeout = float(spec.get("timeoutSeconds") or 1)
        name = self.container["name"]
        try:
            if "exec" in spec:
                return await self.runtime.exec_probe(self.uid, name, list(spec["exec"].get("command") or []), timeout)
            if "httpGet" in spec:
                h = spec["httpGet"]
                host = h.get("host") or self.pod_ip
                url = f"{(h.get('scheme') or 'HTTP').lower()}://{host}:{_port(self.container, h['port'])}" \
                      f"{h.get('path') or '/'}"
                headers = {x["name"]: x.get("value", "") for x in h.get("httpHeaders") or ()}
                headers.setdefault("User-Agent", "kube-probe/1.34")
                async with self.session().get(url, headers=headers, ssl=False,
                                              timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                    await r.read()
                    if 200 <= r.status < 400:
                        return True, ""
                    return False, f"HTTP probe failed with statuscode: {r.status}"
            if "tcpSocket" in spec:
                t = spec["tcpSocket"]
                port = _port(self.container, t["port"])
                _, w = await asyncio.wait_for(asyncio.open_connection(t.get("host") or self.pod_ip, port), timeout)
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()
                return True, ""
            return False, "unsupported probe handler"
        except TimeoutError:
            return False, f"probe timed out after {timeout:g}s"
        except (OSError, aiohttp.ClientError, ValueError) as e:
            return False, str(e) or type(e).__name__

    async def _loop(self, kind: str, spec: dict) -> None:
        period = float(spec.get("periodSeconds") or 10)
        success_needed = int(spec.get("successThreshold") or 1)
        failure_needed = int(spec.get("failureThreshold") or 3)
        await asyncio.sleep(float(spec.get("initialDelaySeconds") or 0))
        if kind != "startupProbe":
            await self._started.wait()
        successes = failures = 0
        while True:
            ok, msg = await self.probe(spec)
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if kind == "startupProbe":
                if ok:
                    self.started = True
                    self._started.set()
                    self.changed()
                    return
                if failures >= failure_needed:
                    self.kill(f"Startup probe failed: {msg}".strip())
                    return
            elif kind == "livenessProbe":
                if failures >= failure_needed:
                    self.kill(f"Liveness probe failed: {msg}".strip())
                    return
            else:
                if ok and not self.ready and successes >= success_needed:
                    self.ready = True
                    self.changed()
                elif not ok and self.ready and failures >= failure_needed:
                    self.ready = False
                    self.changed()
            await asyncio.sleep(period)
