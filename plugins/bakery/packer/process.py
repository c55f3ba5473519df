"""Starting Packer in a process group of its own, and stopping that group the way Packer needs.

Packer only cleans up what it created in the cloud (the builder instance, its temporary
security group and key pair) when it is interrupted: SIGINT to its whole process group,
or SIGTERM to its own PID. SIGINT to its PID alone is ignored by the panicwrap parent
process, and SIGKILL leaves everything behind, so it is the last resort.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The running process has libc loaded already; no find_library (it forks ldconfig).
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up once, here: after fork() the child may only do async-signal-safe work, and
# loading a library is not.
_PRCTL = _load_prctl()


def _terminate_with_parent() -> Callable[[], None] | None:
    """A preexec_fn making the kernel send SIGTERM to Packer when this process dies.

    Without it, a SIGKILLed Airflow task would leave Packer building unattended; with
    it, Packer is interrupted and cleans up. The kernel ties this to the thread that
    forks, which is the one blocked in `PackerRunner` until Packer exits.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:
            # The parent died before prctl took effect: do not start an orphaned build.
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, output: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session, writing stdout and stderr to `output`."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        preexec_fn=_terminate_with_parent(),
    )


def has_exited(proc: subprocess.Popen[Any]) -> bool:
    """True once the process has ended, without reaping it.

    Leaving the zombie keeps its PID, and so its process-group id, reserved: signalling the
    group cannot reach an unrelated process. It also avoids Popen's internal wait lock,
    which a signal handler could find held by the very thread it interrupted.
    """
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send `sig` to a process group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """The live PIDs in a process group (Linux /proc; empty where it is unavailable)."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


class GroupStopper:
    """Stops a process group: SIGINT, then SIGTERM after a grace period, then SIGKILL.

    Every method can be called from any thread, or from a signal handler that interrupted
    another of its calls: none of them waits for a lock.
    """

    def __init__(
        self,
        *,
        proc: subprocess.Popen[Any],
        grace_seconds: float,
        kill_after_seconds: float,
        logger: logging.Logger,
    ) -> None:
        self._proc = proc
        self._grace = grace_seconds
        self._kill_after = kill_after_seconds
        self._log = logger
        self._lock = threading.Lock()
        self._requested_at: float | None = None
        self._terminated_at: float | None = None
        self._killed = False
        self.reason: str | None = None

    def request(self, reason: str) -> bool:
        """Start stopping; True if this call started it (the first reason is kept)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._requested_at is not None or has_exited(self._proc):
                return False
            self.reason = reason
            self._requested_at = time.monotonic()
        finally:
            self._lock.release()
        self._log.warning(
            "Interrupting Packer (%s); waiting up to %g s for it to clean up and exit",
            reason,
            self._grace,
        )
        signal_group(self._proc.pid, signal.SIGINT)
        return True

    def escalate_if_due(self) -> None:
        """Send SIGTERM or SIGKILL if Packer has outlived the time it was given."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._escalate(time.monotonic())
        finally:
            self._lock.release()

    def wait(self) -> None:
        """Block until the process has exited, escalating on schedule."""
        while not has_exited(self._proc):
            self.escalate_if_due()
            time.sleep(POLL_SECONDS)

    def _escalate(self, now: float) -> None:
        if self._requested_at is None or self._killed or has_exited(self._proc):
            return
        if self._terminated_at is None:
            if now - self._requested_at >= self._grace:
                self._terminated_at = now
                self._log.warning(
                    "Packer did not exit within %g s of SIGINT; sending SIGTERM", self._grace
                )
                signal_group(self._proc.pid, signal.SIGTERM)
        elif now - self._terminated_at >= self._kill_after:
            self._killed = True
            self._log.error(
                "Packer did not exit within %g s of SIGTERM; sending SIGKILL. Resources it "
                "created (instances, security groups, key pairs) may be left behind.",
                self._kill_after,
            )
            signal_group(self._proc.pid, signal.SIGKILL)
