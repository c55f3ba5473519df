"""Helpers for tests that run the real Packer binary against tiny null-builder templates."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bakery.packer import PackerRunner

# Written into the template's directory by the provisioner: Packer's process-group id
# (equal to Packer's PID, since the runner starts it in a new session).
PGID_FILE = "pgid"
RECORD_PGID = f"cut -d' ' -f5 /proc/$$/stat > {PGID_FILE}"


class RecordingHandler(logging.Handler):
    """Keeps every record the logger emits, from whichever thread."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)

    def messages(self, level: int | None = None) -> list[str]:
        return [r.getMessage() for r in self.records if level is None or r.levelno == level]


@dataclass
class Workspace:
    """A working directory with a manifest path, a logger and a runner factory."""

    dir: Path
    logger: logging.Logger
    log: RecordingHandler

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    def template(self, *commands: str, manifest: bool = True) -> Path:
        """A null-builder template whose shell-local provisioner runs `commands`.

        Commands are HCL strings: `${var.secret}` interpolates the variable.
        """
        inline = ", ".join(json.dumps(command) for command in commands or ("true",))
        post_processor = (
            """
  post-processor "manifest" {
    output      = var.manifest
    custom_data = { owner = "bakery" }
  }"""
            if manifest
            else ""
        )
        path = self.dir / "image.pkr.hcl"
        path.write_text(
            f"""
variable "manifest" {{
  type    = string
  default = "manifest.json"
}}
variable "secret" {{
  type    = string
  default = ""
}}
variable "api_token" {{
  type    = string
  default = ""
}}
source "null" "web" {{
  communicator = "none"
}}
build {{
  name    = "bake"
  sources = ["source.null.web"]
  provisioner "shell-local" {{
    inline = [{inline}]
  }}{post_processor}
}}
"""
        )
        return path

    def env(self, **variables: str) -> dict[str, str]:
        """Packer's environment: PATH, a private HOME and PKR_VAR_<name> for `variables`."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir)}
        env.update({f"PKR_VAR_{name}": value for name, value in variables.items()})
        return env

    def runner(
        self,
        *,
        env: dict[str, str] | None = None,
        timeout_seconds: float | None = 60,
        secrets: Sequence[str] = (),
        packer_binary: str = "packer",
        cancel_grace_seconds: float = 300.0,
    ) -> PackerRunner:
        return PackerRunner(
            packer_binary=packer_binary,
            working_dir=self.dir,
            env=self.env() if env is None else env,
            timeout_seconds=timeout_seconds,
            logger=self.logger,
            secrets=secrets,
            cancel_grace_seconds=cancel_grace_seconds,
        )

    def pgid(self, timeout: float = 20) -> int:
        """Packer's process-group id, once the provisioner has recorded it."""
        path = self.dir / PGID_FILE
        wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout)
        return int(path.read_text())


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


def live_processes_in_group(pgid: int) -> list[int]:
    """PIDs of the non-zombie processes whose process group is `pgid`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and fields[2] == str(pgid):
            pids.append(int(entry.name))
    return pids


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
