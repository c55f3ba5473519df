"""Turning Packer's output into log lines, a bounded tail and a failure summary."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable

from bakery.packer.machine_readable import parse_line
from bakery.packer.progress import BuildProgress
from bakery.packer.redaction import Redactor

# A longer line is handed on in pieces of this size, which bounds memory whatever a
# provisioner prints.
MAX_LINE_BYTES = 64 * 1024
_READ_BYTES = 256 * 1024


class OutputFollower:
    """Reads the lines Packer appends to its output file, as they come.

    Packer writes to an unlinked temporary file rather than to a pipe: if the process
    reading a pipe dies, Packer's next write kills it with SIGPIPE (Go does this for
    stdout and stderr, even when SIGPIPE is ignored), so it would never clean up the
    instances it launched. The file is read with pread at our own offset, which leaves
    the offset Packer writes at untouched.
    """

    def __init__(self, fd: int, on_line: Callable[[str], None]) -> None:
        self._fd = fd
        self._on_line = on_line
        self._offset = 0
        self._partial = bytearray()

    def read_available(self) -> bool:
        """Hand on every complete line written so far; True if there was new output."""
        chunk = os.pread(self._fd, _READ_BYTES, self._offset)
        if not chunk:
            return False
        self._offset += len(chunk)
        self._partial += chunk
        while True:
            end = self._partial.find(b"\n")
            if end < 0 and len(self._partial) < MAX_LINE_BYTES:
                break
            cut = end + 1 if 0 <= end < MAX_LINE_BYTES else MAX_LINE_BYTES
            self._emit(bytes(self._partial[:cut]))
            del self._partial[:cut]
        return True

    def finish(self) -> None:
        """Read what is left, including a last line without a newline."""
        while self.read_available():
            pass
        if self._partial:
            self._emit(bytes(self._partial))
            self._partial.clear()

    def _emit(self, raw: bytes) -> None:
        self._on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))


class BuildOutput:
    """Logs `packer build -machine-readable` output as the human text Packer would show.

    UI errors go to `logger.error`, other UI text to `logger.info`, the remaining
    machine-readable records (artifact details, counts) to `logger.debug`. Every line is
    redacted before it is logged or kept.
    """

    def __init__(self, *, logger: logging.Logger, redact: Redactor, tail_lines: int) -> None:
        self._log = logger
        self._redact = redact
        self._tail: deque[str] = deque(maxlen=max(tail_lines, 1))
        self.progress = BuildProgress()

    @property
    def tail(self) -> tuple[str, ...]:
        """The last human-readable lines, oldest first."""
        return tuple(self._tail)

    def __call__(self, raw: str) -> None:
        if not raw.strip():
            return
        line = parse_line(raw)
        if line is None:
            # Not machine-readable: a plugin crash or a Go panic, worth seeing as is.
            self._show(logging.WARNING, self._redact(raw))
            return
        kind = line.ui_kind
        if kind is None:
            text = self._redact(",".join(line.data))
            if line.type == "error" and line.target:
                self.progress.observe_build_error(line.target, text)
            self._log.debug("packer %s %s: %s", line.target or "-", line.type, text)
            return
        text = self._redact(line.ui_text)
        if kind == "error":
            self.progress.observe_error(text.strip())
            self._show(logging.ERROR, text)
        else:
            if kind == "say":
                self.progress.observe_say(text.strip())
            self._show(logging.INFO, text)

    def _show(self, level: int, text: str) -> None:
        for piece in text.splitlines():
            if piece.strip():
                piece = piece.rstrip()
                self._tail.append(piece)
                self._log.log(level, "%s", piece)


class PlainOutput:
    """Logs the human-readable output of `packer validate` and keeps its last lines."""

    def __init__(self, *, logger: logging.Logger, redact: Redactor, tail_lines: int) -> None:
        self._log = logger
        self._redact = redact
        self._lines: deque[str] = deque(maxlen=max(tail_lines, 1))

    @property
    def lines(self) -> tuple[str, ...]:
        """The last non-blank lines, oldest first."""
        return tuple(self._lines)

    def __call__(self, raw: str) -> None:
        text = self._redact(raw).rstrip()
        if text.strip():
            self._lines.append(text)
            self._log.info("%s", text)
