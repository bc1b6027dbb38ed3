"""The `process` runtime: containers are plain host processes. No isolation of any kind.

Each container attempt runs under a tiny /bin/sh shim in its own session (process group): the
shim forwards SIGTERM to the command and writes its exit code to a file, so exit codes survive
an agent restart. What runs is recorded on disk under <data>/pods/<uid>/ (pid, process start
time, env) and re-adopted when the agent starts again; stdout/stderr go to <attempt>.log there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time

from . import volumes
from .runtime import ContainerConfigError, ContainerRecord, ContainerStartError, Runtime

log = logging.getLogger("ketch.node.process")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# $0 is the exit-code file; "$@" is the container's command line.
SHIM = ('"$@" & pid=$!\n'
        "trap 'kill -TERM $pid 2>/dev/null' TERM\n"
        "trap 'kill -INT $pid 2>/dev/null' INT\n"
        "while :; do wait $pid; rc=$?; kill -0 $pid 2>/dev/null || break; done\n"
        'echo $rc > "$0"\n')


def proc_start_time(pid: int) -> str | None:
    """The process' start time in clock ticks since boot (guards against pid reuse)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


class _Run:
    """A running attempt being watched."""

    def __init__(self, rec: ContainerRecord, uid: str, path: str, pid: int, popen: subprocess.Popen | None):
        self.rec, self.uid, self.path, self.pid, self.popen = rec, uid, path, pid, popen
        self.exited = asyncio.Event()
        self.killed = False
        self.fd: int | None = None


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, data_dir: str, pod_ip: str):
        super().__init__()
        self.data_dir = data_dir
        self.root = os.path.join(data_dir, "pods")
        self.pod_ip = pod_ip
        self._pods: dict[str, dict[str, list[ContainerRecord]]] = {}
        self._runs: dict[tuple[str, str], _Run] = {}
        self._env: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    # -- bookkeeping on disk -----------------------------------------------------------------
    def _pod_dir(self, uid: str) -> str:
        return os.path.join(self.root, uid)

    def log_path(self, uid: str, name: str, attempt: int) -> str:
        return os.path.join(self._pod_dir(uid), name, f"{attempt}.log")

    async def start(self) -> None:
        """Re-adopt containers still running; record the ones that died while we were away."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        for uid in os.listdir(self.root):
            pdir = self._pod_dir(uid)
            if not os.path.isdir(pdir):
                continue
            pod = self._pods.setdefault(uid, {})
            for name in sorted(os.listdir(pdir)):
                cdir = os.path.join(pdir, name)
                if not os.path.isdir(cdir):
                    continue
                attempts = sorted(int(f[:-5]) for f in os.listdir(cdir) if f.endswith(".json"))
                for attempt in attempts:
                    rec = self._load(uid, name, attempt)
                    if rec is not None:
                        pod.setdefault(name, []).append(rec)

    def _load(self, uid: str, name: str, attempt: int) -> ContainerRecord | None:
        base = os.path.join(self._pod_dir(uid), name, str(attempt))
        try:
            with open(base + ".json") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None
        rec = ContainerRecord(name, attempt, meta["id"], meta["startedAt"])
        self._env[(uid, name)] = (meta.get("env") or {}, meta.get("cwd"))
        code, finished = self._read_exit(base)
        if code is None:
            pid = meta["pid"]
            if proc_start_time(pid) == meta.get("procStart"):
                self._watch(_Run(rec, uid, base, pid, None))
                log.info("re-adopted %s/%s attempt %d (pid %d)", uid, name, attempt, pid)
                return rec
            code, finished = 137, time.time()   # it died without a word: SIGKILLed
            self._write_exit(base, code)
        self._terminated(rec, code, finished)
        return rec

    @staticmethod
    def _read_exit(base: str) -> tuple[int | None, float | None]:
        try:
            with open(base + ".exit") as f:
                return int(f.read().strip() or "1"), os.stat(base + ".exit").st_mtime
        except (OSError, ValueError):
            return None, None

    @staticmethod
    def _write_exit(base: str, code: int) -> None:
        with contextlib.suppress(OSError), open(base + ".exit", "w") as f:
            f.write(f"{code}\n")

    @staticmethod
    def _terminated(rec: ContainerRecord, code: int, finished: float | None) -> None:
        rec.running = False
        rec.exit_code = code
        rec.finished_at = finished or time.time()
        rec.reason = "Completed" if code == 0 else "Error"

    # -- runtime interface -------------------------------------------------------------------
    def pod_uids(self) -> set[str]:
        return set(self._pods)

    def containers(self, uid: str) -> dict[str, list[ContainerRecord]]:
        return self._pods.get(uid) or {}

    async def run_sandbox(self, pod: dict) -> str:
        uid = pod["metadata"]["uid"]
        if uid not in self._pods:
            self._pods[uid] = {}
            os.makedirs(self._pod_dir(uid), mode=0o700, exist_ok=True)
        return self.pod_ip

    async def start_container(self, pod: dict, container: dict, env: dict[str, str], attempt: int) -> ContainerRecord:
        uid, name = pod["metadata"]["uid"], container["name"]
        cmd = [str(x) for x in (container.get("command") or [])]
        if not cmd:
            raise ContainerConfigError(
                "the process runtime needs the container's command: without an image runtime an image's "
                "default entrypoint cannot be known; set spec.containers[].command")
        cmd += [str(x) for x in container.get("args") or ()]
        full_env = {"PATH": DEFAULT_PATH, "HOSTNAME": pod["metadata"]["name"], "HOME": "/root", **env}
        cwd = container.get("workingDir") or None
        if cwd:
            try:
                os.makedirs(cwd, exist_ok=True)
            except OSError as e:
                raise ContainerStartError(f"workingDir {cwd}: {e.strerror}") from None
        os.makedirs(self._pod_dir(uid), mode=0o700, exist_ok=True)
        self._link_mounts(pod, container)
        cdir = os.path.join(self._pod_dir(uid), name)
        os.makedirs(cdir, mode=0o700, exist_ok=True)
        base = os.path.join(cdir, str(attempt))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(base + ".exit")
        logf = open(base + ".log", "ab")
        try:
            popen = subprocess.Popen(["/bin/sh", "-c", SHIM, base + ".exit", *cmd], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        except OSError as e:
            raise ContainerStartError(f"cannot start {cmd[0]}: {e.strerror}") from None
        finally:
            logf.close()
        now = time.time()
        rec = ContainerRecord(name, attempt, f"process://{uid[:8]}-{name}-{attempt}-{popen.pid}", now)
        meta = {"id": rec.id, "pid": popen.pid, "procStart": proc_start_time(popen.pid), "startedAt": now,
                "namespace": pod["metadata"].get("namespace"), "pod": pod["metadata"]["name"],
                "command": cmd, "env": full_env, "cwd": cwd}
        fd = os.open(base + ".json.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as f:
            json.dump(meta, f)
        os.replace(base + ".json.tmp", base + ".json")
        self._env[(uid, name)] = (full_env, cwd)
        self._pods.setdefault(uid, {}).setdefault(name, []).append(rec)
        self._watch(_Run(rec, uid, base, popen.pid, popen))
        return rec

    def _watch(self, run: _Run) -> None:
        self._runs[(run.uid, run.rec.name)] = run
        loop = asyncio.get_running_loop()
        try:
            run.fd = os.pidfd_open(run.pid)
        except OSError:   # already gone
            loop.call_soon(self._exited, run)
            return
        loop.add_reader(run.fd, self._exited, run)

    def _exited(self, run: _Run) -> None:
        if run.exited.is_set():
            return
        if run.fd is not None:
            asyncio.get_running_loop().remove_reader(run.fd)
            os.close(run.fd)
            run.fd = None
        with contextlib.suppress(OSError):   # what the command left behind goes with it
            os.killpg(run.pid, signal.SIGKILL)
        status = run.popen.wait() if run.popen is not None else None
        code, finished = self._read_exit(run.path)
        if code is None:
            code = 128 - status if status is not None and status < 0 else (status if status else 137)
            self._write_exit(run.path, code)
        self._terminated(run.rec, code, finished)
        run.exited.set()
        if self._runs.get((run.uid, run.rec.name)) is run:
            del self._runs[(run.uid, run.rec.name)]
        self.on_change(run.uid)

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        run = self._runs.get((uid, name))
        if run is None:
            return
        with contextlib.suppress(OSError):
            os.kill(run.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(run.exited.wait(), max(grace, 0))
            return
        except TimeoutError:
            pass
        run.killed = True
        with contextlib.suppress(OSError):
            os.killpg(run.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.exited.wait(), 5)

    async def remove_pod(self, uid: str) -> None:
        for (u, name) in [k for k in self._runs if k[0] == uid]:
            await self.stop_container(u, name, 0)
        self._pods.pop(uid, None)
        for k in [k for k in self._env if k[0] == uid]:
            del self._env[k]
        await asyncio.to_thread(self._unlink_mounts, uid)
        await asyncio.to_thread(shutil.rmtree, self._pod_dir(uid), True)
        await asyncio.to_thread(volumes.remove_pod_volumes, self.data_dir, uid)

    # -- volumes: no mount namespace, so a volumeMount is a symlink at its mountPath ------------------
    def _links_file(self, uid: str) -> str:
        return os.path.join(self._pod_dir(uid), "mounts.json")

    def _read_links(self, uid: str) -> dict[str, str]:
        try:
            with open(self._links_file(uid)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _link_mounts(self, pod: dict, container: dict) -> None:
        """Make each mountPath a symlink to the volume's directory on the host (recorded for removal).

        A mountPath that exists on the host and is not such a link of a pod this runtime still holds
        fails the container (CreateContainerConfigError): the process runtime never replaces host files.
        """
        uid = pod["metadata"]["uid"]
        links = self._read_links(uid)
        vol_root = os.path.join(self.data_dir, "volumes") + os.sep
        for m in volumes.container_mounts(pod, container, self.data_dir):
            path = os.path.normpath(m.container_path)
            if not os.path.isabs(path) or path == "/":
                raise ContainerConfigError(f"mountPath {m.container_path!r} must be an absolute path other than /")
            try:
                self._link(path, m.host_path, links, vol_root)
            except OSError as e:
                raise ContainerConfigError(f"volume {m.volume}: cannot link {path} to {m.host_path}: "
                                           f"{e.strerror}") from None
        tmp = self._links_file(uid) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(links, f)
        os.replace(tmp, self._links_file(uid))

    def _link(self, path: str, target: str, links: dict[str, str], vol_root: str) -> None:
        """One mount: `path` becomes a symlink to `target`, unless something else is there."""
        if os.path.islink(path):
            cur = os.readlink(path)
            if cur == target and links.get(path) == target:     # ours already (another container)
                return
            owner = cur[len(vol_root):].split(os.sep, 1)[0] if cur.startswith(vol_root) else None
            if owner is None or owner in self._pods:
                raise ContainerConfigError(f"mountPath {path} is already a symlink to {cur} on the host (the process "
                                           "runtime has no mount namespace: a volume mount is a symlink at its "
                                           "mountPath)")
            os.unlink(path)      # a leftover of a pod that is gone
        elif os.path.lexists(path):
            raise ContainerConfigError(f"mountPath {path} exists on the host: the process runtime has no mount "
                                       "namespace and makes a volume mount a symlink at its mountPath, which must "
                                       "not exist")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)
        links[path] = target

    def _unlink_mounts(self, uid: str) -> None:
        for path, target in self._read_links(uid).items():
            with contextlib.suppress(OSError):
                if os.readlink(path) == target:
                    os.unlink(path)

    async def exec_probe(self, uid: str, name: str, command: list[str], timeout: float) -> tuple[bool, str]:
        env, cwd = self._env.get((uid, name), ({"PATH": DEFAULT_PATH}, None))
        try:
            proc = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                        stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                                        start_new_session=True)
        except OSError as e:
            return False, str(e)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return False, f"command timed out after {timeout:g}s"
        return proc.returncode == 0, out.decode(errors="replace")[-1024:]

    # -- streaming ---------------------------------------------------------------------------
    def log_files(self, uid: str, name: str) -> list[str]:
        return [self.log_path(uid, name, r.attempt) for r in self.containers(uid).get(name) or ()]

    def exec_context(self, uid: str, name: str) -> tuple[dict[str, str], str | None] | None:
        return self._env.get((uid, name), ({"PATH": DEFAULT_PATH}, None))

    def container_session(self, uid: str, name: str) -> int | None:
        run = self._runs.get((uid, name))
        return run.pid if run is not None else None   # the shim leads its own session

    def port_forward_host(self, uid: str) -> str | None:
        return "127.0.0.1"   # host processes share the host's network
