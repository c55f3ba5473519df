"""Pointing a channel at an image: the tag, the SSM parameter, and the history left behind.

Shared by promotion (a new image) and rollback (a previously promoted one), so both leave
the same trail: `bakery:channel` on the current image only, `bakery:promoted-at` on every
image ever promoted, `bakery:superseded-at` on the ones replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bakery.channels import channel_parameter, tag_value
from bakery.constants import (
    TAG_CHANNEL,
    TAG_IMAGE,
    TAG_PROMOTED_AT,
    TAG_ROLLED_BACK_AT,
    TAG_SMOKE,
    TAG_SUPERSEDED_AT,
)

if TYPE_CHECKING:
    from bakery.hooks.aws import BakeryEc2Hook, BakerySsmHook


@dataclass(frozen=True)
class ChannelChange:
    image_id: str
    parameter: str
    parameter_version: int | None  # None: nothing changed, the image was already current
    superseded: tuple[str, ...]


def point_channel(
    *,
    ec2: BakeryEc2Hook,
    ssm: BakerySsmHook,
    image: str,
    channel: str,
    image_id: str,
    now: datetime,
    stamp_promotion: bool = True,
) -> ChannelChange:
    """Make `image_id` the one current image of `channel`; idempotent."""
    parameter = channel_parameter(image, channel)
    current = [
        found["ImageId"]
        for found in ec2.iter_managed_images(extra_filters={TAG_IMAGE: image, TAG_CHANNEL: channel})
    ]
    if current == [image_id] and ssm.get_parameter_value(parameter) == image_id:
        return ChannelChange(image_id, parameter, None, ())
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = {TAG_CHANNEL: channel}
    if stamp_promotion:
        tags[TAG_PROMOTED_AT] = stamp
    ec2.tag_resource(image_id, tags)
    version = ssm.put_image_parameter(parameter, image_id, f"bakery: current {image} ({channel})")
    superseded = tuple(previous for previous in current if previous != image_id)
    for previous in superseded:
        ec2.untag_resource(previous, [TAG_CHANNEL])
        ec2.tag_resource(previous, {TAG_SUPERSEDED_AT: stamp})
    return ChannelChange(image_id, parameter, version, superseded)


def rollback_candidate(images: list[Mapping[str, Any]], *, current_id: str | None) -> str | None:
    """The most recently promoted image other than the current one that passed its smoke
    test and was never rolled back from: where a rollback points the channel."""
    promoted = [
        (tag_value(found.get("Tags"), TAG_PROMOTED_AT) or "", found["ImageId"])
        for found in images
        if found["ImageId"] != current_id
        and tag_value(found.get("Tags"), TAG_PROMOTED_AT)
        and tag_value(found.get("Tags"), TAG_SMOKE) == "passed"
        and not tag_value(found.get("Tags"), TAG_ROLLED_BACK_AT)
    ]
    return max(promoted)[1] if promoted else None
