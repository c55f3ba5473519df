"""The audit's pure decisions without a cloud: statuses on day boundaries, precedence,
sorting, what is re-baked and alerted, the JSON report's schema and its atomic write,
and the concurrent gather's shape (with a stub in place of each region's listing)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bakery import audit as audit_module
from bakery.audit import (
    InventoryError,
    Location,
    LocationInventory,
    catalog_locations,
    gather,
    parse_time,
)
from bakery.catalog import Catalog, load_catalog
from bakery.freshness import (
    REPORT_HEADER,
    Freshness,
    FreshnessResult,
    ImageRecord,
    assess,
    classify_image,
    rebake_images,
    render_text,
    stale_alert,
    summarize,
)
from bakery.report import SCHEMA_VERSION, build_report, default_report_path, write_report
from tests.catalog_files import write_cleanup_script

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DAY = timedelta(days=1)

REPORT_KEYS = {
    "schema_version",
    "generated_at",
    "stale_after_days",
    "total",
    "counts",
    "rebake",
    "inventory",
    "rows",
    "targets",
    "broken",
}
ROW_KEYS = {
    "image",
    "cloud",
    "region",
    "image_id",
    "name",
    "created",
    "age_days",
    "status",
    "threshold_days",
    "channel",
    "current",
    "source_image_id",
    "source_age_days",
    "in_use_by",
    "superseded_by",
    "smoke",
    "promoted_at",
    "superseded_at",
    "dag_run_id",
    "broken",
}


def entry(name: str, regions: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "owners": ["platform"],
        "template": "linux.pkr.hcl",
        "targets": {"aws": {"regions": regions, "source": {"ami_id": "ami-0123456789abcdef0"}}},
        **extra,
    }


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "linux.pkr.hcl").write_text('source "amazon-ebs" "linux" {}\n')
    write_cleanup_script(tmp_path)
    path = tmp_path / "catalog.yaml"
    document = {
        "images": [
            entry("web", ["us-east-1", "eu-west-1"]),
            entry("db", ["us-east-1"], freshness_days=7, channel="prod"),
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_catalog(path)


def rec(
    image_id: str,
    age: timedelta,
    *,
    image: str = "web",
    region: str = "us-east-1",
    channel: str | None = None,
    promoted: bool = False,
    rolled_back: bool = False,
    source_age: timedelta | None = None,
    in_use_by: str | None = None,
) -> ImageRecord:
    return ImageRecord(
        image=image,
        cloud="aws",
        region=region,
        image_id=image_id,
        name=f"{image}-{image_id}",
        created=NOW - age,
        channel=channel,
        promoted=promoted or channel is not None,
        rolled_back=rolled_back,
        source_image_id="ami-base" if source_age is not None else None,
        source_created=NOW - source_age if source_age is not None else None,
        in_use_by=in_use_by,
    )


def by_id(results: list[FreshnessResult]) -> dict[str | None, FreshnessResult]:
    return {result.image_id: result for result in results}


def present(results: list[FreshnessResult]) -> list[FreshnessResult]:
    return [result for result in results if result.status is not Freshness.MISSING]


# --- day boundaries with a frozen now ------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "days", "status"),
    [
        (timedelta(0), 0, Freshness.FRESH),
        (30 * DAY, 30, Freshness.FRESH),  # exactly the threshold is still fresh
        (31 * DAY - timedelta(seconds=1), 30, Freshness.FRESH),
        (31 * DAY, 31, Freshness.STALE),
        (137 * DAY + timedelta(hours=5), 137, Freshness.STALE),
    ],
)
def test_whole_day_age_against_the_catalog_threshold(
    catalog: Catalog, age: timedelta, days: int, status: Freshness
) -> None:
    (result,) = present(assess(catalog, [rec("ami-1", age, channel="stable")], NOW))
    assert (result.age_days, result.status, result.threshold_days) == (days, status, 30)


def test_each_image_uses_its_own_threshold_and_the_override_replaces_all(
    catalog: Catalog,
) -> None:
    records = [
        rec("ami-web", 10 * DAY, channel="stable"),
        rec("ami-db", 8 * DAY, image="db", channel="prod"),
    ]
    statuses = {r.image_id: (r.status, r.threshold_days) for r in assess(catalog, records, NOW)}
    assert statuses["ami-web"] == (Freshness.FRESH, 30)
    assert statuses["ami-db"] == (Freshness.STALE, 7)
    overridden = {
        r.image_id: (r.status, r.threshold_days)
        for r in assess(catalog, records, NOW, stale_after_days=9)
    }
    assert overridden["ami-web"] == (Freshness.STALE, 9)
    assert overridden["ami-db"] == (Freshness.FRESH, 9)


def test_missing_for_every_target_without_an_image(catalog: Catalog) -> None:
    results = assess(catalog, [rec("ami-1", DAY, channel="stable")], NOW)
    missing = [r for r in results if r.status is Freshness.MISSING]
    assert {(r.image, r.region) for r in missing} == {("web", "eu-west-1"), ("db", "us-east-1")}
    db = next(r for r in missing if r.image == "db")
    assert (db.threshold_days, db.channel, db.current, db.image_id) == (7, "prod", False, None)


# --- superseded but in use ----------------------------------------------------------------


def test_superseded_image_still_in_use_is_flagged_with_its_successor(catalog: Catalog) -> None:
    records = [
        rec("ami-old", 45 * DAY, promoted=True, in_use_by="instance i-1"),
        rec("ami-mid", 20 * DAY, promoted=True, in_use_by="launch template lt v3"),
        rec("ami-new", 2 * DAY, channel="stable", in_use_by="instance i-2"),
    ]
    results = by_id(assess(catalog, records, NOW))
    assert results["ami-old"].status is Freshness.SUPERSEDED_IN_USE  # outranks STALE
    assert results["ami-old"].superseded_by == "ami-new"
    assert results["ami-mid"].status is Freshness.SUPERSEDED_IN_USE
    assert results["ami-new"].status is Freshness.FRESH
    assert results["ami-new"].current is True
    assert results["ami-new"].superseded_by is None


def test_superseded_but_unused_images_are_judged_by_age(catalog: Catalog) -> None:
    records = [
        rec("ami-old", 45 * DAY, promoted=True),
        rec("ami-mid", 20 * DAY, promoted=True),
        rec("ami-new", 2 * DAY, channel="stable"),
    ]
    results = by_id(assess(catalog, records, NOW))
    assert results["ami-old"].status is Freshness.STALE
    assert results["ami-mid"].status is Freshness.FRESH
    assert results["ami-mid"].superseded_by == "ami-new"


def test_in_use_without_a_newer_promoted_image_is_not_superseded(catalog: Catalog) -> None:
    records = [
        rec("ami-current", 10 * DAY, channel="stable", in_use_by="instance i-1"),
        # Newer, but never promoted (its smoke test failed): not a successor.
        rec("ami-unpromoted", DAY),
        rec("ami-older", 40 * DAY, in_use_by="instance i-2"),
    ]
    results = by_id(assess(catalog, records, NOW))
    assert results["ami-current"].status is Freshness.FRESH
    assert results["ami-older"].status is Freshness.SUPERSEDED_IN_USE
    assert results["ami-older"].superseded_by == "ami-current"
    only_unpromoted_newer = [rec("ami-a", 40 * DAY, in_use_by="instance i-2"), rec("ami-b", DAY)]
    results = by_id(assess(catalog, only_unpromoted_newer, NOW))
    assert results["ami-a"].status is Freshness.STALE


def test_after_a_rollback_the_abandoned_newer_image_supersedes_nothing(catalog: Catalog) -> None:
    records = [
        rec("ami-abandoned", DAY, promoted=True, rolled_back=True, in_use_by="instance i-9"),
        rec("ami-current", 10 * DAY, channel="stable", in_use_by="instance i-1"),
    ]
    results = by_id(assess(catalog, records, NOW))
    assert results["ami-current"].status is Freshness.FRESH
    assert results["ami-abandoned"].status is Freshness.FRESH


def test_a_newer_promoted_image_supersedes_even_without_a_current_one(catalog: Catalog) -> None:
    records = [
        rec("ami-old", 3 * DAY, promoted=True, in_use_by="instance i-1"),
        rec("ami-new", DAY, promoted=True),
    ]
    results = by_id(assess(catalog, records, NOW))
    assert results["ami-old"].status is Freshness.SUPERSEDED_IN_USE
    assert results["ami-old"].superseded_by == "ami-new"


def test_images_are_only_compared_within_their_own_target(catalog: Catalog) -> None:
    records = [
        rec("ami-us", 5 * DAY, promoted=True, in_use_by="instance i-1"),
        rec("ami-eu", DAY, region="eu-west-1", channel="stable"),
    ]
    assert by_id(assess(catalog, records, NOW))["ami-us"].status is Freshness.FRESH


# --- stale base -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_age", "source_age", "status"),
    [
        (2 * DAY, 30 * DAY, Freshness.FRESH),
        (2 * DAY, 31 * DAY, Freshness.BASE_STALE),
        (2 * DAY, 400 * DAY, Freshness.BASE_STALE),
        (31 * DAY, 400 * DAY, Freshness.STALE),  # its own age outranks its base's
        (2 * DAY, None, Freshness.FRESH),  # source unknown or gone
    ],
)
def test_base_stale_when_the_source_image_is_past_the_threshold(
    catalog: Catalog, image_age: timedelta, source_age: timedelta | None, status: Freshness
) -> None:
    record = rec("ami-1", image_age, channel="stable", source_age=source_age)
    (result,) = present(assess(catalog, [record], NOW))
    assert result.status is status
    expected_source_age = None if source_age is None else source_age.days
    assert result.source_age_days == expected_source_age


def test_a_superseded_image_in_use_on_a_stale_base_is_superseded(catalog: Catalog) -> None:
    records = [
        rec("ami-old", 3 * DAY, promoted=True, source_age=90 * DAY, in_use_by="instance i-1"),
        rec("ami-new", DAY, channel="stable"),
    ]
    assert by_id(assess(catalog, records, NOW))["ami-old"].status is Freshness.SUPERSEDED_IN_USE


@given(
    age=st.integers(min_value=0, max_value=1000),
    threshold=st.integers(min_value=1, max_value=400),
    source_age=st.none() | st.integers(min_value=0, max_value=1000),
    in_use=st.booleans(),
    superseded=st.booleans(),
    current=st.booleans(),
)
def test_classify_image_precedence(
    age: int, threshold: int, source_age: int | None, in_use: bool, superseded: bool, current: bool
) -> None:
    status = classify_image(
        age_days=age,
        threshold_days=threshold,
        current=current,
        superseded_by="ami-next" if superseded else None,
        in_use_by="instance i-1" if in_use else None,
        source_age_days=source_age,
    )
    if in_use and superseded and not current:
        assert status is Freshness.SUPERSEDED_IN_USE
    elif age > threshold:
        assert status is Freshness.STALE
    elif source_age is not None and source_age > threshold:
        assert status is Freshness.BASE_STALE
    else:
        assert status is Freshness.FRESH


# --- sorting and the text report -------------------------------------------------------------


def test_sorted_missing_first_then_stalest_then_by_image_region_and_id(catalog: Catalog) -> None:
    records = [
        rec("ami-b", 5 * DAY, channel="stable"),
        rec("ami-young", 0 * DAY, promoted=True),
        rec("ami-a", 5 * DAY, promoted=True),
        rec("ami-old", 137 * DAY, promoted=True),
        rec("ami-db", 5 * DAY, image="db", channel="prod"),
    ]
    order = [(r.status.value, r.image, r.region, r.image_id) for r in assess(catalog, records, NOW)]
    assert order == [
        ("MISSING", "web", "eu-west-1", None),
        ("STALE", "web", "us-east-1", "ami-old"),
        ("FRESH", "db", "us-east-1", "ami-db"),
        ("FRESH", "web", "us-east-1", "ami-a"),
        ("FRESH", "web", "us-east-1", "ami-b"),
        ("FRESH", "web", "us-east-1", "ami-young"),
    ]


def test_text_report_lines_for_every_status(catalog: Catalog) -> None:
    records = [
        rec("ami-1", 137 * DAY, promoted=True),
        rec("ami-2", 0 * DAY, channel="stable"),
        rec("ami-3", 12 * DAY, promoted=True, in_use_by="instance i-0abc"),
        rec("ami-4", 3 * DAY, region="eu-west-1", channel="stable", source_age=200 * DAY),
    ]
    lines = render_text(assess(catalog, records, NOW)).splitlines()
    assert lines == [
        REPORT_HEADER,
        "[???] MISSING: no image of 'db' in aws/us-east-1. Bake it.",
        "[!!!] STALE: 'web-ami-1' is 137 days old! Re-bake suggested. (aws/us-east-1)",
        "[!!] SUPERSEDED_IN_USE: 'web-ami-3' is 12 days old and superseded by ami-2, but"
        " instance i-0abc still uses it. Move it to the current image. (aws/us-east-1)",
        "[!!] BASE_STALE: 'web-ami-4' is 3 days old, but its source image ami-base is 200"
        " days old! Re-bake on a newer base suggested. (aws/eu-west-1)",
        "[OK] FRESH: 'web-ami-2' is 0 days old. (aws/us-east-1)",
    ]


# --- re-bake choice, summary and alert -------------------------------------------------------


def test_rebake_when_the_current_image_is_stale_or_a_target_is_missing(catalog: Catalog) -> None:
    records = [
        rec("ami-web-us", 40 * DAY, channel="stable"),
        rec("ami-web-eu", 2 * DAY, region="eu-west-1", channel="stable"),
        rec("ami-web-eu-old", 90 * DAY, region="eu-west-1", promoted=True),
    ]
    assert rebake_images(assess(catalog, records, NOW)) == ["db", "web"]


def test_no_rebake_for_stale_old_versions_or_a_stale_base(catalog: Catalog) -> None:
    records = [
        rec("ami-web-us", 2 * DAY, channel="stable", source_age=300 * DAY),
        rec("ami-web-us-old", 90 * DAY, promoted=True),
        rec("ami-web-eu", 2 * DAY, region="eu-west-1", channel="stable"),
        rec("ami-db", DAY, image="db", channel="prod"),
    ]
    assert rebake_images(assess(catalog, records, NOW)) == []


def test_without_a_promoted_image_the_newest_one_decides(catalog: Catalog) -> None:
    records = [
        rec("ami-web-us", 40 * DAY),
        rec("ami-web-eu", 2 * DAY, region="eu-west-1"),
        rec("ami-db", DAY, image="db", channel="prod"),
    ]
    assert rebake_images(assess(catalog, records, NOW)) == ["web"]


def test_summary_counts_every_status_and_lists_what_needs_attention(catalog: Catalog) -> None:
    records = [
        rec("ami-cur", 40 * DAY, channel="stable"),
        rec("ami-used", 50 * DAY, promoted=True, in_use_by="instance i-1"),
        rec("ami-gone", 90 * DAY, promoted=True),
        rec("ami-eu", DAY, region="eu-west-1", channel="stable", source_age=60 * DAY),
    ]
    summary = summarize(assess(catalog, records, NOW), generated_at=NOW)
    assert summary["counts"] == {
        "FRESH": 0,
        "STALE": 2,
        "MISSING": 1,
        "SUPERSEDED_IN_USE": 1,
        "BASE_STALE": 1,
    }
    assert summary["total"] == 5
    assert summary["rebake"] == ["db", "web"]
    assert summary["generated_at"] == "2026-03-01T06:00:00Z"
    attention = [(row["status"], row["image_id"]) for row in summary["attention"]]
    # ami-gone is stale but neither current nor used: prune's business, not an alert.
    assert attention == [
        ("MISSING", None),
        ("SUPERSEDED_IN_USE", "ami-used"),
        ("STALE", "ami-cur"),
        ("BASE_STALE", "ami-eu"),
    ]
    json.dumps(summary)  # an XCom: JSON-safe

    alert = stale_alert(summary)
    assert alert.startswith("BAKERY FRESHNESS ALERT: re-bake db, web | 1 MISSING: db aws/us-east-1")
    assert "1 STALE: web aws/us-east-1 ami-cur 40d (> 30d)" in alert
    assert "1 SUPERSEDED_IN_USE: web aws/us-east-1 ami-used 50d used by instance i-1" in alert
    assert "1 BASE_STALE: web aws/eu-west-1 ami-eu 1d on a 60d-old base" in alert
    assert "\n" not in alert


def test_no_alert_when_everything_that_matters_is_fresh(catalog: Catalog) -> None:
    records = [
        rec("ami-us", DAY, channel="stable"),
        rec("ami-us-old", 90 * DAY, promoted=True),
        rec("ami-eu", DAY, region="eu-west-1", channel="stable"),
        rec("ami-db", DAY, image="db", channel="prod"),
    ]
    summary = summarize(assess(catalog, records, NOW), generated_at=NOW)
    assert summary["counts"]["STALE"] == 1
    assert summary["attention"] == []
    assert stale_alert(summary) == ""


def test_alert_names_at_most_ten_rows_per_status() -> None:
    rows = [
        {"status": "MISSING", "image": f"img{i:02}", "cloud": "aws", "region": "us-east-1"}
        for i in range(13)
    ]
    alert = stale_alert({"attention": rows, "rebake": []})
    assert "13 MISSING:" in alert and "img09" in alert and "img10" not in alert
    assert alert.endswith("(+3 more)")


# --- JSON report ------------------------------------------------------------------------------


def test_json_report_marks_every_row_of_a_broken_target(catalog: Catalog) -> None:
    records = [rec("ami-1", 31 * DAY, channel="stable"), rec("ami-2", 40 * DAY, promoted=True)]
    results = assess(catalog, records, NOW)
    broken = [
        {
            "image": "web",
            "cloud": "aws",
            "region": "us-east-1",
            "consecutive_failures": 3,
            "step": "smoke_test",
        }
    ]
    report = build_report(
        results,
        generated_at=NOW,
        thresholds={"web": 30, "db": 7},
        default_threshold=30,
        override=None,
        broken=broken,
    )
    assert report["broken"] == broken
    marked = {
        (row["image"], row["region"], row["image_id"]) for row in report["rows"] if row["broken"]
    }
    assert marked == {("web", "us-east-1", "ami-1"), ("web", "us-east-1", "ami-2")}


def test_json_report_schema(catalog: Catalog) -> None:
    records = [
        rec("ami-1", 31 * DAY, channel="stable", source_age=5 * DAY),
        rec("ami-2", 40 * DAY, promoted=True, in_use_by="instance i-1"),
    ]
    results = assess(catalog, records, NOW)
    report = build_report(
        results,
        generated_at=NOW,
        thresholds={"web": 30, "db": 7},
        default_threshold=30,
        override=None,
        inventory={"api_calls": 4, "locations": []},
    )
    assert set(report) == REPORT_KEYS
    assert report["schema_version"] == SCHEMA_VERSION == 1
    assert report["generated_at"] == "2026-03-01T06:00:00Z"
    assert report["stale_after_days"] == {
        "default": 30,
        "override": None,
        "by_image": {"web": 30, "db": 7},
    }
    assert set(report["counts"]) == {status.value for status in Freshness}
    assert sum(report["counts"].values()) == report["total"] == len(report["rows"]) == 4
    assert all(set(row) == ROW_KEYS for row in report["rows"])
    rows = {row["image_id"]: row for row in report["rows"]}
    assert rows["ami-1"] == {
        "image": "web",
        "cloud": "aws",
        "region": "us-east-1",
        "image_id": "ami-1",
        "name": "web-ami-1",
        "created": "2026-01-29T06:00:00Z",
        "age_days": 31,
        "status": "STALE",
        "threshold_days": 30,
        "channel": "stable",
        "current": True,
        "source_image_id": "ami-base",
        "source_age_days": 5,
        "in_use_by": None,
        "superseded_by": None,
        "smoke": None,
        "promoted_at": None,
        "superseded_at": None,
        "dag_run_id": None,
        "broken": False,
    }
    assert report["broken"] == []
    assert rows["ami-2"]["status"] == "SUPERSEDED_IN_USE"
    assert rows["ami-2"]["superseded_by"] == "ami-1"
    assert rows["ami-2"]["current"] is False
    assert rows[None]["status"] == "MISSING"
    assert json.loads(json.dumps(report)) == report


def test_report_is_written_atomically_and_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "freshness.json"
    write_report({"schema_version": 1, "rows": []}, path)
    assert json.loads(path.read_text()) == {"schema_version": 1, "rows": []}
    assert path.stat().st_mode & 0o777 == 0o644
    write_report({"schema_version": 1, "rows": [1]}, path)
    assert json.loads(path.read_text())["rows"] == [1]
    with pytest.raises(TypeError):
        write_report({"not json": object()}, path)
    # A failed write leaves the previous report whole, and no temporary file behind.
    assert json.loads(path.read_text())["rows"] == [1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["freshness.json"]


def test_default_report_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BAKERY_REPORT_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert default_report_path() == tmp_path / "home" / "bakery" / "freshness.json"
    monkeypatch.setenv("BAKERY_REPORT_DIR", str(tmp_path / "reports"))
    assert default_report_path() == tmp_path / "reports" / "freshness.json"
    monkeypatch.delenv("BAKERY_REPORT_DIR")
    monkeypatch.delenv("AIRFLOW_HOME")
    assert default_report_path() == Path.home() / "airflow" / "bakery" / "freshness.json"


# --- gathering (no cloud: each location's listing is stubbed) ----------------------------------


def test_catalog_locations_group_images_by_connection_and_region(catalog: Catalog) -> None:
    assert catalog_locations(catalog) == {
        Location("aws_default", "eu-west-1"): frozenset({"web"}),
        Location("aws_default", "us-east-1"): frozenset({"web", "db"}),
    }


def test_parse_time_reads_aws_timestamps_as_utc() -> None:
    assert parse_time("2026-01-04T22:00:00.000Z") == datetime(2026, 1, 4, 22, tzinfo=UTC)
    assert parse_time("2026-01-04T23:00:00+01:00").utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_time("P3D")


def _stub_listing(delay: float, active: list[int], lock: threading.Lock) -> Any:
    def fake(location: Location, images: Any) -> LocationInventory:
        with lock:
            active.append(1)
        time.sleep(delay)
        if location.region == "ap-south-1":
            raise ConnectionError("endpoint unreachable")
        base = "ami-base-us" if location.region == "us-east-1" else None
        record = ImageRecord(
            image="web",
            cloud="aws",
            region=location.region,
            image_id=f"ami-{location.region}",
            name="web",
            created=NOW,
            source_image_id="ami-base-us",
        )
        sources = {base: NOW - 3 * DAY} if base else {}
        return LocationInventory(location, [record], sources, Counter(DescribeImages=2), delay)

    return fake


def test_gather_lists_locations_concurrently_and_shares_source_ages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = _stub_listing(0, [], threading.Lock())
    # Each listing returns only once all three are in flight: listed one after another,
    # the first would wait alone and break the barrier (whatever the machine's load).
    all_in_flight = threading.Barrier(3, timeout=30)

    def together(location: Location, images: Any) -> LocationInventory:
        all_in_flight.wait()
        return listing(location, images)

    monkeypatch.setattr(audit_module, "gather_location", together)
    locations = {Location("c", r): {"web"} for r in ("us-east-1", "eu-west-1", "us-west-2")}
    inventory = gather(locations)
    assert inventory.api_calls == 6
    # eu-west-1's copy names a source only found in us-east-1: its age is still known.
    assert {r.region: r.source_created for r in inventory.records} == {
        "us-east-1": NOW - 3 * DAY,
        "eu-west-1": NOW - 3 * DAY,
        "us-west-2": NOW - 3 * DAY,
    }
    assert inventory.stats()["locations"][0]["api_calls"] == {"DescribeImages": 2}


def test_gather_fails_whole_when_a_location_cannot_be_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audit_module, "gather_location", _stub_listing(0, [], threading.Lock()))
    locations = {Location("c", r): {"web"} for r in ("us-east-1", "ap-south-1")}
    with pytest.raises(InventoryError, match=r"c/ap-south-1: ConnectionError: endpoint"):
        gather(locations)


def test_gather_respects_the_worker_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    peak = [0, 0]
    lock = threading.Lock()

    def fake(location: Location, images: Any) -> LocationInventory:
        with lock:
            peak[0] += 1
            peak[1] = max(peak)
        time.sleep(0.05)
        with lock:
            peak[0] -= 1
        return LocationInventory(location, [], {}, Counter(), 0.05)

    monkeypatch.setattr(audit_module, "gather_location", fake)
    gather({Location("c", f"r{i}"): set() for i in range(8)}, max_workers=3)
    assert peak[1] == 3
