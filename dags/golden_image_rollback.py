"""
### Golden image rollback

On demand only. Points a channel (default `stable`) of one image in one region back at
the image promoted before the current one: the `bakery:channel` tag moves and the SSM
parameter `/bakery/<image>/<channel>` is rewritten. The abandoned image is tagged
`bakery:rolled-back-at` and is never chosen by a later rollback. Give `to_image_id` to
pick a specific earlier image instead.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from bakery.catalog_summary import load_catalog_summary
from bakery.constants import ROLLBACK_DAG_ID
from bakery.operators.rollback import RollbackChannelOperator

# The catalog's cached summary: validated in full only when the catalog changed, so a
# broken catalog still fails this import (see bakery.catalog_summary).
CATALOG_SUMMARY = load_catalog_summary()
IMAGE_NAMES = list(CATALOG_SUMMARY.image_names)
REGIONS = list(CATALOG_SUMMARY.regions)


@dag(
    dag_id=ROLLBACK_DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["bakery", "golden-images", "rollback"],
    default_args={"owner": "platform-team", "retries": 1},
    params={
        "image": Param(IMAGE_NAMES[0], type="string", enum=IMAGE_NAMES, title="Image"),
        "region": Param(REGIONS[0], type="string", enum=REGIONS, title="Region"),
        "channel": Param("stable", type="string", title="Channel"),
        "to_image_id": Param(
            None,
            type=["null", "string"],
            title="Roll back to (optional)",
            description="An earlier image id; empty picks the one promoted before the current.",
        ),
    },
)
def golden_image_rollback() -> None:
    RollbackChannelOperator(
        task_id="rollback_channel",
        image="{{ params.image }}",
        region="{{ params.region }}",
        channel="{{ params.channel }}",
        to_image_id="{{ params.to_image_id or '' }}",
    )


golden_image_rollback()
