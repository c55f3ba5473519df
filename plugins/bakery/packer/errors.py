"""Exceptions raised when Packer cannot produce an image."""

from __future__ import annotations

from collections.abc import Iterable


class PackerError(Exception):
    """Packer failed, or could not be run at all.

    The message is meant for the person reading the task log: it names the failing step
    and quotes Packer's own error lines. The attributes carry the same facts for code.
    """

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        step: str | None = None,
        error_lines: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.step = step
        self.error_lines = tuple(error_lines)


class PackerTimeoutError(PackerError):
    """The build ran longer than its timeout and was cancelled."""


class PackerCancelledError(PackerError):
    """The build was cancelled through `PackerRunner.cancel()`."""
