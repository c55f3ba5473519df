"""What became of each image x cloud x region in one bake run, from its tasks' states.

Pure: the digest task and the deadline callback read task states and XComs through
Airflow, and hand them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LIFECYCLE_GROUP = "image_lifecycle"
# In the order a unit goes through them; a bake run "failed" an image when one of the
# first four failed. distribute and prune run after the promotion, so their failure is
# reported but does not make the image's bake a failure.
LIFECYCLE_STEPS = ("packer_build", "smoke_test", "approve", "promote", "distribute", "prune")
BAKE_STEPS = LIFECYCLE_STEPS[:4]
SUCCESS = "success"
FAILED_STATES = frozenset({"failed"})


def target_label(target: Mapping[str, Any]) -> str:
    return f"{target['image']}/{target['cloud']}/{target['region']}"


@dataclass(frozen=True)
class TargetOutcome:
    """One unit of a run: its steps' states, what it baked, promoted and pruned."""

    image: str
    cloud: str
    region: str
    states: Mapping[str, str | None]
    image_id: str | None = None
    pruned: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.image}/{self.cloud}/{self.region}"

    @property
    def baked(self) -> bool:
        return self.states.get("packer_build") == SUCCESS

    @property
    def promoted(self) -> bool:
        return self.states.get("promote") == SUCCESS

    @property
    def skipped(self) -> bool:
        """Left unpromoted on purpose: unchanged since its current image, a run with
        `skip_promote`, or a rejected approval."""
        return any(state == "skipped" for state in self.states.values())

    @property
    def failed_steps(self) -> tuple[str, ...]:
        return tuple(s for s in LIFECYCLE_STEPS if self.states.get(s) in FAILED_STATES)

    @property
    def bake_failed(self) -> bool:
        """Failed before it could be promoted: what counts towards 'broken'."""
        return any(self.states.get(s) in FAILED_STATES for s in BAKE_STEPS)

    @property
    def where(self) -> str:
        """The first step that has not succeeded, and its state: `smoke_test running`."""
        for step in LIFECYCLE_STEPS:
            state = self.states.get(step)
            if state != SUCCESS:
                return f"{step} {state or 'not started'}"
        return "done"


def _index_states(task_states: Mapping[str, str | None]) -> dict[int, dict[str, str | None]]:
    """`{"image_lifecycle.promote_3": "success"}` -> `{3: {"promote": "success"}}`."""
    by_index: dict[int, dict[str, str | None]] = {}
    prefix = f"{LIFECYCLE_GROUP}."
    for key, state in task_states.items():
        if not key.startswith(prefix):
            continue
        task, _, index = key.removeprefix(prefix).rpartition("_")
        if task in LIFECYCLE_STEPS and index.isdigit():
            by_index.setdefault(int(index), {})[task] = state
    return by_index


def run_outcomes(
    targets: Sequence[Mapping[str, Any]],
    task_states: Mapping[str, str | None],
    *,
    builds: Iterable[Mapping[str, Any] | None] = (),
    prunes: Iterable[Mapping[str, Any] | None] = (),
) -> list[TargetOutcome]:
    """One outcome per target of the run. Mapped task `image_lifecycle.<step>_<i>` works on
    `targets[i]` (select_targets' list); `builds` and `prunes` are those tasks' XComs."""
    by_index = _index_states(task_states)
    image_ids = {target_label(b): b.get("image_id") for b in builds if b and "image" in b}
    pruned = {(p.get("image"), p.get("region")): tuple(p.get("deleted") or ()) for p in prunes if p}
    return [
        TargetOutcome(
            image=target["image"],
            cloud=target["cloud"],
            region=target["region"],
            states=by_index.get(index, {}),
            image_id=image_ids.get(target_label(target)),
            pruned=pruned.get((target["image"], target["region"]), ()),
        )
        for index, target in enumerate(targets)
    ]
