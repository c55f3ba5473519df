"""
### Golden image freshness audit

Lists every image bakery made, in every cloud and region of `include/catalog.yaml`
(regions concurrently; a few paginated calls per region, never one per image), and
classifies each one:

| status | meaning |
| --- | --- |
| `FRESH` | at most `freshness_days` whole days old (exactly the threshold is fresh) |
| `STALE` | older than that: re-bake |
| `MISSING` | a catalog target (image x cloud x region) with no image: bake it |
| `SUPERSEDED_IN_USE` | a newer promoted image exists, yet something still launches this one |
| `BASE_STALE` | fresh, but baked from a source image older than the threshold |

**When:** daily at 06:00 UTC, after every promotion (the bake's Asset events through the
`bakery-promotions` alias), and on demand.

**Reports:** the task log (`[!!!] STALE: 'web-v1' is 137 days old! Re-bake suggested.`),
the JSON report at `$BAKERY_REPORT_DIR/freshness.json` (default
`$AIRFLOW_HOME/bakery/freshness.json`; schema in README.md), and the `audit` task's XCom
(counts per status, images to re-bake, rows needing attention).

**Params:** `stale_after_days` overrides every image's `freshness_days`; `auto_rebake`
triggers `golden_image_bake` for just the images whose promoted image is stale or
missing (nothing is triggered when none is).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    AssetAlias,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    dag,
    task,
)

from bakery.channels import PROMOTIONS_ALIAS
from bakery.constants import AUDIT_DAG_ID, BAKE_DAG_ID
from bakery.operators.rebake import TriggerRebakeOperator

log = logging.getLogger(__name__)

# Parsing reads nothing at all: the catalog is read by the task, and the schedule follows
# promotions through the alias, so a new image or cloud needs no change here.


@dag(
    dag_id=AUDIT_DAG_ID,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
        assets=AssetAlias(PROMOTIONS_ALIAS),
    ),
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["bakery", "golden-images", "freshness"],
    default_args={
        "owner": "platform-team",
        "retries": int(os.environ.get("BAKERY_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=2),
    },
    params={
        "stale_after_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Stale after (days)",
            description="Overrides every image's freshness_days; empty keeps the catalog's.",
        ),
        "auto_rebake": Param(
            False,
            type="boolean",
            title="Re-bake stale images",
            description="Trigger golden_image_bake for images whose promoted image is stale"
            " or missing.",
        ),
    },
)
def golden_image_audit() -> None:
    @task(multiple_outputs=False)
    def audit(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Inventory, classify, write the JSON report, log the text report; returns the
        summary (counts per status, images to re-bake, rows needing attention)."""
        from bakery.audit import run_and_report

        return run_and_report(stale_after_days=(params or {}).get("stale_after_days"))

    @task.short_circuit(multiple_outputs=False)
    def select_rebake(
        summary: dict[str, Any], params: dict[str, Any] | None = None
    ) -> dict[str, list[str]] | bool:
        """The bake DAG's conf for just the images to re-bake, or skip the trigger."""
        if not (params or {}).get("auto_rebake"):
            log.info("auto_rebake is off; would re-bake: %s", summary["rebake"] or "nothing")
            return False
        if not summary["rebake"]:
            log.info("nothing is stale or missing; no re-bake")
            return False
        return {"images": summary["rebake"]}

    TriggerRebakeOperator(
        task_id="trigger_rebake",
        trigger_dag_id=BAKE_DAG_ID,
        conf=select_rebake(audit()),
        doc_md="Triggers golden_image_bake with select_rebake's `images` as its conf.",
    )


golden_image_audit()
