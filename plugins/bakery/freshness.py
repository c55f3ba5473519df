"""Pure freshness classification: how old is each image, and is it stale?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from bakery.catalog import Catalog

REPORT_HEADER = "--- Golden Image Freshness Audit ---"


class Freshness(StrEnum):
    FRESH = "FRESH"
    STALE = "STALE"
    MISSING = "MISSING"


@dataclass(frozen=True)
class ImageRecord:
    """One baked image as a cloud reports it."""

    image: str  # catalog image name
    cloud: str
    region: str
    image_id: str
    name: str
    created: datetime


@dataclass(frozen=True)
class FreshnessResult:
    image: str
    cloud: str
    region: str
    status: Freshness
    threshold_days: int
    image_id: str | None = None
    name: str | None = None
    age_days: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status.value}


def age_in_days(created: datetime, now: datetime) -> int:
    """Whole days elapsed; an image made 23 h ago is 0 days old."""
    if created.tzinfo is None or now.tzinfo is None:
        raise ValueError("creation time and now must be timezone-aware (UTC)")
    return max(0, (now - created).days)


def classify(age_days: int, threshold_days: int) -> Freshness:
    """Stale only past the threshold: an image exactly `threshold_days` old is fresh."""
    return Freshness.STALE if age_days > threshold_days else Freshness.FRESH


def assess(
    catalog: Catalog, records: Iterable[ImageRecord], now: datetime
) -> list[FreshnessResult]:
    """Every image record classified, plus MISSING for catalog targets with no image."""
    thresholds = {image.name: image.freshness_days for image in catalog.images}
    results: list[FreshnessResult] = []
    covered: set[tuple[str, str, str]] = set()
    for record in records:
        threshold = thresholds.get(record.image)
        if threshold is None:
            continue  # an image bakery made for an entry since removed from the catalog
        age = age_in_days(record.created, now)
        covered.add((record.image, record.cloud, record.region))
        results.append(
            FreshnessResult(
                image=record.image,
                cloud=record.cloud,
                region=record.region,
                status=classify(age, threshold),
                threshold_days=threshold,
                image_id=record.image_id,
                name=record.name,
                age_days=age,
            )
        )
    for target in catalog.bake_targets():
        if (target.image, target.cloud.value, target.region) not in covered:
            results.append(
                FreshnessResult(
                    image=target.image,
                    cloud=target.cloud.value,
                    region=target.region,
                    status=Freshness.MISSING,
                    threshold_days=thresholds[target.image],
                )
            )
    return sorted(results, key=_stalest_first)


def _stalest_first(result: FreshnessResult) -> tuple[int, int, str, str]:
    missing_first = 0 if result.status is Freshness.MISSING else 1
    return (missing_first, -(result.age_days or 0), result.image, result.region)


def render_text(results: Iterable[FreshnessResult]) -> str:
    lines = [REPORT_HEADER]
    for result in results:
        where = f"({result.cloud}/{result.region})"
        if result.status is Freshness.MISSING:
            lines.append(f"[???] MISSING: no image of '{result.image}' in {where[1:-1]}. Bake it.")
        elif result.status is Freshness.STALE:
            lines.append(
                f"[!!!] STALE: '{result.name}' is {result.age_days} days old!"
                f" Re-bake suggested. {where}"
            )
        else:
            lines.append(f"[OK] FRESH: '{result.name}' is {result.age_days} days old. {where}")
    return "\n".join(lines)
