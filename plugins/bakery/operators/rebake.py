"""TriggerRebakeOperator: start the bake DAG for the images an audit found stale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context


class TriggerRebakeOperator(BaseOperator):
    """Airflow's TriggerDagRunOperator, imported when the task runs: importing it at DAG
    parse time costs more than the rest of the audit DAG put together."""

    template_fields: Sequence[str] = ("conf",)

    def __init__(self, *, trigger_dag_id: str, conf: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.conf = conf

    def execute(self, context: Context) -> Any:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        self.log.info("triggering %s with %s", self.trigger_dag_id, self.conf)
        return TriggerDagRunOperator(
            task_id=self.task_id,
            trigger_dag_id=self.trigger_dag_id,
            conf=self.conf,
            wait_for_completion=False,
        ).execute(context)
