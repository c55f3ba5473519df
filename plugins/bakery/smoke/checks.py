"""Each catalog smoke check, run through a transport and judged in one readable line."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bakery.catalog import SmokeCheck
from bakery.smoke.transport import CommandResult, HttpResponse

SEEN_LIMIT = 200


class Transport(Protocol):
    async def run(self, command: str) -> CommandResult: ...

    async def http_get(self, *, port: int, path: str, scheme: str) -> HttpResponse: ...


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    passed: bool
    expected: str
    seen: str

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"[{verdict}] {self.kind} '{self.name}': expected {self.expected}; saw {self.seen}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SEEN_LIMIT else text[: SEEN_LIMIT - 3] + "..."


def expectation(check: SmokeCheck) -> tuple[str, str]:
    """(kind, what the check expects) in words, for the verdict line."""
    if check.http is not None:
        http = check.http
        expected = f"HTTP {http.expect_status}"
        if http.expect_body is not None:
            expected += f" with body containing {http.expect_body!r}"
        return "http", expected
    if check.command is not None:
        expected = f"exit {check.command.expect_exit_code}"
        if check.command.expect_output is not None:
            expected += f" with output containing {check.command.expect_output!r}"
        return "command", expected
    if check.file is not None:
        return "file", f"{check.file} to exist"
    return "service", f"service {check.service} active"


async def run_check(check: SmokeCheck, transport: Transport) -> CheckResult:
    try:
        return await _run(check, transport)
    except (OSError, TimeoutError, ConnectionError) as exc:
        kind, expected = expectation(check)
        seen = _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return CheckResult(check.name, kind, False, expected, seen)


async def _run(check: SmokeCheck, transport: Transport) -> CheckResult:
    kind, expected = expectation(check)
    if check.http is not None:
        http = check.http
        response = await transport.http_get(port=http.port, path=http.path, scheme=http.scheme)
        passed = response.status == http.expect_status and (
            http.expect_body is None or http.expect_body in response.body
        )
        seen = f"HTTP {response.status} body {_short(response.body)!r}"
        return CheckResult(check.name, kind, passed, expected, seen)
    if check.command is not None:
        command = check.command
        result = await transport.run(command.run)
        passed = result.exit_code == command.expect_exit_code and (
            command.expect_output is None or command.expect_output in result.output
        )
        seen = f"exit {result.exit_code} output {_short(result.output)!r}"
        return CheckResult(check.name, kind, passed, expected, seen)
    if check.file is not None:
        result = await transport.run(f"test -e {shlex.quote(check.file)}")
        seen = "it exists" if result.exit_code == 0 else "no such file"
        return CheckResult(check.name, kind, result.exit_code == 0, expected, seen)
    assert check.service is not None
    result = await transport.run(f"systemctl is-active {shlex.quote(check.service)}")
    state = result.output.strip() or f"exit {result.exit_code}"
    return CheckResult(check.name, kind, result.exit_code == 0, expected, _short(state))
