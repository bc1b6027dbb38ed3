"""Every acknowledged write survives SIGKILL of the server in the middle of a write load."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from tests.conftest import start_cluster


async def _write_load(url: str, acked: list[str], stop_at: float) -> None:
    async with aiohttp.ClientSession() as s:
        async def writer(w: int) -> None:
            i = 0
            while time.time() < stop_at:
                name = f"cm-{w}-{i}"
                i += 1
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v" * 200}}
                try:
                    async with s.post(f"{url}/api/v1/namespaces/default/configmaps", json=body) as r:
                        if r.status == 201:
                            acked.append(name)
                except (aiohttp.ClientError, OSError):
                    return      # the server is gone
        await asyncio.gather(*(writer(w) for w in range(16)))


def test_acknowledged_writes_survive_sigkill(tmp_path):
    c = start_cluster(tmp_path / "d")
    acked: list[str] = []

    async def main() -> None:
        load = asyncio.create_task(_write_load(c.url, acked, time.time() + 30))
        while len(acked) < 300:       # well into the load
            await asyncio.sleep(0.02)
        c.proc.send_signal(signal.SIGKILL)
        await load
    asyncio.run(main())
    c.proc.wait(10)
    assert len(acked) >= 300
    c2 = start_cluster(tmp_path / "d", port=c.port)
    try:
        async def check() -> list[str]:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{c2.url}/api/v1/namespaces/default/configmaps") as r:
                    have = {i["metadata"]["name"] for i in (await r.json())["items"]}
            return [n for n in acked if n not in have]
        missing = asyncio.run(check())
        assert missing == [], f"{len(missing)} acknowledged writes lost: {missing[:10]}"
    finally:
        assert c2.stop() == 0
