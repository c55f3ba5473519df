"""Pure prune planning: which of an image's baked versions to keep, and why.

The plan never deletes an image that is the current one of a channel, that is in use,
that is younger than the policy's minimum age, that bakery did not make, or that is one
of the newest N promoted images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bakery.catalog import RetentionPolicy
from bakery.freshness import age_in_days


class Action(StrEnum):
    KEEP = "keep"
    DELETE = "delete"


@dataclass(frozen=True)
class InventoryImage:
    image_id: str
    name: str
    created: datetime
    managed: bool
    current_channel: str | None = None  # the channel this image is current for, if any
    promoted_at: datetime | None = None  # ever promoted
    smoke: str | None = None  # "passed", "failed" or None (not tested yet)


@dataclass(frozen=True)
class PruneDecision:
    image: InventoryImage
    action: Action
    reason: str


def plan_prune(
    images: Iterable[InventoryImage],
    *,
    policy: RetentionPolicy,
    in_use: Mapping[str, str],
    now: datetime,
) -> list[PruneDecision]:
    """One decision per image, newest first. `in_use` maps image id -> what uses it."""
    ordered = sorted(images, key=lambda image: image.created, reverse=True)
    promoted = [image for image in ordered if image.managed and image.promoted_at is not None]
    newest_promoted = {
        image.image_id
        for image in sorted(promoted, key=lambda i: i.promoted_at or i.created, reverse=True)[
            : policy.keep_promoted
        ]
    }
    return [_decide(image, policy, in_use, newest_promoted, now) for image in ordered]


def _decide(
    image: InventoryImage,
    policy: RetentionPolicy,
    in_use: Mapping[str, str],
    newest_promoted: set[str],
    now: datetime,
) -> PruneDecision:
    age = age_in_days(image.created, now)
    if not image.managed:
        return PruneDecision(image, Action.KEEP, "not made by bakery")
    if image.current_channel:
        return PruneDecision(
            image, Action.KEEP, f"current image of channel {image.current_channel}"
        )
    if image.image_id in in_use:
        return PruneDecision(image, Action.KEEP, f"in use by {in_use[image.image_id]}")
    if age < policy.keep_younger_than_days:
        return PruneDecision(
            image, Action.KEEP, f"{age} days old, younger than {policy.keep_younger_than_days}"
        )
    if image.image_id in newest_promoted:
        return PruneDecision(
            image, Action.KEEP, f"one of the newest {policy.keep_promoted} promoted images"
        )
    if image.smoke == "failed":
        if age <= policy.failed_grace_days:
            return PruneDecision(
                image,
                Action.KEEP,
                f"failed its smoke test; kept for {policy.failed_grace_days} days to investigate",
            )
        return PruneDecision(image, Action.DELETE, f"failed its smoke test {age} days ago")
    return PruneDecision(image, Action.DELETE, f"{age} days old and superseded")


def render_plan(decisions: Iterable[PruneDecision], *, dry_run: bool) -> str:
    rows = [("ACTION", "IMAGE ID", "NAME", "CREATED", "REASON")]
    for decision in decisions:
        action = decision.action.value.upper()
        if dry_run and decision.action is Action.DELETE:
            action = "WOULD DELETE"
        rows.append(
            (
                action,
                decision.image.image_id,
                decision.image.name,
                decision.image.created.strftime("%Y-%m-%d"),
                decision.reason,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
