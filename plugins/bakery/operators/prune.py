"""PruneImagesOperator: delete an image's rotted versions by the catalog's retention policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from bakery.channels import tag_value
from bakery.constants import TAG_CHANNEL, TAG_IMAGE, TAG_MANAGED, TAG_PROMOTED_AT, TAG_SMOKE
from bakery.operators._cloud import CloudOperationsMixin

# DAG files import this module at parse time, so the catalog's pydantic models (also
# behind bakery.retention) and the AWS hook (boto3) are imported where they are used.
if TYPE_CHECKING:
    from bakery.clouds.base import ManagedImage
    from bakery.retention import InventoryImage


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def inventory_image(image: dict[str, Any]) -> InventoryImage:
    from bakery.retention import InventoryImage

    tags = image.get("Tags")
    return InventoryImage(
        image_id=image["ImageId"],
        name=image.get("Name", ""),
        created=_parse_time(image["CreationDate"]) or datetime.now(UTC),
        managed=tag_value(tags, TAG_MANAGED) == "true",
        current_channel=tag_value(tags, TAG_CHANNEL),
        promoted_at=_parse_time(tag_value(tags, TAG_PROMOTED_AT)),
        smoke=tag_value(tags, TAG_SMOKE),
    )


def adapter_inventory_image(image: ManagedImage) -> InventoryImage:
    from bakery.retention import InventoryImage

    return InventoryImage(
        image_id=image.image_id,
        name=image.name,
        created=image.created,
        managed=image.tags.get(TAG_MANAGED) == "true",
        current_channel=image.tags.get(TAG_CHANNEL),
        promoted_at=_parse_time(image.tags.get(TAG_PROMOTED_AT)),
        smoke=image.tags.get(TAG_SMOKE),
    )


class PruneImagesOperator(CloudOperationsMixin, BaseOperator):
    """Plan with `plan_prune`, log the plan as a table, then apply it unless dry-run."""

    template_fields: Sequence[str] = ("target",)
    ui_color = "#fdd0a2"

    def __init__(
        self,
        *,
        target: dict[str, str],
        dry_run: bool | None = None,
        catalog_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.dry_run = dry_run
        self.catalog_path = catalog_path

    def execute(self, context: Context) -> dict[str, Any]:
        from bakery.hooks.aws import BakeryEc2Hook
        from bakery.operators._target import resolve_target
        from bakery.retention import Action, plan_prune, render_plan

        # Unset means: as the run's `prune_dry_run` param says (the trigger form's switch).
        dry_run = (
            bool(context["params"].get("prune_dry_run", False))
            if self.dry_run is None
            else self.dry_run
        )
        if self.target.get("cloud", "aws") != "aws":
            return self._execute_adapter(context, dry_run=dry_run)
        found = resolve_target(self.target, catalog_path=self.catalog_path, context=context)
        target, image, aws = found.target, found.image, found.aws
        hook = BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=target.region)
        described = {
            found["ImageId"]: found
            for found in hook.iter_managed_images(extra_filters={TAG_IMAGE: target.image})
        }
        decisions = plan_prune(
            [inventory_image(found) for found in described.values()],
            policy=image.retention,
            in_use=hook.images_in_use(),
            now=datetime.now(UTC),
        )
        self.log.info(
            "%s: prune plan%s\n%s",
            target.label,
            " (dry run)" if dry_run else "",
            render_plan(decisions, dry_run=dry_run),
        )
        deleted: list[str] = []
        for decision in decisions:
            if decision.action is Action.DELETE and not dry_run:
                snapshots = hook.delete_image(described[decision.image.image_id])
                deleted.append(decision.image.image_id)
                self.log.info(
                    "%s: deleted %s and snapshots %s",
                    target.label,
                    decision.image.image_id,
                    ", ".join(snapshots) or "(none)",
                )
        return {
            "image": target.image,
            "region": target.region,
            "dry_run": dry_run,
            "deleted": deleted,
            "would_delete": [d.image.image_id for d in decisions if d.action is Action.DELETE],
            "kept": [d.image.image_id for d in decisions if d.action is Action.KEEP],
        }

    def _execute_adapter(self, context: Context, *, dry_run: bool) -> dict[str, Any]:
        """Every cloud but AWS: the same plan over the adapter's inventory."""
        from bakery.operators._target import resolve_cloud_target
        from bakery.retention import Action, plan_prune, render_plan

        found = resolve_cloud_target(self.target, catalog_path=self.catalog_path, context=context)
        target, adapter = found.target, found.adapter()
        decisions = plan_prune(
            [adapter_inventory_image(item) for item in adapter.list_managed_images()],
            policy=found.image.retention,
            in_use=adapter.images_in_use(),
            now=datetime.now(UTC),
        )
        self.log.info(
            "%s: prune plan%s\n%s",
            target.label,
            " (dry run)" if dry_run else "",
            render_plan(decisions, dry_run=dry_run),
        )
        deleted: list[str] = []
        for decision in decisions:
            if decision.action is Action.DELETE and not dry_run:
                removed = adapter.delete_image(decision.image.image_id)
                deleted.append(decision.image.image_id)
                self.log.info("%s: deleting %s", target.label, ", ".join(removed))
        result = {
            "image": target.image,
            "cloud": target.cloud.value,
            "region": target.region,
            "dry_run": dry_run,
            "deleted": deleted,
            "would_delete": [d.image.image_id for d in decisions if d.action is Action.DELETE],
            "kept": [d.image.image_id for d in decisions if d.action is Action.KEEP],
        }
        return self.wait_for_operations(adapter, found, result)
