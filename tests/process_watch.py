"""Watching every process on the machine for a value on its command line."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path


def _command_lines_with(secret: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # the process ended between listing and reading
        if secret in cmdline:
            found.append(cmdline.replace("\0", " "))
    return found


@contextmanager
def command_lines_holding(secret: str, interval: float = 0.02) -> Generator[list[str]]:
    """Every process command line that shows `secret` while the block runs, sampled
    every `interval` seconds."""
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.extend(_command_lines_with(secret))
            stop.wait(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
