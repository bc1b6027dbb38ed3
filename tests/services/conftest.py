"""Fixtures for service tests: an API client on the module's cluster and a fresh namespace."""

from __future__ import annotations

import itertools
import re

import pytest

from ketch.client.rest import Client

_counter = itertools.count()


@pytest.fixture
async def api(cluster):
    client = Client(cluster.url)
    yield client
    await client.close()


@pytest.fixture
async def ns(api, request):
    base = re.sub("[^a-z0-9-]", "-", request.node.name.lower().replace("_", "-")[5:30]).strip("-")
    name = f"s{next(_counter)}-{base}"
    await api.create(api.resource("namespaces"), None, {"metadata": {"name": name}})
    return name


def service(name: str, stype: str = "ClusterIP", ports: list | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": stype, "ports": ports or [{"port": 80}], **spec}}
