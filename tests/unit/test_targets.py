"""The freshness page's per-target rows: status (incl. FAILED), current image, last bake,
promotion history, computed from the audit's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.catalog import Catalog, load_catalog
from bakery.freshness import ImageRecord, assess
from bakery.targets import PROMOTION_HISTORY_LENGTH, target_rows
from tests.catalog_files import write_cleanup_script

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "linux.pkr.hcl").write_text('source "amazon-ebs" "linux" {}\n')
    write_cleanup_script(tmp_path)
    aws = {"regions": ["us-east-1", "eu-west-1"], "source": {"ami_id": "ami-0123456789abcdef0"}}
    document = {
        "images": [
            {"name": "web", "owners": ["t"], "template": "linux.pkr.hcl", "targets": {"aws": aws}},
        ]
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_catalog(path)


def image(image_id: str, age_days: float, region: str = "us-east-1", **tags: Any) -> ImageRecord:
    return ImageRecord(
        image="web",
        cloud="aws",
        region=region,
        image_id=image_id,
        name=f"bakery-web-{image_id}",
        created=NOW - age_days * DAY,
        channel=tags.pop("channel", None),
        promoted=bool(tags.get("promoted_at")),
        dag_run_id=f"run-{image_id}",
        **tags,
    )


def rows(catalog: Catalog, *records: ImageRecord) -> dict[str, dict[str, Any]]:
    return {row["region"]: row for row in target_rows(assess(catalog, records, NOW))}


def test_current_image_fresh_with_history_newest_first(catalog: Catalog) -> None:
    found = rows(
        catalog,
        image(
            "ami-old",
            20,
            smoke="passed",
            promoted_at="2026-02-09T22:00:00Z",
            superseded_at="2026-02-27T22:00:00Z",
        ),
        image("ami-new", 2, smoke="passed", promoted_at="2026-02-27T22:00:00Z", channel="stable"),
    )
    row = found["us-east-1"]
    assert row["status"] == "FRESH"
    assert (row["image_id"], row["age_days"], row["promoted"]) == ("ami-new", 2, True)
    assert row["last_bake"] == {
        "image_id": "ami-new",
        "name": "bakery-web-ami-new",
        "result": "passed",
        "at": "2026-02-27T06:00:00Z",
        "dag_run_id": "run-ami-new",
    }
    assert [p["image_id"] for p in row["promotions"]] == ["ami-new", "ami-old"]
    assert row["promotions"][0]["current"] is True
    assert row["promotions"][1]["superseded_at"] == "2026-02-27T22:00:00Z"
    # The other region of the catalog has no image at all.
    assert found["eu-west-1"]["status"] == "MISSING"
    assert found["eu-west-1"]["last_bake"] is None and found["eu-west-1"]["image_id"] is None


def test_newest_bake_failing_its_smoke_test_marks_the_target_failed(catalog: Catalog) -> None:
    row = rows(
        catalog,
        image("ami-cur", 5, smoke="passed", promoted_at="2026-02-24T22:00:00Z", channel="stable"),
        image("ami-bad", 1, smoke="failed"),
    )["us-east-1"]
    assert row["status"] == "FAILED"
    assert row["image_id"] == "ami-cur"  # the channel still serves the good image
    assert row["last_bake"]["result"] == "failed"
    assert "ami-bad" in row["detail"] and "smoke test" in row["detail"]


def test_an_older_failed_bake_does_not_hide_a_newer_promotion(catalog: Catalog) -> None:
    row = rows(
        catalog,
        image("ami-bad", 9, smoke="failed"),
        image("ami-cur", 1, smoke="passed", promoted_at="2026-02-28T22:00:00Z", channel="stable"),
    )["us-east-1"]
    assert row["status"] == "FRESH"


def test_stale_current_image_is_stale_and_untested_newest_is_reported(catalog: Catalog) -> None:
    row = rows(
        catalog,
        image("ami-cur", 45, smoke="passed", promoted_at="2026-01-15T22:00:00Z", channel="stable"),
        image("ami-untested", 0),  # baked with skip_promote... and not smoke-tested yet
    )["us-east-1"]
    assert row["status"] == "STALE"
    assert row["age_days"] == 45
    assert row["last_bake"]["result"] == "untested"


def test_history_is_capped(catalog: Catalog) -> None:
    records = [
        image(f"ami-{n}", 30 - n, smoke="passed", promoted_at=f"2026-02-{n + 1:02}T22:00:00Z")
        for n in range(PROMOTION_HISTORY_LENGTH + 3)
    ]
    row = rows(catalog, *records)["us-east-1"]
    assert len(row["promotions"]) == PROMOTION_HISTORY_LENGTH
    assert row["promotions"][0]["image_id"] == f"ami-{PROMOTION_HISTORY_LENGTH + 2}"
