"""Pure freshness classification: how old is each image, and is it stale?

Statuses, most urgent first for the images that serve a channel:

- MISSING: a catalog target (image x cloud x region) with no image at all;
- SUPERSEDED_IN_USE: not the channel's current image, a newer promoted one exists, and
  an instance or launch template still launches it (consumers should move on);
- STALE: older than the image's threshold in whole days (exactly the threshold is fresh);
- BASE_STALE: fresh itself, but baked from a source image (`bakery:source-image`) that is
  older than the threshold, so it inherits that rot;
- FRESH: none of the above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bakery.catalog import Catalog

REPORT_HEADER = "--- Golden Image Freshness Audit ---"
# An alert line names at most this many rows per kind; the JSON report has them all.
ALERT_MAX_ITEMS = 10


class Freshness(StrEnum):
    FRESH = "FRESH"
    STALE = "STALE"
    MISSING = "MISSING"
    SUPERSEDED_IN_USE = "SUPERSEDED_IN_USE"
    BASE_STALE = "BASE_STALE"


@dataclass(frozen=True)
class ImageRecord:
    """One baked image as a cloud reports it (the optional fields come from its tags and
    from the region's instances and launch templates)."""

    image: str  # catalog image name
    cloud: str
    region: str
    image_id: str
    name: str
    created: datetime
    channel: str | None = None  # bakery:channel: the channel this image is current for
    promoted: bool = False  # bakery:promoted-at: promoted at least once
    rolled_back: bool = False  # bakery:rolled-back-at: a channel was rolled back from it
    source_image_id: str | None = None  # bakery:source-image
    source_created: datetime | None = None  # None: unknown, or the source is gone
    in_use_by: str | None = None  # e.g. "instance i-0abc"; None when nothing uses it
    smoke: str | None = None  # bakery:smoke: "passed", "failed", None while untested
    promoted_at: str | None = None  # bakery:promoted-at (UTC, as tagged)
    superseded_at: str | None = None  # bakery:superseded-at
    dag_run_id: str | None = None  # bakery:dag-run-id: the bake run that made it


@dataclass(frozen=True)
class FreshnessResult:
    """One row of the audit: an image's status, or a catalog target's MISSING."""

    image: str
    cloud: str
    region: str
    status: Freshness
    threshold_days: int
    image_id: str | None = None
    name: str | None = None
    age_days: int | None = None
    created: datetime | None = None
    channel: str | None = None  # the catalog's channel for this image
    current: bool = False  # the channel's current image
    source_image_id: str | None = None
    source_age_days: int | None = None
    in_use_by: str | None = None
    superseded_by: str | None = None  # the newer promoted image, for SUPERSEDED_IN_USE
    smoke: str | None = None
    promoted_at: str | None = None
    superseded_at: str | None = None
    dag_run_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status.value}

    @property
    def target(self) -> tuple[str, str, str]:
        return (self.image, self.cloud, self.region)


def age_in_days(created: datetime, now: datetime) -> int:
    """Whole days elapsed; an image made 23 h ago is 0 days old."""
    if created.tzinfo is None or now.tzinfo is None:
        raise ValueError("creation time and now must be timezone-aware (UTC)")
    return max(0, (now - created).days)


def classify(age_days: int, threshold_days: int) -> Freshness:
    """Stale only past the threshold: an image exactly `threshold_days` old is fresh."""
    return Freshness.STALE if age_days > threshold_days else Freshness.FRESH


def classify_image(
    *,
    age_days: int,
    threshold_days: int,
    current: bool = False,
    superseded_by: str | None = None,
    in_use_by: str | None = None,
    source_age_days: int | None = None,
) -> Freshness:
    """One image's status. Being superseded yet in use outranks age (re-baking would not
    help: a newer image exists already), and the image's own age outranks its base's."""
    if in_use_by and superseded_by and not current:
        return Freshness.SUPERSEDED_IN_USE
    if classify(age_days, threshold_days) is Freshness.STALE:
        return Freshness.STALE
    if source_age_days is not None and classify(source_age_days, threshold_days) is (
        Freshness.STALE
    ):
        return Freshness.BASE_STALE
    return Freshness.FRESH


def _successors(records: list[ImageRecord], channel: str) -> dict[str, str]:
    """Image id -> the newer promoted image that replaces it, within one target.

    The successor is the channel's current image when that is newer, else the newest
    image ever promoted and never rolled back from (a rollback makes an older image
    current again: images newer than it are abandoned, not successors).
    """
    current = [r for r in records if r.channel == channel]
    eligible = [r for r in records if r.channel == channel or (r.promoted and not r.rolled_back)]
    newest = max(eligible, key=lambda r: r.created, default=None)
    successors: dict[str, str] = {}
    for record in records:
        if record.channel == channel:
            continue
        newer_current = [c for c in current if c.created > record.created]
        if newer_current:
            successors[record.image_id] = newer_current[0].image_id
        elif newest is not None and newest.created > record.created:
            successors[record.image_id] = newest.image_id
    return successors


def assess(
    catalog: Catalog,
    records: Iterable[ImageRecord],
    now: datetime,
    *,
    stale_after_days: int | None = None,
) -> list[FreshnessResult]:
    """Every image record classified, plus MISSING for catalog targets with no image.

    `stale_after_days` overrides every image's `freshness_days` when set.
    """
    images = {image.name: image for image in catalog.images}
    # An image bakery made for an entry since removed from the catalog is not reported.
    kept = [record for record in records if record.image in images]
    by_target: dict[tuple[str, str, str], list[ImageRecord]] = {}
    for record in kept:
        by_target.setdefault((record.image, record.cloud, record.region), []).append(record)
    successors = {
        image_id: successor
        for (name, _, _), group in by_target.items()
        for image_id, successor in _successors(group, images[name].channel).items()
    }
    results: list[FreshnessResult] = []
    for record in kept:
        catalog_image = images[record.image]
        threshold = stale_after_days or catalog_image.freshness_days
        age = age_in_days(record.created, now)
        current = record.channel == catalog_image.channel
        source_age = (
            age_in_days(record.source_created, now) if record.source_created is not None else None
        )
        superseded_by = successors.get(record.image_id)
        results.append(
            FreshnessResult(
                image=record.image,
                cloud=record.cloud,
                region=record.region,
                status=classify_image(
                    age_days=age,
                    threshold_days=threshold,
                    current=current,
                    superseded_by=superseded_by,
                    in_use_by=record.in_use_by,
                    source_age_days=source_age,
                ),
                threshold_days=threshold,
                image_id=record.image_id,
                name=record.name,
                age_days=age,
                created=record.created,
                channel=catalog_image.channel,
                current=current,
                source_image_id=record.source_image_id,
                source_age_days=source_age,
                in_use_by=record.in_use_by,
                superseded_by=superseded_by,
                smoke=record.smoke,
                promoted_at=record.promoted_at,
                superseded_at=record.superseded_at,
                dag_run_id=record.dag_run_id,
            )
        )
    for target in catalog.bake_targets():
        if (target.image, target.cloud.value, target.region) not in by_target:
            results.append(
                FreshnessResult(
                    image=target.image,
                    cloud=target.cloud.value,
                    region=target.region,
                    status=Freshness.MISSING,
                    threshold_days=stale_after_days or images[target.image].freshness_days,
                    channel=images[target.image].channel,
                )
            )
    return sorted(results, key=_stalest_first)


def _stalest_first(result: FreshnessResult) -> tuple[int, int, str, str, str]:
    missing_first = 0 if result.status is Freshness.MISSING else 1
    return (
        missing_first,
        -(result.age_days or 0),
        result.image,
        result.region,
        result.image_id or "",
    )


def render_line(result: FreshnessResult) -> str:
    """The report line of one result (the same words in the task log and the CLI)."""
    where = f"({result.cloud}/{result.region})"
    if result.status is Freshness.MISSING:
        return f"[???] MISSING: no image of '{result.image}' in {where[1:-1]}. Bake it."
    if result.status is Freshness.STALE:
        return (
            f"[!!!] STALE: '{result.name}' is {result.age_days} days old!"
            f" Re-bake suggested. {where}"
        )
    if result.status is Freshness.SUPERSEDED_IN_USE:
        return (
            f"[!!] SUPERSEDED_IN_USE: '{result.name}' is {result.age_days} days old and"
            f" superseded by {result.superseded_by}, but {result.in_use_by} still uses it."
            f" Move it to the current image. {where}"
        )
    if result.status is Freshness.BASE_STALE:
        return (
            f"[!!] BASE_STALE: '{result.name}' is {result.age_days} days old, but its source"
            f" image {result.source_image_id} is {result.source_age_days} days old!"
            f" Re-bake on a newer base suggested. {where}"
        )
    return f"[OK] FRESH: '{result.name}' is {result.age_days} days old. {where}"


def render_text(results: Iterable[FreshnessResult]) -> str:
    return "\n".join([REPORT_HEADER, *(render_line(result) for result in results)])


def _heads(results: Iterable[FreshnessResult]) -> list[FreshnessResult]:
    """Per target, the row that matters for consumers: the MISSING row, else the channel's
    current image, else (nothing promoted yet) the newest image."""
    heads: dict[tuple[str, str, str], FreshnessResult] = {}
    for result in results:
        held = heads.get(result.target)
        if held is None or _head_rank(result) > _head_rank(held):
            heads[result.target] = result
    return sorted(heads.values(), key=_stalest_first)


def _head_rank(result: FreshnessResult) -> tuple[bool, bool, datetime]:
    created = result.created or datetime.min.replace(tzinfo=UTC)
    return (result.status is Freshness.MISSING, result.current, created)


def rebake_images(results: Iterable[FreshnessResult]) -> list[str]:
    """Catalog images to re-bake: a target is MISSING, or its promoted (current) image is
    STALE. BASE_STALE is reported but not re-baked automatically: a re-bake picks the
    newest base, and when that base is itself old a daily re-bake would only repeat."""
    return sorted(
        {
            head.image
            for head in _heads(results)
            if head.status in (Freshness.MISSING, Freshness.STALE)
        }
    )


def _row_brief(result: FreshnessResult) -> dict[str, Any]:
    return {
        "image": result.image,
        "cloud": result.cloud,
        "region": result.region,
        "status": result.status.value,
        "image_id": result.image_id,
        "name": result.name,
        "age_days": result.age_days,
        "threshold_days": result.threshold_days,
        "current": result.current,
        "source_age_days": result.source_age_days,
        "in_use_by": result.in_use_by,
    }


def summarize(results: list[FreshnessResult], *, generated_at: datetime) -> dict[str, Any]:
    """The small, JSON-safe digest the audit task returns (its XCom) and alerts are built
    from: counts per status, what to re-bake, and the rows that need someone.

    `attention` lists every target whose head (current image, or MISSING) is not FRESH
    and every superseded image still in use; stale old versions nobody uses are left to
    prune and appear only in the counts and the full report.
    """
    counts = {status.value: 0 for status in Freshness}
    for result in results:
        counts[result.status.value] += 1
    attention = [head for head in _heads(results) if head.status is not Freshness.FRESH]
    attention += [r for r in results if r.status is Freshness.SUPERSEDED_IN_USE]
    unique = {(r.target, r.image_id): r for r in attention}
    return {
        "generated_at": format_time(generated_at),
        "total": len(results),
        "counts": counts,
        "rebake": rebake_images(results),
        "attention": [_row_brief(r) for r in sorted(unique.values(), key=_stalest_first)],
    }


def stale_alert(summary: Mapping[str, Any]) -> str:
    """One alert-ready line from `summarize`'s digest; empty when nothing needs anyone.

    This is the hook point for notifier channels (Slack, e-mail, pager): they send this
    text, and read `summary` for structure.
    """
    attention = list(summary.get("attention") or [])
    if not attention:
        return ""
    parts: list[str] = []
    rebake = list(summary.get("rebake") or [])
    if rebake:
        parts.append(f"re-bake {', '.join(rebake)}")
    for status in (
        Freshness.MISSING,
        Freshness.STALE,
        Freshness.SUPERSEDED_IN_USE,
        Freshness.BASE_STALE,
    ):
        rows = [row for row in attention if row["status"] == status.value]
        if not rows:
            continue
        shown = [_alert_item(row) for row in rows[:ALERT_MAX_ITEMS]]
        more = f" (+{len(rows) - ALERT_MAX_ITEMS} more)" if len(rows) > ALERT_MAX_ITEMS else ""
        parts.append(f"{len(rows)} {status.value}: {'; '.join(shown)}{more}")
    return "BAKERY FRESHNESS ALERT: " + " | ".join(parts)


def _alert_item(row: Mapping[str, Any]) -> str:
    where = f"{row['image']} {row['cloud']}/{row['region']}"
    if row["status"] == Freshness.MISSING.value:
        return where
    detail = f"{where} {row['image_id']} {row['age_days']}d"
    if row["status"] == Freshness.STALE.value:
        return f"{detail} (> {row['threshold_days']}d)"
    if row["status"] == Freshness.SUPERSEDED_IN_USE.value:
        return f"{detail} used by {row['in_use_by']}"
    return f"{detail} on a {row['source_age_days']}d-old base"


def format_time(moment: datetime) -> str:
    """UTC, to the second, with a Z: how every time in the reports is written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
