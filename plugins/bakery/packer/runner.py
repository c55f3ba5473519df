"""Running `packer validate` and `packer build` under supervision.

Variables reach Packer only through the environment (`PKR_VAR_*`) or a var-file, never
`-var` on the command line, where any local user could read them in the process list.
"""

from __future__ import annotations

import logging
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bakery.packer.errors import PackerCancelledError, PackerError, PackerTimeoutError
from bakery.packer.manifest import PackerArtifact, parse_manifest, read_last_run_uuid
from bakery.packer.output import BuildOutput, OutputFollower, PlainOutput
from bakery.packer.process import (
    POLL_SECONDS,
    GroupStopper,
    group_members,
    has_exited,
    signal_group,
    spawn,
)
from bakery.packer.redaction import Redactor

# Packer exits promptly on SIGTERM unless it is wedged, so SIGKILL follows soon after.
KILL_AFTER_TERM_SECONDS = 10.0

_TIMEOUT = "timeout"
_CANCELLED = "cancelled"
_ABORTED = "the task was interrupted"


@dataclass(frozen=True)
class PackerResult:
    """What a successful `packer build` produced."""

    artifacts: tuple[PackerArtifact, ...]
    duration_seconds: float


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    duration_seconds: float
    stop_reason: str | None


class PackerRunner:
    """Runs Packer for bakery: one command at a time, streamed to a logger, cancellable.

    Relative template and var-file paths are relative to `working_dir`, where Packer runs.
    `env` is Packer's whole environment (pass PATH, HOME and the `PKR_VAR_*` variables);
    every value in `secrets` is masked as `***` in logs and exception messages.
    `cancel()` is the one method meant to be called from another thread or a signal
    handler.
    """

    def __init__(
        self,
        *,
        packer_binary: str = "packer",
        working_dir: Path,
        env: Mapping[str, str],
        timeout_seconds: float | None,
        logger: logging.Logger,
        secrets: Collection[str] = (),
        cancel_grace_seconds: float = 300.0,
        tail_lines: int = 50,
    ) -> None:
        self._packer = packer_binary
        self._working_dir = working_dir
        # Checkpoint would phone home for version news; colour codes would garble the log.
        self._env = {**env, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1"}
        self._timeout = timeout_seconds
        self._log = logger
        self._redact = Redactor(secrets)
        self._grace = cancel_grace_seconds
        self._tail_lines = tail_lines
        self._stopper: GroupStopper | None = None

    def validate(self, template: Path, *, var_file: Path | None = None) -> None:
        """Check the template (with its variables); raise PackerError quoting Packer if not."""
        output = PlainOutput(logger=self._log, redact=self._redact, tail_lines=self._tail_lines)
        argv = [self._packer, "validate", *_var_file_args(var_file), str(template)]
        outcome = self._run(argv, output)
        if outcome.stop_reason is not None:
            raise self._stopped_error("validate", outcome, step=None, error_lines=output.lines)
        if outcome.exit_code != 0:
            details = "\n".join(output.lines) or "(Packer printed nothing)"
            raise self._error(
                f"Packer template {template} is invalid: {details}",
                exit_code=outcome.exit_code,
                error_lines=output.lines,
            )

    def build(
        self, template: Path, *, var_file: Path | None = None, manifest_path: Path
    ) -> PackerResult:
        """Build the template and return the artifacts its manifest post-processor recorded.

        The template must have a `manifest` post-processor writing to `manifest_path`.
        """
        # Packer resolves a relative manifest output against its working directory.
        manifest = self._working_dir / manifest_path
        previous_run = self._previous_run_uuid(manifest)
        output = BuildOutput(logger=self._log, redact=self._redact, tail_lines=self._tail_lines)
        argv = [
            self._packer,
            "build",
            "-machine-readable",
            "-color=false",
            *_var_file_args(var_file),
            str(template),
        ]
        outcome = self._run(argv, output)
        progress = output.progress
        if outcome.stop_reason is not None:
            raise self._stopped_error(
                "build", outcome, step=progress.last_step, error_lines=progress.error_lines
            )
        if outcome.exit_code != 0:
            raise self._build_failure(outcome.exit_code, output)
        run_uuid = read_last_run_uuid(manifest)
        if run_uuid is None or run_uuid == previous_run:
            raise self._error(
                f"Packer build succeeded but did not write the manifest {manifest}: the "
                f'template needs a `post-processor "manifest"` with output = "{manifest}"',
                exit_code=outcome.exit_code,
            )
        artifacts = parse_manifest(manifest, run_uuid=run_uuid)
        self._log.info(
            "Packer build finished in %.1f s with %d artifact(s): %s",
            outcome.duration_seconds,
            len(artifacts),
            ", ".join(f"{a.region or '-'}:{a.image_id}" for a in artifacts) or "none",
        )
        return PackerResult(artifacts=artifacts, duration_seconds=outcome.duration_seconds)

    def cancel(self, *, wait: bool = True) -> None:
        """Interrupt the running command so Packer cleans up; a no-op when none is running.

        Sends SIGINT to Packer's process group, then SIGTERM after `cancel_grace_seconds`
        and SIGKILL shortly after that. With `wait`, returns once Packer has exited.
        """
        stopper = self._stopper
        if stopper is None:
            return
        stopper.request(_CANCELLED)
        if wait:
            stopper.wait()

    def _run(self, argv: list[str], on_line: Callable[[str], None]) -> _Outcome:
        if self._stopper is not None:
            raise RuntimeError("PackerRunner runs one Packer command at a time")
        if not self._working_dir.is_dir():
            raise PackerError(f"Packer working directory {self._working_dir} does not exist")
        self._log.info("Running %s", self._redact(shlex.join(argv)))
        started = time.monotonic()
        with tempfile.TemporaryFile() as output:
            proc = self._spawn(argv, output)
            stopper = GroupStopper(
                proc=proc,
                grace_seconds=self._grace,
                kill_after_seconds=KILL_AFTER_TERM_SECONDS,
                logger=self._log,
            )
            self._stopper = stopper
            follower = OutputFollower(output.fileno(), on_line)
            try:
                self._supervise(proc, stopper, follower, started=started)
            except BaseException:
                # Whatever interrupted us (say Airflow's execution timeout, raised in this
                # thread), Packer must not go on unsupervised, and must get to clean up.
                stopper.request(_ABORTED)
                stopper.wait()
                raise
            finally:
                self._stopper = None
                self._reap(proc)
                follower.finish()
        return _Outcome(
            exit_code=proc.returncode,
            duration_seconds=time.monotonic() - started,
            stop_reason=stopper.reason if stopper.reason != _ABORTED else None,
        )

    def _spawn(self, argv: list[str], output: IO[bytes]) -> subprocess.Popen[bytes]:
        try:
            return spawn(argv, env=self._env, cwd=self._working_dir, output=output)
        except FileNotFoundError as exc:
            raise PackerError(
                f"Packer executable {self._packer!r} was not found on the PATH given to the "
                "runner. Install Packer on the Airflow workers (e.g. `apt-get install packer`) "
                "or set packer_binary to its full path."
            ) from exc
        except PermissionError as exc:
            raise PackerError(f"Packer executable {self._packer!r} cannot be run: {exc}") from exc

    def _supervise(
        self,
        proc: subprocess.Popen[bytes],
        stopper: GroupStopper,
        follower: OutputFollower,
        *,
        started: float,
    ) -> None:
        deadline = None if self._timeout is None else started + self._timeout
        while not has_exited(proc):
            if deadline is not None and time.monotonic() >= deadline:
                stopper.request(_TIMEOUT)
            stopper.escalate_if_due()
            if not follower.read_available():
                time.sleep(POLL_SECONDS)

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        # Packer has exited but is not reaped yet, so its process-group id cannot have been
        # reused: anything still in the group (say a provisioner's background child, or one
        # that outlived SIGTERM to Packer alone) is left over from this run and ours to kill.
        leftovers = [pid for pid in group_members(proc.pid) if pid != proc.pid]
        if leftovers:
            self._log.warning(
                "Killing %d process(es) Packer left behind: %s",
                len(leftovers),
                ", ".join(map(str, leftovers)),
            )
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()

    def _previous_run_uuid(self, manifest: Path) -> str | None:
        try:
            return read_last_run_uuid(manifest)
        except PackerError:
            return None  # a damaged manifest is rewritten by the next run anyway

    def _build_failure(self, exit_code: int, output: BuildOutput) -> PackerError:
        progress = output.progress
        errors = progress.error_lines
        step = progress.failed_step
        where = f" at step '{step}'" if step else ""
        if errors:
            details = "\n".join(errors)
        else:
            details = "Packer reported no error; its last output was:\n" + "\n".join(output.tail)
        return self._error(
            f"Packer build failed{where} (exit code {exit_code}): {details}",
            exit_code=exit_code,
            step=step,
            error_lines=errors,
        )

    def _stopped_error(
        self, action: str, outcome: _Outcome, *, step: str | None, error_lines: tuple[str, ...]
    ) -> PackerError:
        where = f" at step '{step}'" if step else ""
        if outcome.stop_reason == _TIMEOUT:
            return self._error(
                f"Packer {action} timed out after {self._timeout:g} seconds{where} "
                f"and was cancelled (exit code {outcome.exit_code})",
                exit_code=outcome.exit_code,
                step=step,
                error_lines=error_lines,
                error_type=PackerTimeoutError,
            )
        return self._error(
            f"Packer {action} was cancelled{where} (exit code {outcome.exit_code})",
            exit_code=outcome.exit_code,
            step=step,
            error_lines=error_lines,
            error_type=PackerCancelledError,
        )

    def _error(
        self,
        message: str,
        *,
        exit_code: int | None,
        step: str | None = None,
        error_lines: tuple[str, ...] = (),
        error_type: type[PackerError] = PackerError,
    ) -> PackerError:
        return error_type(
            self._redact(message),
            exit_code=exit_code,
            step=None if step is None else self._redact(step),
            error_lines=tuple(self._redact(line) for line in error_lines),
        )


def _var_file_args(var_file: Path | None) -> list[str]:
    return [] if var_file is None else [f"-var-file={var_file}"]
