"""Alert channels against real local endpoints: an SMTP sink, a webhook receiver, SNS on a
moto server, and endpoints that hang or refuse. Connections come from AIRFLOW_CONN_*."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery.alerts.channels import send
from bakery.alerts.messages import Alert
from tests.e2e.alert_receivers import black_hole, free_port, smtp_sink, webhook_receiver
from tests.e2e.moto_support import moto_server

SMTP_PASSWORD = "smtp-Pa55word-xyz"
WEBHOOK_TOKEN = "T0001/B0002/tokenABCdef123"


def alert(error: str = "Script exited with non-zero exit status: 7") -> Alert:
    return Alert(
        kind="failure",
        subject="[bakery] FAILED: web/aws/us-east-1 at packer_build (try 2)",
        text=f"web/aws/us-east-1 failed at packer_build.\n\nimage: web\nerror: {error}",
        fields={"image": "web", "error": error, "try": 2},
    )


def set_connection(mp: pytest.MonkeyPatch, conn_id: str, **connection: object) -> None:
    mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    yield monkeypatch


def test_smtp_channel_logs_in_and_delivers_one_redacted_mail(env: pytest.MonkeyPatch) -> None:
    with smtp_sink(password=SMTP_PASSWORD) as sink:
        set_connection(
            env,
            "team_mail",
            conn_type="smtp",
            host="127.0.0.1",
            port=sink.port,
            login=sink.login,
            password=SMTP_PASSWORD,
            extra={"to": "a@example.com, b@example.com", "disable_ssl": True, "disable_tls": True},
        )
        results = send(alert(f"auth failed with {SMTP_PASSWORD}"), ["team_mail"])

        assert results == {"team_mail": "sent"}
        assert sink.logins == ["bakery"]
        (mail,) = sink.messages
        assert mail["Subject"] == "[bakery] FAILED: web/aws/us-east-1 at packer_build (try 2)"
        assert mail["To"] == "a@example.com, b@example.com"
        (body,) = sink.bodies()
        assert "image: web" in body and "error: auth failed with ***" in body
        assert SMTP_PASSWORD not in mail.as_string()


@pytest.mark.parametrize(
    ("style", "text_key"), [("text", "text"), ("teams", "text"), ("json", "text")]
)
def test_webhook_channel_posts_to_the_url_with_its_token(
    env: pytest.MonkeyPatch, style: str, text_key: str
) -> None:
    with webhook_receiver() as receiver:
        set_connection(
            env,
            "team_hook",
            conn_type="http",
            host="127.0.0.1",
            port=receiver.port,
            schema="http",
            password=WEBHOOK_TOKEN,
            extra={"endpoint": "services", "payload": style},
        )
        leaky = f"POST {receiver.url}/services/{WEBHOOK_TOKEN} failed"
        results = send(alert(leaky), ["team_hook"])

        assert results == {"team_hook": "sent"}
        (body,) = receiver.on(f"/services/{WEBHOOK_TOKEN}")
        assert "image: web" in body[text_key]
        assert WEBHOOK_TOKEN not in json.dumps(body)
        if style == "json":
            assert body["fields"]["try"] == 2 and body["kind"] == "failure"
        if style == "teams":
            assert body["@type"] == "MessageCard" and body["title"].startswith("[bakery]")


def test_sns_channel_publishes_to_the_topic(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with moto_server([], tmp_path / "moto") as moto:
        sns, sqs = moto.client("sns", "us-east-1"), moto.client("sqs", "us-east-1")
        topic = sns.create_topic(Name="bakery-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="oncall")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        set_connection(
            env,
            "oncall_sns",
            conn_type="aws",
            login="testing",
            password="testing-secret-key",
            extra={"endpoint_url": moto.url, "region_name": "us-east-1", "topic_arn": topic},
        )
        results = send(alert("leaked testing-secret-key"), ["oncall_sns"])

        assert results == {"oncall_sns": "sent"}
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
        envelope = json.loads(messages[0]["Body"])
        assert envelope["Subject"].startswith("[bakery] FAILED: web/aws/us-east-1")
        assert "image: web" in envelope["Message"]
        assert "testing-secret-key" not in envelope["Message"]


def test_a_hanging_or_refusing_endpoint_costs_its_timeout_and_never_raises(
    env: pytest.MonkeyPatch,
) -> None:
    with black_hole() as hanging_port, webhook_receiver() as receiver:
        common = {"conn_type": "http", "host": "127.0.0.1", "schema": "http"}
        set_connection(env, "hanging", **common, port=hanging_port, extra={"timeout": 1})
        set_connection(env, "refusing", **common, port=free_port(), extra={"timeout": 1})
        set_connection(env, "working", **common, port=receiver.port)
        set_connection(
            env,
            "mail_down",
            conn_type="smtp",
            host="127.0.0.1",
            port=hanging_port,
            extra={"to": "x@example.com", "disable_ssl": True, "timeout": 1},
        )
        started = time.monotonic()
        results = send(alert(), ["hanging", "refusing", "mail_down", "working", "missing"])
        took = time.monotonic() - started

    # Channels go out in parallel: about one timeout, not the sum of them.
    assert took < 3.5, f"sending took {took:.1f} s"
    assert results["working"] == "sent" and len(receiver.received) == 1
    assert results["hanging"].startswith("failed after 1.") and "Timeout" in results["hanging"]
    assert results["refusing"].startswith("failed after") and "Connect" in results["refusing"]
    assert results["mail_down"].startswith("failed after 1.")
    assert results["missing"].startswith("not sent:") and "missing" in results["missing"]


def test_a_connection_that_is_no_channel_is_named(env: pytest.MonkeyPatch) -> None:
    set_connection(env, "pg", conn_type="postgres", host="db")
    results = send(alert(), ["pg"])
    assert results["pg"].startswith("not sent: connection 'pg', field 'conn_type': 'postgres'")
