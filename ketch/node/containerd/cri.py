"""A CRI v1 client over grpc.aio generic unary calls (messages coded by `proto`)."""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")   # the agent forks (ctr, probes): no gRPC fork handlers
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402

from . import proto  # noqa: E402

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

CRIError = grpc.aio.AioRpcError


class CRIClient:
    """Calls CRI methods by name with dict requests; returns dict responses."""

    def __init__(self, socket_path: str):
        self.channel = grpc.aio.insecure_channel(f"unix://{socket_path}",
                                                 options=[("grpc.max_receive_message_length", 16 << 20)])
        self._calls = {}
        for name, (svc, req, resp) in METHODS.items():
            self._calls[name] = self.channel.unary_unary(
                svc + name,
                request_serializer=lambda d, m=req: proto.encode(m, d),
                response_deserializer=lambda b, m=resp: proto.decode(m, b))

    async def call(self, method: str, request: dict | None = None, timeout: float = 30.0) -> dict:
        return await self._calls[method](request or {}, timeout=timeout)

    async def close(self) -> None:
        await self.channel.close()


def not_found(e: Exception) -> bool:
    return isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.NOT_FOUND
