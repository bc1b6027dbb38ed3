"""The controller-manager: shared informers plus every controller, run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..client.rest import Client
from .deployment import DeploymentController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from .framework import Context, Options
from .garbagecollector import GarbageCollector
from .namespace import NamespaceController
from .nodelifecycle import NodeLifecycleController
from .podgc import PodGCController
from .replicaset import ReplicaSetController
from .serviceaccount import ServiceAccountController

log = logging.getLogger("ketch.controllers.manager")

CONTROLLERS = {
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "serviceaccount": ServiceAccountController,
    "nodelifecycle": NodeLifecycleController,
    "podgc": PodGCController,
    "endpoints": EndpointsController,
    "endpointslice": EndpointSliceController,
}


async def run_manager(client: Client, stop: asyncio.Event, options: Options | None = None,
                      enabled: list[str] | None = None) -> None:
    """Start the shared informers, wait for their first list, run the controllers until `stop`."""
    ctx = Context(client, options)
    ctrls = [cls(ctx) for name, cls in CONTROLLERS.items() if enabled is None or name in enabled]
    ctx.factory.start()
    try:
        while not stop.is_set():
            try:
                await ctx.factory.wait_synced(timeout=5)
                break
            except TimeoutError:
                log.info("waiting for informers to sync")
        if stop.is_set():
            return
        await asyncio.gather(*(c.run(stop) for c in ctrls))
    finally:
        await ctx.factory.stop()
        with contextlib.suppress(Exception):
            await ctx.recorder.close()
