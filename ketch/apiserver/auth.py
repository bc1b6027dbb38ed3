"""Authentication (bearer tokens, client certificates) and authorization (admins, node restriction).

Tokens live in DATA_DIR/pki/tokens.json ({token: {"user":..., "groups": [...]}}); client
certificates signed by the cluster CA authenticate as CN with groups O. Members of
`system:masters` may do anything. A node (`system:node:<name>` in `system:nodes`) may read what a
kubelet reads and write only its own Node, its own Lease, events, and pods bound to it.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from ..api import errors

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/", "/ketch/ca.crt"}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_admin(self) -> bool:
        return "system:masters" in self.groups

    @property
    def node_name(self) -> str | None:
        if "system:nodes" in self.groups and self.name.startswith("system:node:"):
            return self.name[len("system:node:"):]
        return None


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
INSECURE_ADMIN = User("system:admin", ("system:masters", "system:authenticated"))


class TokenFile:
    """Bearer tokens, persisted as JSON (re-read when the file changes)."""

    # A known token is trusted for up to CHECK_EVERY seconds before the file's mtime is looked at
    # again (a stat per request costs a GIL hand-off); an unknown one always looks (a new token works at once).
    CHECK_EVERY = 1.0

    def __init__(self, path: str):
        self.path = path
        self._mtime = 0.0
        self._checked = -1e9
        self._tokens: dict[str, User] = {}

    def _load(self) -> None:
        self._checked = time.monotonic()
        try:
            m = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._tokens = {}
            return
        if m == self._mtime:
            return
        with open(self.path) as f:
            raw = json.load(f)
        self._tokens = {t: User(v["user"], tuple(v.get("groups") or ())) for t, v in raw.items()}
        self._mtime = m

    def lookup(self, token: str) -> User | None:
        user = self._tokens.get(token)
        if user is not None and time.monotonic() - self._checked < self.CHECK_EVERY:
            return user
        self._load()
        return self._tokens.get(token)

    def add(self, token: str, user: str, groups: list[str]) -> None:
        self._load()
        data = {t: {"user": u.name, "groups": list(u.groups)} for t, u in self._tokens.items()}
        data[token] = {"user": user, "groups": groups}
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)
        self._mtime = 0.0

    def find_user(self, user: str) -> str | None:
        self._load()
        for t, u in self._tokens.items():
            if u.name == user:
                return t
        return None


def authenticate(request: Any, tokens: TokenFile | None, signer: Any = None) -> User:
    """The user a request comes from; raises 401 when credentials are given but wrong."""
    h = request.headers.get("Authorization", "")
    if h[:7].lower() == "bearer ":
        token = h[7:].strip()
        if token.startswith("K10") and "::" in token:     # a join token: K10<CA hash>::<secret>
            token = token.split("::", 1)[1]
        if token.count(".") == 2 and signer is not None:   # a service account JWT
            claims = signer.verify(token)
            if claims is None:
                raise errors.StatusError(401, "Unauthorized", "Unauthorized")
            ns = (claims.get("kubernetes.io") or {}).get("namespace", "")
            return User(claims["sub"], ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                                        "system:authenticated"))
        user = tokens.lookup(token) if tokens else None
        if user is None:
            raise errors.StatusError(401, "Unauthorized", "Unauthorized")
        return user
    transport = request.transport
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    if sslobj is not None:
        cert = sslobj.getpeercert()
        if cert:
            cn = ""
            groups = []
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        groups.append(v)
            if cn:
                return User(cn, tuple(groups) + ("system:authenticated",))
    return ANONYMOUS


# What a node may read (everything a kubelet and proxy need), by resource.
# Read by a node only when a pod bound to it references them (the server checks: APIServer._node_reads_referenced).
NODE_REFERENCED = {"secrets", "configmaps"}
NODE_READ = {"pods", "nodes", "services", "endpoints", "endpointslices", "configmaps", "secrets",
              "persistentvolumeclaims", "persistentvolumes", "namespaces", "leases", "events",
              "serviceaccounts", "runtimeclasses", "csidrivers"}


def authorize(user: User, verb: str, resource: str, subresource: str, namespace: str | None, name: str,
              obj: Any = None, current: Any = None) -> str | None:
    """None when allowed, else the reason it is forbidden."""
    if user.is_admin:
        return None
    node = user.node_name
    if node is None:
        if user is ANONYMOUS:
            return "anonymous requests are not allowed"
        return f'User "{user.name}" cannot {verb} resource "{resource}"'
    # Node restriction.
    if verb in ("get", "list", "watch"):
        return None if resource in NODE_READ else f'node "{node}" cannot {verb} {resource}'
    if resource in ("nodes", "leases") and verb == "create" and obj is None:
        return None     # the body's name is checked once it is read (check_create_body)
    if resource == "nodes":
        return None if (name or _name_of(obj)) == node else \
            f'node "{node}" is not allowed to modify node "{name or _name_of(obj)}"'
    if resource == "leases" and namespace == "kube-node-lease":
        return None if (name or _name_of(obj)) == node else f'node "{node}" may only renew its own lease'
    if resource == "events":
        return None
    if resource == "serviceaccounts" and subresource == "token" and verb == "create":
        return None     # for a pod bound to this node only: checked with the body (check_token_request)
    if resource == "pods":
        bound = ((current or {}).get("spec") or {}).get("nodeName")
        if verb in ("update", "patch", "delete") and bound == node:
            return None
        if verb == "create" and subresource == "eviction":
            return None
        return f'node "{node}" can only modify pods bound to it'
    return f'node "{node}" cannot {verb} {resource}'


def check_create_body(user: User, resource: str, namespace: str | None, obj: Any) -> str | None:
    """The part of node restriction that needs the created object's name."""
    node = user.node_name
    if node is None or user.is_admin or resource not in ("nodes", "leases"):
        return None
    return authorize(user, "create", resource, "", namespace, "", obj=obj if isinstance(obj, dict) else {})


def check_token_request(user: User, service_account: str, spec: dict, pod: dict | None) -> str | None:
    """Node restriction for TokenRequest: a node may only get tokens bound to a pod it runs, of its service account."""
    node = user.node_name
    if node is None or user.is_admin:
        return None
    ref = spec.get("boundObjectRef") or {}
    if ref.get("kind") != "Pod" or not ref.get("name"):
        return f'node "{node}" may only request tokens bound to a pod (spec.boundObjectRef)'
    pspec, meta = (pod or {}).get("spec") or {}, (pod or {}).get("metadata") or {}
    if pod is None or pspec.get("nodeName") != node or (ref.get("uid") and ref["uid"] != meta.get("uid")):
        return f'node "{node}" can only request tokens for pods bound to it'
    if (pspec.get("serviceAccountName") or "default") != service_account:
        return f'pod "{meta.get("name")}" does not use service account "{service_account}"'
    return None


def _name_of(obj: Any) -> str:
    return ((obj or {}).get("metadata") or {}).get("name") or "" if isinstance(obj, dict) else ""


def server_ssl_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """TLS for the apiserver: its serving cert; client certificates optional, verified by the CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
