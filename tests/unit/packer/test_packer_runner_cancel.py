"""Stopping Packer: timeouts, cancel(), escalation, and the Airflow task dying under it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import pytest

import bakery.packer
from bakery.packer import PackerCancelledError, PackerError, PackerTimeoutError
from bakery.packer import runner as runner_module
from tests.unit.packer.packer_support import (
    RECORD_PGID,
    Workspace,
    is_running,
    live_processes_in_group,
)


def build_in_thread(
    workspace: Workspace, runner: bakery.packer.PackerRunner, template: Path
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.build(template, manifest_path=workspace.manifest)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_timeout_cancels_the_build_and_leaves_no_process(workspace: Workspace) -> None:
    template = workspace.template(RECORD_PGID, "sleep 60")
    runner = workspace.runner(timeout_seconds=2)
    started = time.monotonic()

    with pytest.raises(PackerTimeoutError) as excinfo:
        runner.build(template, manifest_path=workspace.manifest)

    assert time.monotonic() - started < 15
    message = str(excinfo.value)
    assert message.startswith(
        "Packer build timed out after 2 seconds at step 'Running local shell script: "
    )
    assert "and was cancelled" in message
    assert live_processes_in_group(workspace.pgid()) == []


def test_cancel_from_another_thread_stops_build_and_provisioner(workspace: Workspace) -> None:
    template = workspace.template(RECORD_PGID, "sleep 60 & echo $! > sleep.pid; wait")
    runner = workspace.runner()
    thread, errors = build_in_thread(workspace, runner, template)
    pgid = workspace.pgid()
    sleep_pid = int((workspace.dir / "sleep.pid").read_text())
    assert is_running(sleep_pid)

    started = time.monotonic()
    runner.cancel()
    cancel_seconds = time.monotonic() - started
    thread.join(timeout=30)

    assert cancel_seconds < 10
    assert len(errors) == 1 and isinstance(errors[0], PackerCancelledError), errors
    assert "Packer build was cancelled at step 'Running local shell script:" in str(errors[0])
    assert not is_running(sleep_pid)
    assert live_processes_in_group(pgid) == []


def test_cancel_without_wait_only_signals(workspace: Workspace) -> None:
    template = workspace.template(RECORD_PGID, "sleep 60")
    runner = workspace.runner()
    thread, errors = build_in_thread(workspace, runner, template)
    workspace.pgid()

    started = time.monotonic()
    runner.cancel(wait=False)
    assert time.monotonic() - started < 1
    runner.cancel(wait=False)  # idempotent
    thread.join(timeout=30)

    assert len(errors) == 1 and isinstance(errors[0], PackerCancelledError), errors


def test_cancel_from_a_signal_handler_during_build(workspace: Workspace) -> None:
    template = workspace.template(RECORD_PGID, "sleep 60")
    runner = workspace.runner()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.cancel()

    def send_signal_once_building() -> None:
        workspace.pgid()
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, on_signal)
    sender = threading.Thread(target=send_signal_once_building)
    sender.start()
    try:
        with pytest.raises(PackerCancelledError):
            runner.build(template, manifest_path=workspace.manifest)
    finally:
        sender.join(timeout=30)
        signal.signal(signal.SIGUSR1, previous)


def fake_packer(directory: Path, *, ignore: str) -> Path:
    """A stand-in for a wedged Packer that ignores the signals in `ignore`."""
    script = directory / "wedged-packer"
    script.write_text(f"#!/bin/sh\ntrap '' {ignore}\ntouch started\nwhile :; do sleep 0.1; done\n")
    script.chmod(0o755)
    return script


def test_cancel_escalates_to_sigterm_when_sigint_is_ignored(workspace: Workspace) -> None:
    runner = workspace.runner(
        packer_binary=str(fake_packer(workspace.dir, ignore="INT")), cancel_grace_seconds=0.5
    )
    thread, errors = build_in_thread(workspace, runner, workspace.template())
    assert_started(workspace)

    runner.cancel()
    thread.join(timeout=30)

    assert len(errors) == 1 and isinstance(errors[0], PackerCancelledError), errors
    assert errors[0].exit_code == -signal.SIGTERM
    assert "Packer did not exit within 0.5 s of SIGINT; sending SIGTERM" in workspace.log.text


def test_cancel_escalates_to_sigkill_when_sigterm_is_ignored(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "KILL_AFTER_TERM_SECONDS", 0.5)
    runner = workspace.runner(
        packer_binary=str(fake_packer(workspace.dir, ignore="INT TERM")), cancel_grace_seconds=0.5
    )
    thread, errors = build_in_thread(workspace, runner, workspace.template())
    assert_started(workspace)

    runner.cancel()
    thread.join(timeout=30)

    assert len(errors) == 1 and isinstance(errors[0], PackerCancelledError), errors
    assert errors[0].exit_code == -signal.SIGKILL
    assert "sending SIGKILL" in workspace.log.text


def assert_started(workspace: Workspace) -> None:
    deadline = time.monotonic() + 20
    while not (workspace.dir / "started").exists():
        assert time.monotonic() < deadline, "the fake Packer did not start"
        time.sleep(0.05)


TASK = """
import logging, os, sys
from pathlib import Path
from bakery.packer import PackerRunner

workdir = Path(sys.argv[1])
runner = PackerRunner(
    working_dir=workdir,
    env={"PATH": os.environ["PATH"], "HOME": str(workdir)},
    timeout_seconds=120,
    logger=logging.getLogger("task"),
)
runner.build(workdir / "image.pkr.hcl", manifest_path=workdir / "manifest.json")
"""

# Plays the part of the Airflow worker: starts the task, SIGKILLs it once Packer is busy,
# and (as a child subreaper, so it inherits the orphaned Packer) reports how Packer ended.
HARNESS = """
import ctypes, json, os, signal, subprocess, sys, time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
workdir = Path(sys.argv[1])
task = subprocess.Popen([sys.executable, str(workdir / "task.py"), str(workdir)])
pgid_file = workdir / "pgid"
deadline = time.monotonic() + 20
while not (pgid_file.exists() and pgid_file.read_text().strip()):
    if time.monotonic() > deadline or task.poll() is not None:
        sys.exit("Packer never started")
    time.sleep(0.05)
packer_pid = int(pgid_file.read_text())
os.kill(task.pid, signal.SIGKILL)
task.wait()
killed_at = time.monotonic()
signal.alarm(30)  # Packer ignoring its parent's death would run the 60 s sleep
while True:
    pid, status = os.waitpid(-1, 0)
    if pid == packer_pid:
        break
seconds = time.monotonic() - killed_at
try:
    os.killpg(packer_pid, signal.SIGKILL)  # the provisioner's sleep, if still there
except ProcessLookupError:
    pass
print(json.dumps({"exit_code": os.waitstatus_to_exitcode(status), "seconds": seconds}))
"""


def test_packer_cancels_cleanly_when_the_task_process_is_killed(workspace: Workspace) -> None:
    workspace.template(RECORD_PGID, "sleep 60")
    (workspace.dir / "task.py").write_text(TASK)
    harness = workspace.dir / "harness.py"
    harness.write_text(HARNESS)
    plugins_dir = Path(bakery.packer.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(plugins_dir)}

    completed = subprocess.run(
        [sys.executable, str(harness), str(workspace.dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout)
    # Exit code 1 after "Cleanly cancelled builds after being interrupted": Packer got
    # SIGTERM and cleaned up. -13 would be SIGPIPE from a dead reader, -15 an unhandled
    # SIGTERM; no signal at all would let the 60 s sleep run into the harness's alarm.
    assert outcome["exit_code"] == 1
    assert outcome["seconds"] < 10


def test_packer_error_is_the_base_of_stop_errors() -> None:
    assert issubclass(PackerTimeoutError, PackerError)
    assert issubclass(PackerCancelledError, PackerError)
    assert not issubclass(PackerTimeoutError, PackerCancelledError)
