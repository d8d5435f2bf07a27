"""Harness smoke test: one plain task and one task that defers to the triggerer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import DAG, BaseOperator


class DeferBriefly(BaseOperator):
    """Defers for a few seconds, then finishes on a worker."""

    def execute(self, context: Any) -> None:
        # Long enough that the LocalExecutor has reported the deferring attempt as finished before
        # the trigger fires: on a loaded machine Airflow 3.3.2 otherwise fails the resumed task
        # ("executor reported success but the task instance's state is queued").
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=15)), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> str:
        return "resumed"


with DAG(dag_id="system_smoke", schedule=None, catchup=False, tags=["system-test"]):
    hello = PythonOperator(task_id="hello", python_callable=lambda: "hello")
    hello >> DeferBriefly(task_id="defer")
