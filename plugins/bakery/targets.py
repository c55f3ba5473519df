"""Pure: one row per catalog target (image x cloud x region) for the freshness page.

The audit's rows are per image; people running the fleet ask per target: what is the
current image, how old is it, did the last bake work, what was promoted before. Status:

- MISSING: no image at all for the target;
- FAILED: the newest image baked for the target failed its smoke test
  (`bakery:smoke=failed`) and nothing newer is current. A bake whose Packer build failed
  leaves no image behind, so it is not seen here: its DAG run shows it;
- otherwise the audit's status of the target's head: its current (channel) image, or,
  when nothing was promoted yet, its newest image (FRESH, STALE or BASE_STALE).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bakery.freshness import Freshness, FreshnessResult, format_time, render_line

FAILED = "FAILED"
# Promotions listed per target, newest first; older ones stay in the image tags.
PROMOTION_HISTORY_LENGTH = 5


def _created(result: FreshnessResult) -> datetime:
    if result.created is None:
        raise ValueError(f"{result.image_id}: an image row without a creation time")
    return result.created


def _last_bake(newest: FreshnessResult) -> dict[str, Any]:
    return {
        "image_id": newest.image_id,
        "name": newest.name,
        "result": newest.smoke or "untested",
        "at": format_time(_created(newest)),
        "dag_run_id": newest.dag_run_id,
    }


def _promotions(images: list[FreshnessResult]) -> list[dict[str, Any]]:
    promoted = sorted(
        (image for image in images if image.promoted_at),
        key=lambda image: image.promoted_at or "",
        reverse=True,
    )
    return [
        {
            "image_id": image.image_id,
            "name": image.name,
            "promoted_at": image.promoted_at,
            "superseded_at": image.superseded_at,
            "current": image.current,
        }
        for image in promoted[:PROMOTION_HISTORY_LENGTH]
    ]


def target_row(target: tuple[str, str, str], results: list[FreshnessResult]) -> dict[str, Any]:
    """The page's row of one target from the audit's rows for it."""
    image, cloud, region = target
    images = [r for r in results if r.status is not Freshness.MISSING]
    threshold = results[0].threshold_days
    row: dict[str, Any] = {
        "image": image,
        "cloud": cloud,
        "region": region,
        "threshold_days": threshold,
        "image_id": None,
        "name": None,
        "age_days": None,
        "promoted": False,
        "last_bake": None,
        "promotions": [],
    }
    if not images:
        missing = next(r for r in results if r.status is Freshness.MISSING)
        return {**row, "status": Freshness.MISSING.value, "detail": render_line(missing)}
    newest = max(images, key=_created)
    current = max((r for r in images if r.current), key=_created, default=None)
    head = current or newest
    failed = newest.smoke == "failed" and (current is None or _created(newest) > _created(current))
    detail = (
        f"the newest bake, {newest.name} ({newest.image_id}), failed its smoke test"
        if failed
        else render_line(head)
    )
    return {
        **row,
        "status": FAILED if failed else head.status.value,
        "detail": detail,
        "image_id": current.image_id if current else None,
        "name": current.name if current else None,
        "age_days": head.age_days,
        "promoted": current is not None,
        "last_bake": _last_bake(newest),
        "promotions": _promotions(images),
    }


def target_rows(results: Iterable[FreshnessResult]) -> list[dict[str, Any]]:
    """Every target the audit saw (each catalog target at least as MISSING), sorted by
    image, cloud and region."""
    by_target: dict[tuple[str, str, str], list[FreshnessResult]] = {}
    for result in results:
        by_target.setdefault(result.target, []).append(result)
    return [target_row(target, by_target[target]) for target in sorted(by_target)]
