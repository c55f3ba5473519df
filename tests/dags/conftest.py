"""DAG integrity fixtures: one DagBag of `dags/`, filled by Airflow's own DagBag class.

Airflow reads AIRFLOW_HOME (and the config under it) when it is first imported, so these
fixtures set the environment *before* importing anything from airflow, and only for as
long as they need it: the variables are put back afterwards, so other suites in the same
pytest run (the e2e tests hand `os.environ` to `airflow` subprocesses) never see them.
If another suite imported airflow earlier in the run, the DagBag still loads; it then
uses whatever config that suite's environment gave airflow.

Airflow 3.3's `DagBag` (`airflow.dag_processing.dagbag`) never loads the example DAGs and
has no `include_examples` argument any more; `AIRFLOW__CORE__LOAD_EXAMPLES=False` is set
anyway, and `test_dag_integrity` checks that every DAG in the bag comes from `dags/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"

# Environment that changes what a parse sees; the tests pin or clear all of it.
# BAKERY_CACHE_DIR is cleared so the catalog summary cache lands in the throwaway AIRFLOW_HOME.
BAKERY_OVERRIDES = (
    "BAKERY_CATALOG",
    "BAKERY_INCLUDE_DIR",
    "BAKERY_TASK_RETRIES",
    "BAKERY_CACHE_DIR",
    "BAKERY_BAKE_DEADLINE_MINUTES",
    "BAKERY_MAX_PARALLEL_BAKES",
)


def set_airflow_environment(mp: pytest.MonkeyPatch, airflow_home: Path) -> None:
    """Production-like Airflow settings in a throwaway home, and the repo's own catalog.

    UNIT_TEST_MODE stays off: it swaps in Airflow's unit_tests.cfg, which turns example
    DAGs on and makes a cron `schedule` a CronDataIntervalTimetable, so the tests would
    check a different DAG from the one production parses.
    """
    mp.setenv("AIRFLOW_HOME", str(airflow_home))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    mp.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    for name in BAKERY_OVERRIDES:
        mp.delenv(name, raising=False)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow-home")


def build_dag_bag(dags_dir: Path = DAGS_DIR) -> DagBag:
    """Fill a fresh DagBag from `dags_dir`; call with the Airflow environment in place."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=dags_dir)


@pytest.fixture(scope="session")
def dag_bag(airflow_home: Path) -> DagBag:
    """The DagBag of `dags/` with the repo's catalog, parsed once for the whole session."""
    with pytest.MonkeyPatch.context() as mp:
        set_airflow_environment(mp, airflow_home)
        return build_dag_bag()


@pytest.fixture
def parse_dags(monkeypatch: pytest.MonkeyPatch, airflow_home: Path) -> Callable[[], DagBag]:
    """Parse `dags/` afresh inside a test, after the test has changed the environment.

    The Airflow settings are applied now; BAKERY_* variables the test sets later (through
    the same `monkeypatch`) are what the parse sees.
    """
    set_airflow_environment(monkeypatch, airflow_home)
    return build_dag_bag
