"""The freshness page's HTML from a report (pure), and reading the report from disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bakery.ui.app import read_report
from bakery.ui.page import PageLinks, render_page

LINKS = PageLinks(airflow_root="/airflow")


def target(image: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "image": image,
        "cloud": "aws",
        "region": "us-east-1",
        "status": status,
        "detail": f"{image} is {status}",
        "threshold_days": 30,
        "image_id": None,
        "name": None,
        "age_days": None,
        "promoted": False,
        "last_bake": None,
        "promotions": [],
        **extra,
    }


REPORT = {
    "generated_at": "2026-11-26T06:00:00Z",
    "total": 2,
    "counts": {"FRESH": 1, "MISSING": 1},
    "targets": [
        target(
            "web",
            "FAILED",
            image_id="ami-1",
            age_days=3,
            last_bake={"result": "failed", "at": "t", "dag_run_id": "manual__1+00:00"},
        ),
        target("api", "MISSING"),
    ],
}


def test_one_section_per_image_with_a_bake_button_and_each_status() -> None:
    html = render_page(REPORT, report_path="/r/freshness.json", links=LINKS)
    assert html.count('class="bake"') == 2
    assert 'data-target="web/aws/us-east-1" data-status="FAILED"' in html
    assert '<span class="status failed">FAILED</span>' in html
    assert '<span class="status missing">MISSING</span>' in html
    # The REST API and the run links sit next to the page's mount point.
    assert 'const API = "/airflow/api/v2";' in html
    assert '"/airflow/dags/golden_image_bake/runs/manual__1%2B00%3A00"' in html


def test_report_text_is_escaped() -> None:
    hostile = {**REPORT, "targets": [target("<script>alert(1)</script>", "FRESH")]}
    html = render_page(hostile, report_path="/r", links=LINKS)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_report_says_so_and_where_to_get_one(tmp_path: Path) -> None:
    report, problem = read_report(tmp_path / "freshness.json")
    assert report is None and "No freshness report at" in problem
    html = render_page(None, report_path="x", links=LINKS, problem=problem)
    assert "No freshness report at" in html and "/airflow/dags/golden_image_audit" in html


def test_unreadable_or_old_reports_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "cannot be read" in read_report(broken)[1]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": 1, "rows": []}))
    assert "predates this page" in read_report(old)[1]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(REPORT))
    assert read_report(good) == (REPORT, "")
