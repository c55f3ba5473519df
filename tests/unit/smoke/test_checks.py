"""Unit tests for the smoke checks, run through a fake transport."""

from __future__ import annotations

import ast
import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from bakery.catalog import SmokeCheck
from bakery.smoke.checks import SEEN_LIMIT, CheckResult, expectation, run_check
from bakery.smoke.transport import CommandResult, HttpResponse


@dataclass
class FakeTransport:
    """Answers commands from a table and HTTP with one canned response (or an error)."""

    commands: dict[str, CommandResult] = field(default_factory=dict)
    response: HttpResponse | None = None
    error: BaseException | None = None
    ran: list[str] = field(default_factory=list)
    fetched: list[dict[str, Any]] = field(default_factory=list)

    async def run(self, command: str) -> CommandResult:
        self.ran.append(command)
        if self.error is not None:
            raise self.error
        return self.commands.get(command, CommandResult(127, f"sh: {command}: not found"))

    async def http_get(self, *, port: int, path: str, scheme: str) -> HttpResponse:
        self.fetched.append({"port": port, "path": path, "scheme": scheme})
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def check(**fields: Any) -> SmokeCheck:
    return SmokeCheck.model_validate({"name": "probe", **fields})


def run(smoke_check: SmokeCheck, transport: FakeTransport) -> CheckResult:
    return asyncio.run(run_check(smoke_check, transport))


# --- http ---------------------------------------------------------------------------------

HOMEPAGE = {"port": 8080, "path": "/health", "expect_status": 200, "expect_body": "Baked"}


def test_http_check_passes_on_status_and_body() -> None:
    transport = FakeTransport(response=HttpResponse(200, "<h1>Baked with Packer</h1>"))
    result = run(check(http=HOMEPAGE), transport)
    assert result.passed
    assert transport.fetched == [{"port": 8080, "path": "/health", "scheme": "http"}]
    assert result.kind == "http"
    assert result.expected == "HTTP 200 with body containing 'Baked'"
    assert result.seen == "HTTP 200 body '<h1>Baked with Packer</h1>'"


def test_http_check_fails_on_wrong_status() -> None:
    result = run(check(http=HOMEPAGE), FakeTransport(response=HttpResponse(503, "Baked")))
    assert not result.passed
    assert result.seen == "HTTP 503 body 'Baked'"


def test_http_check_fails_when_body_lacks_the_text() -> None:
    response = HttpResponse(200, "Welcome to nginx!")
    result = run(check(http=HOMEPAGE), FakeTransport(response=response))
    assert not result.passed
    assert result.line() == (
        "[FAIL] http 'probe': expected HTTP 200 with body containing 'Baked';"
        " saw HTTP 200 body 'Welcome to nginx!'"
    )


def test_http_check_without_expected_body_only_checks_status() -> None:
    smoke_check = check(http={"expect_status": 404})
    result = run(smoke_check, FakeTransport(response=HttpResponse(404, "not here")))
    assert result.passed
    assert result.expected == "HTTP 404"
    failing = run(smoke_check, FakeTransport(response=HttpResponse(200, "")))
    assert not failing.passed


def test_http_check_passes_https_scheme_through() -> None:
    transport = FakeTransport(response=HttpResponse(200, ""))
    run(check(http={"scheme": "https", "port": 443}), transport)
    assert transport.fetched == [{"port": 443, "path": "/", "scheme": "https"}]


def test_long_bodies_are_shortened_and_whitespace_collapsed() -> None:
    body = "line one\n\n\tline   two " + "x" * 1000
    result = run(check(http={}), FakeTransport(response=HttpResponse(200, body)))
    shown = ast.literal_eval(result.seen.removeprefix("HTTP 200 body "))
    assert shown.startswith("line one line two xxx")
    assert len(shown) == SEEN_LIMIT
    assert shown.endswith("...")


# --- command ------------------------------------------------------------------------------


def test_command_check_passes_on_exit_code_and_output() -> None:
    transport = FakeTransport(commands={"nginx -v": CommandResult(0, "nginx version: 1.22\n")})
    smoke_check = check(command={"run": "nginx -v", "expect_output": "nginx version"})
    result = run(smoke_check, transport)
    assert result.passed
    assert transport.ran == ["nginx -v"]
    assert result.expected == "exit 0 with output containing 'nginx version'"
    assert result.seen == "exit 0 output 'nginx version: 1.22'"


def test_command_check_fails_on_wrong_exit_code() -> None:
    transport = FakeTransport(commands={"false": CommandResult(1, "")})
    result = run(check(command={"run": "false"}), transport)
    assert not result.passed
    assert result.line() == "[FAIL] command 'probe': expected exit 0; saw exit 1 output ''"


def test_command_check_fails_on_missing_output() -> None:
    transport = FakeTransport(commands={"uname -a": CommandResult(0, "Linux box 6.1")})
    smoke_check = check(command={"run": "uname -a", "expect_output": "Debian"})
    result = run(smoke_check, transport)
    assert not result.passed
    assert result.seen == "exit 0 output 'Linux box 6.1'"


def test_command_check_with_a_nonzero_expected_exit_code() -> None:
    transport = FakeTransport(commands={"test -e /etc/shadow-": CommandResult(1, "")})
    smoke_check = check(command={"run": "test -e /etc/shadow-", "expect_exit_code": 1})
    assert run(smoke_check, transport).passed
    transport = FakeTransport(commands={"test -e /etc/shadow-": CommandResult(0, "")})
    assert not run(smoke_check, transport).passed


# --- file and service ---------------------------------------------------------------------


def test_file_check_passes_when_the_file_exists() -> None:
    transport = FakeTransport(commands={"test -e /etc/nginx/nginx.conf": CommandResult(0, "")})
    result = run(check(file="/etc/nginx/nginx.conf"), transport)
    assert result.passed
    assert (result.kind, result.expected, result.seen) == (
        "file",
        "/etc/nginx/nginx.conf to exist",
        "it exists",
    )


def test_file_check_fails_when_the_file_is_missing() -> None:
    transport = FakeTransport(commands={"test -e /srv/missing": CommandResult(1, "")})
    result = run(check(file="/srv/missing"), transport)
    assert not result.passed
    assert result.seen == "no such file"


def test_file_path_is_shell_quoted() -> None:
    transport = FakeTransport()
    run(check(file="/srv/my site; rm -rf /"), transport)
    assert transport.ran == ["test -e '/srv/my site; rm -rf /'"]


def test_service_check_passes_when_active() -> None:
    command = "systemctl is-active nginx"
    transport = FakeTransport(commands={command: CommandResult(0, "active\n")})
    result = run(check(service="nginx"), transport)
    assert result.passed
    assert transport.ran == [command]
    assert result.line() == "[PASS] service 'probe': expected service nginx active; saw active"


def test_service_check_fails_when_inactive() -> None:
    command = "systemctl is-active nginx"
    transport = FakeTransport(commands={command: CommandResult(3, "inactive\n")})
    result = run(check(service="nginx"), transport)
    assert not result.passed
    assert result.seen == "inactive"


def test_service_check_without_output_shows_the_exit_code() -> None:
    transport = FakeTransport(commands={"systemctl is-active nginx": CommandResult(4, "  \n")})
    result = run(check(service="nginx"), transport)
    assert not result.passed
    assert result.seen == "exit 4"


# --- transport errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"http": HOMEPAGE}, "HTTP 200 with body containing 'Baked'"),
        ({"command": {"run": "true"}}, "exit 0"),
        ({"file": "/etc/hostname"}, "/etc/hostname to exist"),
        ({"service": "nginx"}, "service nginx active"),
    ],
)
def test_connection_refused_fails_the_check_and_still_says_what_was_expected(
    fields: dict[str, Any], expected: str
) -> None:
    transport = FakeTransport(error=ConnectionRefusedError(111, "Connection refused"))
    result = run(check(**fields), transport)
    assert not result.passed
    assert result.expected == expected
    assert result.seen == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert result.line().startswith(f"[FAIL] {result.kind} 'probe': expected {expected}; saw ")


def test_timeout_without_a_message_shows_the_exception_name() -> None:
    result = run(check(http={}), FakeTransport(error=TimeoutError()))
    assert not result.passed
    assert result.seen == "TimeoutError"


def test_unexpected_errors_are_not_swallowed() -> None:
    with pytest.raises(KeyError):
        run(check(http={}), FakeTransport(error=KeyError("bug")))


# --- verdict lines ------------------------------------------------------------------------


def test_check_result_line_format() -> None:
    passed = CheckResult("homepage", "http", True, "HTTP 200", "HTTP 200 body 'ok'")
    failed = CheckResult("nginx", "service", False, "service nginx active", "failed")
    assert passed.line() == "[PASS] http 'homepage': expected HTTP 200; saw HTTP 200 body 'ok'"
    assert failed.line() == "[FAIL] service 'nginx': expected service nginx active; saw failed"


def test_check_result_as_dict_round_trips() -> None:
    result = CheckResult("nginx", "service", False, "service nginx active", "failed")
    assert CheckResult(**result.as_dict()) == result


def test_expectation_names_each_kind() -> None:
    assert expectation(check(http={})) == ("http", "HTTP 200")
    assert expectation(check(command={"run": "true", "expect_output": "x"})) == (
        "command",
        "exit 0 with output containing 'x'",
    )
    assert expectation(check(file="/etc/motd")) == ("file", "/etc/motd to exist")
    assert expectation(check(service="ssh")) == ("service", "service ssh active")
