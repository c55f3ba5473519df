"""The bake's failure callback: one alert per failed task, sent when retries are spent.

Airflow calls `on_failure_callback` only when a task ends FAILED (retries exhausted);
a try that will be retried calls `on_retry_callback` instead, which bakery leaves unset.
So each failed task sends exactly one alert, whatever its retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from bakery.alerts.deadlines import SELECT_TASK_ID

# The bake DAG file imports this module at parse time; building and routing a message
# (which pulls in the Packer package for its redactor) happens only when a task fails.
if TYPE_CHECKING:
    from bakery.alerts.messages import FailedTask
    from bakery.catalog import Catalog


class BakeryFailureNotifier(BaseNotifier):
    """Alerts the image's channels (or the default channel) about a failed task: image,
    cloud, region, step, first error line, try number, log link, and whether the image is
    now broken (failed on its catalog's `alerts.broken_after_failures` runs in a row)."""

    def notify(self, context: Mapping[str, Any]) -> None:
        # Imported here: smtplib, httpx and boto3 cost every parse of the DAG file.
        from bakery.alerts.channels import send
        from bakery.alerts.messages import failure_alert
        from bakery.alerts.routing import broken_after, catalog_or_none, image_channels
        from bakery.alerts.streaks import load_streaks

        catalog = catalog_or_none()
        failed = failed_task(context)
        if failed.image is not None:
            streak = load_streaks().get(failed.label)
            failed = replace(
                failed,
                consecutive_failures=streak.count_with(failed.run_id) if streak else 1,
                broken_after=broken_after(failed.image, catalog),
            )
        alert = failure_alert(failed)
        secrets = _cloud_secrets(catalog, failed.image)
        results = send(alert, image_channels(failed.image, catalog), secrets=secrets)
        self.log.info("failure alert for %s: %s", failed.label, results)


def _unit_fields(context: Mapping[str, Any]) -> dict[str, str] | None:
    """image/cloud/region of a lifecycle task: its `target` or `bake` argument, else its
    readable map index (`web/aws/us-east-1`)."""
    task = context.get("task")
    for name in ("target", "bake"):
        fields = getattr(task, name, None)
        if isinstance(fields, Mapping) and {"image", "cloud", "region"} <= fields.keys():
            return {key: str(fields[key]) for key in ("image", "cloud", "region")}
    ti = context.get("ti")
    label = getattr(ti, "rendered_map_index", None)
    if isinstance(label, str) and label.count("/") == 2:
        image, cloud, region = label.split("/")
        return {"image": image, "cloud": cloud, "region": region}
    return _selected_target(ti)


def _selected_target(ti: Any) -> dict[str, str] | None:
    """A failure the scheduler decided (a lost heartbeat, a killed worker) calls back from
    the dag-processor, where the task's arguments are not resolved: map index i of the
    image lifecycle works on select_targets' i-th target."""
    map_index = getattr(ti, "map_index", -1)
    if map_index is None or map_index < 0:
        return None
    try:
        targets = ti.xcom_pull(task_ids=SELECT_TASK_ID, map_indexes=-1)
        target = targets[map_index]
        return {key: str(target[key]) for key in ("image", "cloud", "region")}
    except Exception:  # no XCom to read here: the alert names the DAG instead
        return None


def failed_task(context: Mapping[str, Any]) -> FailedTask:
    from bakery.alerts.messages import FailedTask, first_error_line, step_name

    ti = context.get("ti")
    error = context.get("exception")
    unit = _unit_fields(context) or {}
    try:
        log_url = ti.log_url if ti is not None else None
    except Exception:  # a context built outside a task process may lack its parts
        log_url = None
    dag_run = context.get("dag_run")
    return FailedTask(
        image=unit.get("image"),
        cloud=unit.get("cloud"),
        region=unit.get("region"),
        step=step_name(getattr(ti, "task_id", "?"), error),
        error=first_error_line(error),
        try_number=getattr(ti, "try_number", None),
        log_url=log_url,
        dag_id=getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?"),
        run_id=getattr(ti, "run_id", None) or context.get("run_id") or "?",
    )


def _cloud_secrets(catalog: Catalog | None, image: str | None) -> list[str]:
    """The image's cloud credentials and its provisioner's secret inputs: an error message
    may quote any of them."""
    from airflow.sdk import Connection

    from bakery.secret_inputs import resolve_secret_inputs

    found: list[str] = []
    try:
        entry = catalog.image(image) if catalog and image else None
    except Exception:  # an image the catalog does not know: nothing of it can leak
        return found
    if entry is None:
        return found
    # A secret input that cannot be read failed the bake itself; it has no value to leak.
    with contextlib.suppress(Exception):
        found += resolve_secret_inputs(entry.secrets).values()
    if entry.targets.aws is not None:
        try:
            connection = Connection.get(entry.targets.aws.connection_id)
        except Exception:
            return found
        extra = connection.extra_dejson or {}
        found += [s for s in (connection.password, extra.get("aws_secret_access_key")) if s]
    return found
