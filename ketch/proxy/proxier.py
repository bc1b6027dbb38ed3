"""The proxy loop: watch Services and Endpoints, program the kernel after every change.

Each change marks the state dirty; one sync at a time renders the difference from the last
applied ruleset as a single nft transaction, so updates are incremental and atomic. A failed
transaction makes the next sync rebuild the whole table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..client.informer import Informer, object_key
from ..client.rest import Client
from . import nft
from .nft import Ruleset, build_ruleset, render

log = logging.getLogger("ketch.proxy")

RETRY_AFTER = 1.0


class Proxier:
    """Keeps one nftables table in line with the cluster's services."""

    def __init__(self, client: Client, node_name: str, table: str = "ketch",
                 nft_command: list[str] | None = None, node_port_addresses: list[str] | None = None,
                 min_sync_interval: float = 0.0, netns: str | None = None):
        """nft_command runs `nft -f -` per sync; otherwise libnftables in-process (inside `netns`
        when given), falling back to the nft binary when the library is missing."""
        self.client = client
        self.node_name = node_name
        self.table = table
        self.nft: list[str] | nft.LibNft
        if nft_command:
            self.nft = nft_command
        else:
            try:
                self.nft = nft.LibNft(netns)
            except OSError:
                self.nft = ["ip", "netns", "exec", netns, "nft"] if netns else ["nft"]
        self.node_port_addresses = node_port_addresses or []
        self.min_sync_interval = min_sync_interval
        self.services = Informer(client, client.resource("services"))
        self.endpoints = Informer(client, client.resource("endpoints"))
        self.applied: Ruleset | None = None
        self.synced = asyncio.Event()
        self._dirty = asyncio.Event()
        self._dirty_since: float | None = None
        self.syncs = 0
        self.last_sync_seconds = 0.0
        self.latencies: list[float] = []     # change seen -> rules in the kernel, per sync
        for inf in (self.services, self.endpoints):
            inf.add_handlers(self._changed, lambda o, n: self._changed(n), self._changed)

    def _changed(self, _obj: dict) -> None:
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
        self._dirty.set()

    async def sync(self) -> None:
        """Apply the difference between what is programmed and what the caches say."""
        since = self._dirty_since
        self._dirty_since = None
        self._dirty.clear()
        eps = {object_key(e): e for e in self.endpoints.list()}
        want = build_ruleset(self.services.list(), eps)
        cmds = render(self.table, want, self.applied, self.node_port_addresses)
        t0 = time.monotonic()
        try:
            await nft.apply(cmds, self.nft)
        except nft.NftError:
            self.applied = None
            raise
        now = time.monotonic()
        self.applied = want
        self.syncs += 1
        self.last_sync_seconds = now - t0
        if since is not None:
            self.latencies.append(now - since)
            del self.latencies[:-1000]
        log.debug("synced %d commands in %.3fs", len(cmds), now - t0)

    async def run(self, stop: asyncio.Event, cleanup: bool = True) -> None:
        """Sync on every change until `stop`; remove the table afterwards when `cleanup`."""
        self.services.start()
        self.endpoints.start()
        try:
            await asyncio.wait_for(asyncio.gather(self.services.synced.wait(), self.endpoints.synced.wait()), 60)
            self._dirty.set()
            stopping = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                dirty = asyncio.ensure_future(self._dirty.wait())
                await asyncio.wait({dirty, stopping}, return_when=asyncio.FIRST_COMPLETED)
                dirty.cancel()
                if stop.is_set():
                    break
                try:
                    await self.sync()
                    self.synced.set()
                except nft.NftError as e:
                    log.error("%s; rebuilding the table in %.0fs", e, RETRY_AFTER)
                    await asyncio.sleep(RETRY_AFTER)
                    self._dirty.set()
                except (OSError, ValueError, KeyError, TypeError):
                    log.exception("proxy sync failed; retrying in %.0fs", RETRY_AFTER)
                    self.applied = None
                    await asyncio.sleep(RETRY_AFTER)
                    self._dirty.set()
                if self.min_sync_interval:
                    await asyncio.sleep(self.min_sync_interval)
            stopping.cancel()
        finally:
            await self.services.stop()
            await self.endpoints.stop()
            if cleanup and self.applied is not None:
                with contextlib.suppress(Exception):
                    await nft.delete_table(self.table, self.nft)
            if isinstance(self.nft, nft.LibNft):
                self.nft.close()
