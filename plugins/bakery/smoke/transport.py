"""How smoke checks reach an instance: SSH for commands, plain TCP for HTTP."""

from __future__ import annotations

import asyncio
import shlex
import ssl
from dataclasses import dataclass
from pathlib import Path

SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=10",
)  # fmt: skip
MAX_OUTPUT_BYTES = 64 * 1024


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str


@dataclass(frozen=True)
class Endpoint:
    host: str
    ssh_port: int = 22


class SshTransport:
    """Runs commands on the instance with the system's `ssh` client."""

    def __init__(
        self, *, endpoint: Endpoint, user: str, key_file: Path, command_timeout: float = 60.0
    ) -> None:
        self.endpoint = endpoint
        self.user = user
        self.key_file = key_file
        self.command_timeout = command_timeout

    async def run(self, command: str) -> CommandResult:
        return await self._ssh(["sh", "-c", shlex.quote(command)], stdin=None)

    async def run_script_as_root(self, script: str, *, timeout: float) -> CommandResult:
        """Runs a script sent on stdin, so that what it carries (values to search for,
        say) never appears on a command line, here or on the instance."""
        return await self._ssh(["sudo", "sh", "-s"], stdin=script.encode(), timeout=timeout)

    async def _ssh(
        self, remote: list[str], *, stdin: bytes | None, timeout: float | None = None
    ) -> CommandResult:
        process = await asyncio.create_subprocess_exec(
            "ssh",
            *SSH_OPTIONS,
            "-i",
            str(self.key_file),
            "-p",
            str(self.endpoint.ssh_port),
            f"{self.user}@{self.endpoint.host}",
            *remote,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(
                process.communicate(stdin), timeout or self.command_timeout
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            return CommandResult(
                exit_code=-1, output=f"timed out after {timeout or self.command_timeout}s"
            )
        text = output[:MAX_OUTPUT_BYTES].decode(errors="replace")
        return CommandResult(exit_code=process.returncode or 0, output=text)

    async def http_get(self, *, port: int, path: str, scheme: str) -> HttpResponse:
        return await http_get(self.endpoint.host, port, path, scheme=scheme)


async def http_get(
    host: str, port: int, path: str, *, scheme: str = "http", timeout: float = 15.0
) -> HttpResponse:
    """A minimal HTTP/1.0 GET: no client library needed in the triggerer."""
    context = ssl._create_unverified_context() if scheme == "https" else None  # noqa: S323
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context), timeout
    )
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: bakery-smoke\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(_read_response(reader), timeout)
    finally:
        writer.close()
    if not raw:
        raise ConnectionError("connection closed without an HTTP response")
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP response: {status_line!r}")
    return HttpResponse(status=int(parts[1]), body=body.decode(errors="replace"))


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """Until the server closes, the Content-Length body is in, or MAX_OUTPUT_BYTES arrive.

    One `read()` returns only what has arrived so far: often just the headers."""
    raw = bytearray()
    while len(raw) < MAX_OUTPUT_BYTES:
        chunk = await reader.read(MAX_OUTPUT_BYTES - len(raw))
        if not chunk:
            break
        raw += chunk
        head, separator, body = bytes(raw).partition(b"\r\n\r\n")
        length = _content_length(head) if separator else None
        if length is not None and len(body) >= length:
            break  # a server that keeps the connection open despite HTTP/1.0
    return bytes(raw)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


async def ssh_banner(endpoint: Endpoint, timeout: float = 5.0) -> bool:
    """True once an SSH server answers with its banner (not merely a TCP accept)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.ssh_port), timeout
        )
    except (OSError, TimeoutError):
        return False
    try:
        banner = await asyncio.wait_for(reader.readline(), timeout)
        return banner.startswith(b"SSH-")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
