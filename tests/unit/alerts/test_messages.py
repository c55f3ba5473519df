"""What each alert says: the fields of a failure, the deadline's pending units, the digest."""

from __future__ import annotations

from datetime import timedelta

from bakery.alerts.messages import (
    NO_ERROR,
    AuditFacts,
    FailedTask,
    audit_facts,
    deadline_alert,
    digest_alert,
    failure_alert,
    first_error_line,
    step_name,
)
from bakery.alerts.outcomes import TargetOutcome
from bakery.packer.errors import PackerError

PACKER_MESSAGE = (
    "Packer build failed at step 'StepProvision' (exit code 1):"
    " Script exited with non-zero exit status: 7\nsecond line"
)


def failed(**overrides: object) -> FailedTask:
    values: dict[str, object] = {
        "image": "web",
        "cloud": "aws",
        "region": "us-east-1",
        "step": "packer_build",
        "error": "Script exited with non-zero exit status: 7",
        "try_number": 2,
        "log_url": "http://airflow/dags/golden_image_bake/runs/r1/tasks/image_lifecycle.packer_build/mapped/0?try_number=2",
        "dag_id": "golden_image_bake",
        "run_id": "r1",
    }
    values.update(overrides)
    return FailedTask(**values)  # type: ignore[arg-type]


def test_first_error_line_is_the_first_non_blank_line() -> None:
    assert first_error_line(PackerError("\n\n" + PACKER_MESSAGE)) == PACKER_MESSAGE.splitlines()[0]
    assert first_error_line("x" * 1000).endswith("…")
    assert len(first_error_line("x" * 1000)) == 400
    assert first_error_line(None) == NO_ERROR
    assert first_error_line(RuntimeError()) == "RuntimeError"


def test_step_names_the_lifecycle_task_and_packers_step() -> None:
    error = PackerError("failed", step="StepProvision")
    assert step_name("image_lifecycle.packer_build", error) == (
        "packer_build (Packer step StepProvision)"
    )
    assert step_name("image_lifecycle.smoke_test", RuntimeError("x")) == "smoke_test"


def test_failure_alert_carries_every_field() -> None:
    alert = failure_alert(failed())
    assert alert.kind == "failure"
    assert alert.subject == "[bakery] FAILED: web/aws/us-east-1 at packer_build (try 2)"
    for line in (
        "image: web",
        "cloud: aws",
        "region: us-east-1",
        "step: packer_build",
        "error: Script exited with non-zero exit status: 7",
        "try: 2",
        "log: http://airflow/dags/golden_image_bake/runs/r1/tasks/",
    ):
        assert line in alert.text
    assert alert.fields["broken"] is False


def test_second_failure_in_a_row_is_counted_but_not_broken_yet() -> None:
    alert = failure_alert(failed(consecutive_failures=2, broken_after=3))
    assert alert.kind == "failure"
    assert "2 failed runs in a row; at 3 it is reported broken" in alert.text


def test_kth_consecutive_failure_says_broken_plainly() -> None:
    alert = failure_alert(failed(consecutive_failures=3, broken_after=3))
    assert alert.kind == "broken"
    assert alert.subject.startswith("[bakery] BROKEN: web/aws/us-east-1 has failed 3 bake runs")
    assert "is BROKEN" in alert.text and "3 consecutive runs" in alert.text
    assert alert.fields["broken"] is True


def test_a_task_about_no_image_is_labelled_by_its_dag() -> None:
    alert = failure_alert(failed(image=None, cloud=None, region=None, step="reap_orphans"))
    assert alert.subject == "[bakery] FAILED: golden_image_bake at reap_orphans (try 2)"
    assert "image: -" in alert.text
    assert alert.fields["broken"] is False


def outcome(image: str, **states: str) -> TargetOutcome:
    return TargetOutcome(image=image, cloud="aws", region="us-east-1", states=states)


def test_deadline_alert_lists_each_pending_unit_and_where_it_is() -> None:
    alert = deadline_alert(
        dag_id="golden_image_bake",
        run_id="r1",
        interval=timedelta(hours=6),
        deadline_time="2026-11-29T04:00:00Z",
        pending=[
            outcome("web", packer_build="success", smoke_test="deferred"),
            outcome("api", packer_build="failed"),
        ],
        run_url="http://airflow/dags/golden_image_bake/runs/r1",
    )
    assert alert.subject == (
        "[bakery] DEADLINE MISSED: 2 image(s) not promoted within 6:00:00:"
        " web/aws/us-east-1, api/aws/us-east-1"
    )
    assert "  - web/aws/us-east-1: smoke_test deferred" in alert.text
    assert "  - api/aws/us-east-1: packer_build failed" in alert.text
    assert alert.fields["not_promoted"] == ["web/aws/us-east-1", "api/aws/us-east-1"]


def test_digest_counts_baked_promoted_failed_pruned_and_stale() -> None:
    done = {s: "success" for s in ("packer_build", "smoke_test", "approve", "promote")}
    web = TargetOutcome(
        image="web",
        cloud="aws",
        region="us-east-1",
        states={**done, "distribute": "success", "prune": "success"},
        image_id="ami-0new",
        pruned=("ami-0old1", "ami-0old2"),
    )
    api = outcome("api", packer_build="success", smoke_test="failed", promote="upstream_failed")
    api = TargetOutcome(api.image, api.cloud, api.region, api.states, image_id="ami-0api")
    db = outcome("db", packer_build="failed")
    same = outcome("same", packer_build="skipped", smoke_test="skipped")
    alert = digest_alert(
        dag_id="golden_image_bake",
        run_id="r9",
        outcomes=[web, api, db, same],
        broken={"db/aws/us-east-1": 3, "old/aws/eu-west-1": 5},
        audit=AuditFacts(stale=4, generated_at="2026-11-26T06:00:00Z"),
        run_url=None,
    )
    assert alert.subject == (
        "[bakery] Bake digest r9: 2 baked, 1 promoted, 2 failed, 2 pruned, 4 stale"
    )
    assert "  - web/aws/us-east-1: ami-0new" in alert.text
    assert "  - api/aws/us-east-1: smoke_test" in alert.text
    assert "  - db/aws/us-east-1: packer_build (BROKEN: 3 runs in a row)" in alert.text
    assert "  - web/aws/us-east-1: ami-0old1" in alert.text
    assert "Still broken (1):\n  - old/aws/eu-west-1: 5 runs" in alert.text
    assert "Skipped, unchanged (1):\n  - same/aws/us-east-1" in alert.text
    assert "Stale images in the latest freshness audit: 4 (audit of 2026-11-26T06:00:00Z)" in (
        alert.text
    )
    assert alert.fields["failed"] == ["api/aws/us-east-1", "db/aws/us-east-1"]


def test_digest_without_a_freshness_report_says_so() -> None:
    alert = digest_alert(
        dag_id="d",
        run_id="r",
        outcomes=[],
        broken={},
        audit=audit_facts(None),
        run_url=None,
    )
    assert "0 stale" not in alert.subject
    assert "unknown (no freshness report yet)" in alert.text
    assert audit_facts({"counts": {"STALE": 2}, "generated_at": "t"}) == AuditFacts(2, "t")
