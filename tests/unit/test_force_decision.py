"""Without `force`, a bake is skipped only when the current image is what it would make."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.utils.types import DagRunType

from bakery.bake import REBAKE_MARGIN_DAYS, unchanged_reason

CURRENT = {"bakery:template-hash": "hash-1", "bakery:source-image": "ami-base-1"}


def decide(
    tags: dict[str, str] | None = CURRENT,
    age: int | None = 3,
    digest: str = "hash-1",
    source: str = "ami-base-1",
    freshness_days: int = 30,
) -> str | None:
    return unchanged_reason(
        current_tags=tags,
        current_age_days=age,
        template_digest=digest,
        source_image_id=source,
        freshness_days=freshness_days,
    )


def test_same_template_same_source_young_image_is_skipped_with_a_reason() -> None:
    reason = decide()
    assert reason is not None
    assert "3 day(s) ago" in reason and "hash-1" in reason and "ami-base-1" in reason


@pytest.mark.parametrize(
    "change",
    [
        {"tags": None, "age": None},  # nothing promoted yet
        {"digest": "hash-2"},  # template, a variable or a provisioning file changed
        {"source": "ami-base-2"},  # a newer base image was published
        {"tags": {"bakery:source-image": "ami-base-1"}},  # untagged hash: baked elsewhere
    ],
    ids=["nothing-current", "template-changed", "new-source", "no-hash-tag"],
)
def test_any_change_bakes(change: dict[str, object]) -> None:
    assert decide(**change) is None  # type: ignore[arg-type]


def test_an_image_that_would_go_stale_before_the_next_weekly_run_is_rebaked() -> None:
    last_skipped = 30 - REBAKE_MARGIN_DAYS
    assert decide(age=last_skipped) is not None
    assert decide(age=last_skipped + 1) is None
    # A threshold shorter than the margin re-bakes every run.
    assert decide(age=0, freshness_days=REBAKE_MARGIN_DAYS - 1) is None


@pytest.mark.parametrize(
    ("run_type", "force", "forced"),
    [
        (DagRunType.SCHEDULED, False, True),  # the weekly run picks up package patches
        (DagRunType.MANUAL, False, False),
        (DagRunType.MANUAL, True, True),
        (DagRunType.ASSET_TRIGGERED, False, False),
    ],
)
def test_only_the_weekly_run_or_force_bakes_an_unchanged_image(
    run_type: DagRunType, force: bool, forced: bool
) -> None:
    from bakery.operators.packer import PackerBuildOperator

    context = {"dag_run": SimpleNamespace(run_type=run_type), "params": {"force": force}}

    assert PackerBuildOperator._forced(context) is forced  # type: ignore[arg-type]
