"""Image garbage collection for the containerd runtime, as the kubelet's image manager does it.

Every `period` seconds: when the filesystem holding containerd's images is at or above
`high` percent used, remove images no container uses (running or not), least recently used
first (the agent records when it last started a container from an image; images it never used
count as oldest, then by when the agent first saw them), until `low` percent is reached, i.e.
until `capacity * (100 - low) / 100 - available` bytes are freed (sizes as CRI reports them).
Never removed: the sandbox image (pinned) and images first seen less than `min_age` seconds ago.
high = 100 turns image GC off.

What it frees goes to the log and to a Normal event `ImageGarbageCollected` on the Node; when it
cannot free enough, a Warning `FreeDiskSpaceFailed` with the kubelet's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("ketch.node.imagegc")

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration ("2m", "1h30m", "90s", "0") in seconds; ValueError when it is not one."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    neg = s.startswith("-")
    body = s.lstrip("+-")
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION.match(body, pos)
        if not m:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f"invalid duration {text!r} (a Go duration such as 2m, 90s, 1h30m)")
    if neg and total:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return total


def check_policy(high: int, low: int, min_age: float, period: float) -> str | None:
    """The error for a bad image GC configuration, or None."""
    for name, v in (("--image-gc-high-threshold", high), ("--image-gc-low-threshold", low)):
        if not 0 <= v <= 100:
            return f"{name} must be between 0 and 100 (got {v})"
    if low > high:
        return (f"--image-gc-low-threshold ({low}) must not be greater than --image-gc-high-threshold "
                f"({high})")
    if min_age < 0:
        return "--minimum-image-ttl-duration must not be negative"
    if period <= 0:
        return "--image-gc-period must be positive"
    return None


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f}{unit}" if unit != "B" else f"{n}B"
        n /= 1024
    return f"{n}B"


@dataclass
class ImageRecord:
    first_detected: float
    last_used: float = 0.0       # 0: never used by this agent (oldest)
    size: int = 0
    tags: list[str] = field(default_factory=list)


class ImageGC:
    """Runs against a ContainerdRuntime (its CRI client, its records of image use)."""

    def __init__(self, runtime, high: int = 85, low: int = 80, min_age: float = 120.0, period: float = 300.0,
                 pinned: tuple[str, ...] = (), event: Callable[[str, str, str], None] | None = None):
        self.runtime = runtime
        self.high, self.low, self.min_age, self.period = high, low, min_age, period
        self.pinned = set(pinned)
        self.event = event or (lambda etype, reason, message: None)
        self.records: dict[str, ImageRecord] = {}     # image id -> record

    async def run(self, stop: asyncio.Event) -> None:
        if self.high >= 100:
            log.info("image garbage collection off (--image-gc-high-threshold=100)")
            return
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)
            if stop.is_set():
                return
            try:
                await self.collect()
            except asyncio.CancelledError:
                raise
            except Exception as e:      # never let the loop die; report and try again next period
                log.warning("image garbage collection failed: %s", e)

    # -- what is there, what is used ---------------------------------------------------------------
    async def _fs_path(self) -> str:
        daemon = getattr(self.runtime, "daemon", None)
        if daemon is not None and daemon.own:
            return os.path.join(daemon.dir, "root")
        try:
            resp = await self.runtime.cri.call("ImageFsInfo", {}, timeout=10)
            for fs in resp.get("image_filesystems") or ():
                mp = (fs.get("fs_id") or {}).get("mountpoint")
                if mp and os.path.exists(mp):
                    return mp
        except Exception as e:    # an older containerd: fall back to its default root
            log.debug("ImageFsInfo: %s", e)
        return "/var/lib/containerd"

    async def usage(self) -> tuple[int, int]:
        """(capacity, available) bytes of the image filesystem."""
        path = await self._fs_path()
        st = await asyncio.to_thread(os.statvfs, path)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    async def _resolve(self, ref: str) -> str:
        try:
            resp = await self.runtime.cri.call("ImageStatus", {"image": {"image": ref}}, timeout=10)
        except Exception:
            return ""
        return (resp.get("image") or {}).get("id") or ""

    async def detect(self) -> tuple[dict[str, dict], set[str]]:
        """List the images, update the records (first seen, last used); returns (images by id, ids in use)."""
        now = time.time()
        cri = self.runtime.cri
        imgs = {i["id"]: i for i in (await cri.call("ListImages", {}, timeout=30)).get("images") or () if i.get("id")}
        in_use: set[str] = set()
        for c in (await cri.call("ListContainers", {}, timeout=30)).get("containers") or ():
            for ref in (c.get("image_ref"), (c.get("image") or {}).get("image")):
                if ref:
                    in_use.add(ref if ref in imgs else await self._resolve(ref))
        for ref in set(getattr(self.runtime, "images_starting", {})):    # a container being created right now
            in_use.add(await self._resolve(ref))
        for iid, img in imgs.items():
            rec = self.records.get(iid)
            if rec is None:
                rec = self.records[iid] = ImageRecord(now)
            rec.size = int(img.get("size") or 0)
            rec.tags = list(img.get("repo_tags") or ())
            if iid in in_use:
                rec.last_used = now
        used = getattr(self.runtime, "image_used", {})
        for ref, at in list(used.items()):
            iid = await self._resolve(ref)
            if iid in self.records:
                self.records[iid].last_used = max(self.records[iid].last_used, at)
            else:
                used.pop(ref, None)      # the image is gone
        for iid in [i for i in self.records if i not in imgs]:
            del self.records[iid]
        return imgs, in_use

    def _pinned(self, img: dict) -> bool:
        return bool(self.pinned & set(img.get("repo_tags") or ())) or bool(img.get("pinned"))

    # -- one pass ------------------------------------------------------------------------------------
    async def collect(self) -> tuple[int, list[str]]:
        """One GC pass; returns (bytes freed, descriptions of the removed images)."""
        capacity, available = await self.usage()
        if capacity <= 0:
            self.event("Warning", "InvalidDiskCapacity", "invalid capacity 0 on image filesystem")
            return 0, []
        percent = 100 - available * 100 // capacity
        if percent < self.high:
            await self.detect()    # keep the records current
            return 0, []
        to_free = capacity * (100 - self.low) // 100 - available
        log.info("image filesystem %d%% used (high threshold %d%%): freeing %s to reach %d%%",
                 percent, self.high, human(max(to_free, 0)), self.low)
        freed, removed = await self.free(to_free)
        if removed:
            msg = (f"Removed {len(removed)} unused image{'s' if len(removed) != 1 else ''}, {human(freed)} freed: "
                   + ", ".join(removed))
            log.warning("image filesystem %d%% used: %s", percent, msg)
            self.event("Normal", "ImageGarbageCollected", msg)
        if freed < to_free:
            msg = (f"Failed to garbage collect required amount of images. Attempted to free {to_free} bytes, "
                   f"but only found {freed} bytes eligible to free.")
            log.warning("%s", msg)
            self.event("Warning", "FreeDiskSpaceFailed", msg)
        return freed, removed

    async def free(self, to_free: int) -> tuple[int, list[str]]:
        imgs, in_use = await self.detect()
        now = time.time()
        candidates = []
        for iid, img in imgs.items():
            if iid in in_use or self._pinned(img):
                continue
            rec = self.records[iid]
            if now - rec.first_detected < self.min_age:
                continue
            candidates.append((rec.last_used, rec.first_detected, iid))
        candidates.sort()
        freed, removed = 0, []
        for _, _, iid in candidates:
            if freed >= to_free:
                break
            rec = self.records[iid]
            name = rec.tags[0] if rec.tags else iid
            try:
                await self.runtime.cri.call("RemoveImage", {"image": {"image": iid}}, timeout=60)
            except Exception as e:
                log.warning("removing image %s (%s): %s", name, iid, e)
                continue
            log.info("removed image %s (%s, %s, last used %s)", name, iid, human(rec.size),
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rec.last_used)) if rec.last_used else "never")
            freed += rec.size
            removed.append(f"{name} ({human(rec.size)})")
            del self.records[iid]
        return freed, removed
