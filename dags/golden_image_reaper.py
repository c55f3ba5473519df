"""
### Golden image reaper

Every hour: terminates bakery-tagged builder and smoke instances older than two hours
and deletes their leftover key pairs, in every connection and region of the catalog.
Builds and smoke tests clean up after themselves; this catches what a lost worker or a
power cut left behind. The bake DAG runs the same step before every bake.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag

from bakery.catalog_summary import load_catalog_summary
from bakery.constants import REAPER_DAG_ID
from bakery.operators.reap import ReapOrphansOperator


@dag(
    dag_id=REAPER_DAG_ID,
    schedule="17 * * * *",
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["bakery", "golden-images", "hygiene"],
    default_args={
        "owner": "platform-team",
        "retries": int(os.environ.get("BAKERY_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
    },
)
def golden_image_reaper() -> None:
    ReapOrphansOperator(
        task_id="reap_orphans",
        catalog_regions=list(load_catalog_summary().locations),
    )


golden_image_reaper()
