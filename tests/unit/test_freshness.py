"""Unit tests for freshness: whole-day ages, the stale threshold, MISSING targets, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.catalog import Catalog, load_catalog
from bakery.freshness import (
    REPORT_HEADER,
    Freshness,
    FreshnessResult,
    ImageRecord,
    age_in_days,
    assess,
    classify,
    render_text,
)
from tests.catalog_files import write_cleanup_script

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def record(
    image: str = "web",
    *,
    age: timedelta,
    region: str = "us-east-1",
    name: str | None = None,
    image_id: str = "ami-1",
) -> ImageRecord:
    return ImageRecord(
        image=image,
        cloud="aws",
        region=region,
        image_id=image_id,
        name=name or f"{image}-{image_id}",
        created=NOW - age,
    )


def image_entry(name: str, regions: list[str], freshness_days: int = 30) -> dict[str, Any]:
    return {
        "name": name,
        "owners": ["web-team"],
        "template": "linux.pkr.hcl",
        "freshness_days": freshness_days,
        "targets": {
            "aws": {"regions": regions, "source": {"ami_id": "ami-0123456789abcdef0"}},
        },
    }


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "linux.pkr.hcl").write_text('source "amazon-ebs" "linux" {}\n')
    write_cleanup_script(tmp_path)
    path = tmp_path / "catalog.yaml"
    document = {
        "images": [
            image_entry("web", ["us-east-1", "eu-west-1"], freshness_days=30),
            image_entry("db", ["us-east-1"], freshness_days=7),
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_catalog(path)


# --- age and classification ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "days"),
    [
        (timedelta(0), 0),
        (timedelta(hours=23, minutes=59, seconds=59), 0),
        (DAY, 1),
        (29 * DAY + timedelta(hours=23), 29),
        (30 * DAY, 30),
        (30 * DAY + timedelta(seconds=1), 30),
        (31 * DAY - timedelta(seconds=1), 30),
        (31 * DAY, 31),
        (400 * DAY + timedelta(hours=12), 400),
    ],
)
def test_age_is_whole_days_rounded_down(age: timedelta, days: int) -> None:
    assert age_in_days(NOW - age, NOW) == days


def test_age_of_an_image_from_the_future_is_zero() -> None:
    assert age_in_days(NOW + timedelta(hours=3), NOW) == 0


def test_age_compares_instants_across_time_zones() -> None:
    # 2025-05-31 15:00 at UTC+2 is 13:00 UTC: 23 h before NOW, though the dates differ by one.
    created = datetime(2025, 5, 31, 15, 0, tzinfo=timezone(timedelta(hours=2)))
    assert age_in_days(created, NOW) == 0
    assert age_in_days(created - timedelta(hours=1), NOW) == 1


@pytest.mark.parametrize(
    ("created", "now"),
    [
        (datetime(2025, 1, 1), NOW),  # noqa: DTZ001
        (NOW - DAY, datetime(2025, 6, 1)),  # noqa: DTZ001
    ],
)
def test_naive_datetimes_are_rejected(created: datetime, now: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        age_in_days(created, now)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (29 * DAY + timedelta(hours=23), Freshness.FRESH),
        (30 * DAY, Freshness.FRESH),
        (30 * DAY + timedelta(seconds=1), Freshness.FRESH),
        (30 * DAY + timedelta(hours=23, minutes=59), Freshness.FRESH),
        (31 * DAY, Freshness.STALE),
        (137 * DAY, Freshness.STALE),
    ],
)
def test_classification_on_day_boundaries_with_a_30_day_threshold(
    age: timedelta, expected: Freshness
) -> None:
    assert classify(age_in_days(NOW - age, NOW), 30) is expected


def test_classify_is_stale_only_past_the_threshold() -> None:
    assert classify(7, 7) is Freshness.FRESH
    assert classify(8, 7) is Freshness.STALE
    assert classify(0, 1) is Freshness.FRESH


# --- assess -------------------------------------------------------------------------------


def test_assess_uses_each_images_own_threshold(catalog: Catalog) -> None:
    records = [
        record("web", age=10 * DAY, region="us-east-1", image_id="ami-w1"),
        record("web", age=10 * DAY, region="eu-west-1", image_id="ami-w2"),
        record("db", age=10 * DAY, region="us-east-1", image_id="ami-d1"),
    ]
    results = {(r.image, r.region): r for r in assess(catalog, records, NOW)}
    assert results[("web", "us-east-1")].status is Freshness.FRESH
    assert results[("web", "us-east-1")].threshold_days == 30
    assert results[("db", "us-east-1")].status is Freshness.STALE
    assert results[("db", "us-east-1")].threshold_days == 7
    assert results[("db", "us-east-1")].age_days == 10
    assert results[("db", "us-east-1")].image_id == "ami-d1"


def test_assess_reports_missing_for_targets_without_images(catalog: Catalog) -> None:
    results = assess(catalog, [record("web", age=DAY, region="us-east-1")], NOW)
    missing = {(r.image, r.cloud, r.region) for r in results if r.status is Freshness.MISSING}
    assert missing == {("web", "aws", "eu-west-1"), ("db", "aws", "us-east-1")}
    for result in results:
        if result.status is Freshness.MISSING:
            assert (result.image_id, result.name, result.age_days) == (None, None, None)


def test_assess_of_no_records_is_all_missing(catalog: Catalog) -> None:
    results = assess(catalog, [], NOW)
    assert len(results) == len(catalog.bake_targets()) == 3
    assert all(r.status is Freshness.MISSING for r in results)


def test_assess_ignores_images_not_in_the_catalog(catalog: Catalog) -> None:
    records = [
        record("web", age=DAY, region="us-east-1"),
        record("web", age=DAY, region="eu-west-1", image_id="ami-2"),
        record("db", age=DAY, image_id="ami-3"),
        record("retired", age=900 * DAY, image_id="ami-old"),
    ]
    results = assess(catalog, records, NOW)
    assert "retired" not in {r.image for r in results}
    assert "ami-old" not in {r.image_id for r in results}
    assert len(results) == 3


def test_assess_sorts_missing_first_then_stalest(catalog: Catalog) -> None:
    records = [
        record("web", age=2 * DAY, region="us-east-1", image_id="ami-young"),
        record("web", age=137 * DAY, region="us-east-1", image_id="ami-old"),
        record("db", age=40 * DAY, image_id="ami-db"),
    ]
    results = assess(catalog, records, NOW)
    assert [(r.status, r.image_id) for r in results] == [
        (Freshness.MISSING, None),  # web in eu-west-1
        (Freshness.STALE, "ami-old"),
        (Freshness.STALE, "ami-db"),
        (Freshness.FRESH, "ami-young"),
    ]


def test_assess_rejects_naive_creation_times(catalog: Catalog) -> None:
    naive = ImageRecord("web", "aws", "us-east-1", "ami-1", "web-1", datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        assess(catalog, [naive], NOW)


def test_result_as_dict_has_plain_status() -> None:
    result = FreshnessResult("web", "aws", "us-east-1", Freshness.STALE, 30, "ami-1", "w", 40)
    as_dict = result.as_dict()
    assert as_dict["status"] == "STALE"
    assert type(as_dict["status"]) is str
    assert as_dict["age_days"] == 40


# --- render_text --------------------------------------------------------------------------


def test_render_text_lines() -> None:
    results = [
        FreshnessResult("web", "aws", "eu-west-1", Freshness.MISSING, 30),
        FreshnessResult("web", "aws", "us-east-1", Freshness.STALE, 30, "ami-1", "web-v1", 137),
        FreshnessResult("web", "aws", "us-east-1", Freshness.FRESH, 30, "ami-2", "web-v2", 0),
    ]
    assert render_text(results).splitlines() == [
        "--- Golden Image Freshness Audit ---",
        "[???] MISSING: no image of 'web' in aws/eu-west-1. Bake it.",
        "[!!!] STALE: 'web-v1' is 137 days old! Re-bake suggested. (aws/us-east-1)",
        "[OK] FRESH: 'web-v2' is 0 days old. (aws/us-east-1)",
    ]


def test_render_text_of_nothing_is_the_header() -> None:
    assert render_text([]) == REPORT_HEADER == "--- Golden Image Freshness Audit ---"


def test_assess_then_render_end_to_end(catalog: Catalog) -> None:
    records = [
        record("web", age=137 * DAY + timedelta(hours=5), name="web-v1", image_id="ami-1"),
        record("web", age=timedelta(hours=3), name="web-v2", image_id="ami-2"),
        record("web", age=3 * DAY, region="eu-west-1", name="web-v3", image_id="ami-3"),
        record("db", age=7 * DAY, name="db-v1", image_id="ami-4"),
    ]
    assert render_text(assess(catalog, records, NOW)).splitlines() == [
        REPORT_HEADER,
        "[!!!] STALE: 'web-v1' is 137 days old! Re-bake suggested. (aws/us-east-1)",
        "[OK] FRESH: 'db-v1' is 7 days old. (aws/us-east-1)",
        "[OK] FRESH: 'web-v3' is 3 days old. (aws/eu-west-1)",
        "[OK] FRESH: 'web-v2' is 0 days old. (aws/us-east-1)",
    ]
