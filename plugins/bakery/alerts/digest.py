"""The bake run's last task: the digest message, and the repeated-failure record."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bakery.alerts.outcomes import LIFECYCLE_GROUP

log = logging.getLogger(__name__)


def read_report(path: Path) -> dict[str, Any] | None:
    """The latest freshness report, or None when there is none (yet) or it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the freshness report %s: %s", path, exc)
        return None


def _pull_all(ti: Any, task_id: str) -> list[Any]:
    values = ti.xcom_pull(task_ids=task_id)
    if values is None:
        return []
    return [values] if isinstance(values, Mapping) else list(values)


def send_bake_digest(context: Mapping[str, Any]) -> dict[str, Any]:
    """Tell the default channel what the run baked, promoted, failed and pruned, with the
    latest audit's stale count; record each unit's failed or promoted bake for the
    repeated-failure rule. A channel that is down is logged, never fails this task."""
    from bakery.alerts.channels import send
    from bakery.alerts.deadlines import run_url
    from bakery.alerts.messages import audit_facts, digest_alert
    from bakery.alerts.outcomes import run_outcomes
    from bakery.alerts.routing import broken_thresholds, catalog_or_none, default_channels
    from bakery.alerts.streaks import broken_units, load_streaks, record_run, save_streaks
    from bakery.catalog import AlertPolicy
    from bakery.report import default_report_path

    ti = context["ti"]
    dag_id, run_id = ti.dag_id, ti.run_id
    targets = ti.xcom_pull(task_ids="select_targets") or []
    states = ti.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    outcomes = run_outcomes(
        targets,
        states,
        builds=_pull_all(ti, f"{LIFECYCLE_GROUP}.packer_build"),
        prunes=_pull_all(ti, f"{LIFECYCLE_GROUP}.prune"),
    )
    streaks = record_run(load_streaks(), run_id, outcomes)
    save_streaks(streaks)
    broken = broken_units(
        streaks,
        broken_thresholds(catalog_or_none()),
        default=AlertPolicy().broken_after_failures,  # for images no longer in the catalog
    )
    alert = digest_alert(
        dag_id=dag_id,
        run_id=run_id,
        outcomes=outcomes,
        broken=broken,
        audit=audit_facts(read_report(default_report_path())),
        run_url=run_url(dag_id, run_id),
    )
    for line in [alert.subject, *alert.text.splitlines()]:
        log.info("%s", line)
    results = send(alert, default_channels())
    return {"sent": results, **{k: v for k, v in alert.fields.items() if k != "run"}}
