"""The text of every alert bakery sends: a failed task, a missed deadline, the digest.

Pure: callers gather the facts (task context, task states, the freshness report) and
channels send the result. Every message is redacted here, once, before any channel
sees it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bakery.alerts.outcomes import TargetOutcome
from bakery.alerts.redaction import redact

MAX_ERROR_CHARS = 400
NO_ERROR = "the task failed without an error message (killed, or its heartbeat was lost)"


@dataclass(frozen=True)
class Alert:
    """One message, as every channel sends it: a subject, a plain-text body, and the
    same facts as fields for channels that carry structured data."""

    kind: str  # failure | broken | deadline | digest
    subject: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def redacted(self, secrets: Collection[str]) -> Alert:
        return Alert(
            kind=self.kind,
            subject=redact(self.subject, secrets),
            text=redact(self.text, secrets),
            fields={
                key: redact(value, secrets) if isinstance(value, str) else value
                for key, value in self.fields.items()
            },
        )


def first_error_line(error: BaseException | str | None) -> str:
    """The first non-blank line of an error, e.g. Packer's failed step or the failed smoke
    check; cut to MAX_ERROR_CHARS."""
    text = str(error) if error is not None else ""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            if len(line) > MAX_ERROR_CHARS:
                line = line[: MAX_ERROR_CHARS - 1] + "…"
            return line
    if isinstance(error, BaseException):
        return type(error).__name__
    return NO_ERROR


def step_name(task_id: str, error: BaseException | str | None = None) -> str:
    """The lifecycle step (`packer_build`), with Packer's own failed step when known."""
    step = task_id.rsplit(".", 1)[-1]
    packer_step = getattr(error, "step", None)
    return f"{step} (Packer step {packer_step})" if packer_step else step


@dataclass(frozen=True)
class FailedTask:
    """What a failure alert tells: where, what, which try, and where the log is."""

    image: str | None
    cloud: str | None
    region: str | None
    step: str
    error: str
    try_number: int | None
    log_url: str | None
    dag_id: str
    run_id: str
    consecutive_failures: int = 1
    broken_after: int = 3

    @property
    def label(self) -> str:
        if self.image is None:
            return self.dag_id
        return "/".join(part for part in (self.image, self.cloud, self.region) if part)

    @property
    def broken(self) -> bool:
        return self.image is not None and self.consecutive_failures >= self.broken_after


def failure_alert(failed: FailedTask) -> Alert:
    if failed.broken:
        subject = (
            f"[bakery] BROKEN: {failed.label} has failed {failed.consecutive_failures}"
            f" bake runs in a row ({failed.step})"
        )
        headline = (
            f"{failed.label} is BROKEN: its bake has failed on {failed.consecutive_failures}"
            f" consecutive runs (the limit is {failed.broken_after}). The image is rotting:"
            " no new version has been promoted since. Fix the image or its template; more"
            " weekly runs will not fix it."
        )
    else:
        subject = f"[bakery] FAILED: {failed.label} at {failed.step} (try {failed.try_number})"
        headline = f"{failed.label} failed at {failed.step}."
        if failed.image is not None and failed.consecutive_failures > 1:
            headline += (
                f" That is {failed.consecutive_failures} failed runs in a row; at"
                f" {failed.broken_after} it is reported broken."
            )
    fields = {
        "image": failed.image or "-",
        "cloud": failed.cloud or "-",
        "region": failed.region or "-",
        "step": failed.step,
        "error": failed.error,
        "try": failed.try_number,
        "log": failed.log_url or "-",
        "run": f"{failed.dag_id} {failed.run_id}",
        "consecutive_failures": failed.consecutive_failures,
        "broken": failed.broken,
    }
    shown = [f"{name}: {value}" for name, value in fields.items() if name not in ("broken",)]
    return Alert(
        kind="broken" if failed.broken else "failure",
        subject=subject,
        text="\n".join([headline, "", *shown]),
        fields=fields,
    )


def deadline_alert(
    *,
    dag_id: str,
    run_id: str,
    interval: timedelta | None,
    deadline_time: str | None,
    pending: Sequence[TargetOutcome],
    run_url: str | None,
) -> Alert:
    """The deadline passed with these units not promoted."""
    within = f" within {interval}" if interval is not None else " by its deadline"
    labels = ", ".join(outcome.label for outcome in pending)
    subject = f"[bakery] DEADLINE MISSED: {len(pending)} image(s) not promoted{within}: {labels}"
    lines = [
        f"Bake run {run_id} of {dag_id} passed its deadline ({deadline_time or 'unknown'})"
        f" with {len(pending)} image(s) not promoted{within} of its start:",
        *(f"  - {outcome.label}: {outcome.where}" for outcome in pending),
        "",
        f"run: {run_url or run_id}",
    ]
    return Alert(
        kind="deadline",
        subject=subject,
        text="\n".join(lines),
        fields={
            "run": f"{dag_id} {run_id}",
            "deadline": deadline_time,
            "not_promoted": [outcome.label for outcome in pending],
        },
    )


@dataclass(frozen=True)
class AuditFacts:
    """The latest freshness report, as far as the digest tells it."""

    stale: int | None
    generated_at: str | None


def digest_alert(
    *,
    dag_id: str,
    run_id: str,
    outcomes: Sequence[TargetOutcome],
    broken: Mapping[str, int],
    audit: AuditFacts,
    run_url: str | None,
) -> Alert:
    """One message after a bake run: what was baked, promoted, failed and pruned."""
    baked = [o for o in outcomes if o.baked]
    promoted = [o for o in outcomes if o.promoted]
    failed = [o for o in outcomes if o.failed_steps]
    pruned = [(o, image_id) for o in outcomes for image_id in o.pruned]
    stale = "unknown (no freshness report yet)" if audit.stale is None else str(audit.stale)
    subject = (
        f"[bakery] Bake digest {run_id}: {len(baked)} baked, {len(promoted)} promoted,"
        f" {len(failed)} failed, {len(pruned)} pruned, {stale.split(' ')[0]} stale"
    )
    lines = [f"Bake run {run_id} of {dag_id}: {len(outcomes)} image x cloud x region unit(s)."]
    lines += _section("Baked", [f"{o.label}: {o.image_id}" for o in baked])
    lines += _section("Promoted", [o.label for o in promoted])
    lines += _section(
        "Failed",
        [
            f"{o.label}: {', '.join(o.failed_steps)}"
            + (f" (BROKEN: {broken[o.label]} runs in a row)" if o.label in broken else "")
            for o in failed
        ],
    )
    lines += _section("Pruned", [f"{o.label}: {image_id}" for o, image_id in pruned])
    unchanged = [o.label for o in outcomes if o.states.get("packer_build") == "skipped"]
    if unchanged:  # a manual run without `force` skips what has not changed
        lines += _section("Skipped, unchanged", unchanged)
    others = sorted(set(broken) - {o.label for o in failed})
    lines += _section("Still broken", [f"{label}: {broken[label]} runs" for label in others])
    lines += [
        "",
        f"Stale images in the latest freshness audit: {stale}"
        + (f" (audit of {audit.generated_at})" if audit.generated_at else ""),
        f"run: {run_url or run_id}",
    ]
    return Alert(
        kind="digest",
        subject=subject,
        text="\n".join(lines),
        fields={
            "run": f"{dag_id} {run_id}",
            "baked": [o.label for o in baked],
            "promoted": [o.label for o in promoted],
            "failed": [o.label for o in failed],
            "pruned": [image_id for _, image_id in pruned],
            "broken": sorted(broken),
            "stale": audit.stale,
        },
    )


def _section(title: str, items: Sequence[str]) -> list[str]:
    return ["", f"{title} ({len(items)}):", *(f"  - {item}" for item in items or ["none"])]


def audit_facts(report: Mapping[str, Any] | None) -> AuditFacts:
    if not report:
        return AuditFacts(stale=None, generated_at=None)
    counts = report.get("counts") or {}
    return AuditFacts(stale=int(counts.get("STALE", 0)), generated_at=report.get("generated_at"))
