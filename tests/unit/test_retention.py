"""Unit and property tests for the pure prune plan: what is kept, what is deleted, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.catalog import RetentionPolicy
from bakery.retention import Action, InventoryImage, PruneDecision, plan_prune, render_plan

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MAX_AGE_SECONDS = 400 * 86400
SMOKE_STATES = ("passed", "failed", None)


def whole_days(created: datetime) -> int:
    """The age the policy counts in, computed independently of the code under test."""
    return (NOW - created) // DAY


def image(
    image_id: str = "ami-1",
    *,
    age: timedelta = 30 * DAY,
    managed: bool = True,
    current_channel: str | None = None,
    promoted_age: timedelta | None = None,
    smoke: str | None = "passed",
    name: str | None = None,
) -> InventoryImage:
    return InventoryImage(
        image_id=image_id,
        name=name or f"web-{image_id}",
        created=NOW - age,
        managed=managed,
        current_channel=current_channel,
        promoted_at=None if promoted_age is None else NOW - promoted_age,
        smoke=smoke,
    )


def decide_one(
    subject: InventoryImage,
    *,
    policy: RetentionPolicy | None = None,
    in_use: dict[str, str] | None = None,
) -> PruneDecision:
    (decision,) = plan_prune(
        [subject], policy=policy or RetentionPolicy(), in_use=in_use or {}, now=NOW
    )
    return decision


# --- strategies ---------------------------------------------------------------------------


@st.composite
def inventory_images(draw: st.DrawFn, image_id: str) -> InventoryImage:
    age_seconds = draw(st.integers(min_value=0, max_value=MAX_AGE_SECONDS))
    created = NOW - timedelta(seconds=age_seconds)
    promoted_at = None
    if draw(st.booleans()):
        promoted_at = created + timedelta(seconds=draw(st.integers(0, age_seconds)))
    return InventoryImage(
        image_id=image_id,
        name=f"web-{image_id}",
        created=created,
        managed=draw(st.booleans()),
        promoted_at=promoted_at,
        smoke=draw(st.sampled_from(SMOKE_STATES)),
    )


@st.composite
def inventories(draw: st.DrawFn) -> list[InventoryImage]:
    count = draw(st.integers(min_value=0, max_value=15))
    images = [draw(inventory_images(f"ami-{number:04x}")) for number in range(count)]
    if images:
        # Usually one image is current per channel; allow a few channels, or none.
        current = draw(
            st.lists(st.integers(0, len(images) - 1), max_size=min(3, len(images)), unique=True)
        )
        channels = ("stable", "beta", "canary")
        for channel, index in zip(channels, current, strict=False):
            old = images[index]
            images[index] = InventoryImage(
                image_id=old.image_id,
                name=old.name,
                created=old.created,
                managed=old.managed,
                current_channel=channel,
                promoted_at=old.promoted_at,
                smoke=old.smoke,
            )
    return draw(st.permutations(images))


policies = st.builds(
    RetentionPolicy,
    keep_promoted=st.integers(min_value=1, max_value=5),
    keep_younger_than_days=st.integers(min_value=0, max_value=30),
    failed_grace_days=st.integers(min_value=0, max_value=10),
)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[InventoryImage], RetentionPolicy, dict[str, str], list[PruneDecision]]:
    images = draw(inventories())
    policy = draw(policies)
    used = draw(st.sets(st.sampled_from([i.image_id for i in images]))) if images else set()
    in_use = {image_id: f"launch template lt-{image_id}" for image_id in used}
    return images, policy, in_use, plan_prune(images, policy=policy, in_use=in_use, now=NOW)


Scenario = tuple[list[InventoryImage], RetentionPolicy, dict[str, str], list[PruneDecision]]


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=300)
@given(scenarios())
def test_plan_has_exactly_one_decision_per_image_newest_first(scenario: Scenario) -> None:
    images, _, _, decisions = scenario
    decided = [d.image.image_id for d in decisions]
    assert len(decided) == len(set(decided)) == len(images)
    assert set(decided) == {i.image_id for i in images}
    assert [d.image for d in decisions] == sorted(images, key=lambda i: i.created, reverse=True)


@settings(max_examples=300)
@given(scenarios())
def test_every_decision_gives_a_reason(scenario: Scenario) -> None:
    _, _, _, decisions = scenario
    assert all(isinstance(d.action, Action) for d in decisions)
    assert all(d.reason.strip() for d in decisions)


@settings(max_examples=300)
@given(scenarios())
def test_plan_never_deletes_a_protected_image(scenario: Scenario) -> None:
    _, policy, in_use, decisions = scenario
    for decision in decisions:
        if decision.action is not Action.DELETE:
            continue
        doomed = decision.image
        assert doomed.managed, "deleted an image bakery did not make"
        assert doomed.current_channel is None, "deleted the current image of a channel"
        assert doomed.image_id not in in_use, "deleted an image in use"
        assert whole_days(doomed.created) >= policy.keep_younger_than_days


@settings(max_examples=300)
@given(scenarios())
def test_plan_keeps_the_newest_promoted_images(scenario: Scenario) -> None:
    images, policy, _, decisions = scenario
    promoted = [i for i in images if i.managed and i.promoted_at is not None]
    kept_promoted = [d.image for d in decisions if d.action is Action.KEEP and d.image in promoted]
    assert len(kept_promoted) >= min(policy.keep_promoted, len(promoted))
    # And it is the newest that are kept: a deleted promoted image has at least N kept
    # promoted images promoted no earlier than itself (robust to equal timestamps).
    for decision in decisions:
        if decision.action is Action.DELETE and decision.image.promoted_at is not None:
            promoted_at = decision.image.promoted_at
            newer_kept = [i for i in kept_promoted if i.promoted_at >= promoted_at]
            assert len(newer_kept) >= policy.keep_promoted


@settings(max_examples=300)
@given(scenarios())
def test_failed_smoke_images_are_kept_through_the_grace_period(scenario: Scenario) -> None:
    _, policy, _, decisions = scenario
    for decision in decisions:
        failed = decision.image.smoke == "failed"
        if failed and whole_days(decision.image.created) <= policy.failed_grace_days:
            assert decision.action is Action.KEEP


@settings(max_examples=300)
@given(scenarios())
def test_replanning_after_applying_a_plan_deletes_nothing_more(scenario: Scenario) -> None:
    _, policy, in_use, decisions = scenario
    survivors = [d.image for d in decisions if d.action is Action.KEEP]
    again = plan_prune(survivors, policy=policy, in_use=in_use, now=NOW)
    assert [d.action for d in again] == [Action.KEEP] * len(survivors)


# --- reasons ------------------------------------------------------------------------------


def test_foreign_image_is_kept_even_when_old_and_failed() -> None:
    decision = decide_one(image(managed=False, age=300 * DAY, smoke="failed"))
    assert (decision.action, decision.reason) == (Action.KEEP, "not made by bakery")


def test_current_image_of_a_channel_is_kept() -> None:
    decision = decide_one(image(current_channel="stable", age=300 * DAY))
    assert (decision.action, decision.reason) == (Action.KEEP, "current image of channel stable")


def test_image_in_use_is_kept_and_names_the_user() -> None:
    decision = decide_one(image(age=300 * DAY), in_use={"ami-1": "instance i-0abc"})
    assert (decision.action, decision.reason) == (Action.KEEP, "in use by instance i-0abc")


def test_young_image_is_kept_with_its_age() -> None:
    policy = RetentionPolicy(keep_younger_than_days=7)
    decision = decide_one(image(age=6 * DAY + timedelta(hours=23)), policy=policy)
    assert (decision.action, decision.reason) == (Action.KEEP, "6 days old, younger than 7")


def test_image_exactly_at_the_minimum_age_is_no_longer_young() -> None:
    policy = RetentionPolicy(keep_younger_than_days=7)
    decision = decide_one(image(age=7 * DAY), policy=policy)
    assert (decision.action, decision.reason) == (Action.DELETE, "7 days old and superseded")


def test_newest_promoted_images_are_kept_and_older_ones_deleted() -> None:
    policy = RetentionPolicy(keep_promoted=2, keep_younger_than_days=0)
    images = [image(f"ami-{n}", age=(40 + n) * DAY, promoted_age=(35 + n) * DAY) for n in range(4)]
    decisions = {d.image.image_id: d for d in plan_prune(images, policy=policy, in_use={}, now=NOW)}
    for kept in ("ami-0", "ami-1"):
        assert decisions[kept].action is Action.KEEP
        assert decisions[kept].reason == "one of the newest 2 promoted images"
    for deleted, age in (("ami-2", 42), ("ami-3", 43)):
        assert decisions[deleted].action is Action.DELETE
        assert decisions[deleted].reason == f"{age} days old and superseded"


def test_newest_promoted_is_by_promotion_time_not_creation_time() -> None:
    # A rollback re-promotes an older build: it is the most recent promotion.
    policy = RetentionPolicy(keep_promoted=1, keep_younger_than_days=0)
    older_build = image("ami-old", age=90 * DAY, promoted_age=1 * DAY)
    newer_build = image("ami-new", age=20 * DAY, promoted_age=19 * DAY)
    decisions = {
        d.image.image_id: d.action
        for d in plan_prune([older_build, newer_build], policy=policy, in_use={}, now=NOW)
    }
    assert decisions == {"ami-old": Action.KEEP, "ami-new": Action.DELETE}


def test_unmanaged_promoted_images_do_not_take_a_keep_promoted_slot() -> None:
    policy = RetentionPolicy(keep_promoted=1, keep_younger_than_days=0)
    foreign = image("ami-foreign", managed=False, age=10 * DAY, promoted_age=1 * DAY)
    ours = image("ami-ours", age=50 * DAY, promoted_age=40 * DAY)
    decisions = {
        d.image.image_id: d.reason
        for d in plan_prune([foreign, ours], policy=policy, in_use={}, now=NOW)
    }
    assert decisions["ami-ours"] == "one of the newest 1 promoted images"


def test_failed_image_is_kept_through_the_grace_period_inclusive() -> None:
    policy = RetentionPolicy(keep_younger_than_days=0, failed_grace_days=2)
    decision = decide_one(image(age=2 * DAY + timedelta(hours=23), smoke="failed"), policy=policy)
    assert decision.action is Action.KEEP
    assert decision.reason == "failed its smoke test; kept for 2 days to investigate"


def test_failed_image_is_deleted_after_the_grace_period() -> None:
    policy = RetentionPolicy(keep_younger_than_days=0, failed_grace_days=2)
    decision = decide_one(image(age=3 * DAY, smoke="failed"), policy=policy)
    assert (decision.action, decision.reason) == (
        Action.DELETE,
        "failed its smoke test 3 days ago",
    )


def test_superseded_image_is_deleted_with_its_age() -> None:
    decision = decide_one(image(age=45 * DAY + timedelta(hours=5), smoke=None))
    assert (decision.action, decision.reason) == (Action.DELETE, "45 days old and superseded")


def test_plan_rejects_naive_creation_times() -> None:
    naive = InventoryImage("ami-1", "web", datetime(2025, 1, 1), managed=True)  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_prune([naive], policy=RetentionPolicy(), in_use={}, now=NOW)


# --- render_plan --------------------------------------------------------------------------


def sample_plan() -> list[PruneDecision]:
    return [
        PruneDecision(
            image("ami-0aaa", name="web-20250530", age=2 * DAY),
            Action.KEEP,
            "current image of channel stable",
        ),
        PruneDecision(
            image("ami-0bbbbbbbbbbb", name="web-20250101", age=151 * DAY),
            Action.DELETE,
            "151 days old and superseded",
        ),
    ]


def test_render_plan_dry_run_says_would_delete() -> None:
    lines = render_plan(sample_plan(), dry_run=True).splitlines()
    assert lines[1].startswith("KEEP ")
    assert lines[2].startswith("WOULD DELETE ")
    assert not any(line.startswith("DELETE") for line in lines)


def test_render_plan_for_real_says_delete() -> None:
    lines = render_plan(sample_plan(), dry_run=False).splitlines()
    assert lines[2].startswith("DELETE ")
    assert "WOULD" not in "\n".join(lines)


def test_render_plan_header_and_rows() -> None:
    lines = render_plan(sample_plan(), dry_run=True).splitlines()
    assert lines[0].split() == ["ACTION", "IMAGE", "ID", "NAME", "CREATED", "REASON"]
    assert len(lines) == 3
    assert "ami-0bbbbbbbbbbb" in lines[2]
    assert "web-20250101" in lines[2]
    assert (NOW - 151 * DAY).strftime("%Y-%m-%d") in lines[2]
    assert lines[2].endswith("151 days old and superseded")
    assert all(line == line.rstrip() for line in lines)


def test_render_plan_columns_are_aligned() -> None:
    lines = render_plan(sample_plan(), dry_run=True).splitlines()
    header = lines[0]
    starts = [header.index(title) for title in ("IMAGE ID", "NAME", "CREATED", "REASON")]
    expected_cells = [
        ("ami-0aaa", "web-20250530", (NOW - 2 * DAY).strftime("%Y-%m-%d")),
        ("ami-0bbbbbbbbbbb", "web-20250101", (NOW - 151 * DAY).strftime("%Y-%m-%d")),
    ]
    reasons = ["current image of channel stable", "151 days old and superseded"]
    for line, cells, reason in zip(lines[1:], expected_cells, reasons, strict=True):
        for start, cell in zip(starts, (*cells, reason), strict=True):
            assert line[start:].startswith(cell), (line, cell)
            assert line[start - 2 : start] == "  ", (line, cell)


def test_render_plan_of_nothing_is_just_the_header() -> None:
    assert render_plan([], dry_run=True) == "ACTION  IMAGE ID  NAME  CREATED  REASON"
