"""Many images bake at once, up to BAKERY_MAX_PARALLEL_BAKES; one image in one region
never bakes twice at once (one run at a time, one mapped task per image x cloud x region).
The limit at work under the scheduler: tests/e2e/test_production_shape.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

BAKE_DAG_ID = "golden_image_bake"
BUILD_TASK_ID = "image_lifecycle.packer_build"


def test_at_most_eight_bakes_run_at_once_by_default(dag_bag: DagBag) -> None:
    dag = dag_bag.dags[BAKE_DAG_ID]
    assert dag.get_task(BUILD_TASK_ID).max_active_tis_per_dag == 8
    assert dag.max_active_runs == 1


def test_the_limit_is_configurable_and_a_bad_value_names_the_variable(
    parse_dags: Callable[[], DagBag], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAKERY_MAX_PARALLEL_BAKES", "3")
    build = parse_dags().dags[BAKE_DAG_ID].get_task(BUILD_TASK_ID)
    assert build.max_active_tis_per_dag == 3

    for bad in ("0", "many"):
        monkeypatch.setenv("BAKERY_MAX_PARALLEL_BAKES", bad)
        errors = parse_dags().import_errors
        expected = f"BAKERY_MAX_PARALLEL_BAKES must be a whole number of at least 1 (got {bad!r})"
        assert any(expected in error for error in errors.values()), errors
