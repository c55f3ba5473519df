"""Local stand-ins for alert endpoints, on 127.0.0.1: an SMTP sink (aiosmtpd), an HTTP
webhook receiver, and a "black hole" that accepts connections and never answers."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpSink:
    """Messages accepted by the sink, and the logins it saw."""

    port: int
    login: str
    password: str
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def bodies(self) -> list[str]:
        return [message.get_content() for message in self.messages]


@contextmanager
def smtp_sink(
    login: str = "bakery", password: str = "smtp-secret"
) -> Generator[SmtpSink, None, None]:
    """An SMTP server that requires AUTH LOGIN/PLAIN with `login`/`password` (over plain
    TCP, as a relay on localhost would) and keeps every message it accepts."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    sink = SmtpSink(port=free_port(), login=login, password=password)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            # The modern policy unfolds long headers such as a digest's subject.
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            sink.messages.append(parsed)  # type: ignore[arg-type]
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            login.encode(),
            password.encode(),
        )
        if ok:
            sink.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    port: int
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str) -> list[dict[str, Any]]:
        return [item.body for item in self.received if item.path == path]


@contextmanager
def webhook_receiver() -> Generator[WebhookReceiver, None, None]:
    """Accepts JSON POSTs on any path, like Slack's or Teams' incoming webhooks."""
    receiver = WebhookReceiver(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            receiver.received.append(Received(path=self.path, body=body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def black_hole() -> Generator[int, None, None]:
    """A port that accepts TCP connections (the kernel completes the handshake) and
    never sends a byte: an endpoint that hangs rather than refuses."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def wait_until(what: str, ready: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
