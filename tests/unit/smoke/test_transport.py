"""The smoke transport's HTTP GET and SSH banner probe, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bakery.smoke.transport import (
    MAX_OUTPUT_BYTES,
    Endpoint,
    HttpResponse,
    http_get,
    ssh_banner,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HOST = "127.0.0.1"


@asynccontextmanager
async def serving(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncGenerator[int]:
    """A server on 127.0.0.1 with a free port; yields the port."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up first: not what these tests look at
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, HOST, 0, ssl=ssl_context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def canned(response: bytes, *, requests: list[bytes] | None = None) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if requests is not None:
            requests.append(request)
        writer.write(response)
        await writer.drain()

    return handler


def get(handler: Handler, path: str = "/", **kwargs: object) -> HttpResponse:
    async def main() -> HttpResponse:
        async with serving(handler) as port:
            return await http_get(HOST, port, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(main())


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# --- http_get -----------------------------------------------------------------------------


def test_http_get_returns_status_and_body_and_sends_an_http10_get() -> None:
    requests: list[bytes] = []
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<h1>Baked with Packer</h1>\n"
    result = get(canned(response, requests=requests), "/health?x=1")
    assert result == HttpResponse(status=200, body="<h1>Baked with Packer</h1>\n")
    (request,) = requests
    lines = request.decode().split("\r\n")
    assert lines[0] == "GET /health?x=1 HTTP/1.0"
    assert f"Host: {HOST}" in lines


def test_http_get_returns_error_statuses_rather_than_raising() -> None:
    result = get(canned(b"HTTP/1.0 503 Service Unavailable\r\n\r\ndown for maintenance"))
    assert result == HttpResponse(status=503, body="down for maintenance")


def test_http_get_reads_a_body_sent_after_the_headers() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nServer: slow\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"Baked ")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"with Packer")
        await writer.drain()

    assert get(slow, timeout=5) == HttpResponse(status=200, body="Baked with Packer")


def test_http_get_does_not_wait_for_a_kept_alive_connection_once_the_body_is_in() -> None:
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"hello")
        await writer.drain()
        await asyncio.sleep(30)  # never closes on its own

    started = time.monotonic()
    assert get(keep_alive, timeout=10) == HttpResponse(status=200, body="hello")
    assert time.monotonic() - started < 5


def test_http_get_caps_what_it_reads() -> None:
    huge = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (MAX_OUTPUT_BYTES * 2)
    result = get(canned(huge))
    assert result.status == 200
    assert len(result.body) == MAX_OUTPUT_BYTES - len(b"HTTP/1.0 200 OK\r\n\r\n")


def test_http_get_raises_when_the_server_closes_without_answering() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    with pytest.raises(ConnectionError, match="connection closed without an HTTP response"):
        get(hang_up)


def test_http_get_raises_when_the_server_closes_at_once() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    # EOF ("closed without an HTTP response") or a reset, depending on timing: both are
    # connection errors, which the smoke check reports as a failed check.
    with pytest.raises(ConnectionError):
        get(slam)


@pytest.mark.parametrize(
    ("garbage", "shown"),
    [
        (b"hello there\r\n\r\n", "'hello there'"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "'SSH-2.0-OpenSSH_9.2'"),
        (b"HTTP/1.1\r\n\r\n", "'HTTP/1.1'"),
        (b"\x00\xff\xfe", None),
    ],
)
def test_http_get_rejects_a_response_that_is_not_http(garbage: bytes, shown: str | None) -> None:
    with pytest.raises(ConnectionError, match="not an HTTP response") as raised:
        get(canned(garbage))
    if shown is not None:
        assert str(raised.value) == f"not an HTTP response: {shown}"


def test_http_get_to_a_closed_port_is_refused() -> None:
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(http_get(HOST, free_port(), "/"))


def test_http_get_times_out_on_a_silent_server() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    with pytest.raises(TimeoutError):
        get(silent, timeout=0.3)


def self_signed_context(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smoke.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_https_get_accepts_a_self_signed_certificate(tmp_path: Path) -> None:
    context = self_signed_context(tmp_path)
    handler = canned(b"HTTP/1.0 200 OK\r\n\r\nsecure")

    async def main() -> HttpResponse:
        async with serving(handler, ssl_context=context) as port:
            return await http_get(HOST, port, "/", scheme="https", timeout=5)

    assert asyncio.run(main()) == HttpResponse(status=200, body="secure")


# --- ssh_banner ---------------------------------------------------------------------------


def banner(handler: Handler, timeout: float = 2.0) -> bool:
    async def main() -> bool:
        async with serving(handler) as port:
            return await ssh_banner(Endpoint(host=HOST, ssh_port=port), timeout=timeout)

    return asyncio.run(main())


def writes(data: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(0.5)

    return handler


def test_ssh_banner_is_true_for_an_ssh_server() -> None:
    assert banner(writes(b"SSH-2.0-test\r\n")) is True


def test_ssh_banner_is_false_for_an_http_server() -> None:
    assert banner(writes(b"HTTP/1.1 400 Bad Request\r\n\r\n")) is False


def test_ssh_banner_is_false_when_the_server_closes_at_once() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    assert banner(slam) is False


def test_ssh_banner_is_false_when_the_server_says_nothing() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    assert banner(silent, timeout=0.3) is False


def test_ssh_banner_is_false_for_a_closed_port() -> None:
    endpoint = Endpoint(host=HOST, ssh_port=free_port())
    assert asyncio.run(ssh_banner(endpoint, timeout=2)) is False
