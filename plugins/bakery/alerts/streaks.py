"""Consecutive failed bake runs per image x cloud x region: when an image counts as broken.

The record lives in one Airflow Variable (`bakery_failure_streaks`, JSON), so it survives
restarts and is shared by workers, the triggerer and the audit. The bake's digest task is
its only writer (one bake run at a time: `max_active_runs=1`); failure callbacks read it
to say how many runs in a row an image has now failed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bakery.alerts.outcomes import TargetOutcome

log = logging.getLogger(__name__)

STREAKS_VARIABLE = "bakery_failure_streaks"


@dataclass(frozen=True)
class Streak:
    """The runs, oldest first, in which a unit's bake failed since it last succeeded."""

    runs: tuple[str, ...]
    step: str | None = None

    def count_with(self, run_id: str) -> int:
        """Consecutive failures if `run_id` fails too (counted once however often it fails)."""
        return len(self.runs) + (run_id not in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {"runs": list(self.runs), "step": self.step}


Streaks = dict[str, Streak]


def parse_streaks(raw: str | None) -> Streaks:
    """The Variable's JSON; anything unreadable counts as no failures (and is logged)."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {
            label: Streak(runs=tuple(str(r) for r in entry["runs"]), step=entry.get("step"))
            for label, entry in data.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", STREAKS_VARIABLE, exc)
        return {}


def dump_streaks(streaks: Mapping[str, Streak]) -> str:
    return json.dumps({label: s.to_json() for label, s in sorted(streaks.items())})


def record_run(
    streaks: Mapping[str, Streak], run_id: str, outcomes: Iterable[TargetOutcome]
) -> Streaks:
    """The streaks after a run: a unit whose bake failed gains the run, a promoted one
    starts over, and one the run did not get that far with (rejected, skipped, not in
    the run at all) keeps its streak."""
    updated = dict(streaks)
    for outcome in outcomes:
        if outcome.bake_failed:
            previous = updated.get(outcome.label, Streak(runs=()))
            runs = previous.runs if run_id in previous.runs else (*previous.runs, run_id)
            updated[outcome.label] = Streak(runs=runs, step=outcome.failed_steps[0])
        elif outcome.promoted:
            updated.pop(outcome.label, None)
    return updated


def broken_units(
    streaks: Mapping[str, Streak], thresholds: Mapping[str, int], default: int
) -> dict[str, int]:
    """label -> consecutive failures, for units at or past their image's threshold."""
    return {
        label: len(streak.runs)
        for label, streak in sorted(streaks.items())
        if len(streak.runs) >= thresholds.get(label.split("/")[0], default)
    }


def load_streaks() -> Streaks:
    """From the Airflow Variable; empty (logged) where no Airflow Variable can be read."""
    try:
        from airflow.sdk import Variable

        return parse_streaks(Variable.get(STREAKS_VARIABLE, default=None))
    except Exception as exc:  # a missing API server must never fail an alert or the audit
        log.warning("cannot read Variable %s: %s", STREAKS_VARIABLE, exc)
        return {}


def save_streaks(streaks: Mapping[str, Streak]) -> None:
    from airflow.sdk import Variable

    Variable.set(
        STREAKS_VARIABLE,
        dump_streaks(streaks),
        description="bakery: consecutive failed bake runs per image/cloud/region",
    )
