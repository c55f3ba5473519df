"""PromoteImageOperator: make a smoke-tested image the current one of its channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, Context

from bakery.catalog import BakeTarget, load_catalog
from bakery.channels import asset_uri, channel_parameter, tag_value
from bakery.constants import TAG_CHANNEL, TAG_IMAGE, TAG_PROMOTED_AT, TAG_SUPERSEDED_AT
from bakery.hooks.aws import BakeryEc2Hook, BakerySsmHook

PROMOTIONS = AssetAlias("bakery-promotions")


class NotSmokeTestedError(RuntimeError):
    """Promotion was asked for an image without a passed smoke test."""


class PromoteImageOperator(BaseOperator):
    """Tag the image current for its channel, publish it in SSM, emit an Asset event.

    Idempotent: promoting the image that is already current changes nothing and emits
    no second event. The images it supersedes keep their promotion history in tags.
    """

    template_fields: Sequence[str] = ("bake",)
    ui_color = "#a1d99b"

    def __init__(
        self, *, bake: dict[str, str], catalog_path: str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("outlets", [PROMOTIONS])
        super().__init__(**kwargs)
        self.bake = bake
        self.catalog_path = catalog_path

    def execute(self, context: Context) -> dict[str, str]:
        if self.bake.get("smoke") != "passed":
            raise NotSmokeTestedError(
                f"{self.bake.get('image_id')} has no passed smoke test; refusing to promote"
            )
        target = BakeTarget.model_validate({k: self.bake[k] for k in ("image", "cloud", "region")})
        context["bake_label"] = target.label  # type: ignore[typeddict-unknown-key]
        image = load_catalog(Path(self.catalog_path) if self.catalog_path else None).image(
            target.image
        )
        aws = image.targets.aws
        assert aws is not None
        ec2 = BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=target.region)
        ssm = BakerySsmHook(aws_conn_id=aws.connection_id, region_name=target.region)
        image_id, channel = self.bake["image_id"], image.channel
        parameter = channel_parameter(target.image, channel)
        result = {**self.bake, "channel": channel, "parameter": parameter}

        current = [
            found
            for found in ec2.iter_managed_images(
                extra_filters={TAG_IMAGE: target.image, TAG_CHANNEL: channel}
            )
        ]
        if [c["ImageId"] for c in current] == [image_id] and (
            ssm.get_parameter_value(parameter) == image_id
        ):
            self.log.info(
                "%s: %s is already current for %s; nothing to do", target.label, image_id, channel
            )
            return {**result, "promoted": "already"}

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ec2.tag_resource(image_id, {TAG_CHANNEL: channel, TAG_PROMOTED_AT: now})
        version = ssm.put_image_parameter(
            parameter, image_id, f"bakery: current {target.image} image ({channel})"
        )
        for previous in current:
            if previous["ImageId"] != image_id:
                ec2.untag_resource(previous["ImageId"], [TAG_CHANNEL])
                ec2.tag_resource(previous["ImageId"], {TAG_SUPERSEDED_AT: now})
                self.log.info(
                    "%s: %s (promoted %s) superseded",
                    target.label,
                    previous["ImageId"],
                    tag_value(previous.get("Tags"), TAG_PROMOTED_AT),
                )
        context["outlet_events"][PROMOTIONS].add(
            Asset(asset_uri(target.cloud.value, target.image)),
            extra={
                "image_id": image_id,
                "region": target.region,
                "channel": channel,
                "bake_id": self.bake["bake_id"],
            },
        )
        self.log.info(
            "%s: promoted %s to %s (%s version %d)",
            target.label,
            image_id,
            channel,
            parameter,
            version,
        )
        return {**result, "promoted": "true"}
