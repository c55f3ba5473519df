"""
### Golden image bake

Re-bakes every golden image in `include/catalog.yaml` every Sunday at 22:00 UTC. For
each image x cloud x region (map index `web/aws/us-east-1`) a mapped group runs:

1. **packer_build**: real HashiCorp Packer bakes the image;
2. **smoke_test**: one instance boots from it (the wait is deferred) and the catalog's
   checks run; a failure tags the image `bakery:smoke=failed`;
3. **approve**: a human approves in the UI, for images whose catalog entry sets
   `approval_required` (others pass straight through);
4. **promote**: only after a passed smoke test: tag `bakery:channel`, SSM parameter
   `/bakery/<image>/<channel>`, and an Asset event `x-bakery://<cloud>/<image>`;
5. **distribute**: copies to the catalog's `copy_to_regions` and promotes them there;
6. **prune**: old versions go by the retention policy; never the current, in-use,
   young or newest promoted ones.

**send_digest** ends every run with one message: baked, promoted, failed, pruned. A
failed task alerts its image's channels once its retries are spent.

One image's failure never blocks another's. `reap_orphans` first terminates builder and
smoke instances (and their key pairs) that outlived their maximum age.

**On demand:** trigger with `images`, `clouds` or `regions` to bake just those; an
empty list means all (a manual run with no params bakes everything). Unchanged targets
(same template hash and source image, current image young enough) are skipped unless
`force` is set; `skip_promote` bakes and smoke-tests only; `prune_dry_run` deletes
nothing. The **Image freshness** page (Browse menu) has a *Bake now* button per image.

Every builder instance, image and snapshot is tagged `bakery:image`, `bakery:bake-id`,
`bakery:source-image`, `bakery:template-hash` and `bakery:dag-run-id`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task, task_group, teardown

from bakery.alerts.deadlines import bake_deadline
from bakery.alerts.notifier import BakeryFailureNotifier
from bakery.catalog_summary import load_catalog_summary
from bakery.choices import SharedChoices
from bakery.constants import BAKE_DAG_ID
from bakery.operators.approval import PromotionApprovalOperator
from bakery.operators.distribute import DistributeImageOperator
from bakery.operators.packer import PackerBuildOperator
from bakery.operators.promote import PromoteImageOperator
from bakery.operators.prune import PruneImagesOperator
from bakery.operators.reap import ReapOrphansOperator
from bakery.operators.smoke import SmokeTestOperator
from bakery.parallelism import max_parallel_bakes

# Parsing reads the catalog file only: a broken catalog fails this import with a clear
# message, and the trigger form lists the images that exist. The summary is cached by the
# catalog's bytes (see bakery.catalog_summary), so an unchanged catalog is not validated
# again on every parse loop; a changed or broken one always is.
CATALOG_SUMMARY = load_catalog_summary()
# Shared, not copied, into each task's params (see bakery.choices).
IMAGE_NAMES = SharedChoices(CATALOG_SUMMARY.image_names)
REGIONS = SharedChoices(CATALOG_SUMMARY.regions)
CATALOG_LOCATIONS = list(CATALOG_SUMMARY.locations)
CLOUDS = ["aws", "azure", "vsphere"]
# Declared so that Airflow registers every promotion Asset when it parses this file:
# promotions emit through an alias, and two regions promoting the same image for the
# first time would otherwise both create its Asset at once, and one would fail.
PROMOTED_ASSETS = [Asset(uri) for uri in CATALOG_SUMMARY.assets]


@dag(
    dag_id=BAKE_DAG_ID,
    schedule="0 22 * * 0",
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["bakery", "golden-images", "packer"],
    # Alerts: one per failed task once its retries are spent; a run whose images are not
    # all promoted within BAKERY_BAKE_DEADLINE_MINUTES of its start alerts too.
    deadline=bake_deadline(),
    default_args={
        "on_failure_callback": [BakeryFailureNotifier()],
        "owner": "platform-team",
        "retries": int(os.environ.get("BAKERY_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
    },
    params={
        "images": Param(
            [],
            type="array",
            items={"type": "string", "enum": IMAGE_NAMES},
            uniqueItems=True,
            examples=IMAGE_NAMES,
            title="Images",
            description_md="Images from `include/catalog.yaml` to bake. **Empty bakes the whole"
            " catalog.**",
            section="What to bake",
        ),
        "clouds": Param(
            [],
            type="array",
            items={"type": "string", "enum": CLOUDS},
            uniqueItems=True,
            examples=CLOUDS,
            title="Clouds",
            description_md="Clouds to bake for. Empty means every cloud an image names.",
            section="What to bake",
        ),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "enum": REGIONS},
            uniqueItems=True,
            examples=REGIONS,
            title="Regions",
            description_md="Regions to bake in. Empty means every region of each image.",
            section="What to bake",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description_md="Bake even if nothing changed. Without it, a target is skipped when"
            " its current image was baked from the same template hash and the same source"
            " image and stays fresh until the next weekly run (at most `freshness_days - 7`"
            " days old).",
            section="How",
        ),
        "skip_promote": Param(
            False,
            type="boolean",
            title="Skip promotion",
            description_md="Bake and smoke-test only: no approval, promotion, distribution or"
            " prune. The channel keeps its current image.",
            section="How",
        ),
        "prune_dry_run": Param(
            False,
            type="boolean",
            title="Prune dry run",
            description_md="Log the prune plan (keep/delete, with a reason per image) but"
            " delete nothing.",
            section="How",
        ),
    },
)
def golden_image_bake() -> None:
    # A failed reap shows red but never stops the week's bakes.
    @task(trigger_rule="all_done")
    def select_targets(params: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        """The image x cloud x region units this run bakes, from the catalog and params."""
        # Imported here: building its pydantic models would cost every parse of this file.
        from bakery.catalog import load_catalog

        params = params or {}
        targets = load_catalog().bake_targets(
            images=params.get("images") or None,
            clouds=params.get("clouds") or None,
            regions=params.get("regions") or None,
        )
        if not targets:
            raise ValueError(f"nothing to bake for {params}")
        return [target.model_dump(mode="json") for target in targets]

    @task_group
    def image_lifecycle(target: dict[str, str]) -> None:
        label = {"map_index_template": "{{ bake_label }}"}
        # At most BAKERY_MAX_PARALLEL_BAKES bakes at once (default 8); the rest queue.
        baked = PackerBuildOperator(
            task_id="packer_build",
            target=target,
            max_active_tis_per_dag=max_parallel_bakes(),
            **label,
        )
        smoked = SmokeTestOperator(task_id="smoke_test", bake=baked.output, **label)
        approved = PromotionApprovalOperator(task_id="approve", bake=smoked.output, **label)
        promoted = PromoteImageOperator(
            task_id="promote",
            bake=smoked.output,
            approval=approved.output,
            inlets=PROMOTED_ASSETS,
            **label,
        )
        distributed = DistributeImageOperator(task_id="distribute", bake=promoted.output, **label)
        pruned = PruneImagesOperator(task_id="prune", target=target, **label)
        approved >> promoted >> [distributed, pruned]

    # A teardown: it runs whatever happened upstream, and the run's state stays what the
    # images' tasks made it (a run with a failed bake still ends failed).
    @teardown
    @task(multiple_outputs=False)
    def send_digest(**context: Any) -> dict[str, Any]:
        """One message to the default alert channel: baked, promoted, failed, pruned."""
        from bakery.alerts.digest import send_bake_digest

        return send_bake_digest(context)

    reaped = ReapOrphansOperator(task_id="reap_orphans", catalog_regions=CATALOG_LOCATIONS)
    targets = select_targets()
    reaped >> targets
    image_lifecycle.expand(target=targets) >> send_digest()


golden_image_bake()
