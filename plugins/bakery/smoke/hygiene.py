"""The image hygiene scan: no secret, key or build-time identity may ship in an image.

The scan itself is a POSIX shell script (hygiene-scan.sh) run as root on the booted
smoke instance; this module builds its input and reads its findings. A finding names a
rule and a path, never the secret it found.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakery.smoke.checks import CheckResult

SCAN_SCRIPT = Path(__file__).with_name("hygiene-scan.sh")
# Shorter values match by accident all over a filesystem ("admin", "password").
MIN_SECRET_LENGTH = 8
# Reading every file of a large image three times takes minutes, not seconds.
SCAN_TIMEOUT_SECONDS = 900.0
HYGIENE_CHECK_NAME = "image hygiene"
EXPECTED = "no private keys, credentials, secret values, foreign keys, histories or build identity"
RULE_WORDS = {
    "private-key": "private key",
    "aws-access-key-id": "AWS access key id",
    "secret-value": "value of a bake secret",
    "cloud-credentials-file": "cloud credentials file",
    "foreign-authorized-key": "authorized key other than the launch key",
    "shell-history": "shell history",
    "machine-id-baked": "machine-id baked in at build time",
    "cloud-init-missing": "cloud-init not installed",
    "cloud-init-not-clean": "cloud-init state from the build",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str

    def describe(self) -> str:
        return f"{RULE_WORDS.get(self.rule, self.rule)} at {self.path} [{self.rule}]"


@dataclass(frozen=True)
class HygieneInput:
    """Everything the scan needs about this boot; travels in the trigger's kwargs."""

    launch_key: str
    secrets: tuple[str, ...]
    allow_paths: tuple[str, ...]
    expect_cloud_init: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "launch_key": self.launch_key,
            "secrets": list(self.secrets),
            "allow_paths": list(self.allow_paths),
            "expect_cloud_init": self.expect_cloud_init,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HygieneInput:
        return cls(
            launch_key=data["launch_key"],
            secrets=tuple(data.get("secrets", ())),
            allow_paths=tuple(data.get("allow_paths", ())),
            expect_cloud_init=bool(data.get("expect_cloud_init", True)),
        )


def scannable_secrets(values: Iterable[str]) -> tuple[tuple[str, ...], int]:
    """(values worth searching for, how many were too short to search for)."""
    values = [v for v in dict.fromkeys(values) if v]
    usable = tuple(v for v in values if len(v) >= MIN_SECRET_LENGTH and "\n" not in v)
    return usable, len(values) - len(usable)


def _file_from(lines: Sequence[str], variable: str) -> list[str]:
    """Shell lines that write `lines` into a fresh 0600 file named by $variable. The
    content is base64 in a quoted here-document: nothing in it is ever expanded."""
    encoded = base64.b64encode("".join(f"{line}\n" for line in lines).encode()).decode()
    return [
        f'{variable}=$(mktemp "${{TMPDIR:-/run}}/bakery-scan.XXXXXX")',
        f'base64 -d > "${variable}" <<"BAKERY_EOF"',
        encoded,
        "BAKERY_EOF",
    ]


def scan_script(scan: HygieneInput, *, instance_id: str, launched_at: int, root: str = "/") -> str:
    """The full script to feed to `sh -s` as root: inputs first, then the scan.
    `launched_at` is the instance's launch time in epoch seconds."""
    q = shlex.quote
    prelude = [
        "umask 077",
        "export TMPDIR=${TMPDIR:-/run}",
        *_file_from(scan.secrets, "SECRETS_FILE"),
        *_file_from(scan.allow_paths, "ALLOW_FILE"),
        'trap \'rm -f "$SECRETS_FILE" "$ALLOW_FILE"\' EXIT',
        "export SECRETS_FILE ALLOW_FILE",
        f"export SCAN_ROOT={q(root)}",
        f"export LAUNCH_KEY={q(scan.launch_key.strip())}",
        f"export LAUNCHED_AT={int(launched_at)}",
        f"export INSTANCE_ID={q(instance_id)}",
        f"export SKIP_CLOUD_INIT={'0' if scan.expect_cloud_init else '1'}",
    ]
    # The scan runs in a subshell so its `exit` still lets the EXIT trap clean up.
    return "\n".join([*prelude, "(", SCAN_SCRIPT.read_text(), ")", ""])


def parse_findings(output: str) -> list[Finding]:
    findings = []
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] == "FINDING":
            findings.append(Finding(rule=parts[1], path=parts[2]))
    return findings


def verdict(findings: Sequence[Finding], *, exit_code: int) -> CheckResult:
    """The scan as one smoke check result."""
    if exit_code != 0:
        seen = f"the scan itself failed (exit {exit_code}; timed out when -1)"
        return CheckResult(HYGIENE_CHECK_NAME, "hygiene", False, EXPECTED, seen)
    if not findings:
        return CheckResult(HYGIENE_CHECK_NAME, "hygiene", True, EXPECTED, "no findings")
    seen = f"{len(findings)} finding(s): " + "; ".join(f.describe() for f in findings)
    return CheckResult(HYGIENE_CHECK_NAME, "hygiene", False, EXPECTED, seen)
