"""The containerd runtime: CRI v1 over gRPC, ketch's own containerd, CNI bridge networking."""

from .runtime import ContainerdRuntime, import_image

__all__ = ["ContainerdRuntime", "import_image"]
