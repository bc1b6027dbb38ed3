"""The HTTP face of the apiserver: routing, content negotiation, watch streaming.

Every resource route is derived from the registry; there is no hand-written route per kind.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import random
import time
from collections import defaultdict
from typing import Any

import orjson
import yaml
from aiohttp import web
from multidict import CIMultiDict

from ..aioutil import libc_malloc_trim, trim_heap
from ..api import errors
from ..api.podutil import referenced_objects
from ..api.registry import REGISTRY, Registry, ResourceInfo
from ..store.base import CompactedError
from . import auth, discovery
from .cache import ADDED, Entry, Watcher
from .resources import ResourceService, ensure_namespaces

log = logging.getLogger("ketch.apiserver")

MAX_BODY = 3 * 1024 * 1024
VERSION = {"major": "1", "minor": "34", "gitVersion": "v1.34.0-ketch.0.1.0", "gitCommit": "ketch",
           "gitTreeState": "clean", "buildDate": "2026-11-22T00:00:00Z", "goVersion": "python",
           "compiler": "cpython", "platform": "linux/amd64", "emulationMajor": "1", "emulationMinor": "34",
           "minCompatibilityMajor": "1", "minCompatibilityMinor": "33"}
DEFAULT_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"]
JSON = "application/json"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
BOOKMARK_INTERVAL = 60.0


def _pb_string(field: int, value: str) -> bytes:
    data = value.encode()
    return bytes([field << 3 | 2, len(data)]) + data


# gnostic openapi_v2.Document{swagger: "2.0", info: {title: "Kubernetes", version: ...}}
_OPENAPI_V2_EMPTY = _pb_string(1, "2.0") + bytes([2 << 3 | 2]) + bytes(
    [len(_pb_string(1, "Kubernetes") + _pb_string(2, "v1.34.0"))]) + _pb_string(1, "Kubernetes") + _pb_string(2, "v1.34.0")

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _YamlLoader = yaml.SafeLoader


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def respond(body: Any, status: int = 200, content_type: str = JSON, headers: dict | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else _dumps(body)
    if ";" in content_type:
        h = CIMultiDict(headers or {})
        h["Content-Type"] = content_type
        return web.Response(body=data, status=status, headers=h)
    return web.Response(body=data, status=status, content_type=content_type, headers=headers)


def status_response(err: errors.StatusError) -> web.Response:
    return web.Response(body=_dumps(err.status()), status=err.code, content_type=JSON, headers=err.headers)


def success_status(details: dict | None = None, code: int = 200) -> dict:
    st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        st["details"] = details
    st["code"] = code
    return st


# A watch event is written to its connection directly while less than this is waiting to be sent;
# beyond it the watch handler writes (and waits for the client to drain).
SINK_LIMIT = 256 * 1024


class APIServer:
    """Routes requests to the resource service; owns the watch streams."""

    def __init__(self, store: Any, registry: Registry = REGISTRY, advertise: str = "127.0.0.1:6443",
                 tokens: auth.TokenFile | None = None, secure: bool = False):
        """secure=False (plain HTTP on loopback, asked for explicitly) treats every caller as admin."""
        self.tokens = tokens
        self.secure = secure
        self.ca_pem = b""
        self.signer: Any = None      # service-account token signer (satoken.TokenSigner)
        self.registry = registry
        self.service = ResourceService(store, registry)
        self.store = store
        self.advertise = advertise
        self.started = time.time()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        self.watch_count = 0
        self._closing = asyncio.Event()
        self.ready = False

    async def start(self) -> None:
        await self.service.start()
        await ensure_namespaces(self.service, DEFAULT_NAMESPACES)
        from .allocator import ensure_kubernetes_service
        await ensure_kubernetes_service(self.service, self.advertise)
        loop = asyncio.get_running_loop()
        self._gc_task = loop.create_task(gc_policy(self._closing))
        # Freed memory back to the system (after big lists), off the event loop's thread.
        self._trim_task = loop.create_task(trim_heap(libc_malloc_trim(), self._closing))
        self.ready = True

    async def close(self) -> None:
        self._closing.set()
        await self.service.close()

    # -- app ---------------------------------------------------------------------------------
    def runner(self, **kwargs: Any) -> web.BaseRunner:
        """A runner serving this API with aiohttp's low-level server: every request goes to one
        handler anyway, so the Application's router, middleware chain and signals are skipped."""
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            return await self._middleware(request, self.dispatch)
        return web.ServerRunner(web.Server(handle, access_log=None), **kwargs)

    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        t0 = time.perf_counter()
        try:
            if not self.secure:
                request["user"] = auth.INSECURE_ADMIN
            else:
                user = auth.authenticate(request, self.tokens, self.signer)
                if user is auth.ANONYMOUS and request.path not in auth.PUBLIC_PATHS:
                    raise errors.StatusError(401, "Unauthorized", "Unauthorized")
                request["user"] = user
            resp = await handler(request)
        except errors.StatusError as e:
            resp = status_response(e)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a server bug: never silent
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            resp = status_response(errors.StatusError(500, "InternalError", f"Internal error occurred: {e}"))
        verb = request.method
        self.requests[(verb, request.get("resource", ""), resp.status)] += 1
        lat = self.latency[verb]
        lat[0] += time.perf_counter() - t0
        lat[1] += 1
        return resp

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p]
        if not parts:
            return respond({"paths": sorted({"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/metrics",
                                              "/version", "/openapi/v3"} | {f"/apis/{g}" for g in self.registry.group_versions() if g})})
        head = parts[0]
        if head == "api":
            if len(parts) == 1:
                return self._discovery_root(request, legacy=True)
            if len(parts) == 2:
                doc = discovery.api_resource_list(self.registry, "", parts[1])
                if doc is None:
                    raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
                return respond(doc)
            return await self._resource_request(request, "", parts[1], parts[2:])
        if head == "apis":
            if len(parts) == 1:
                return self._discovery_root(request, legacy=False)
            if len(parts) == 2:
                doc = discovery.api_group(self.registry, parts[1])
                if doc is None:
                    raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
                return respond(doc)
            if len(parts) == 3:
                doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
                if doc is None:
                    raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
                return respond(doc)
            return await self._resource_request(request, parts[1], parts[2], parts[3:])
        if head == "version":
            return respond(VERSION)
        if head in ("healthz", "livez", "readyz"):
            ok = self.ready if head == "readyz" else True
            return web.Response(text="ok" if ok else "not ready", status=200 if ok else 500)
        if head == "metrics":
            return web.Response(text=self._metrics(), content_type="text/plain")
        if head == "openapi":
            return self._openapi(request, parts)
        if head == "ketch" and parts[1:] == ["join"] and request.method == "POST":
            return await self._join(request)
        if head == "ketch" and parts[1:] == ["ca.crt"] and self.ca_pem:
            return web.Response(body=self.ca_pem, content_type="application/x-pem-file")
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")

    def _discovery_root(self, request: web.Request, legacy: bool) -> web.Response:
        ct = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if ct:
            api_version = "apidiscovery.k8s.io/v2beta1" if "v2beta1" in ct else "apidiscovery.k8s.io/v2"
            return respond(discovery.aggregated(self.registry, legacy, api_version), content_type=ct)
        if legacy:
            return respond(discovery.api_versions(self.advertise))
        return respond(discovery.api_group_list(self.registry))

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        from ..api import openapi
        if len(parts) >= 2 and parts[1] == "v3":
            if len(parts) == 2:
                return respond(openapi.openapi_v3_index(self.registry))
            rest = parts[2:]
            found = None
            if rest[0] == "api" and len(rest) == 2:
                found = openapi.openapi_v3_document_bytes(self.registry, "", rest[1])
            elif rest[0] == "apis" and len(rest) == 3:
                found = openapi.openapi_v3_document_bytes(self.registry, rest[1], rest[2])
            if found is not None:
                return respond(found[0], headers={"Cache-Control": "public, immutable", "Etag": f'"{found[1]}"'}
                               if request.query.get("hash") else None)
        if len(parts) == 2 and parts[1] == "v2" and "protobuf" in request.headers.get("Accept", ""):
            # An empty but real protobuf v2 document: kubectl falls back to v2 only for kinds the
            # v3 documents lack, and then must learn "no schema", not fail to download (a JSON v2
            # answer would be fatal to it).
            return web.Response(body=_OPENAPI_V2_EMPTY, headers={
                "Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")

    # -- resources ---------------------------------------------------------------------------
    def _route(self, group: str, version: str, rest: list[str]) -> tuple[ResourceInfo, str | None, str, str]:
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ri = self.registry.get(group, version, rest[2])
            if ri is not None and ri.namespaced:
                namespace, rest = rest[1], rest[2:]
        ri = self.registry.get(group, version, rest[0])
        if ri is None or len(rest) > 3:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in ri.subresources:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return ri, namespace, name, sub

    async def _resource_request(self, request: web.Request, group: str, version: str,
                                rest: list[str]) -> web.StreamResponse:
        ri, ns, name, sub = self._route(group, version, rest)
        request["resource"] = ri.plural
        q = request.query
        method = request.method
        svc = self.service
        dry_run = "All" in q.getall("dryRun", [])
        if ri.group == "metrics.k8s.io":
            self._authorize(request, ri, ns, name, sub)
            return await self._nodeproxy().metrics(request, ri, ns, name)
        if ri.extra.get("virtual"):
            if method != "POST" or name:
                raise errors.method_not_allowed()
            return await self._review(request, ri)
        if sub == "token" and method == "POST":
            self._authorize(request, ri, ns, name, "token")
            return await self._token_request(request, ns, name)
        self._authorize(request, ri, ns, name, sub)
        if sub in ("log", "exec", "attach", "portforward") and ri.plural == "pods" and name:
            return await self._nodeproxy().pod_request(request, ri, ns, name, sub)
        if ri.extra.get("convert") == "events":
            return await self._events_v1_request(request, ri, ns, name, dry_run)
        if ri.namespaced and ns is None and method not in ("GET",) and not (method == "DELETE" and not name):
            if method == "POST" or name:
                raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            if not name:
                if _truthy(q.get("watch")):
                    return await self._watch(request, ri, ns)
                return await self._list(request, ri, ns)
            if sub == "scale":
                return respond(self._scale_of(ri, await svc.get(ri, ns, name)))
            if sub in ("", "status"):
                return self._object_response(request, ri, await svc.get(ri, ns, name))
            return self._not_served(ri, sub)
        if method == "POST":
            if name and sub == "binding":
                return await self._binding(request, ri, ns, name)
            if name and sub == "eviction":
                return await self._eviction(request, ri, ns, name)
            if name:
                return self._not_served(ri, sub)
            body = await self._read_object(request)
            why = auth.check_create_body(request["user"], ri.plural, ns, body)
            if why is not None:
                raise errors.forbidden(f"{ri.plural} is forbidden: {why}", ri.plural, "", ri.group)
            res = await svc.create(ri, ns, body, dry_run=dry_run, field_validation=_fv(q), manager=_manager(request))
            return respond(res.raw, 201, headers=_warning_headers(res.warnings))
        if method == "PUT":
            if not name:
                raise errors.method_not_allowed()
            body = await self._read_object(request)
            if sub == "scale":
                return await self._update_scale(ri, ns, name, lambda _s: body, dry_run)
            if sub not in ("", "status", "finalize"):
                return self._not_served(ri, sub)
            if sub == "finalize":
                return await self._finalize(ri, ns, name, body, dry_run)
            res = await svc.update(ri, ns, name, body, subresource=sub, dry_run=dry_run, field_validation=_fv(q),
                                   manager=_manager(request))
            return respond(res.raw, 200, headers=_warning_headers(res.warnings))
        if method == "PATCH":
            if not name:
                raise errors.method_not_allowed()
            return await self._patch(request, ri, ns, name, sub, dry_run)
        if method == "DELETE":
            options = await self._delete_options(request)
            dry_run = dry_run or "All" in (options.get("dryRun") or [])
            if not name:
                pred = self._predicate(request, ri)
                results = await svc.delete_collection(ri, ns, pred, options, dry_run=dry_run)
                items = b",".join(r.raw for r in results)
                return respond(b'{"kind":"' + ri.list_kind.encode() + b'","apiVersion":"' + ri.group_version.encode()
                               + b'","metadata":{},"items":[' + items + b"]}")
            res = await svc.delete(ri, ns, name, options, dry_run=dry_run)
            return respond(res.raw, 200)
        raise errors.method_not_allowed()

    async def _events_v1_request(self, request: web.Request, ext: ResourceInfo, ns: str | None, name: str,
                                 dry_run: bool) -> web.StreamResponse:
        """events.k8s.io/v1 Events: stored as core/v1 Events, converted on the way in and out."""
        from ..api.events import to_core, to_events_v1
        ri = self.registry.get("", "v1", "events")
        svc = self.service
        method = request.method
        if method == "GET" and not name and _truthy(request.query.get("watch")):
            def encode(etype: str, entry: Entry, _ev: Any) -> bytes:
                return b'{"type":"' + etype.encode() + b'","object":' + _dumps(to_events_v1(entry.obj)) + b"}\n"
            return await self._watch(request, ri, ns, encode=encode)
        if method == "GET" and not name:
            entries, rev, last_key, remaining = await svc.list(ri, ns, self._predicate(request, ri))
            if "as=Table" in request.headers.get("Accept", ""):
                from ..api import tables
                return respond(tables.table("Event", [e.obj for e in entries], resource_version=str(rev),
                                            include_object=request.query.get("includeObject", "Metadata")))
            return respond({"kind": "EventList", "apiVersion": ext.group_version,
                            "metadata": {"resourceVersion": str(rev)},
                            "items": [to_events_v1(e.obj) for e in entries]})
        if method == "GET":
            return respond(to_events_v1((await svc.get(ri, ns, name)).obj))
        if method == "DELETE":
            if not name:
                raise errors.method_not_allowed()
            return respond(to_events_v1((await svc.delete(ri, ns, name, await self._delete_options(request),
                                                           dry_run=dry_run)).obj))
        if method in ("POST", "PUT"):
            body = await self._read_object(request)
            body = ext_checked(ext, body)
            if method == "POST" and not name:
                res = await svc.create(ri, ns, to_core(body), dry_run=dry_run, field_validation="Ignore")
                return respond(to_events_v1(res.obj), 201)
            if name:
                res = await svc.update(ri, ns, name, to_core(body), dry_run=dry_run, field_validation="Ignore")
                return respond(to_events_v1(res.obj))
        if method == "PATCH" and name:
            from ..api import patch as patchlib
            ct = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            body = _decode(await self._read_raw(request), JSON)

            def apply(cur: dict) -> dict:
                ext_obj = to_events_v1(cur)
                try:
                    if ct == "application/json-patch+json":
                        new = patchlib.json_patch(ext_obj, body)
                    elif ct == "application/merge-patch+json":
                        new = patchlib.merge_patch(ext_obj, body)
                    else:
                        new = patchlib.strategic_merge_patch(ext_obj, body, ext.definition)
                except patchlib.PatchError as e:
                    raise errors.StatusError(e.code, "Invalid" if e.code == 422 else "BadRequest", str(e)) from None
                return to_core(new)
            res = await svc.patch(ri, ns, name, apply, dry_run=dry_run, field_validation="Ignore")
            return respond(to_events_v1(res.obj))
        raise errors.method_not_allowed()

    async def _join(self, request: web.Request) -> web.Response:
        """A node joining with the cluster's join token gets a token bound to its node name."""
        user: auth.User = request["user"]
        if not self.secure or self.tokens is None:
            raise errors.bad_request("joining needs a secure (TLS) server")
        if "system:bootstrappers" not in user.groups and not user.is_admin:
            raise errors.forbidden("only the join token may join nodes")
        body = await self._read_object(request)
        node = (body or {}).get("nodeName") if isinstance(body, dict) else None
        from ..api.validation import validate_name
        if not node or validate_name("Node", node):
            raise errors.bad_request(f"invalid nodeName {node!r}: {validate_name('Node', node or '') or 'required'}")
        username = f"system:node:{node}"
        token = self.tokens.find_user(username)
        if token is None:
            from .pki import new_token
            token = new_token()
            self.tokens.add(token, username, ["system:nodes", "system:authenticated"])
        return respond({"nodeName": node, "user": username, "token": token,
                        "certificateAuthorityData": base64.b64encode(self.ca_pem).decode()})

    async def _review(self, request: web.Request, ri: ResourceInfo) -> web.Response:
        """SelfSubjectReview / SelfSubjectAccessReview / SelfSubjectRulesReview: answered, never stored."""
        body = ext_checked(ri, await self._read_object(request))
        user: auth.User = request["user"]
        kind = ri.extra["virtual"]
        out: dict[str, Any] = {"kind": ri.kind, "apiVersion": ri.group_version, "metadata": {"creationTimestamp": None}}
        spec = body.get("spec") or {}
        if kind == "selfsubjectreview":
            out["status"] = {"userInfo": {"username": user.name, "groups": list(user.groups)}}
        elif kind == "selfsubjectaccessreview":
            out["spec"] = spec
            ra = spec.get("resourceAttributes")
            if ra is not None:
                why = auth.authorize(user, ra.get("verb") or "get", ra.get("resource") or "", ra.get("subresource") or "",
                                     ra.get("namespace") or None, ra.get("name") or "")
            elif spec.get("nonResourceAttributes") is not None:
                why = None if user.is_admin or user is not auth.ANONYMOUS else "anonymous"
            else:
                raise errors.invalid(ri.kind, "", [{"reason": "FieldValueRequired", "field": "spec",
                                                    "message": "spec: Required value: exactly one of nonResourceAttributes "
                                                               "or resourceAttributes must be specified"}], ri.group)
            # A plain denial carries no reason, as with Kubernetes' RBAC (kubectl prints just "no").
            out["status"] = {"allowed": why is None}
        else:
            out["spec"] = spec
            if user.is_admin:
                rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
                non_resource = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            elif user.node_name:
                rules = [{"verbs": ["get", "list", "watch"], "apiGroups": ["*"], "resources": sorted(auth.NODE_READ)}]
                non_resource = []
            else:
                rules, non_resource = [], []
            out["status"] = {"resourceRules": rules, "nonResourceRules": non_resource, "incomplete": False}
        return respond(out, 201)

    async def _token_request(self, request: web.Request, ns: str | None, name: str) -> web.Response:
        """serviceaccounts/<name>/token: a bearer token for the service account (TokenRequest)."""
        from ..api.meta import now_rfc3339
        sa_ri = self.registry.get("", "v1", "serviceaccounts")
        await self.service.get(sa_ri, ns, name)      # 404 when the service account does not exist
        body = await self._read_object(request)
        spec = (body or {}).get("spec") or {} if isinstance(body, dict) else {}
        self._check_node_token_request(request["user"], ns, name, spec)
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise errors.invalid("TokenRequest", name, [{"reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                                                         "message": "spec.expirationSeconds: Invalid value: "
                                                                    f"{seconds}: may not specify a duration less than 10 minutes"}],
                                 "authentication.k8s.io")
        if self.signer is None:
            raise errors.StatusError(503, "ServiceUnavailable", "this server has no service account token signer")
        sa = self.service.current(sa_ri, ns, name)
        token, exp = self.signer.issue(ns or "", name, sa.obj["metadata"].get("uid", "") if sa else "", seconds,
                                       list(spec.get("audiences") or []))
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        return respond({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                        "metadata": {"name": name, "namespace": ns, "creationTimestamp": now_rfc3339()},
                        "spec": {"audiences": spec.get("audiences") or [], "expirationSeconds": seconds},
                        "status": {"token": token, "expirationTimestamp": expires}}, 201)

    def _check_node_token_request(self, user: auth.User, ns: str | None, name: str, spec: dict) -> None:
        """A node's TokenRequest must be bound to a pod of that node (see auth.check_token_request)."""
        if user.node_name is None or user.is_admin:
            return
        ref = spec.get("boundObjectRef") or {}
        pod = self.service.current(self.registry.get("", "v1", "pods"), ns, ref["name"]) \
            if ref.get("kind") == "Pod" and ref.get("name") else None
        why = auth.check_token_request(user, name, spec, pod.obj if pod else None)
        if why is not None:
            raise errors.forbidden(f'serviceaccounts "{name}" is forbidden: {why}', "serviceaccounts", name)

    def _authorize(self, request: web.Request, ri: ResourceInfo, ns: str | None, name: str, sub: str) -> None:
        user: auth.User = request["user"]
        if user.is_admin:
            return
        m = request.method
        if m == "GET":
            verb = "get" if name else ("watch" if _truthy(request.query.get("watch")) else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete" if name else "deletecollection"}.get(m, m.lower())
        current = self.service.current(ri, ns, name) if name and verb != "create" else None
        why = auth.authorize(user, verb, ri.plural, sub, ns, name, current=current.obj if current else None)
        if why is None and user.node_name and ri.plural in auth.NODE_REFERENCED and not ri.group:
            why = self._node_reads_referenced(user.node_name, verb, ri.plural, ns, name, request)
        if why is not None:
            what = f'{ri.plural}{"." + ri.group if ri.group else ""}'
            target = f' "{name}"' if name else ""
            raise errors.forbidden(f'{what}{target} is forbidden: {why}', ri.plural, name, ri.group)

    def _node_reads_referenced(self, node: str, verb: str, plural: str, ns: str | None, name: str,
                               request: web.Request) -> str | None:
        """The Node authorizer's rule for secrets and configMaps: a node reads one object at a time
        (get, or list/watch with fieldSelector metadata.name=X), and only one a pod bound to it
        references (volumes, env, envFrom)."""
        if not name:
            sel = [t.strip() for t in (request.query.get("fieldSelector") or "").split(",") if t.strip()]
            if len(sel) == 1 and sel[0].startswith(("metadata.name==", "metadata.name=")):
                name = sel[0].split("=", 2)[-1]
        if not ns or not name:
            return (f'User "system:node:{node}" cannot {verb} resource "{plural}" in API group "" '
                    f'{"in the namespace " + chr(34) + ns + chr(34) if ns else "at the cluster scope"}: '
                    f"a node may only read the {plural} of its pods, one at a time")
        pods = self.registry.get("", "v1", "pods")
        rc = self.service.cache.resource(self.service.storage_prefix(pods))
        for key in rc.keys_with_prefix(self.service.key(pods, ns, "")):
            e = rc.items.get(key)
            if e is not None and (e.obj.get("spec") or {}).get("nodeName") == node \
                    and (plural, name) in referenced_objects(e.obj):
                return None
        return (f'User "system:node:{node}" cannot {verb} resource "{plural}" in API group "" in the namespace '
                f'"{ns}": no relationship found between node \'{node}\' and this object')

    def _nodeproxy(self) -> Any:
        """pods/log|exec|attach|portforward and metrics.k8s.io go to the node agents."""
        if getattr(self, "_node_proxy", None) is None:
            from .nodeproxy import NodeProxy
            self._node_proxy = NodeProxy(self)
        return self._node_proxy

    def _not_served(self, ri: ResourceInfo, sub: str) -> web.Response:
        raise errors.StatusError(503, "ServiceUnavailable",
                                 f"{ri.plural}/{sub} is not available yet: no node agent serves it")

    def _object_response(self, request: web.Request, ri: ResourceInfo, entry: Entry) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept:
            from ..api import tables
            t = tables.table(ri.kind, [entry.obj], include_object=request.query.get("includeObject", "Metadata"),
                             resource_version=str(entry.rev))
            return respond(t)
        if "as=PartialObjectMetadata" in accept and "PartialObjectMetadataList" not in accept:
            return respond(_partial(entry.obj))
        return respond(entry.raw)

    # -- list / watch --------------------------------------------------------------------------
    def _watch_index(self, request: web.Request, ri: ResourceInfo, ns: str | None) -> tuple[str, str] | None:
        """The (field, value) a watch is restricted to, for the cache's watcher index."""
        from ..api import selectors
        from .cache import INDEXED_FIELDS
        fs_s = request.query.get("fieldSelector")
        if fs_s:
            fs = selectors.parse_field_selector(fs_s, ri.kind)
            for field in ("spec.nodeName", "metadata.name"):
                if field in INDEXED_FIELDS:
                    v = fs.exact(field)
                    if v is not None:
                        return (field, v)
        if ri.namespaced and ns:
            return ("metadata.namespace", ns)
        return None

    def _predicate(self, request: web.Request, ri: ResourceInfo) -> Any:
        from ..api import selectors
        q = request.query
        ls_s, fs_s = q.get("labelSelector"), q.get("fieldSelector")
        if not ls_s and not fs_s:
            return None
        try:
            ls = selectors.parse_label_selector(ls_s) if ls_s else None
            fs = selectors.parse_field_selector(fs_s, ri.kind) if fs_s else None
        except selectors.SelectorError as e:
            raise errors.bad_request(f"unable to parse requirement: {e}") from None
        if ls is not None and ls.empty():
            ls = None
        if ls is None and fs is None:
            return None
        if fs is None:
            return lambda o: ls.matches((o.get("metadata") or {}).get("labels"))
        if ls is None:
            return fs.matches
        return lambda o: ls.matches((o.get("metadata") or {}).get("labels")) and fs.matches(o)

    async def _list(self, request: web.Request, ri: ResourceInfo, ns: str | None) -> web.Response:
        q = request.query
        pred = self._predicate(request, ri)
        limit = _int(q.get("limit"), "limit")
        start_after = ""
        list_rev = 0
        if q.get("continue"):
            start_after, list_rev = _decode_continue(q["continue"])
        rv = q.get("resourceVersion")
        exact = 0
        if rv not in (None, "", "0"):
            want = _int(rv, "resourceVersion")
            if want > self.service.cache.rev and not await self.service.cache.wait_for(want, 3.0):
                raise errors.timeout(f"Too large resource version: {want}, current: {self.service.cache.rev}")
            if q.get("resourceVersionMatch") == "Exact":
                exact = want
        elif q.get("resourceVersionMatch") == "Exact":
            raise errors.bad_request("resourceVersionMatch=Exact requires a resourceVersion")
        entries, rev, last_key, remaining = await self.service.list(ri, ns, pred, limit, start_after, exact)
        rev = list_rev or rev
        cont = _encode_continue(last_key, rev) if last_key else ""
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept:
            from ..api import tables
            t = tables.table(ri.kind, [e.obj for e in entries], include_object=q.get("includeObject", "Metadata"),
                             resource_version=str(rev), continue_token=cont,
                             remaining=remaining if cont else None)
            return respond(t)
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if cont:
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        if "as=PartialObjectMetadataList" in accept:
            return respond({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                            "items": [_partial(e.obj) for e in entries]})
        head = (b'{"kind":"' + ri.list_kind.encode() + b'","apiVersion":"' + ri.group_version.encode()
                + b'","metadata":' + _dumps(meta) + b',"items":[')
        return respond(head + b",".join([e.raw for e in entries]) + b"]}")

    async def _watch(self, request: web.Request, ri: ResourceInfo, ns: str | None,
                     encode: Any = None) -> web.StreamResponse:
        q = request.query
        svc = self.service
        pred = self._predicate(request, ri)
        send_initial = _truthy(q.get("sendInitialEvents"))
        if send_initial and q.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid(ri.kind, "", [{"reason": "FieldValueForbidden", "field": "sendInitialEvents",
                                                "message": "sendInitialEvents: Forbidden: sendInitialEvents is "
                                                           "forbidden for watch unless resourceVersionMatch is set to NotOlderThan"}])
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        timeout = q.get("timeoutSeconds")
        deadline = time.monotonic() + (float(_int(timeout, "timeoutSeconds")) if timeout
                                       else 1800.0 * (1 + random.random()))
        encode = encode or self._table_encoder(request, ri)
        watcher = Watcher(ns if ri.namespaced else None, pred, encode, self._watch_index(request, ri, ns))
        rc = svc.cache.resource(svc.storage_prefix(ri))
        rv = q.get("resourceVersion")
        await svc.cache.sync()
        if send_initial or rv in (None, "", "0"):
            prefix = f"{rc.prefix}{ns}/" if (ri.namespaced and ns) else rc.prefix
            if rv not in (None, "", "0"):
                await svc.cache.wait_for(_int(rv, "resourceVersion"))
            for k in rc.keys_with_prefix(prefix):
                e = rc.items[k]
                if watcher.matches(e):
                    watcher.push(ADDED, e, None)
            start_rev = svc.cache.rev
            if send_initial:
                watcher.buffer.append(self._bookmark(ri, start_rev, initial_end=True))
        else:
            want = _int(rv, "resourceVersion")
            if want > svc.cache.rev:
                await svc.cache.wait_for(want, 3.0)
            try:
                evs = rc.events_after(want)
            except CompactedError:
                return await self._watch_expired(request, want)
            for ev in evs:
                watcher.offer(ev)
            start_rev = svc.cache.rev
        watcher.rev = start_rev
        rc.add_watcher(watcher)
        self.watch_count += 1
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        transport = request.transport

        def sink(data: bytes) -> bool:
            """One event straight to the connection as an HTTP chunk, unless the client is slow."""
            if transport is None or transport.is_closing() or transport.get_write_buffer_size() > SINK_LIMIT:
                return False
            transport.write(b"%x\r\n%b\r\n" % (len(data), data))
            return True
        try:
            await resp.prepare(request)
            await resp.write(b"")       # the headers go out now: the sink writes after them
            last_bookmark = time.monotonic()
            while not watcher.closed:
                now = time.monotonic()
                if now >= deadline:
                    break
                if not watcher.buffer:
                    await watcher.wait(min(deadline - now, BOOKMARK_INTERVAL), sink)
                chunks = watcher.take()
                if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_INTERVAL:
                    chunks.append(self._bookmark(ri, max(svc.cache.rev, watcher.rev)))
                    last_bookmark = time.monotonic()
                if chunks:
                    await resp.write(b"".join(chunks))
                if self._closing.is_set():
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            rc.remove_watcher(watcher)
            self.watch_count -= 1
        return resp

    async def _watch_expired(self, request: web.Request, want: int) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        err = errors.gone(f"too old resource version: {want} ({self.service.cache.rev})")
        await resp.write(b'{"type":"ERROR","object":' + _dumps(err.status()) + b"}\n")
        return resp

    def _bookmark(self, ri: ResourceInfo, rev: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if initial_end:
            blueprint = _dumps({"kind": ri.list_kind, "apiVersion": ri.group_version, "metadata": {}, "items": []})
            meta["annotations"] = {"k8s.io/initial-events-end": "true",
                                   "k8s.io/initial-events-list-blueprint": base64.b64encode(blueprint).decode()}
        return b'{"type":"BOOKMARK","object":' + _dumps({"kind": ri.kind, "apiVersion": ri.group_version,
                                                          "metadata": meta}) + b"}\n"

    def _table_encoder(self, request: web.Request, ri: ResourceInfo) -> Any:
        if "as=Table" not in request.headers.get("Accept", ""):
            return None
        from ..api import tables
        include = request.query.get("includeObject", "Metadata")
        first = [True]

        def encode(etype: str, entry: Entry, _ev: Any) -> bytes:
            t = tables.table(ri.kind, [entry.obj], include_object=include, resource_version=str(entry.rev),
                             with_columns=first[0])
            first[0] = False
            return b'{"type":"' + etype.encode() + b'","object":' + _dumps(t) + b"}\n"
        return encode

    # -- bodies ----------------------------------------------------------------------------------
    async def _read_raw(self, request: web.Request) -> bytes:
        n = request.content_length
        if n is not None:
            if n > MAX_BODY:
                raise errors.too_large(f"request body of {n} bytes exceeds the limit of {MAX_BODY} bytes")
            if not n:
                return b""
            try:
                return await request.content.readexactly(n)
            except asyncio.IncompleteReadError:
                raise errors.bad_request("the request body ended before its Content-Length") from None
        chunks = []
        size = 0
        while True:
            chunk = await request.content.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY:
                raise errors.too_large(f"request body exceeds the limit of {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _read_object(self, request: web.Request) -> Any:
        raw = await self._read_raw(request)
        ct = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return _decode(raw, ct)

    async def _delete_options(self, request: web.Request) -> dict:
        q = request.query
        opts: dict[str, Any] = {}
        if request.can_read_body:
            raw = await self._read_raw(request)
            if raw.strip():
                body = _decode(raw, request.headers.get("Content-Type", "").split(";")[0].strip().lower())
                if not isinstance(body, dict):
                    raise errors.bad_request("DeleteOptions must be a JSON object")
                opts.update(body)
        if q.get("gracePeriodSeconds") is not None:
            opts["gracePeriodSeconds"] = _int(q["gracePeriodSeconds"], "gracePeriodSeconds")
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents") is not None:
            opts["orphanDependents"] = _truthy(q["orphanDependents"])
        pol = opts.get("propagationPolicy")
        if pol is not None and pol not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid("DeleteOptions", "", [{"reason": "FieldValueNotSupported", "field": "propagationPolicy",
                                                        "message": f'propagationPolicy: Unsupported value: "{pol}": supported values: "Foreground", "Background", "Orphan"'}])
        return opts

    # -- patch -------------------------------------------------------------------------------------
    async def _patch(self, request: web.Request, ri: ResourceInfo, ns: str | None, name: str, sub: str,
                     dry_run: bool) -> web.Response:
        from ..api import patch as patchlib
        ct = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ct not in PATCH_TYPES:
            raise errors.StatusError(415, "UnsupportedMediaType",
                                     f'the body of the request was in an unknown format - accepted media types include: {", ".join(PATCH_TYPES)}')
        raw = await self._read_raw(request)
        q = request.query
        if ct == "application/apply-patch+yaml":
            body = _decode(raw, "application/yaml")
            if not q.get("fieldManager"):
                raise errors.invalid("PatchOptions", "", [{"reason": "FieldValueRequired", "field": "fieldManager",
                                                           "message": "fieldManager: Required value: is required for apply patch"}])
        else:
            body = _decode(raw, JSON)
        if ct == "application/json-patch+json":
            if not isinstance(body, list):
                raise errors.bad_request("json patch must be a JSON array of operations")
        elif not isinstance(body, dict):
            raise errors.bad_request("patch body must be a JSON object")

        def apply(cur: dict) -> dict:
            try:
                if ct == "application/apply-patch+yaml":
                    from ..api.apply import apply_config
                    return apply_config(cur, body, q["fieldManager"], ri.definition, sub if sub == "status" else "")
                if ct == "application/json-patch+json":
                    return patchlib.json_patch(cur, body)
                if ct == "application/merge-patch+json":
                    return patchlib.merge_patch(cur, body)
                return patchlib.strategic_merge_patch(cur, body, ri.definition)
            except patchlib.PatchError as e:
                if e.code == 422:
                    raise errors.StatusError(422, "Invalid", str(e)) from None
                raise errors.bad_request(str(e)) from None

        if sub == "scale":
            return await self._update_scale(ri, ns, name, apply, dry_run)
        if ct == "application/apply-patch+yaml" and self.service.current(ri, ns, name) is None:
            # Server-side apply of a missing object creates it.
            obj = body
            obj.setdefault("metadata", {})["name"] = name
            applied = orjson.loads(orjson.dumps(obj))
            res = await self.service.create(ri, ns, obj, dry_run=dry_run, field_validation=_fv(q, "Strict"),
                                            manager=_manager(request), applied=applied)
            return respond(res.raw, 201, headers=_warning_headers(res.warnings))
        applied = body if ct == "application/apply-patch+yaml" else None
        res = await self.service.patch(ri, ns, name, apply, subresource=sub if sub == "status" else "",
                                       dry_run=dry_run, field_validation=_fv(q), manager=_manager(request),
                                       applied=applied, force=_truthy(q.get("force") or "false"))
        return respond(res.raw, 200, headers=_warning_headers(res.warnings))

    # -- subresources ------------------------------------------------------------------------------
    def _scale_of(self, ri: ResourceInfo, entry: Entry) -> dict:
        from ..api.selectors import selector_spec_to_string
        obj = entry.obj
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in meta},
                "spec": {"replicas": spec.get("replicas", 1)},
                "status": {"replicas": status.get("replicas", 0),
                           "selector": selector_spec_to_string(spec.get("selector") or {})}}

    async def _update_scale(self, ri: ResourceInfo, ns: str | None, name: str, make_scale: Any,
                            dry_run: bool) -> web.Response:
        def mutate(cur: dict) -> dict:
            entry = Entry("", cur, b"", int(cur["metadata"]["resourceVersion"]))
            scale = make_scale(self._scale_of(ri, entry))
            if not isinstance(scale, dict):
                raise errors.bad_request("the body must be a Scale object")
            want_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise errors.conflict(ri.plural, name, ri.group)
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid("Scale", name, [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                                      "message": f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0"}],
                                     "autoscaling")
            cur.setdefault("spec", {})["replicas"] = replicas
            return cur
        res = await self.service.patch(ri, ns, name, mutate, dry_run=dry_run, field_validation="Ignore")
        entry = Entry("", res.obj, res.raw, int(res.obj["metadata"].get("resourceVersion") or 0))
        return respond(self._scale_of(ri, entry))

    async def _finalize(self, ri: ResourceInfo, ns: str | None, name: str, body: Any, dry_run: bool) -> web.Response:
        if ri.kind != "Namespace" or not isinstance(body, dict):
            raise errors.method_not_allowed()
        finalizers = list((body.get("spec") or {}).get("finalizers") or [])

        def mutate(cur: dict) -> dict:
            cur.setdefault("spec", {})["finalizers"] = finalizers
            return cur
        res = await self.service.patch(ri, ns, name, mutate, subresource="finalize", dry_run=dry_run,
                                       field_validation="Ignore")
        return respond(res.raw)

    async def _binding(self, request: web.Request, ri: ResourceInfo, ns: str | None, name: str) -> web.Response:
        from ..api.meta import now_rfc3339
        body = await self._read_object(request)
        target = (body or {}).get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid("Binding", name, [{"reason": "FieldValueRequired", "field": "target.name",
                                                    "message": "target.name: Required value"}])

        def mutate(cur: dict) -> dict:
            meta = cur["metadata"]
            if meta.get("deletionTimestamp"):
                raise errors.conflict(ri.plural, name, "", "pod is being deleted, cannot be assigned to a host")
            spec = cur.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.conflict(ri.plural, name, "", f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
            spec["nodeName"] = node
            ann = (body.get("metadata") or {}).get("annotations")
            if ann:
                meta.setdefault("annotations", {}).update(ann)
            conds = cur.setdefault("status", {}).setdefault("conditions", [])
            conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now_rfc3339()})
            return cur

        async def write() -> None:
            # Binding writes spec and status at once, bypassing the spec/status split.
            for _ in range(10):
                cur = await self.service.get(ri, ns, name)
                new = mutate(cur.copy())
                new["metadata"].pop("resourceVersion", None)    # the cache splices the new one in
                try:
                    rev = await self.store.update(cur.key, _dumps(new), cur.rev, new)
                    await self.service.cache.wait_for(rev)
                    return
                except Exception as e:  # RevisionMismatchError: re-read and retry
                    from ..store.base import RevisionMismatchError
                    if not isinstance(e, RevisionMismatchError):
                        raise
            raise errors.conflict(ri.plural, name)
        await write()
        return respond(success_status(code=201), 201)

    async def _eviction(self, request: web.Request, ri: ResourceInfo, ns: str | None, name: str) -> web.Response:
        body = await self._read_object(request)
        options = (body or {}).get("deleteOptions") or {}
        await self.service.delete(ri, ns, name, options)
        return respond(success_status(code=201), 201)

    # -- metrics -----------------------------------------------------------------------------------
    def _metrics(self) -> str:
        lines = ["# HELP apiserver_request_total Requests by verb, resource and HTTP code.",
                 "# TYPE apiserver_request_total counter"]
        for (verb, res, code), n in sorted(self.requests.items()):
            lines.append(f'apiserver_request_total{{verb="{verb}",resource="{res}",code="{code}"}} {n}')
        lines += ["# HELP apiserver_request_duration_seconds_sum Total request time by verb.",
                  "# TYPE apiserver_request_duration_seconds_sum counter"]
        for verb, (total, n) in sorted(self.latency.items()):
            lines.append(f'apiserver_request_duration_seconds_sum{{verb="{verb}"}} {total:.6f}')
            lines.append(f'apiserver_request_duration_seconds_count{{verb="{verb}"}} {n}')
        lines += ["# TYPE apiserver_registered_watchers gauge", f"apiserver_registered_watchers {self.watch_count}",
                  "# TYPE ketch_store_revision gauge", f"ketch_store_revision {self.service.cache.rev}",
                  "# TYPE ketch_store_objects gauge"]
        for prefix, rc in sorted(self.service.cache.resources.items()):
            lines.append(f'ketch_store_objects{{prefix="{prefix}"}} {len(rc.items)}')
        lines += self.service.cache.dispatch.lines()
        store_metrics = getattr(self.store, "metrics_lines", None)
        if store_metrics is not None:
            lines += store_metrics()
        lines += ["# TYPE process_resident_memory_bytes gauge", f"process_resident_memory_bytes {_rss()}",
                  "# TYPE process_start_time_seconds gauge", f"process_start_time_seconds {self.started:.0f}"]
        return "\n".join(lines) + "\n"


async def gc_policy(stop: asyncio.Event, freeze_every: float = 0.5, full_every: float = 600.0) -> None:
    """Keep the cyclic GC off the watch cache's objects.

    The cache holds millions of long-lived objects; a full collection walks all of them (tens of
    milliseconds with 10k pods), which showed up as the create p99. Freezing moves surviving objects
    out of the collector's generations; refcounting still frees them. A rare unfreeze + collect
    reclaims any cyclic garbage that was frozen.
    """
    gc.set_threshold(100000, 50, 1000)
    gc.freeze()
    last_full = time.monotonic()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), freeze_every)
        except TimeoutError:
            pass
        if time.monotonic() - last_full >= full_every:
            gc.unfreeze()
            gc.collect()
            last_full = time.monotonic()
        gc.freeze()


def _rss() -> int:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def ext_checked(ri: ResourceInfo, body: Any) -> dict:
    """Check kind/apiVersion of a body sent to a converted resource."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body must be a JSON object of kind {ri.kind}")
    if body.get("apiVersion") not in (None, ri.group_version) or body.get("kind") not in (None, ri.kind):
        raise errors.bad_request(f"the object must be {ri.group_version} {ri.kind}")
    return body


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def _decode(raw: bytes, ct: str) -> Any:
    if ct == "application/vnd.kubernetes.protobuf":
        from ..api import protobuf
        try:
            return protobuf.decode_request(raw)
        except protobuf.ProtobufError as e:
            raise errors.StatusError(415, "UnsupportedMediaType", str(e)) from None
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    if ct in ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"):
        try:
            return yaml.load(raw, Loader=_YamlLoader)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"the request body is not valid YAML: {e}") from None
    if ct not in ("", "application/json", "*/*", "text/plain") and not ct.endswith("+json"):
        raise errors.unsupported_media_type(ct)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"the request body is not valid JSON: {e}") from None


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true", "yes")


def _int(v: str | None, what: str) -> int:
    if v in (None, ""):
        return 0
    try:
        return int(v)
    except ValueError:
        raise errors.bad_request(f'invalid {what} "{v}": must be an integer') from None


def _fv(q: Any, default: str = "Warn") -> str:
    v = q.get("fieldValidation") or default
    if v not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f'fieldValidation must be one of Strict, Warn, Ignore; got "{v}"')
    return v


def _manager(request: web.Request) -> str:
    """The field manager of a write: ?fieldManager=, else derived from the user agent."""
    from ..api.managedfields import manager_from_user_agent
    m = request.query.get("fieldManager")
    if m:
        if len(m) > 128 or not m.isprintable():
            raise errors.invalid("PatchOptions", "", [{"reason": "FieldValueInvalid", "field": "fieldManager",
                                                       "message": "fieldManager: Invalid value: must be at most 128 printable characters"}])
        return m
    return manager_from_user_agent(request.headers.get("User-Agent", ""))


def _warning_headers(warnings: list[str]) -> dict | None:
    if not warnings:
        return None
    h: CIMultiDict = CIMultiDict()
    for w in warnings:
        escaped = w.replace("\\", "\\\\").replace('"', '\\"')
        h.add("Warning", f'299 - "{escaped}"')
    return h


def _encode_continue(key: str, rev: int) -> str:
    return base64.urlsafe_b64encode(_dumps({"v": 1, "rv": rev, "start": key})).decode()


def _decode_continue(token: str) -> tuple[str, int]:
    try:
        d = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return str(d["start"]), int(d["rv"])
    except Exception:
        raise errors.bad_request("invalid continue token") from None
