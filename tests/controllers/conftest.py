"""Fixtures for controller tests: an API client on the module's cluster and a fresh namespace."""

from __future__ import annotations

import itertools

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
    name = f"t{next(_counter)}-{request.node.name.replace('_', '-')[5:30].strip('-')}".lower()
    await api.create(api.resource("namespaces"), None, {"metadata": {"name": name}})
    return name


def deployment(name: str, replicas: int, image: str = "nginx:1", **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}],
                                           "terminationGracePeriodSeconds": 5}},
                     **spec}}


async def kubectl(cluster, *args: str, **kw):
    """Run the real kubectl off the event loop (the simulated kubelet keeps working meanwhile)."""
    import asyncio
    return await asyncio.to_thread(cluster.kubectl, *args, **kw)
