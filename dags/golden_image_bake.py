"""
### Golden image bake

Re-bakes every golden image in `include/catalog.yaml` every Sunday at 22:00 UTC, one
mapped task per image x cloud x region (map index `web/aws/us-east-1`), with real
HashiCorp Packer. One image's failure never blocks another's.

**On demand:** trigger with `images`, `clouds` or `regions` to bake just those; an
empty list means all. Every builder instance, image and snapshot is tagged
`bakery:image`, `bakery:bake-id`, `bakery:source-image`, `bakery:template-hash` and
`bakery:dag-run-id`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from bakery.catalog import load_catalog
from bakery.constants import BAKE_DAG_ID
from bakery.operators.packer import PackerBuildOperator

# Parsing reads the catalog file only: a broken catalog fails this import with a clear
# message, and the trigger form lists the images that exist.
CATALOG = load_catalog()
IMAGE_NAMES = [image.name for image in CATALOG.images]
REGIONS = sorted({target.region for target in CATALOG.bake_targets()})


@dag(
    dag_id=BAKE_DAG_ID,
    schedule="0 22 * * 0",
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["bakery", "golden-images", "packer"],
    default_args={
        "owner": "platform-team",
        "retries": int(os.environ.get("BAKERY_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
    },
    params={
        "images": Param(
            [],
            type="array",
            items={"type": "string", "enum": IMAGE_NAMES},
            examples=IMAGE_NAMES,
            title="Images",
            description="Images to bake; empty bakes the whole catalog.",
        ),
        "clouds": Param(
            [],
            type="array",
            items={"type": "string", "enum": ["aws"]},
            examples=["aws"],
            title="Clouds",
            description="Clouds to bake for; empty means every cloud.",
        ),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "enum": REGIONS},
            examples=REGIONS,
            title="Regions",
            description="Regions to bake in; empty means every region.",
        ),
    },
)
def golden_image_bake() -> None:
    @task
    def select_targets(params: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        """The image x cloud x region units this run bakes, from the catalog and params."""
        params = params or {}
        targets = load_catalog().bake_targets(
            images=params.get("images") or None,
            clouds=params.get("clouds") or None,
            regions=params.get("regions") or None,
        )
        if not targets:
            raise ValueError(f"nothing to bake for {params}")
        return [target.model_dump(mode="json") for target in targets]

    PackerBuildOperator.partial(
        task_id="packer_build",
        map_index_template="{{ bake_label }}",
    ).expand(target=select_targets())


golden_image_bake()
