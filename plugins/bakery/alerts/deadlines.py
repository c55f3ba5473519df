"""The bake's deadline: every image promoted within N hours of the run's start.

`bake_deadline()` is the `DeadlineAlert` the bake DAG carries. When a run passes it,
the scheduler queues `unpromoted_images_alert` to the triggerer, which is why this
module lives in plugins/: the triggerer imports it by name. The callback reads the
run's units (select_targets' XCom) and their promote tasks' states through Airflow's
execution API, and alerts about the units not promoted yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

DEADLINE_ENV = "BAKERY_BAKE_DEADLINE_MINUTES"
DEFAULT_DEADLINE_MINUTES = 360.0
SELECT_TASK_ID = "select_targets"


def deadline_interval() -> timedelta | None:
    """BAKERY_BAKE_DEADLINE_MINUTES (default 360: six hours), read when the DAG is parsed;
    `off` for none (`airflow dags test` crashes on a DAG with a deadline in Airflow 3.3:
    apache/airflow#73428)."""
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if raw.lower() == "off":
        return None
    try:
        minutes = float(raw) if raw else DEFAULT_DEADLINE_MINUTES
    except ValueError:
        raise ValueError(
            f"{DEADLINE_ENV} must be a number of minutes or 'off' (got {raw!r})"
        ) from None
    if minutes <= 0:
        raise ValueError(f"{DEADLINE_ENV} must be more than 0 minutes, or 'off' (got {raw!r})")
    return timedelta(minutes=minutes)


def bake_deadline() -> Any:
    """The DeadlineAlert, or None when switched off: counted from when the run was queued
    (its scheduled start for a scheduled run, the trigger for a manual one)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    interval = deadline_interval()
    if interval is None:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(
            unpromoted_images_alert, kwargs={"interval_seconds": interval.total_seconds()}
        ),
        name="images promoted",
    )


async def unpromoted_images_alert(
    interval_seconds: float | None = None, context: Mapping[str, Any] | None = None
) -> str:
    """Runs in the triggerer when a bake run passes its deadline. The blocking work (the
    execution API, SMTP, HTTP, SNS) runs in a thread, off the triggerer's event loop.

    Returns one line for the callback's `output` column: it must be a string (Airflow 3.3's
    triggerer dies storing any other type)."""
    outcome = await asyncio.to_thread(_alert_unpromoted, dict(context or {}), interval_seconds)
    return json.dumps(outcome)


def _alert_unpromoted(context: dict[str, Any], interval_seconds: float | None) -> dict[str, Any]:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    from bakery.alerts.channels import send
    from bakery.alerts.messages import deadline_alert
    from bakery.alerts.outcomes import run_outcomes
    from bakery.alerts.routing import catalog_or_none, default_channels, image_channels, union

    dag_run = context.get("dag_run") or {}
    dag_id, run_id = dag_run.get("dag_id"), dag_run.get("dag_run_id") or dag_run.get("run_id")
    if not dag_id or not run_id:
        log.error("deadline callback without a DAG run in its context: %s", context)
        return {"sent": {}, "error": "no dag run in the context"}
    targets = (
        XCom.get_one(
            key="return_value", dag_id=dag_id, task_id=SELECT_TASK_ID, run_id=run_id, map_index=-1
        )
        or []
    )
    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    pending = [o for o in run_outcomes(targets, states) if not (o.promoted or o.skipped)]
    if targets and not pending:
        log.info("%s %s: every image is promoted; nothing to alert", dag_id, run_id)
        return {"sent": {}, "not_promoted": []}
    if not targets:
        log.warning("%s %s: no targets selected yet at the deadline", dag_id, run_id)
    alert = deadline_alert(
        dag_id=dag_id,
        run_id=run_id,
        interval=timedelta(seconds=interval_seconds) if interval_seconds else None,
        deadline_time=str((context.get("deadline") or {}).get("deadline_time") or "") or None,
        pending=pending,
        run_url=run_url(dag_id, run_id),
    )
    catalog = catalog_or_none()
    channels = union(default_channels(), *(image_channels(o.image, catalog) for o in pending))
    results = send(alert, channels)
    log.info("deadline alert for %s %s: %s", dag_id, run_id, results)
    return {"sent": results, "not_promoted": [o.label for o in pending]}


def run_url(dag_id: str, run_id: str) -> str | None:
    """The run's page in the Airflow 3 UI."""
    try:
        from airflow.sdk.configuration import conf

        base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    except Exception:
        return None
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
