"""RollbackChannelOperator: point a channel back at its previously promoted image."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator, Context

from bakery.constants import TAG_CHANNEL, TAG_IMAGE, TAG_ROLLED_BACK_AT

# Hooks (boto3) are imported where used: DAG files import this module at parse time.


class NothingToRollBackError(RuntimeError):
    """The channel has no earlier promoted, smoke-tested image to go back to."""


class RollbackChannelOperator(BaseOperator):
    """Re-point `channel` of `image` in `region` at the image promoted before the current
    one (or at `to_image_id`), tagging the abandoned image `bakery:rolled-back-at`."""

    template_fields: Sequence[str] = ("image", "region", "channel", "to_image_id")

    def __init__(
        self,
        *,
        image: str,
        region: str,
        channel: str = "stable",
        aws_conn_id: str | None = None,
        to_image_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.region = region
        self.channel = channel
        self.aws_conn_id = aws_conn_id
        self.to_image_id = to_image_id

    def execute(self, context: Context) -> dict[str, str]:
        from bakery.channels import tag_value
        from bakery.hooks.aws import BakeryEc2Hook, BakerySsmHook
        from bakery.promotion import point_channel, rollback_candidate

        connection_id = self.aws_conn_id or self._catalog_connection()
        ec2 = BakeryEc2Hook(aws_conn_id=connection_id, region_name=self.region)
        ssm = BakerySsmHook(aws_conn_id=connection_id, region_name=self.region)
        images = list(ec2.iter_managed_images(extra_filters={TAG_IMAGE: self.image}))
        current = next(
            (i["ImageId"] for i in images if tag_value(i.get("Tags"), TAG_CHANNEL) == self.channel),
            None,
        )
        target = (self.to_image_id or "").strip() or rollback_candidate(images, current_id=current)
        if target is None or target == current:
            raise NothingToRollBackError(
                f"{self.image}/{self.region}: channel {self.channel} has no earlier promoted,"
                f" smoke-tested image to roll back to (current: {current})"
            )
        now = datetime.now(UTC)
        change = point_channel(
            ec2=ec2,
            ssm=ssm,
            image=self.image,
            channel=self.channel,
            image_id=target,
            now=now,
            stamp_promotion=False,
        )
        for abandoned in change.superseded:
            ec2.tag_resource(abandoned, {TAG_ROLLED_BACK_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        self.log.warning(
            "%s/%s: channel %s rolled back from %s to %s (%s)",
            self.image,
            self.region,
            self.channel,
            current,
            target,
            change.parameter,
        )
        return {
            "image": self.image,
            "region": self.region,
            "channel": self.channel,
            "from": current or "",
            "to": target,
        }

    def _catalog_connection(self) -> str:
        from bakery.catalog import load_catalog

        aws = load_catalog().image(self.image).targets.aws
        if aws is None:
            raise ValueError(f"image {self.image!r} has no aws target in the catalog")
        return aws.connection_id
