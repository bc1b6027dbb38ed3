"""Ending a `ctr tasks exec` whose client went away, with nothing of it left in the container.

containerd's runc shim starts an exec in two steps, holding the exec's lock throughout: `runc exec`
(from then on the process runs, and runc has written its PID to `<bundle>/<exec id>.pid`), then it
opens the exec's stdout/stderr FIFOs for writing, which waits (up to 30 s) for a reader. ctr is that
reader. When the client drops while the exec starts, the agent kills ctr before it has opened them:
the shim then sits 30 s on the lock (a Kill or Delete of the exec waits as long: the "hanging"
`ctr tasks kill`), fails the start and never records the PID; the process runs on, unknown to
containerd (its Kill answers "process not created"), and a Delete then succeeds without stopping it.

So once ctr is dead, `end_exec`:
1. opens the exec's output FIFOs for reading and drains them, so a start in flight finishes at once
   (and the shim's copy never blocks on a full FIFO);
2. asks containerd to SIGKILL the exec (this waits for a start in flight, then signals the PID the
   shim knows);
3. SIGKILLs the PID runc wrote and the processes of its session (an exec'd process is a session
   leader: a shell's children are in its session), each only if it is in the container's cgroup, and
   through a pidfd so that a recycled PID is never signalled;
4. deletes the exec: once it is deleted no start can follow; while the shim has not reaped the
   killed process the Delete is refused, and the steps run again, until a deadline.
Every ctr run is bounded by a timeout, after which that ctr is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
import signal
import subprocess
import time

log = logging.getLogger("ketch.node.containerd")

CTR_TIMEOUT = 10.0      # one ctr run
DEADLINE = 45.0         # the whole clean-up: past the shim's 30 s wait for the FIFOs, if draining did not help


async def run_ctr(argv: list[str], timeout: float = CTR_TIMEOUT) -> tuple[int | None, str]:
    """Run one ctr command; (exit status, output), status None when it was killed at the timeout."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode, out.decode(errors="replace").strip()
    except TimeoutError:
        return None, f"timed out after {timeout:g}s"
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


class FifoDrain:
    """Read ends of an exec's output FIFOs, opened without blocking and drained into nothing."""

    def __init__(self, paths: list[str]):
        self.loop = asyncio.get_running_loop()
        self.fds: list[int] = []
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            self.fds.append(fd)
            self.loop.add_reader(fd, self._drain, fd)

    def _drain(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:     # every writer closed (the shim's copy is done): stop watching, keep it open
            self.loop.remove_reader(fd)

    def close(self) -> None:
        for fd in self.fds:
            self.loop.remove_reader(fd)
            os.close(fd)
        self.fds.clear()


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].decode().split()


def _kill_in_container(pid: int, cid: str, session: int | None = None) -> bool:
    """SIGKILL `pid` if it is in container `cid`'s cgroup (and in `session`), through a pidfd: the
    checks read /proc of the pid the pidfd holds, or the signal finds that process gone (ESRCH)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            if cid not in f.read():
                return False
        if session is not None and int(_stat_fields(pid)[3]) != session:
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except (OSError, ValueError, IndexError):
        return False
    finally:
        os.close(fd)


def kill_by_pid_file(pid_file: str, cid: str, leader: bool = True) -> int:
    """SIGKILL the exec's process (the PID runc wrote; not when `leader` is false: containerd has
    signalled it) and the rest of its session, in the container. Returns how many were signalled."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    if pid <= 1:
        return 0
    killed = int(leader and _kill_in_container(pid, cid))
    for _ in range(5):      # members may fork while being killed: until none is left
        members = []
        for p in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(p) != pid and int(_stat_fields(int(p))[3]) == pid:
                    members.append(int(p))
        signalled = sum(_kill_in_container(p, cid, session=pid) for p in members)
        killed += signalled
        if not signalled:
            break
    return killed


async def end_exec(ctr: list[str], cid: str, eid: str, bundle: str, fifo_dir: str,
                   deadline: float = DEADLINE) -> bool:
    """Kill and delete exec `eid` of container `cid` whose ctr (`ctr` is the command prefix up to
    `tasks`) is dead; True when containerd no longer has it. Removes its FIFOs."""
    drain = FifoDrain([f for f in glob.glob(os.path.join(fifo_dir, "*", eid + "-*"))
                       if not f.endswith("-stdin")])
    pid_file = os.path.join(bundle, eid + ".pid")
    end = time.monotonic() + deadline
    done, killed, rounds, trace = False, 0, 0, []
    try:
        while True:
            rounds += 1
            t0 = time.monotonic()
            rc, out = await run_ctr([*ctr, "kill", "--exec-id", eid, "--signal", "SIGKILL", cid])
            trace.append(f"kill: {rc} in {time.monotonic() - t0:.2f}s {out[-80:]!r}")
            n = await asyncio.to_thread(kill_by_pid_file, pid_file, cid, rc != 0)
            killed += n
            t0 = time.monotonic()
            rc, out = await run_ctr([*ctr, "delete", "--exec-id", eid, cid])
            trace.append(f"delete: {rc} in {time.monotonic() - t0:.2f}s {out[-80:]!r}")
            # deleted: ctr exits with the process's status (137 after the SIGKILL) and says nothing
            if rc is not None and (not out or "not found" in out):
                done = True
                break
            if time.monotonic() > end:
                break
            await asyncio.sleep(0.1 if rounds < 10 else 0.5)
    finally:
        drain.close()
        for f in glob.glob(os.path.join(fifo_dir, "*", eid + "-*")):
            shutil.rmtree(os.path.dirname(f), ignore_errors=True)
    if done:
        log.debug("exec %s in %s ended, %d process(es) killed by PID: %s", eid, cid[:12], killed, "; ".join(trace))
    else:
        log.warning("exec %s in %s: not deleted from containerd after %.0fs, %d process(es) killed by PID: %s",
                    eid, cid[:12], deadline, killed, "; ".join(trace[-6:]))
    return done
