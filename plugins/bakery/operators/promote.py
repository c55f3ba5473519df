"""PromoteImageOperator: make a smoke-tested image the current one of its channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, Context

from bakery.channels import PROMOTIONS_ALIAS, asset_uri
from bakery.links import ImageConsoleLink
from bakery.operators._cloud import CloudOperationsMixin

# DAG files import this module at parse time, so the catalog's pydantic models and the
# AWS hooks (boto3) are imported in execute.

PROMOTIONS = AssetAlias(PROMOTIONS_ALIAS)


class NotSmokeTestedError(RuntimeError):
    """Promotion was asked for an image without a passed smoke test."""


class PromoteImageOperator(CloudOperationsMixin, BaseOperator):
    """Tag the image current for its channel, publish it in SSM, emit an Asset event.

    Idempotent: promoting the image that is already current changes nothing and emits
    no second event. The images it supersedes keep their promotion history in tags.
    """

    operator_extra_links = (ImageConsoleLink(),)
    template_fields: Sequence[str] = ("bake", "approval")
    ui_color = "#a1d99b"

    def __init__(
        self,
        *,
        bake: dict[str, str],
        approval: dict[str, Any] | None = None,
        catalog_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`approval`: the approve task's answer; anything but Approve skips the promotion."""
        kwargs.setdefault("outlets", [PROMOTIONS])
        super().__init__(**kwargs)
        self.bake = bake
        self.approval = approval
        self.catalog_path = catalog_path

    def execute(self, context: Context) -> dict[str, str]:
        from bakery.operators._target import label_task, skip_if_rejected

        skip_if_rejected(self.approval, label_task(self.bake, context).label)
        if self.bake.get("smoke") != "passed":
            raise NotSmokeTestedError(
                f"{self.bake.get('image_id')} has no passed smoke test; refusing to promote"
            )
        if self.bake.get("cloud", "aws") != "aws":
            return self._execute_adapter(context)
        from bakery.hooks.aws import BakeryEc2Hook, BakerySsmHook
        from bakery.operators._target import resolve_target, skip_if_promotion_off
        from bakery.promotion import point_channel

        found = resolve_target(self.bake, catalog_path=self.catalog_path, context=context)
        target, image, aws = found.target, found.image, found.aws
        skip_if_promotion_off(context, target.label)
        change = point_channel(
            ec2=BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=target.region),
            ssm=BakerySsmHook(aws_conn_id=aws.connection_id, region_name=target.region),
            image=target.image,
            channel=image.channel,
            image_id=self.bake["image_id"],
            now=datetime.now(UTC),
        )
        result = {**self.bake, "channel": image.channel, "parameter": change.parameter}
        if change.parameter_version is None:
            self.log.info(
                "%s: %s is already current for %s; nothing to do",
                target.label,
                change.image_id,
                image.channel,
            )
            return {**result, "promoted": "already"}
        for previous in change.superseded:
            self.log.info("%s: %s superseded", target.label, previous)
        context["outlet_events"][PROMOTIONS].add(
            Asset(asset_uri(target.cloud.value, target.image)),
            extra={
                "image_id": change.image_id,
                "region": target.region,
                "channel": image.channel,
                "bake_id": self.bake["bake_id"],
            },
        )
        self.log.info(
            "%s: promoted %s to %s (%s version %d)",
            target.label,
            change.image_id,
            image.channel,
            change.parameter,
            change.parameter_version,
        )
        return {**result, "promoted": "true"}

    def _execute_adapter(self, context: Context) -> dict[str, str]:
        """Every cloud but AWS: the adapter moves the channel (Azure: tags, the gallery's
        latest, end-of-life dates of superseded versions, replication)."""
        from bakery.constants import TAG_CHANNEL
        from bakery.operators._target import resolve_cloud_target, skip_if_promotion_off

        found = resolve_cloud_target(self.bake, catalog_path=self.catalog_path, context=context)
        target, channel, image_id = found.target, found.image.channel, self.bake["image_id"]
        skip_if_promotion_off(context, target.label)
        adapter = found.adapter()
        current = [
            item.image_id
            for item in adapter.list_managed_images()
            if item.tags.get(TAG_CHANNEL) == channel
        ]
        adapter.promote(image_id, channel)
        result = {**self.bake, "channel": channel, "parameter": ""}
        if current == [image_id]:
            self.log.info("%s: %s is already current for %s", target.label, image_id, channel)
            return self.wait_for_operations(adapter, found, {**result, "promoted": "already"})
        for previous in current:
            self.log.info("%s: %s superseded", target.label, previous)
        context["outlet_events"][PROMOTIONS].add(
            Asset(asset_uri(target.cloud.value, target.image)),
            extra={
                "image_id": image_id,
                "region": target.region,
                "channel": channel,
                "bake_id": self.bake["bake_id"],
            },
        )
        self.log.info("%s: promoted %s to %s", target.label, image_id, channel)
        return self.wait_for_operations(adapter, found, {**result, "promoted": "true"})
