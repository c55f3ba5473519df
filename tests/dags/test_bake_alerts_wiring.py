"""The bake DAG's alert wiring: failure notifier on every task, the deadline, the digest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from bakery.alerts.notifier import BakeryFailureNotifier

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

BAKE_DAG_ID = "golden_image_bake"


def test_every_bake_task_alerts_on_failure_and_never_on_retry(dag_bag: DagBag) -> None:
    dag = dag_bag.dags[BAKE_DAG_ID]
    for task in dag.tasks:
        callbacks = task.on_failure_callback or []
        assert any(isinstance(c, BakeryFailureNotifier) for c in callbacks), task.task_id
        assert not task.on_retry_callback, task.task_id


def test_the_deadline_is_six_hours_from_queued_to_promoted_by_default(dag_bag: DagBag) -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference

    (deadline,) = dag_bag.dags[BAKE_DAG_ID].deadline
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert deadline.interval == timedelta(hours=6)
    assert isinstance(deadline.callback, AsyncCallback)
    # The triggerer imports the callback by this path from plugins/.
    assert deadline.callback.path == "bakery.alerts.deadlines.unpromoted_images_alert"


def test_the_digest_is_a_teardown_after_every_image_task(dag_bag: DagBag) -> None:
    dag = dag_bag.dags[BAKE_DAG_ID]
    digest = dag.get_task("send_digest")
    assert digest.is_teardown and not digest.on_failure_fail_dagrun
    lifecycle = [t for t in dag.tasks if t.task_id.startswith("image_lifecycle.")]
    leaves = [t for t in lifecycle if not (t.downstream_task_ids - {"send_digest"})]
    assert {t.task_id for t in leaves} == {
        "image_lifecycle.distribute",
        "image_lifecycle.prune",
    }
    assert all("send_digest" in t.downstream_task_ids for t in leaves)


def test_the_deadline_is_configurable_and_can_be_switched_off(
    parse_dags: Callable[[], DagBag], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAKERY_BAKE_DEADLINE_MINUTES", "90")
    (deadline,) = parse_dags().dags[BAKE_DAG_ID].deadline
    assert deadline.interval == timedelta(minutes=90)

    monkeypatch.setenv("BAKERY_BAKE_DEADLINE_MINUTES", "off")
    assert not parse_dags().dags[BAKE_DAG_ID].deadline

    monkeypatch.setenv("BAKERY_BAKE_DEADLINE_MINUTES", "six hours")
    errors = parse_dags().import_errors
    assert any(
        "BAKERY_BAKE_DEADLINE_MINUTES must be a number of minutes or 'off' (got 'six hours')" in e
        for e in errors.values()
    ), errors
