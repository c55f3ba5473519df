"""DAG integrity: every file in dags/ imports, and every DAG follows the house rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from croniter import croniter

from tests.dags.conftest import DAGS_DIR, REPO_ROOT

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DAG

BAKE_DAG_ID = "golden_image_bake"
EXPECTED_DAG_IDS = {
    BAKE_DAG_ID,
    "golden_image_audit",
    "golden_image_rollback",
    "golden_image_reaper",
}

# Listed at collection time, before airflow is imported: one test case per file.
DAG_FILES = sorted(DAGS_DIR.rglob("*.py"))


def _rel(path: str | Path) -> str:
    return Path(path).resolve().relative_to(REPO_ROOT).as_posix()


def _import_errors_by_file(dag_bag: DagBag) -> dict[str, str]:
    return {_rel(path): error for path, error in dag_bag.import_errors.items()}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[_rel(path) for path in DAG_FILES])
def test_dag_file_imports_without_errors(dag_bag: DagBag, dag_file: Path) -> None:
    errors = _import_errors_by_file(dag_bag)
    assert _rel(dag_file) not in errors, f"{_rel(dag_file)} failed to import:\n{errors}"
    # A file Airflow's safe-mode heuristics skip is never parsed, so never tested either.
    assert str(dag_file) in dag_bag.file_last_changed, (
        f"Airflow did not parse {_rel(dag_file)}: a DAG file must mention 'airflow' and 'dag';"
        " move helper modules out of dags/ or list them in dags/.airflowignore"
    )


def test_dag_folder_has_no_import_errors_at_all(dag_bag: DagBag) -> None:
    assert _import_errors_by_file(dag_bag) == {}


def test_expected_dag_ids_are_loaded(dag_bag: DagBag) -> None:
    missing = EXPECTED_DAG_IDS - set(dag_bag.dag_ids)
    assert not missing, f"missing DAGs {sorted(missing)}; loaded {sorted(dag_bag.dag_ids)}"


def test_every_dag_comes_from_the_dags_folder_not_airflow_examples(dag_bag: DagBag) -> None:
    assert dag_bag.dags, "the DagBag is empty"
    outside = {
        dag_id: dag.fileloc
        for dag_id, dag in dag_bag.dags.items()
        if not Path(dag.fileloc).resolve().is_relative_to(DAGS_DIR)
    }
    assert outside == {}


def _policy_violations(dag: DAG) -> list[str]:
    problems: list[str] = []
    if not dag.tags:
        problems.append("no tags")
    owner = dag.default_args.get("owner")
    if not owner or owner == "airflow":
        problems.append(f"owner must name a team, not {owner!r}")
    if dag.default_args.get("retries", 0) < 1:
        problems.append(f"retries must be >= 1, got {dag.default_args.get('retries', 0)!r}")
    if not (dag.doc_md or "").strip():
        problems.append("no doc_md")
    no_retries = sorted(task.task_id for task in dag.tasks if (task.retries or 0) < 1)
    if no_retries:
        problems.append(f"tasks without retries: {', '.join(no_retries)}")
    return problems


def test_every_dag_has_tags_an_owner_retries_and_docs(dag_bag: DagBag) -> None:
    violations = {
        dag_id: problems
        for dag_id, dag in dag_bag.dags.items()
        if (problems := _policy_violations(dag))
    }
    assert violations == {}


def test_bake_dag_runs_every_sunday_at_22_utc(dag_bag: DagBag) -> None:
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    dag = dag_bag.dags[BAKE_DAG_ID]
    timetable = dag.timetable
    assert isinstance(timetable, CronTriggerTimetable), type(timetable)
    assert timetable.expression == "0 22 * * 0"
    assert str(timetable.timezone) == "UTC"
    runs = croniter(timetable.expression, datetime(2026, 3, 4, 12, tzinfo=UTC))
    fire_times = [runs.get_next(datetime) for _ in range(3)]
    assert [(t.strftime("%A"), t.hour, t.minute) for t in fire_times] == [("Sunday", 22, 0)] * 3


def test_bake_dag_does_not_catch_up(dag_bag: DagBag) -> None:
    assert dag_bag.dags[BAKE_DAG_ID].catchup is False


def test_bake_dag_maps_packer_build_over_the_selected_targets(dag_bag: DagBag) -> None:
    """`packer_build` fans out per target: a mapped operator, or one in a mapped task group."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from bakery.operators.packer import PackerBuildOperator

    dag = dag_bag.dags[BAKE_DAG_ID]
    matches = [task for task in dag.tasks if task.task_id.rpartition(".")[2] == "packer_build"]
    assert len(matches) == 1, f"expected one packer_build task, got {dag.task_ids}"
    packer_build = matches[0]
    if isinstance(packer_build, MappedOperator):
        operator_class = packer_build.operator_class
    else:
        assert packer_build.get_closest_mapped_task_group() is not None, (
            f"{packer_build.task_id} is neither mapped nor in a mapped task group"
        )
        operator_class = type(packer_build)
    assert isinstance(operator_class, type), operator_class
    assert issubclass(operator_class, PackerBuildOperator)
    assert "select_targets" in packer_build.upstream_task_ids


def test_reaper_runs_hourly_over_every_catalog_location(dag_bag: DagBag) -> None:
    dag = dag_bag.dags["golden_image_reaper"]
    assert dag.timetable.expression == "17 * * * *"
    reaper = dag.get_task("reap_orphans")
    assert ("aws_bakery", "us-east-1") in [tuple(loc) for loc in reaper.catalog_regions]
    assert ("aws_bakery", "eu-west-1") in [tuple(loc) for loc in reaper.catalog_regions]
