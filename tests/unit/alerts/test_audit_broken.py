"""The audit reads the bake's failure record and marks broken targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakery.alerts.streaks import STREAKS_VARIABLE
from bakery.audit import broken_targets, render_broken
from bakery.catalog import load_catalog
from tests.unit.test_catalog import image_entry, write_catalog
from tests.unit.test_catalog import template as template  # the fixture


@pytest.mark.usefixtures("template")
def test_broken_targets_follow_each_images_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(
        write_catalog(
            tmp_path,
            {
                "images": [
                    image_entry("web", alerts={"broken_after_failures": 2}),
                    image_entry("api"),
                ]
            },
        )
    )
    streaks = {
        "web/aws/us-east-1": {"runs": ["r1", "r2"], "step": "smoke_test"},
        "api/aws/us-east-1": {"runs": ["r1", "r2"], "step": "packer_build"},
        "retired/aws/us-east-1": {"runs": ["r1", "r2", "r3", "r4"], "step": "packer_build"},
    }
    # Read through Airflow's Variable API, here from its environment-variable backend.
    monkeypatch.setenv(f"AIRFLOW_VAR_{STREAKS_VARIABLE.upper()}", json.dumps(streaks))

    broken = broken_targets(catalog)

    assert broken == [
        {
            "image": "web",
            "cloud": "aws",
            "region": "us-east-1",
            "consecutive_failures": 2,
            "step": "smoke_test",
        }
    ]
    assert render_broken(broken) == [
        "[XXX] BROKEN: 'web' in aws/us-east-1 failed its last 2 bake runs (at smoke_test)."
        " Fix the image; re-bakes alone will not."
    ]


@pytest.mark.usefixtures("template")
def test_no_record_means_nothing_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"AIRFLOW_VAR_{STREAKS_VARIABLE.upper()}", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    catalog = load_catalog(write_catalog(tmp_path, {"images": [image_entry()]}))
    assert broken_targets(catalog) == []
