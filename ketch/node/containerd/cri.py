"""A CRI v1 client: gRPC calls over ketch's own small HTTP/2 client (`h2`), messages coded by `proto`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from . import proto
from .h2 import Channel, RPCError, Status

RUNTIME = "/runtime.v1.RuntimeService/"
IMAGE = "/runtime.v1.ImageService/"

# method: (service, request message, response message)
METHODS: dict[str, tuple[str, str, str]] = {
    "Version": (RUNTIME, "VersionRequest", "VersionResponse"),
    "Status": (RUNTIME, "Empty", "StatusResponse"),
    "RunPodSandbox": (RUNTIME, "RunPodSandboxRequest", "RunPodSandboxResponse"),
    "StopPodSandbox": (RUNTIME, "PodSandboxIdRequest", "Empty"),
    "RemovePodSandbox": (RUNTIME, "PodSandboxIdRequest", "Empty"),
    "PodSandboxStatus": (RUNTIME, "PodSandboxIdRequest", "PodSandboxStatusResponse"),
    "ListPodSandbox": (RUNTIME, "ListPodSandboxRequest", "ListPodSandboxResponse"),
    "CreateContainer": (RUNTIME, "CreateContainerRequest", "CreateContainerResponse"),
    "StartContainer": (RUNTIME, "ContainerIdRequest", "Empty"),
    "StopContainer": (RUNTIME, "ContainerIdRequest", "Empty"),
    "RemoveContainer": (RUNTIME, "ContainerIdRequest", "Empty"),
    "ListContainers": (RUNTIME, "ListContainersRequest", "ListContainersResponse"),
    "ContainerStatus": (RUNTIME, "ContainerIdRequest", "ContainerStatusResponse"),
    "ExecSync": (RUNTIME, "ExecSyncRequest", "ExecSyncResponse"),
    "Attach": (RUNTIME, "AttachRequest", "AttachResponse"),
    "ReopenContainerLog": (RUNTIME, "ContainerIdRequest", "Empty"),
    "ImageStatus": (IMAGE, "ImageStatusRequest", "ImageStatusResponse"),
    "PullImage": (IMAGE, "PullImageRequest", "PullImageResponse"),
    "ListImages": (IMAGE, "ListImagesRequest", "ListImagesResponse"),
    "RemoveImage": (IMAGE, "RemoveImageRequest", "Empty"),
    "ImageFsInfo": (IMAGE, "Empty", "ImageFsInfoResponse"),
}

# CRI enums
SANDBOX_READY = 0
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, CONTAINER_UNKNOWN = 0, 1, 2, 3
NS_POD, NS_CONTAINER, NS_NODE = 0, 1, 2

CRIError = RPCError


class CRIClient:
    """Calls CRI methods by name with dict requests; returns dict responses."""

    def __init__(self, socket_path: str):
        self.channel = Channel(socket_path, max_message=16 << 20)

    async def call(self, method: str, request: dict | None = None, timeout: float = 30.0) -> dict:
        svc, req, resp = METHODS[method]
        return proto.decode(resp, await self.channel.unary(svc + method, proto.encode(req, request or {}), timeout))

    def stream(self, path: str, request: bytes, decode) -> AsyncIterator[dict]:
        """A server-streaming call on the same connection (e.g. containerd's event subscription)."""
        return self.channel.stream(path, request, decode)

    async def close(self) -> None:
        await self.channel.close()


def not_found(e: Exception) -> bool:
    return isinstance(e, RPCError) and e.code() == Status.NOT_FOUND
