"""Joining a cluster with a join token: trust the CA it pins, trade it for node credentials.

A join token is `K10<sha256 of the CA certificate PEM>::<secret>`: the CA fetched from the
server (before anything is trusted) must hash to the pinned value, so a man in the middle
cannot hand out its own CA.
"""

from __future__ import annotations

import hashlib
import os
import ssl

import aiohttp
import orjson

from .kubeconfig import write_kubeconfig


class JoinError(Exception):
    """Joining failed; the message says why."""


def ca_hash(ca_pem: bytes) -> str:
    return hashlib.sha256(ca_pem).hexdigest()


async def join(server: str, token: str, node_name: str, kubeconfig_path: str) -> str:
    """Fetch and verify the cluster CA, get this node's credentials, write a kubeconfig; returns its path."""
    if not token.startswith("K10") or "::" not in token:
        raise JoinError("the join token must look like K10<hash>::<secret> (ketch up / ketch server print it)")
    pinned = token[3:].split("::", 1)[0]
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession() as s:
        async with s.get(server.rstrip("/") + "/ketch/ca.crt", ssl=insecure) as r:
            if r.status != 200:
                raise JoinError(f"{server} did not hand out its CA ({r.status}); is it a ketch server with TLS?")
            ca_pem = await r.read()
        if ca_hash(ca_pem) != pinned:
            raise JoinError("the server's CA does not match the join token: refusing to trust it")
        trusted = ssl.create_default_context(cadata=ca_pem.decode())
        async with s.post(server.rstrip("/") + "/ketch/join", data=orjson.dumps({"nodeName": node_name}),
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                          ssl=trusted) as r:
            body = await r.read()
            if r.status != 200:
                raise JoinError(f"join refused ({r.status}): {body.decode(errors='replace')[:300]}")
            creds = orjson.loads(body)
    os.makedirs(os.path.dirname(os.path.abspath(kubeconfig_path)), exist_ok=True)
    write_kubeconfig(kubeconfig_path, server, creds["token"], ca_pem)
    return kubeconfig_path
