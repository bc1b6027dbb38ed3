"""The real etcd (v3) as the store, spoken through its JSON gRPC gateway over HTTP(S).

Guarded writes are etcd transactions (create: `create_revision == 0`; update/delete:
`mod_revision == expected`), revisions are etcd's own, `watch` is one streaming
`/v3/watch` request per watcher, resumed on another endpoint from the last revision seen
when a member goes away. Several apiservers can share one etcd: each keeps its own watch cache.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import orjson

from .base import (
    DELETE,
    PUT,
    CompactedError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    StoreError,
)

log = logging.getLogger(__name__)

RANGE_PAGE = 5000
# gRPC metadata through the gateway: watches on a member that lost its leader are cancelled
# (instead of silently receiving nothing) so the watcher moves to a healthy member.
_WATCH_HEADERS = {"Grpc-Metadata-hasleader": "true"}
_GRPC_UNAVAILABLE = 14
_RECENT_OBJS = 4096


class EtcdUnavailableError(StoreError):
    """No etcd endpoint answered (or the cluster has no leader) within the retry deadline."""


class _Retry(Exception):
    """An attempt failed in a way that another endpoint (or a later try) may not."""

    def __init__(self, msg: str, sent: bool):
        super().__init__(msg)
        self.sent = sent  # the request may have reached etcd (the write may have applied)


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def _unb64(s: str | None) -> bytes:
    return binascii.a2b_base64(s) if s else b""


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix: the prefix with its last byte incremented."""
    p = bytearray(prefix)
    for i in range(len(p) - 1, -1, -1):
        if p[i] < 0xFF:
            p[i] += 1
            return bytes(p[: i + 1])
    return b"\x00"  # every key


def _kv(d: dict) -> KeyValue:
    return KeyValue(_unb64(d.get("key")).decode(), _unb64(d.get("value")),
                    int(d.get("create_revision") or 0), int(d.get("mod_revision") or 0))


class EtcdStore:
    """The store contract over an etcd v3 cluster (one or more client endpoints)."""

    def __init__(self, endpoints: list[str], ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None, timeout: float = 15.0):
        if not endpoints:
            raise ValueError("EtcdStore needs at least one endpoint")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self._ssl: ssl.SSLContext | None = None
        self._ep = 0
        self._session: aiohttp.ClientSession | None = None
        self._compacted = 0
        self._closed = False
        self._watch_responses: set[aiohttp.ClientResponse] = set()
        # Objects this process wrote, keyed by (key, revision): the watch hands them back
        # so the watch cache need not decode what it just encoded.
        self._recent: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._rev_waiters: list[asyncio.Future[int]] = []
        self._rev_task: asyncio.Future[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        """`etcd://h1:2379,h2:2379` (plain) or `etcds://h:2379?ca=..&cert=..&key=..` (TLS)."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("etcd", "etcds"):
            raise ValueError(f"not an etcd URL: {url!r} (use etcd://host:2379[,host:2379])")
        hosts, _, query = rest.partition("?")
        hosts = hosts.rstrip("/")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        ca = params.get("ca") or params.get("cacert")
        cert, key = params.get("cert"), params.get("key")
        tls = scheme == "etcds" or bool(ca or cert) or params.get("tls") in ("1", "true")
        if bool(cert) != bool(key):
            raise ValueError("etcd client TLS needs both cert= and key=")
        eps = [h.strip() for h in hosts.split(",") if h.strip()]
        if not eps:
            raise ValueError(f"no etcd endpoint in {url!r}")
        proto = "https" if tls else "http"
        eps = [e if ":" in e.rsplit("]", 1)[-1] else f"{e}:2379" for e in eps]
        timeout = float(params.get("timeout", 15.0))
        return cls([f"{proto}://{e}" for e in eps], ca_file=ca, cert_file=cert, key_file=key, timeout=timeout)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if any(e.startswith("https://") for e in self.endpoints):
            try:
                ctx = ssl.create_default_context(cafile=self.ca_file)
                if self.cert_file:
                    ctx.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as e:
                raise StoreError(f"etcd TLS files (ca={self.ca_file}, cert={self.cert_file}, "
                                 f"key={self.key_file}): {e}") from None
            self._ssl = ctx
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, ssl=self._ssl if self._ssl else False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=3),
            json_serialize=lambda o: orjson.dumps(o).decode())
        await self.current_revision()  # fail early (with a clear message) if etcd is unreachable
        self._compacted = await self._discover_compacted()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for r in list(self._watch_responses):
            r.close()
        if self._session is not None:
            await self._session.close()

    # -- the wire ----------------------------------------------------------------------------
    async def _attempt(self, ep: str, path: str, body: dict) -> dict:
        assert self._session is not None, "EtcdStore.start() was not called"
        try:
            async with self._session.post(ep + path, data=orjson.dumps(body),
                                          timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=3)) as r:
                raw = await r.read()
        except aiohttp.ClientConnectorError as e:
            raise _Retry(f"{ep}: {e}", sent=False) from None
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as e:
            raise _Retry(f"{ep}: {e!r}", sent=True) from None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Retry(f"{ep}: undecodable answer (HTTP {r.status}): {raw[:200]!r}", sent=True) from None
        if r.status == 200 and "error" not in doc:
            return doc
        msg = str(doc.get("message") or doc.get("error") or raw[:200])
        code = int(doc.get("code") or 0)
        if "compacted" in msg:
            raise CompactedError(int(body.get("revision") or 0), self._compacted)
        if code == _GRPC_UNAVAILABLE or "leader" in msg or "timed out" in msg or r.status >= 502:
            raise _Retry(f"{ep}: {msg}", sent=True)
        raise StoreError(f"etcd {path}: {msg}")

    async def _call(self, path: str, body: dict, write: bool = False) -> tuple[dict, bool]:
        """POST to the current endpoint, moving to the next one while they fail.

        Returns (answer, ambiguous): ambiguous is True when an earlier attempt of a write may
        have been applied by etcd although its answer was lost.
        """
        deadline = time.monotonic() + self.timeout
        ambiguous = False
        delay = 0.05
        last = ""
        while True:
            for _ in range(len(self.endpoints)):
                ep = self.endpoints[self._ep]
                try:
                    return await self._attempt(ep, path, body), ambiguous
                except _Retry as e:
                    last = str(e)
                    ambiguous = ambiguous or (write and e.sent)
                    log.debug("etcd request failed, trying the next endpoint: %s", e)
                    self._ep = (self._ep + 1) % len(self.endpoints)
                if self._closed:
                    raise StoreError("store is closed")
            if time.monotonic() + delay > deadline:
                raise EtcdUnavailableError(f"etcd unavailable at {', '.join(self.endpoints)}: {last}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- reads -------------------------------------------------------------------------------
    async def current_revision(self) -> int:
        """etcd's revision now (a quorum read).

        Concurrent callers share one request, but only one sent after they asked: a request
        already in flight may predate a write they must see, so they wait for the next one.
        """
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._rev_waiters.append(fut)
        if self._rev_task is None or self._rev_task.done():
            self._rev_task = asyncio.ensure_future(self._revision_rounds())
        return await fut

    async def _revision_rounds(self) -> None:
        while self._rev_waiters:
            waiters, self._rev_waiters = self._rev_waiters, []
            try:
                doc, _ = await self._call("/v3/kv/range", {"key": "AA==", "count_only": True})
                rev: int | BaseException = int(doc["header"]["revision"])
            except Exception as e:
                rev = e
            for w in waiters:
                if w.done():
                    continue
                if isinstance(rev, BaseException):
                    w.set_exception(rev)
                else:
                    w.set_result(rev)

    def compacted_revision(self) -> int:
        return self._compacted

    async def _discover_compacted(self) -> int:
        """etcd does not report its compaction point: find the oldest readable revision by bisection."""
        async def readable(rev: int) -> bool:
            try:
                await self._call("/v3/kv/range", {"key": "AA==", "count_only": True, "revision": rev})
                return True
            except CompactedError:
                return False

        hi = await self.current_revision()
        if await readable(1):
            return 0
        lo = 1  # not readable; hi is readable
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if await readable(mid):
                hi = mid
            else:
                lo = mid
        return hi

    async def get(self, key: str) -> KeyValue | None:
        doc, _ = await self._call("/v3/kv/range", {"key": _b64(key)})
        kvs = doc.get("kvs")
        return _kv(kvs[0]) if kvs else None

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        p = prefix.encode()
        end = _b64(_prefix_end(p))
        body: dict[str, Any] = {"key": _b64(p), "range_end": end, "limit": RANGE_PAGE}
        out: list[KeyValue] = []
        rev = 0
        while True:
            doc, _ = await self._call("/v3/kv/range", body)
            if not rev:
                rev = int(doc["header"]["revision"])
                body["revision"] = rev  # later pages read the same snapshot
            kvs = doc.get("kvs") or []
            out.extend(_kv(d) for d in kvs)
            if not doc.get("more") or not kvs:
                return out, rev
            body["key"] = _b64(_unb64(kvs[-1]["key"]) + b"\x00")

    # -- writes ------------------------------------------------------------------------------
    def _remember(self, key: str, rev: int, obj: Any) -> None:
        if obj is None:
            return
        self._recent[(key, rev)] = obj
        if len(self._recent) > _RECENT_OBJS:
            self._recent.popitem(last=False)

    async def create(self, key: str, value: bytes, obj: Any = None) -> int:
        k = _b64(key)
        doc, ambiguous = await self._call("/v3/kv/txn", {
            "compare": [{"target": "CREATE", "key": k, "create_revision": 0}],
            "success": [{"request_put": {"key": k, "value": _b64(value)}}],
            "failure": [{"request_range": {"key": k}}]}, write=True)
        if not doc.get("succeeded"):
            cur = _failure_kv(doc)
            if ambiguous and cur is not None and cur.value == value and cur.mod_revision == cur.create_revision:
                return cur.mod_revision  # our own earlier attempt did apply
            raise KeyExistsError(key)
        rev = int(doc["header"]["revision"])
        self._remember(key, rev, obj)
        return rev

    async def update(self, key: str, value: bytes, expected_revision: int, obj: Any = None) -> int:
        k = _b64(key)
        compare = ({"target": "MOD", "key": k, "mod_revision": expected_revision} if expected_revision
                   else {"target": "CREATE", "key": k, "result": "GREATER", "create_revision": 0})
        doc, ambiguous = await self._call("/v3/kv/txn", {
            "compare": [compare],
            "success": [{"request_put": {"key": k, "value": _b64(value)}}],
            "failure": [{"request_range": {"key": k}}]}, write=True)
        if not doc.get("succeeded"):
            cur = _failure_kv(doc)
            if cur is None:
                raise KeyNotFoundError(key)
            if ambiguous and cur.value == value and cur.mod_revision > expected_revision:
                return cur.mod_revision
            raise RevisionMismatchError(key, expected_revision, cur.mod_revision)
        rev = int(doc["header"]["revision"])
        self._remember(key, rev, obj)
        return rev

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        k = _b64(key)
        compare = ({"target": "MOD", "key": k, "mod_revision": expected_revision} if expected_revision
                   else {"target": "CREATE", "key": k, "result": "GREATER", "create_revision": 0})
        doc, _ = await self._call("/v3/kv/txn", {
            "compare": [compare],
            "success": [{"request_delete_range": {"key": k, "prev_kv": True}}],
            "failure": [{"request_range": {"key": k}}]}, write=True)
        if not doc.get("succeeded"):
            cur = _failure_kv(doc)
            if cur is None:
                raise KeyNotFoundError(key)
            raise RevisionMismatchError(key, expected_revision, cur.mod_revision)
        resp = (doc.get("responses") or [{}])[0].get("response_delete_range") or {}
        prev = resp.get("prev_kvs") or []
        if not prev:  # deleted by someone else between compare and delete cannot happen in a txn
            raise KeyNotFoundError(key)
        return int(doc["header"]["revision"]), _kv(prev[0])

    # -- watch -------------------------------------------------------------------------------
    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        if after_revision and after_revision < self._compacted:
            raise CompactedError(after_revision, self._compacted)
        assert self._session is not None, "EtcdStore.start() was not called"
        p = prefix.encode()
        next_rev = after_revision + 1
        delay = 0.05
        while not self._closed:
            ep = self.endpoints[self._ep]
            body = {"create_request": {"key": _b64(p), "range_end": _b64(_prefix_end(p)),
                                       "start_revision": next_rev, "prev_kv": True, "progress_notify": True}}
            try:
                async with self._session.post(
                        ep + "/v3/watch", data=orjson.dumps(body), headers=_WATCH_HEADERS,
                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=3, sock_read=None)) as r:
                    if r.status != 200:
                        raise _Retry(f"{ep}: watch answered HTTP {r.status}", sent=False)
                    self._watch_responses.add(r)
                    try:
                        async for batch in self._read_watch(r, next_rev):
                            delay = 0.05
                            if batch:
                                next_rev = batch[-1].revision + 1
                                yield batch
                    finally:
                        self._watch_responses.discard(r)
            except CompactedError:
                raise
            except (_Retry, aiohttp.ClientError, TimeoutError, ConnectionError, orjson.JSONDecodeError) as e:
                if self._closed:
                    return
                log.info("etcd watch on %s interrupted (%s); resuming from revision %d", prefix, e, next_rev)
            if self._closed:
                return
            # The stream ended or failed: resume from the next revision on the next endpoint.
            self._ep = (self._ep + 1) % len(self.endpoints)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _read_watch(self, r: aiohttp.ClientResponse, start: int) -> AsyncIterator[list[Event]]:
        buf = b""
        pending: list[Event] = []  # events of a fragmented response
        async for chunk in r.content.iter_any():
            buf += chunk
            while True:
                i = buf.find(b"\n")
                if i < 0:
                    break
                line, buf = buf[:i], buf[i + 1:]
                if not line.strip():
                    continue
                msg = orjson.loads(line)
                if "error" in msg and "result" not in msg:
                    err = msg["error"]
                    raise _Retry(str(err.get("message") if isinstance(err, dict) else err), sent=False)
                res = msg.get("result") or {}
                compact = int(res.get("compact_revision") or 0)
                if compact:
                    self._compacted = max(self._compacted, compact)
                    raise CompactedError(start - 1, compact)
                if res.get("canceled"):
                    raise _Retry(f"watch cancelled: {res.get('cancel_reason') or 'no reason given'}", sent=False)
                evs = res.get("events")
                if not evs:
                    continue  # created / progress notification
                arrived = time.monotonic()
                for e in evs:
                    ev = self._event(e)
                    ev.committed = arrived
                    pending.append(ev)
                if res.get("fragment"):
                    continue
                batch, pending = pending, []
                yield batch

    def _event(self, e: dict) -> Event:
        kv = e.get("kv") or {}
        key = _unb64(kv.get("key")).decode()
        rev = int(kv.get("mod_revision") or 0)
        if e.get("type") == "DELETE":
            prev = e.get("prev_kv") or {}
            return Event(DELETE, key, rev, _unb64(prev.get("value")), int(prev.get("create_revision") or 0))
        obj = self._recent.pop((key, rev), None) if self._recent else None
        return Event(PUT, key, rev, _unb64(kv.get("value")), int(kv.get("create_revision") or 0), obj)

    # -- compaction --------------------------------------------------------------------------
    async def compact(self, revision: int) -> None:
        """Forget history before `revision` (watches from older revisions get CompactedError)."""
        revision = min(revision, await self.current_revision())
        if revision <= self._compacted:
            return
        try:
            await self._call("/v3/kv/compaction", {"revision": revision})
        except CompactedError:
            pass  # another server compacted at or past it already
        except StoreError as e:
            if "future revision" not in str(e):
                raise
            return
        self._compacted = max(self._compacted, revision)


def _failure_kv(doc: dict) -> KeyValue | None:
    """The key as the failure branch of a guarded txn read it (None: absent)."""
    for resp in doc.get("responses") or []:
        kvs = (resp.get("response_range") or {}).get("kvs")
        if kvs:
            return _kv(kvs[0])
    return None
