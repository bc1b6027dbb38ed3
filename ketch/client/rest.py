"""An async client of the Kubernetes REST API: what every ketch component uses to talk to the apiserver."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import yaml

from ..api.errors import StatusError
from ..api.registry import REGISTRY, Registry, ResourceInfo


class Client:
    """One connection pool to one apiserver."""

    def __init__(self, server: str, token: str | None = None, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None, insecure: bool = False,
                 registry: Registry = REGISTRY, user_agent: str = "ketch"):
        self.server = server.rstrip("/")
        self.registry = registry
        self.headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._ssl: Any = None
        if self.server.startswith("https"):
            ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cert_file:
                ctx.load_cert_chain(cert_file, key_file)
            self._ssl = ctx
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str, **kw: Any) -> Client:
        with open(path) as f:
            cfg = yaml.safe_load(f)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")), {}) or {}
        files: dict[str, str | None] = {}
        for field, data_field in (("certificate-authority", "certificate-authority-data"),
                                  ("client-certificate", "client-certificate-data"),
                                  ("client-key", "client-key-data")):
            src = cluster if field == "certificate-authority" else user
            if src.get(field):
                files[field] = src[field]
            elif src.get(data_field):
                fd, p = tempfile.mkstemp(prefix="ketch-", suffix=".pem")
                os.write(fd, base64.b64decode(src[data_field]))
                os.close(fd)
                files[field] = p
        return cls(cluster["server"], token=user.get("token"), ca_file=files.get("certificate-authority"),
                   cert_file=files.get("client-certificate"), key_file=files.get("client-key"),
                   insecure=bool(cluster.get("insecure-skip-tls-verify")), **kw)

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers, connector=aiohttp.TCPConnector(limit=64, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def watch_session(self) -> aiohttp.ClientSession:
        """Watches hold their connection for minutes: they get a pool of their own, without a limit,
        so many of them (an agent watches each configMap and secret its pods use) never make
        requests wait for a connection (with HTTP/1.1, one connection per watch)."""
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = aiohttp.ClientSession(
                headers=self.headers, connector=aiohttp.TCPConnector(limit=0, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._watch_session

    async def close(self) -> None:
        for s in (self._session, self._watch_session):
            if s is not None:
                await s.close()

    # -- paths -------------------------------------------------------------------------------
    def resource(self, plural: str, group: str = "", version: str = "v1") -> ResourceInfo:
        ri = self.registry.get(group, version, plural)
        if ri is None:
            raise KeyError(f"unknown resource {plural}.{group}/{version}")
        return ri

    @staticmethod
    def path(ri: ResourceInfo, namespace: str | None = None, name: str = "", sub: str = "") -> str:
        base = f"/api/{ri.version}" if not ri.group else f"/apis/{ri.group}/{ri.version}"
        if ri.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{ri.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base

    # -- requests ----------------------------------------------------------------------------
    async def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                      content_type: str = "application/json") -> Any:
        s = await self.session()
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        headers = {"Content-Type": content_type} if data is not None else None
        async with s.request(method, self.server + path, data=data, params=_params(params), headers=headers) as r:
            raw = await r.read()
            if r.status >= 400:
                raise _status_error(r.status, raw)
            return orjson.loads(raw) if raw else None

    async def get(self, ri: ResourceInfo, namespace: str | None, name: str, sub: str = "") -> dict:
        return await self.request("GET", self.path(ri, namespace, name, sub))

    async def list(self, ri: ResourceInfo, namespace: str | None = None, label_selector: str = "",
                   field_selector: str = "", **params: Any) -> dict:
        p = dict(params)
        if label_selector:
            p["labelSelector"] = label_selector
        if field_selector:
            p["fieldSelector"] = field_selector
        return await self.request("GET", self.path(ri, namespace), params=p)

    async def create(self, ri: ResourceInfo, namespace: str | None, obj: dict, **params: Any) -> dict:
        return await self.request("POST", self.path(ri, namespace), obj, params)

    async def update(self, ri: ResourceInfo, obj: dict, sub: str = "", **params: Any) -> dict:
        meta = obj["metadata"]
        return await self.request("PUT", self.path(ri, meta.get("namespace"), meta["name"], sub), obj, params)

    async def patch(self, ri: ResourceInfo, namespace: str | None, name: str, patch: Any,
                    patch_type: str = "merge", sub: str = "", **params: Any) -> dict:
        ct = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
              "strategic": "application/strategic-merge-patch+json",
              "apply": "application/apply-patch+yaml"}[patch_type]
        return await self.request("PATCH", self.path(ri, namespace, name, sub), patch, params, ct)

    async def delete(self, ri: ResourceInfo, namespace: str | None, name: str, options: dict | None = None,
                     **params: Any) -> dict:
        return await self.request("DELETE", self.path(ri, namespace, name), options, params)

    async def delete_collection(self, ri: ResourceInfo, namespace: str | None, options: dict | None = None,
                                **params: Any) -> dict:
        return await self.request("DELETE", self.path(ri, namespace), options, params)

    async def watch(self, ri: ResourceInfo, namespace: str | None = None, resource_version: str = "",
                    timeout_seconds: int = 0, **params: Any) -> AsyncIterator[dict]:
        """Watch events ({type, object}); ends when the server closes the stream."""
        p = dict(params)
        p["watch"] = "true"
        p["allowWatchBookmarks"] = "true"
        if resource_version:
            p["resourceVersion"] = resource_version
        if timeout_seconds:
            p["timeoutSeconds"] = str(timeout_seconds)
        s = await self.watch_session()
        async with s.get(self.server + self.path(ri, namespace), params=_params(p)) as r:
            if r.status >= 400:
                raise _status_error(r.status, await r.read())
            buf = b""
            async for chunk in r.content.iter_any():
                buf += chunk
                while True:
                    i = buf.find(b"\n")
                    if i < 0:
                        break
                    line, buf = buf[:i], buf[i + 1:]
                    if line.strip():
                        ev = orjson.loads(line)
                        if ev.get("type") == "ERROR":
                            st = ev.get("object") or {}
                            raise StatusError(int(st.get("code") or 500), st.get("reason") or "", st.get("message") or "")
                        yield ev


def _params(p: dict | None) -> dict | None:
    if not p:
        return None
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in p.items() if v is not None}


def _status_error(code: int, raw: bytes) -> StatusError:
    try:
        st = orjson.loads(raw)
        return StatusError(int(st.get("code") or code), st.get("reason") or "", st.get("message") or "",
                           st.get("details"))
    except (orjson.JSONDecodeError, AttributeError):
        return StatusError(code, "", raw.decode(errors="replace")[:500])


async def wait_ready(client: Client, timeout: float = 30.0) -> None:
    """Wait until the apiserver answers /readyz."""
    s = await client.session()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with s.get(client.server + "/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"apiserver at {client.server} not ready after {timeout:.0f}s")
        await asyncio.sleep(0.1)
