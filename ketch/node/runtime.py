"""The runtime interface the node agent drives: one pod sandbox plus its containers."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class ContainerConfigError(Exception):
    """The container cannot be created from its spec (reported as CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


class ContainerStartError(Exception):
    """The runtime failed to start the container; `reason` is the waiting reason the agent reports."""

    reason = "RunContainerError"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason:
            self.reason = reason


class ImagePullError(ContainerStartError):
    """The image could not be pulled (ErrImagePull; the agent backs off: ImagePullBackOff).

    `image` is the reference; the message is the registry's or the runtime's error. A pull that
    policy forbids (`Never`, image absent) has the reason ErrImageNeverPull and no back-off.
    """

    reason = "ErrImagePull"

    def __init__(self, image: str, message: str, reason: str | None = None):
        super().__init__(message, reason)
        self.image = image


@dataclass
class ContainerRecord:
    """One run (attempt) of one container, as the runtime last observed it."""

    name: str
    attempt: int
    id: str
    started_at: float
    running: bool = True
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""          # for a terminated container: Completed, Error, OOMKilled...
    message: str = ""
    extra: dict = field(default_factory=dict)


PodChanged = Callable[[str], None]   # called with a pod uid when one of its containers changes


class Runtime(abc.ABC):
    """What the agent needs from a container runtime; all state is keyed by pod uid."""

    name: str = "runtime"
    version: str = "0.1.0"
    runs_probes: bool = True

    def __init__(self) -> None:
        self.on_change: PodChanged = lambda uid: None

    async def start(self) -> None:
        """Start the runtime and re-adopt what it already runs."""
        return None

    async def close(self) -> None:
        """Stop watching (running containers are left running)."""
        return None

    @abc.abstractmethod
    def pod_uids(self) -> set[str]:
        """Uids of every pod the runtime holds anything for."""

    @abc.abstractmethod
    async def run_sandbox(self, pod: dict) -> str:
        """Make sure the pod's sandbox exists; return the pod IP."""

    @abc.abstractmethod
    async def start_container(self, pod: dict, container: dict, env: dict[str, str], attempt: int) -> ContainerRecord:
        """Start one attempt of a container."""

    @abc.abstractmethod
    def containers(self, uid: str) -> dict[str, list[ContainerRecord]]:
        """Every attempt of every container of a pod, oldest first, by container name."""

    @abc.abstractmethod
    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        """Stop the container's running attempt: SIGTERM, then SIGKILL after `grace` seconds."""

    @abc.abstractmethod
    async def remove_pod(self, uid: str) -> None:
        """Forget the pod and remove what it left (all containers must be stopped)."""

    async def exec_probe(self, uid: str, name: str, command: list[str], timeout: float) -> tuple[bool, str]:
        """Run a command in the container's context; (succeeded, output)."""
        return True, ""

    # -- streaming (logs, exec, port-forward, metrics); a runtime without them answers None/[] ----
    def log_files(self, uid: str, name: str) -> list[str]:
        """The log file of every attempt of a container, oldest first."""
        return []

    def exec_context(self, uid: str, name: str) -> tuple[dict[str, str], str | None] | None:
        """Environment and working directory to run `kubectl exec` commands with (None: no exec)."""
        return None

    def container_session(self, uid: str, name: str) -> int | None:
        """The session id of the running attempt's processes (for resource metrics)."""
        return None

    def exec_command(self, uid: str, name: str, command: list[str],
                     tty: bool) -> tuple[list[str], Callable[[], Awaitable[None]]] | None:
        """A host command line that runs `command` inside the container with its stdio passed through
        (exiting with the command's status), and a coroutine function that kills the command when the
        client goes away. None: exec runs `command` on the host with exec_context()."""
        return None

    def container_cgroup(self, uid: str, name: str) -> str | None:
        """The running attempt's cgroup (its path below each hierarchy's root), for resource metrics;
        None: the metrics come from container_session()."""
        return None

    async def reopen_log(self, uid: str, name: str) -> bool:
        """Have the runtime reopen the running attempt's log file after it was renamed (log rotation);
        False: it cannot (the process runtime rotates by copy-truncate instead)."""
        return False

    async def attach_url(self, uid: str, name: str, stdin: bool, tty: bool) -> str | None:
        """A URL of the runtime's streaming server that attaches to the running container over the
        v4 channel WebSocket protocol (None: attach follows the container's log instead)."""
        return None

    async def pod_netns(self, uid: str) -> str | None:
        """A path to the pod's network namespace: port-forward then connects to localhost in there,
        as the kubelet does (None: to port_forward_host())."""
        return None

    def port_forward_host(self, uid: str) -> str | None:
        """The address port-forward connects to for this pod (None: not supported)."""
        return None

    def latest(self, uid: str, name: str) -> ContainerRecord | None:
        runs = self.containers(uid).get(name)
        return runs[-1] if runs else None

    def running(self, uid: str) -> bool:
        return any(r[-1].running for r in self.containers(uid).values() if r)
