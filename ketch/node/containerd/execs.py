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
2. SIGKILLs the PID runc (or crun) wrote, its descendants and the rest of its session (runc makes an
   exec'd process a session leader, crun without a terminal does not), all stopped first so the
   tree cannot change under the kill, each only if it is in the container's cgroup, and through a
   pidfd so that a recycled PID is never signalled;
3. asks containerd to SIGKILL the exec (this waits for a start in flight, then signals the PID the
   shim knows);
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


def _signal_in_container(pid: int, cid: str, sig: int) -> bool:
    """Send `sig` to `pid` if it is in container `cid`'s cgroup, through a pidfd: the check reads /proc
    of the pid the pidfd holds, or the signal finds that process gone (ESRCH)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            if cid not in f.read():
                return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except (OSError, ValueError, IndexError):
        return False
    finally:
        os.close(fd)


def _members(pid: int) -> set[int]:
    """The processes of an exec besides `pid`: its descendants, and, when it leads a session (runc
    makes an exec'd process a session leader; crun does not without a terminal), the rest of its
    session (children of processes that already died)."""
    children: dict[int, list[int]] = {}
    session: set[int] = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            f = _stat_fields(int(p))
            children.setdefault(int(f[1]), []).append(int(p))
            if int(f[3]) == pid:
                session.add(int(p))
    out, todo = set(session), [pid]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    out.discard(pid)
    return out


def kill_by_pid_file(pid_file: str, cid: str) -> int:
    """SIGKILL the exec's process (the PID runc or crun wrote) and its members (`_members`), in the
    container: all are stopped first, so none forks or dies and leaves an orphan while the tree is
    read, then killed. Returns how many were killed."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    if pid <= 1:
        return 0
    stopped: set[int] = set()
    for _ in range(10):      # until a pass finds nobody new
        new = [p for p in ({pid} | _members(pid)) - stopped if _signal_in_container(p, cid, signal.SIGSTOP)]
        if not new:
            break
        stopped.update(new)
    return sum(_signal_in_container(p, cid, signal.SIGKILL) for p in stopped)


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
            # by PID first, while the exec's process tree is whole (a member whose parent is killed
            # first moves to the container's init and out of reach)
            killed += await asyncio.to_thread(kill_by_pid_file, pid_file, cid)
            rc, out = await run_ctr([*ctr, "kill", "--exec-id", eid, "--signal", "SIGKILL", cid])
            trace.append(f"kill: {rc} in {time.monotonic() - t0:.2f}s {out[-80:]!r}")
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
