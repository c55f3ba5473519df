"""Masking secrets in alert text, whether bakery knows the secret's value or only its shape."""

from __future__ import annotations

import re
from collections.abc import Collection

from bakery.packer.redaction import MASK, Redactor

# Shapes of secrets that turn up in error messages even when bakery never saw the value:
# `password=...` in a command or URL query, credentials in a URL, bearer tokens, AWS
# access key ids, Slack tokens and webhook paths.
_KEY_VALUE = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key"
    r"|session[_-]?token|authorization)(\s*[=:]\s*)(?:bearer\s+|basic\s+)?[\"']?[^\s\"',;&]+"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^/\s@]+@")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_SLACK_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")
_SLACK_WEBHOOK = re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)\S+")


def redact(text: str, secrets: Collection[str] = ()) -> str:
    """`text` with every known secret value and every secret-shaped token masked."""
    text = Redactor(secrets)(text)
    text = _KEY_VALUE.sub(rf"\1\2{MASK}", text)
    text = _URL_USERINFO.sub(rf"\1:{MASK}@", text)
    text = _BEARER.sub(rf"\1 {MASK}", text)
    text = _AWS_KEY_ID.sub(MASK, text)
    text = _SLACK_TOKEN.sub(MASK, text)
    return _SLACK_WEBHOOK.sub(rf"\1{MASK}", text)


def airflow_masked(text: str) -> str:
    """What Airflow's own secrets masker makes of `text`: it knows every connection
    password and sensitive extra this process has read. A no-op outside Airflow."""
    try:
        from airflow.sdk.log import redact as airflow_redact
    except ImportError:  # pragma: no cover - Airflow is always installed with bakery
        return text
    masked = airflow_redact(text)
    return masked if isinstance(masked, str) else text
