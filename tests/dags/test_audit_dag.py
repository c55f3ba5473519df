"""The audit DAG's schedule, params and wiring, as the DAG processor parses them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

AUDIT_DAG_ID = "golden_image_audit"


def test_audit_runs_daily_at_6_utc_and_after_every_promotion(dag_bag: DagBag) -> None:
    from airflow.sdk import AssetAlias
    from airflow.sdk.definitions.timetables.assets import AssetOrTimeSchedule
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    from bakery.operators.promote import PROMOTIONS

    dag = dag_bag.dags[AUDIT_DAG_ID]
    timetable = dag.timetable
    assert isinstance(timetable, AssetOrTimeSchedule), type(timetable)
    assert isinstance(timetable.timetable, CronTriggerTimetable)
    assert timetable.timetable.expression == "0 6 * * *"
    assert str(timetable.timetable.timezone) == "UTC"
    # The alias promote emits through: an event for any image in any cloud triggers a run.
    assert timetable.asset_condition == AssetAlias(PROMOTIONS.name)
    assert dag.catchup is False


def test_audit_params_default_to_no_rebake_and_the_catalogs_thresholds(dag_bag: DagBag) -> None:
    params = dag_bag.dags[AUDIT_DAG_ID].params
    assert params["auto_rebake"] is False
    assert params["stale_after_days"] is None


def test_audit_triggers_the_bake_dag_only_through_select_rebake(dag_bag: DagBag) -> None:
    from bakery.operators.rebake import TriggerRebakeOperator

    dag = dag_bag.dags[AUDIT_DAG_ID]
    assert set(dag.task_ids) == {"audit", "select_rebake", "trigger_rebake"}
    trigger = dag.get_task("trigger_rebake")
    assert isinstance(trigger, TriggerRebakeOperator)
    assert trigger.trigger_dag_id == "golden_image_bake"
    assert trigger.upstream_task_ids == {"select_rebake"}
    assert dag.get_task("select_rebake").upstream_task_ids == {"audit"}
