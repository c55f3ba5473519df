"""Sending an alert through Airflow connections: SMTP, an incoming webhook, or AWS SNS.

A channel is a connection id; its type picks the transport:

- `smtp` (or `email`): host, port, login/password; extra `to` (list or comma-separated),
  `from_email`, `disable_ssl` and `disable_tls` (as the smtp provider's connection);
- `http`/`https`: an incoming webhook (Slack, Teams and anything that takes a JSON
  `{"text": ...}`); the URL is schema://host:port plus extra `endpoint`, and the
  connection's password, if set, is appended as the last path segment, so the secret
  part of a Slack or Teams webhook URL is stored (and masked) as a password;
  extra `payload`: `text` (default), `teams` (a MessageCard) or `json` (text + fields);
- `aws`: SNS, extra `topic_arn` (and `region_name`), through the amazon provider.

Every channel has a bounded timeout (extra `timeout`, default 10 s) and channels are
sent to in parallel: an endpoint that is down costs at most that long, is logged, and
never raises.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from bakery.alerts.messages import Alert
from bakery.alerts.redaction import airflow_masked

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
# Past every channel's own timeout: a transport that ignores its timeout is abandoned.
OVERALL_GRACE_SECONDS = 2.0
SNS_SUBJECT_LIMIT = 100
SENSITIVE_EXTRA_WORDS = ("password", "secret", "token", "key", "auth")
SENT = "sent"


class ChannelError(ValueError):
    """A channel's connection cannot be used: the message names the connection and field."""


@dataclass(frozen=True)
class Channel:
    """A resolved channel: its connection id, its kind, its settings and its secrets."""

    conn_id: str
    kind: str  # smtp | webhook | sns
    connection: Any
    extra: Mapping[str, Any]

    @property
    def timeout(self) -> float:
        try:
            return float(self.extra.get("timeout", DEFAULT_TIMEOUT_SECONDS))
        except (TypeError, ValueError):
            raise ChannelError(
                f"connection {self.conn_id!r}, extra 'timeout': not a number"
                f" (got {self.extra.get('timeout')!r})"
            ) from None

    def secrets(self) -> list[str]:
        found = [self.connection.password] if self.connection.password else []
        found += [
            str(value)
            for key, value in self.extra.items()
            if isinstance(value, str) and any(w in key.lower() for w in SENSITIVE_EXTRA_WORDS)
        ]
        if self.kind == "webhook" and self.connection.password:
            found.append(webhook_url(self))
        return found


KINDS = {"smtp": "smtp", "email": "smtp", "http": "webhook", "https": "webhook", "aws": "sns"}


def resolve(conn_id: str) -> Channel:
    from airflow.sdk import Connection

    connection = Connection.get(conn_id)
    kind = KINDS.get((connection.conn_type or "").lower())
    if kind is None:
        raise ChannelError(
            f"connection {conn_id!r}, field 'conn_type': {connection.conn_type!r} is not an"
            f" alert channel (use one of {', '.join(sorted(KINDS))})"
        )
    extra = connection.extra_dejson or {}
    return Channel(conn_id=conn_id, kind=kind, connection=connection, extra=extra)


def webhook_url(channel: Channel) -> str:
    connection = channel.connection
    host = (connection.host or "").rstrip("/")
    if not host:
        raise ChannelError(f"connection {channel.conn_id!r}, field 'host': the webhook host")
    if "://" not in host:
        scheme = connection.schema or "https"  # a webhook secret never travels in clear by default
        port = f":{connection.port}" if connection.port else ""
        host = f"{scheme}://{host}{port}"
    parts = (host, str(channel.extra.get("endpoint", "")), connection.password or "")
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def webhook_payload(alert: Alert, style: str) -> dict[str, Any]:
    text = f"{alert.subject}\n\n{alert.text}"
    if style == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": alert.subject,
            "title": alert.subject,
            "text": alert.text.replace("\n", "  \n"),  # Markdown line breaks
        }
    if style == "json":
        return {"text": text, "kind": alert.kind, "subject": alert.subject, "fields": alert.fields}
    return {"text": text}


def _send_webhook(channel: Channel, alert: Alert) -> None:
    import httpx

    style = str(channel.extra.get("payload", "text"))
    response = httpx.post(
        webhook_url(channel),
        content=json.dumps(webhook_payload(alert, style), default=str),
        headers={"Content-Type": "application/json"},
        timeout=channel.timeout,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"webhook answered HTTP {response.status_code}")


def _recipients(channel: Channel) -> list[str]:
    to = channel.extra.get("to")
    recipients = [to] if isinstance(to, str) else list(to or [])
    recipients = [r.strip() for item in recipients for r in str(item).split(",") if r.strip()]
    if not recipients:
        raise ChannelError(f"connection {channel.conn_id!r}, extra 'to': no recipients")
    return recipients


def _send_smtp(channel: Channel, alert: Alert) -> None:
    connection, extra = channel.connection, channel.extra
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = extra.get("from_email") or connection.login or "bakery@localhost"
    message["To"] = ", ".join(_recipients(channel))
    message.set_content(alert.text)
    use_ssl = not _flag(extra.get("disable_ssl"))
    use_tls = not _flag(extra.get("disable_tls"))
    host, timeout = connection.host or "localhost", channel.timeout
    if use_ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, connection.port or 465, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, connection.port or 25, timeout=timeout)
    with smtp:
        if not use_ssl and use_tls:
            smtp.starttls(context=ssl.create_default_context())
        if connection.login and connection.password:
            smtp.login(connection.login, connection.password)
        smtp.send_message(message)


def _send_sns(channel: Channel, alert: Alert) -> None:
    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from botocore.config import Config

    topic = channel.extra.get("topic_arn")
    if not topic:
        raise ChannelError(f"connection {channel.conn_id!r}, extra 'topic_arn': the SNS topic")
    timeout = channel.timeout
    hook = SnsHook(
        aws_conn_id=channel.conn_id,
        region_name=channel.extra.get("region_name"),
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    # SNS subjects: ASCII, one line, at most 100 characters.
    subject = alert.subject.encode("ascii", "replace").decode()[:SNS_SUBJECT_LIMIT]
    hook.publish_to_target(target_arn=topic, message=alert.text, subject=subject)


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


SENDERS: dict[str, Callable[[Channel, Alert], None]] = {
    "smtp": _send_smtp,
    "webhook": _send_webhook,
    "sns": _send_sns,
}


def send(
    alert: Alert, channel_ids: Sequence[str], *, secrets: Sequence[str] = ()
) -> dict[str, str]:
    """Send `alert` to every channel at once; returns conn id -> `sent` or the error.

    Never raises and never waits much past the slowest channel's timeout. The alert is
    redacted first with every secret of every channel (and `secrets`), and with what
    Airflow's own masker knows.
    """
    results: dict[str, str] = {}
    channels: list[Channel] = []
    for conn_id in dict.fromkeys(channel_ids):
        try:
            channels.append(resolve(conn_id))
        except Exception as exc:
            results[conn_id] = f"not sent: {exc}"
            log.warning("alert channel %s cannot be used: %s", conn_id, exc)
    known = [*secrets, *(s for channel in channels for s in channel.secrets())]
    safe = alert.redacted(known)
    safe = Alert(safe.kind, airflow_masked(safe.subject), airflow_masked(safe.text), safe.fields)

    def deliver(channel: Channel) -> None:
        started = time.monotonic()
        try:
            SENDERS[channel.kind](channel, safe)
        except Exception as exc:
            took = time.monotonic() - started
            outcome = f"failed after {took:.1f} s: {type(exc).__name__}: {exc}"
            log.warning("alert %r not sent to %s: %s", safe.subject, channel.conn_id, outcome)
        else:
            outcome = SENT
            log.info("alert %r sent to %s (%s)", safe.subject, channel.conn_id, channel.kind)
        results[channel.conn_id] = outcome

    threads = []
    for channel in channels:
        thread = threading.Thread(target=deliver, args=(channel,), daemon=True)
        thread.start()
        threads.append((channel, thread))
    try:
        limit = max((c.timeout for c in channels), default=0.0) + OVERALL_GRACE_SECONDS
    except ChannelError:
        limit = DEFAULT_TIMEOUT_SECONDS + OVERALL_GRACE_SECONDS
    deadline = time.monotonic() + limit
    for channel, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            results.setdefault(channel.conn_id, f"abandoned after {limit:.0f} s")
            log.warning("alert channel %s did not finish in %.0f s", channel.conn_id, limit)
    return results
