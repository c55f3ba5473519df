"""Alerts never carry secrets, whether bakery knows the value or only its shape."""

from __future__ import annotations

import pytest

from bakery.alerts.messages import Alert
from bakery.alerts.redaction import redact


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("login failed: password=hunter2-long", "hunter2-long"),
        ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc'", "eyJhbGciOiJIUzI1NiJ9"),
        ("fetch https://deploy:s3cr3tpass@git.example.com/repo.git", "s3cr3tpass"),
        ("AWS key AKIAABCDEFGHIJKLMNOP rejected", "AKIAABCDEFGHIJKLMNOP"),
        ("secret_key: wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
        ("posting to https://hooks.slack.com/services/T0/B0/abcDEF123", "abcDEF123"),
        ("slack says invalid_auth for xoxb-1234567890-abcdefghij", "xoxb-1234567890"),
        ("token=abc123def456&user=x", "abc123def456"),
    ],
)
def test_secret_shapes_are_masked(text: str, leaked: str) -> None:
    masked = redact(text)
    assert leaked not in masked
    assert "***" in masked


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    secret = "s3cret-Value-42"
    masked = redact(f"the provisioner echoed {secret} twice: {secret}", [secret])
    assert masked == "the provisioner echoed *** twice: ***"


def test_ordinary_error_lines_survive() -> None:
    line = (
        "Packer build failed at step 'StepProvision' (exit code 1):"
        " Script exited with non-zero exit status: 7"
    )
    assert redact(line) == line


def test_an_alert_is_redacted_in_subject_body_and_fields() -> None:
    alert = Alert(
        kind="failure",
        subject="failed with pw-9f8e7d",
        text="error: pw-9f8e7d",
        fields={"error": "pw-9f8e7d", "try": 2},
    )
    safe = alert.redacted(["pw-9f8e7d"])
    assert "pw-9f8e7d" not in safe.subject + safe.text + str(safe.fields)
    assert safe.fields["try"] == 2
