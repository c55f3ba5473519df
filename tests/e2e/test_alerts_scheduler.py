"""Alerts under the real scheduler: the production topology (PostgreSQL, Celery on
Redis, api-server, scheduler, dag-processor, triggerer and a worker as separate
processes), real Packer in the sandbox, and local endpoints for every channel: an SMTP
sink, a webhook receiver, SNS on the sandbox's moto server (read back through an SQS
subscription), and an endpoint that hangs.

A healthy image's run sends the digest and nothing else. A run with an image whose
provisioner fails, with one retry, sends exactly one failure alert for that task (from
its last try, saying it is now broken), a deadline alert naming the images not yet
promoted, and the digest. The deadline is read when the DAG is parsed, so each case
gets its own deployment.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bakery.constants import BAKE_DAG_ID
from tests.e2e.alert_receivers import (
    SmtpSink,
    WebhookReceiver,
    black_hole,
    smtp_sink,
    wait_until,
    webhook_receiver,
)
from tests.e2e.production_support import (
    REDIS_HOST,
    REDIS_PORT,
    SHORT_RETRY_POLICY,
    ProductionAirflow,
    fresh_database,
    production_airflow,
)
from tests.e2e.sandbox_support import Sandbox, shell_image, write_catalog

pytestmark = pytest.mark.timeout(1800)

SMTP_PASSWORD = "smtp-Secret-4242"
DEFAULT_TOKEN = "T01/B01/defaultTOKEN42"
TEAM_TOKEN = "T01/B02/teamTOKEN42"
BROKEN_AFTER = 2
FAILING_SCRIPT = "#!/bin/sh\necho about to fail\nexit 7\n"
DEADLINE_MINUTES = "0.25"  # 15 s: long before a bake, smoke test and promotion can finish
DEAD_TIMEOUT = 2


class Endpoints:
    """Every channel's far end, and what each has received so far."""

    def __init__(self, smtp: SmtpSink, hooks: WebhookReceiver, sqs: Any, queue: str) -> None:
        self.smtp, self.hooks, self.sqs, self.queue = smtp, hooks, sqs, queue
        self.sns: list[dict[str, Any]] = []

    def default_hook(self) -> list[str]:
        return [body["text"] for body in self.hooks.on(f"/services/{DEFAULT_TOKEN}")]

    def team_hook(self) -> list[str]:
        return [body["text"] for body in self.hooks.on(f"/services/{TEAM_TOKEN}")]

    def mails(self) -> list[tuple[str, str]]:
        return list(
            zip([m["Subject"] for m in self.smtp.messages], self.smtp.bodies(), strict=True)
        )

    def sns_messages(self) -> list[dict[str, Any]]:
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return self.sns
            for message in batch["Messages"]:
                self.sns.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def everything(self) -> str:
        texts = [*self.default_hook(), *self.team_hook()]
        texts += [f"{subject}\n{body}" for subject, body in self.mails()]
        texts += [f"{m['Subject']}\n{m['Message']}" for m in self.sns_messages()]
        return "\n".join(texts)


def _connections(sandbox: Sandbox, smtp: SmtpSink, hooks: int, dead: int, topic: str) -> dict:
    def webhook(port: int, token: str | None, **extra: Any) -> dict[str, Any]:
        connection = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        if token:
            connection["password"] = token
        return {**connection, "extra": {"endpoint": "services", **extra}}

    connections = {
        "alerts_smtp": {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": smtp.port,
            "login": smtp.login,
            "password": SMTP_PASSWORD,
            "extra": {"to": "oncall@example.com", "disable_ssl": True, "disable_tls": True},
        },
        "alerts_webhook": webhook(hooks, DEFAULT_TOKEN),
        "team_webhook": webhook(hooks, TEAM_TOKEN),
        "dead_webhook": webhook(dead, None, timeout=DEAD_TIMEOUT),
        "alerts_sns": {
            "conn_type": "aws",
            "login": "sandbox",
            "password": "sandbox",
            "extra": {
                "endpoint_url": sandbox.config.moto_url,
                "region_name": "us-east-1",
                "topic_arn": topic,
            },
        },
    }
    return {f"AIRFLOW_CONN_{name.upper()}": json.dumps(c) for name, c in connections.items()}


@pytest.fixture
def endpoints(sandbox: Sandbox) -> Iterator[tuple[Endpoints, int, str]]:
    sns, sqs = sandbox.client("sns"), sandbox.client("sqs")
    topic = sns.create_topic(Name="bakery-alerts-e2e")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"bakery-alerts-e2e-{int(time.time())}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    with ExitStack() as stack:
        smtp = stack.enter_context(smtp_sink(password=SMTP_PASSWORD))
        hooks = stack.enter_context(webhook_receiver())
        dead = stack.enter_context(black_hole())
        yield Endpoints(smtp, hooks, sqs, queue), dead, topic
    sqs.delete_queue(QueueUrl=queue)
    sns.delete_topic(TopicArn=topic)


REDIS_DB = 6  # this feature's Redis database on the shared server


@contextlib.contextmanager
def _deployment(
    sandbox: Sandbox, tmp_path: Path, endpoints: tuple[Endpoints, int, str], deadline: str
) -> Generator[ProductionAirflow, None, None]:
    """The production topology (Celery, PostgreSQL, every component its own process)
    with the catalog, channels and deadline of these tests, the bake DAG unpaused."""
    import redis

    received, dead_port, topic = endpoints
    broken = shell_image(tmp_path, "broken", FAILING_SCRIPT)
    broken["alerts"] = {
        "channels": ["team_webhook", "alerts_smtp", "dead_webhook"],
        "broken_after_failures": BROKEN_AFTER,
    }
    tiny = shell_image(tmp_path, "tiny", "#!/bin/sh\necho fine > /etc/tiny-baked\n")
    extra = {
        "BAKERY_CATALOG": str(write_catalog(tmp_path, [broken, tiny])),
        "BAKERY_TASK_RETRIES": "1",
        "BAKERY_BAKE_DEADLINE_MINUTES": deadline,
        "AIRFLOW_VAR_BAKERY_ALERT_CHANNELS": "alerts_webhook,alerts_smtp,alerts_sns,dead_webhook",
        **_connections(sandbox, received.smtp, received.hooks.port, dead_port, topic),
    }
    broker = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    try:
        broker.flushdb()
    except redis.ConnectionError as exc:
        pytest.skip(f"REDIS NOT REACHABLE at {REDIS_HOST}:{REDIS_PORT} ({exc}); .ci/run starts it")
    with (
        fresh_database("bakery_alerts") as database,
        production_airflow(
            sandbox,
            tmp_path / "airflow",
            database=database,
            redis_db=REDIS_DB,
            local_settings=SHORT_RETRY_POLICY,
            **extra,
        ) as airflow,
    ):
        airflow.start_ready(BAKE_DAG_ID)
        yield airflow
    broker.flushdb()
    broker.close()


def _finish(airflow: ProductionAirflow, run_id: str, timeout: float = 900) -> dict[str, Any]:
    return airflow.wait_for(
        f"run {run_id} to finish",
        lambda: (
            (run := airflow.dag_run(BAKE_DAG_ID, run_id))["state"] in ("success", "failed") and run
        ),
        timeout,
    )


def _task_log(airflow: ProductionAirflow, run_id: str, task_id: str, try_number: int) -> str:
    response = airflow.api(
        "GET",
        f"dags/{BAKE_DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        params={"map_index": 0, "full_content": True},
    )
    response.raise_for_status()
    if response.headers.get("content-type", "").startswith("application/json"):
        return json.dumps(response.json()["content"])
    return response.text


def test_a_successful_run_sends_only_the_digest(
    sandbox: Sandbox, endpoints: tuple[Endpoints, int, str], tmp_path: Path
) -> None:
    received = endpoints[0]
    with _deployment(sandbox, tmp_path, endpoints, deadline="60") as airflow:
        run = airflow.trigger(BAKE_DAG_ID, {"images": ["tiny"]})["dag_run_id"]
        finished = _finish(airflow, run)
        assert finished["state"] == "success", airflow.describe_tasks(BAKE_DAG_ID, run)

    (digest,) = received.default_hook()
    subject = digest.splitlines()[0]
    assert subject.startswith(f"[bakery] Bake digest {run}: 1 baked, 1 promoted, 0 failed")
    assert "  - tiny/aws/us-east-1: ami-" in digest
    assert [mail_subject for mail_subject, _ in received.mails()] == [subject]
    sns = wait_until("the digest on SNS", received.sns_messages, timeout=10)
    assert [message["Subject"] for message in sns] == [subject[:100]]
    assert received.team_hook() == []


def test_a_failing_bake_alerts_once_and_a_missed_deadline_alerts(
    sandbox: Sandbox, endpoints: tuple[Endpoints, int, str], tmp_path: Path
) -> None:
    received = endpoints[0]
    with _deployment(sandbox, tmp_path, endpoints, deadline=DEADLINE_MINUTES) as airflow:
        # A run failed `broken` before, so this one is its BROKEN_AFTER-th in a row.
        seeded = {"broken/aws/us-east-1": {"runs": ["an_earlier_run"], "step": "packer_build"}}
        response = airflow.api(
            "POST", "variables", json={"key": "bakery_failure_streaks", "value": json.dumps(seeded)}
        )
        assert response.status_code == 201, response.text
        # `force`: the other case (sharing this sandbox) may have baked `tiny` already, and a
        # manual run skips what has not changed.
        run = airflow.trigger(BAKE_DAG_ID, {"force": True})["dag_run_id"]
        assert _finish(airflow, run)["state"] == "failed"
        tasks = {
            (ti["task_id"], ti["map_index"]): ti for ti in airflow.task_instances(BAKE_DAG_ID, run)
        }
        assert tasks[("image_lifecycle.packer_build", 0)]["try_number"] == 2
        assert tasks[("image_lifecycle.packer_build", 0)]["state"] == "failed"
        assert tasks[("image_lifecycle.promote", 1)]["state"] == "success"
        streaks = json.loads(airflow.api("GET", "variables/bakery_failure_streaks").json()["value"])
        assert streaks == {
            "broken/aws/us-east-1": {"runs": ["an_earlier_run", run], "step": "packer_build"}
        }
        # The try the alert links to: Packer's failure, then the alert, whose hanging
        # channel cost its timeout and was logged, not raised.
        failed_try_log = _task_log(airflow, run, "image_lifecycle.packer_build", 2)
        assert "non-zero exit status: 7" in failed_try_log
        assert "not sent to dead_webhook: failed after" in failed_try_log
        assert "failure alert for broken/aws/us-east-1" in failed_try_log
        assert "failure alert" not in _task_log(airflow, run, "image_lifecycle.packer_build", 1)

    # Exactly one failure alert, on the team's channels (not the default's), sent on the
    # last try only: the first try's failure was a retry.
    failure_subjects = ("[bakery] FAILED", "[bakery] BROKEN")
    (failure,) = [text for text in received.team_hook() if text.startswith(failure_subjects)]
    subject = failure.splitlines()[0]
    assert subject.startswith("[bakery] BROKEN: broken/aws/us-east-1 has failed 2 bake runs")
    assert "packer_build" in subject
    for line in (
        "image: broken",
        "cloud: aws",
        "region: us-east-1",
        "try: 2",
        f"run: {BAKE_DAG_ID} {run}",
        "consecutive_failures: 2",
    ):
        assert line in failure, failure
    error = next(line for line in failure.splitlines() if line.startswith("error: "))
    assert "Packer build failed" in error and "non-zero exit status: 7" in error, error
    log_url = next(line for line in failure.splitlines() if line.startswith("log: "))[5:]
    assert log_url == (
        f"{airflow.base_url}/dags/{BAKE_DAG_ID}/runs/{run.replace('+', '%2B').replace(':', '%3A')}"
        "/tasks/image_lifecycle.packer_build/mapped/0?try_number=2"
    )
    failure_mails = [s for s, _ in received.mails() if s.startswith("[bakery] BROKEN")]
    assert failure_mails == [subject]
    assert not [text for text in received.default_hook() if text.startswith(failure_subjects)]

    # The deadline passed with neither image promoted.
    deadlines = [t for t in received.default_hook() if t.startswith("[bakery] DEADLINE MISSED")]
    assert len(deadlines) == 1, received.default_hook()
    assert "broken/aws/us-east-1" in deadlines[0] and "tiny/aws/us-east-1" in deadlines[0]
    assert any(t.startswith("[bakery] DEADLINE MISSED") for t in received.team_hook())

    # The digest of run 2, and the streak it recorded.
    (digest2,) = [t for t in received.default_hook() if t.startswith(f"[bakery] Bake digest {run}")]
    assert "1 promoted, 1 failed" in digest2.splitlines()[0]
    assert "  - broken/aws/us-east-1: packer_build (BROKEN: 2 runs in a row)" in digest2

    everything = received.everything()
    for secret in (SMTP_PASSWORD, DEFAULT_TOKEN, TEAM_TOKEN):
        assert secret not in everything
    assert received.smtp.logins and set(received.smtp.logins) == {"bakery"}
