"""Run outcomes from task states, and the consecutive-failure record that marks broken."""

from __future__ import annotations

from bakery.alerts.outcomes import run_outcomes
from bakery.alerts.streaks import (
    Streak,
    broken_units,
    dump_streaks,
    parse_streaks,
    record_run,
)

TARGETS = [
    {"image": "web", "cloud": "aws", "region": "us-east-1"},
    {"image": "web", "cloud": "aws", "region": "eu-west-1"},
    {"image": "api", "cloud": "aws", "region": "us-east-1"},
]
STATES = {
    "reap_orphans": "success",
    "select_targets": "success",
    "image_lifecycle.packer_build_0": "success",
    "image_lifecycle.smoke_test_0": "success",
    "image_lifecycle.approve_0": "success",
    "image_lifecycle.promote_0": "success",
    "image_lifecycle.prune_0": "success",
    "image_lifecycle.packer_build_1": "failed",
    "image_lifecycle.smoke_test_1": "upstream_failed",
    "image_lifecycle.promote_1": "upstream_failed",
    "image_lifecycle.packer_build_2": "success",
    "image_lifecycle.smoke_test_2": "deferred",
}


def outcomes() -> list:
    return run_outcomes(
        TARGETS,
        STATES,
        builds=[{"image": "web", "cloud": "aws", "region": "us-east-1", "image_id": "ami-1"}, None],
        prunes=[{"image": "web", "region": "us-east-1", "deleted": ["ami-0"]}],
    )


def test_map_index_i_is_the_ith_selected_target() -> None:
    web_use1, web_euw1, api = outcomes()
    assert (web_use1.label, web_use1.promoted, web_use1.image_id) == (
        "web/aws/us-east-1",
        True,
        "ami-1",
    )
    assert web_use1.pruned == ("ami-0",)
    assert web_euw1.failed_steps == ("packer_build",) and web_euw1.bake_failed
    assert not web_euw1.baked and not web_euw1.promoted
    assert api.where == "smoke_test deferred" and not api.bake_failed
    assert not any(o.skipped for o in (web_use1, web_euw1, api))
    (unchanged,) = run_outcomes(TARGETS[:1], {"image_lifecycle.packer_build_0": "skipped"})
    assert unchanged.skipped and not unchanged.promoted and not unchanged.bake_failed


def test_prune_failure_after_promotion_is_reported_but_is_no_bake_failure() -> None:
    (only,) = run_outcomes(
        TARGETS[:1],
        {
            **{f"image_lifecycle.{s}_0": "success" for s in ("packer_build", "smoke_test")},
            "image_lifecycle.approve_0": "success",
            "image_lifecycle.promote_0": "success",
            "image_lifecycle.prune_0": "failed",
        },
    )
    assert only.failed_steps == ("prune",)
    assert not only.bake_failed


def test_streaks_grow_per_failed_run_reset_on_promotion_and_keep_otherwise() -> None:
    before = {
        "web/aws/us-east-1": Streak(runs=("r1",), step="smoke_test"),
        "web/aws/eu-west-1": Streak(runs=("r1",), step="packer_build"),
        "api/aws/us-east-1": Streak(runs=("r0", "r1"), step="packer_build"),
        "gone/aws/us-east-1": Streak(runs=("r1",)),
    }
    after = record_run(before, "r2", outcomes())
    assert "web/aws/us-east-1" not in after  # promoted: starts over
    assert after["web/aws/eu-west-1"] == Streak(runs=("r1", "r2"), step="packer_build")
    assert after["api/aws/us-east-1"] == before["api/aws/us-east-1"]  # did not finish
    assert after["gone/aws/us-east-1"] == before["gone/aws/us-east-1"]  # not in this run
    # Recording the same run twice counts it once.
    assert record_run(after, "r2", outcomes()) == after


def test_count_with_counts_the_current_run_once() -> None:
    streak = Streak(runs=("r1", "r2"))
    assert streak.count_with("r3") == 3
    assert streak.count_with("r2") == 2


def test_broken_units_use_each_images_threshold() -> None:
    streaks = {
        "web/aws/us-east-1": Streak(runs=("a", "b")),
        "api/aws/us-east-1": Streak(runs=("a", "b")),
        "db/aws/us-east-1": Streak(runs=("a", "b", "c")),
    }
    assert broken_units(streaks, {"web": 2}, default=3) == {
        "db/aws/us-east-1": 3,
        "web/aws/us-east-1": 2,
    }


def test_streaks_round_trip_and_garbage_reads_as_none() -> None:
    streaks = {"web/aws/us-east-1": Streak(runs=("r1", "r2"), step="promote")}
    assert parse_streaks(dump_streaks(streaks)) == streaks
    assert parse_streaks("not json") == {}
    assert parse_streaks('{"x": 1}') == {}
    assert parse_streaks(None) == {}


def test_the_deadline_callback_returns_a_string_for_airflows_output_column() -> None:
    # Airflow 3.3's triggerer stores the return value in a text column and dies on a dict.
    import asyncio
    import json

    from bakery.alerts.deadlines import unpromoted_images_alert

    result = asyncio.run(unpromoted_images_alert(interval_seconds=60, context={}))
    assert isinstance(result, str)
    assert json.loads(result)["error"] == "no dag run in the context"
