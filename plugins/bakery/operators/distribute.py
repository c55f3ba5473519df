"""DistributeImageOperator: copy a promoted image to more regions and promote it there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from bakery.constants import TAG_COPIED_FROM

if TYPE_CHECKING:
    from bakery.catalog import AwsTarget

# DAG files import this module at parse time: the catalog's pydantic models, the hooks and
# the triggers (boto3) are imported where used.


class DistributionFailedError(RuntimeError):
    """A copy did not become available; the source region's promotion stands."""


class DistributeImageOperator(BaseOperator):
    """For catalog `copy_to_regions`: CopyImage into each region, wait for the copies in
    a trigger, then make each copy the current image of the channel in its region."""

    template_fields: Sequence[str] = ("bake",)
    ui_color = "#9ecae1"

    def __init__(
        self,
        *,
        bake: dict[str, str],
        catalog_path: str | None = None,
        timeout_seconds: float = 3600,
        poll_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bake = bake
        self.catalog_path = catalog_path
        self.timeout_seconds = timeout_seconds
        self.poll_interval = poll_interval

    def _aws(self, context: Context) -> tuple[AwsTarget, str]:
        from bakery.operators._target import resolve_target

        found = resolve_target(self.bake, catalog_path=self.catalog_path, context=context)
        return found.aws, found.image.channel

    def execute(self, context: Context) -> dict[str, Any]:
        from bakery.hooks.aws import BakeryEc2Hook, copy_image_to
        from bakery.triggers.images import ImagesAvailableTrigger

        if self.bake.get("cloud", "aws") != "aws":
            # Azure gallery versions replicate to the catalog's replica_regions themselves.
            label = "/".join(self.bake.get(key, "?") for key in ("image", "cloud", "region"))
            context["bake_label"] = label  # type: ignore[typeddict-unknown-key]
            self.log.info("%s replicates through its cloud; nothing to copy", self.bake["cloud"])
            return {**self.bake, "copies": {}}
        aws, _ = self._aws(context)
        if not aws.copy_to_regions:
            self.log.info("no copy_to_regions in the catalog; nothing to distribute")
            return {**self.bake, "copies": {}}
        source_region, image_id = self.bake["region"], self.bake["image_id"]
        source = BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=source_region)
        [image] = source.conn.describe_images(ImageIds=[image_id])["Images"]
        tags = {t["Key"]: t["Value"] for t in image.get("Tags", []) if t["Key"] != "Name"}
        tags[TAG_COPIED_FROM] = f"{source_region}:{image_id}"
        copies = {
            region: copy_image_to(
                aws_conn_id=aws.connection_id,
                source_region=source_region,
                image=image,
                region=region,
                tags=tags,
            )
            for region in aws.copy_to_regions
        }
        self.log.info("copying %s to %s", image_id, copies)
        self.defer(
            trigger=ImagesAvailableTrigger(
                aws_conn_id=aws.connection_id,
                images=copies,
                timeout_seconds=self.timeout_seconds,
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> dict[str, Any]:
        from bakery.hooks.aws import BakeryEc2Hook, BakerySsmHook
        from bakery.promotion import point_channel

        aws, channel = self._aws(context)
        if event["status"] != "available":
            raise DistributionFailedError(
                f"copies of {self.bake['image_id']} did not become available"
                f" ({event['status']}): {event['states']}"
            )
        now = datetime.now(UTC)
        for region, copy_id in event["images"].items():
            change = point_channel(
                ec2=BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=region),
                ssm=BakerySsmHook(aws_conn_id=aws.connection_id, region_name=region),
                image=self.bake["image"],
                channel=channel,
                image_id=copy_id,
                now=now,
            )
            self.log.info(
                "%s: %s is the current %s image (%s)", region, copy_id, channel, change.parameter
            )
        return {**self.bake, "copies": dict(event["images"])}
