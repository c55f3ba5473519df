"""Following Packer's UI lines to know which step each build is in and why it failed.

Packer 1.6.6 reports progress and failure like this (machine-readable `ui` texts):

    say   ==> web.null.x: Running local shell script: /tmp/packer-shell2299740306
    error ==> web.null.x: oops                               (the script's stderr)
    say   ==> web.null.x: Provisioning step had errors: Running the cleanup provisioner...
    error Build 'web.null.x' errored after 8 milliseconds: Script exited with non-zero ...
    error \\n==> Some builds didn't complete successfully and had errors:
    error --> web.null.x: Script exited with non-zero exit status: 3. ...

plus a `web.null.x,error,<message>` line. Builder steps (launching an instance, waiting
for SSH) report their error with `ui.Error` inside the step, then clean up with more
say-lines; provisioners instead fail through the "Provisioning step had errors" line.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

_BUILD_LINE = re.compile(r"^==> (?P<build>[^:\s][^:]*?): (?P<text>\S.*)$", re.DOTALL)
_BUILD_ERRORED = re.compile(
    r"^Build '(?P<build>.+?)' errored(?: after [^:]*)?: (?P<error>.+)$", re.DOTALL
)
_SUMMARY_ERROR = re.compile(r"^--> (?P<build>[^:\s][^:]*?): (?P<error>.+)$", re.DOTALL)
_PROVISIONING_FAILED = "Provisioning step had errors"
_SUMMARY_HEADER = "==> Some builds didn't complete successfully and had errors:"


@dataclass
class _BuildState:
    step: str | None = None
    step_at_last_error: str | None = None
    failed_provisioner_step: str | None = None

    def failing_step(self) -> str | None:
        return self.failed_provisioner_step or self.step_at_last_error or self.step


class BuildProgress:
    """Which step each build is in, and the error lines to show when the run fails.

    Feed it the (already redacted) text of every `ui` say/error line and every
    machine-readable `error` line. Memory stays bounded: at most `max_error_lines`
    error lines are kept besides one failure message per build.
    """

    def __init__(self, *, max_error_lines: int = 20) -> None:
        self._builds: dict[str, _BuildState] = {}
        self._last_step: str | None = None
        self._failures: dict[str, tuple[str | None, str]] = {}
        self._other_errors: deque[str] = deque(maxlen=max_error_lines)

    @property
    def last_step(self) -> str | None:
        """The step most recently started by any build."""
        return self._last_step

    @property
    def failed_step(self) -> str | None:
        """The step the first failed build was in when it failed."""
        first = next(iter(self._failures.values()), None)
        return None if first is None else first[0]

    @property
    def error_lines(self) -> tuple[str, ...]:
        """Each failed build's error first, then the other error lines in order."""
        failures = [f"{build}: {error}" for build, (_, error) in self._failures.items()]
        return (*failures, *self._other_errors)

    def observe_say(self, text: str) -> None:
        match = _BUILD_LINE.match(text)
        if match is None:
            return
        state = self._state(match["build"])
        if match["text"].startswith(_PROVISIONING_FAILED):
            # Not a step of its own: it says the step before it failed.
            state.failed_provisioner_step = state.failed_provisioner_step or state.step
            return
        state.step = match["text"]
        self._last_step = match["text"]

    def observe_error(self, text: str) -> None:
        if text == _SUMMARY_HEADER:
            return
        if (match := _BUILD_ERRORED.match(text)) is not None:
            self.observe_build_error(match["build"], match["error"])
            return
        if (match := _SUMMARY_ERROR.match(text)) is not None and self._is_known_failure(
            match["build"], match["error"]
        ):
            return
        if (match := _BUILD_LINE.match(text)) is not None:
            state = self._state(match["build"])
            state.step_at_last_error = state.step
            text = f"{match['build']}: {match['text']}"
        self._other_errors.append(text)

    def observe_build_error(self, build: str, error: str) -> None:
        if build not in self._failures:
            self._failures[build] = (self._state(build).failing_step(), error)

    def _is_known_failure(self, build: str, error: str) -> bool:
        failure = self._failures.get(build)
        return failure is not None and failure[1] == error

    def _state(self, build: str) -> _BuildState:
        return self._builds.setdefault(build, _BuildState())
