"""
On-failure cancellation: a run that fails or runs out of time cancels its indexing job.

An indexing job costs tokens; when the run that wanted it fails, let it not run on for nothing.
Three patterns, one DAG each:

``gradient_cancel_teardown``
    The start task is a *setup* and the cancel task its *teardown*: the teardown runs whatever
    happens between them (success, failure, upstream failure). When the job already ended it is a
    no-op, so the happy path costs one GET.
``gradient_cancel_one_failed``
    A cancel task with ``trigger_rule="one_failed"`` downstream of the checks: it runs only when
    one of them failed, and is skipped otherwise.
``gradient_reindex_max_wait``
    A maximum wait on the start operator (``timeout``): when it runs out, the operator cancels the
    job and fails. No extra task needed.

The knowledge base is the DAG param ``knowledge_base_name``, its name as the console shows it
(default: environment variable ``GRADIENT_KB_NAME``); the start task looks it up once per try. The
param ``simulate_failure`` makes a check fail so you can watch the cancellation
(``airflow dags test gradient_cancel_teardown -c '{"knowledge_base_name": "docs", "simulate_failure": true}'``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor


def _dag_args(*, failure_switch: bool = True) -> dict[str, Any]:
    """What the three DAGs below share (fresh Param objects for each DAG)."""
    params: dict[str, Any] = {
        "knowledge_base_name": Param(
            os.environ.get("GRADIENT_KB_NAME", ""),
            type="string",
            description="The knowledge base to reindex, by name.",
        ),
    }
    if failure_switch:
        params["simulate_failure"] = Param(
            False, type="boolean", description="Make a check fail, to watch the cancellation."
        )
    return {
        "schedule": None,
        "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
        "catchup": False,
        "params": params,
        "tags": ["gradient", "example"],
    }


#: The job the start task started, from its XCom (empty if it never started one: cancel is a no-op).
JOB_UUID = "{{ ti.xcom_pull(task_ids='start_indexing', key='indexing_job_uuid') }}"


def _check(name: str, params: dict[str, Any]) -> None:
    """A data check that fails when the run asks it to (``simulate_failure``)."""
    if params.get("simulate_failure"):
        raise RuntimeError(f"{name} failed (simulate_failure=true).")
    print(f"{name} passed.")


# [START howto_cancel_as_teardown]
with DAG(dag_id="gradient_cancel_teardown", **_dag_args()) as teardown_dag:
    # Setup: start the job and return at once (the sensor below does the waiting).
    start_indexing = GradientStartIndexingJobOperator(
        task_id="start_indexing",
        knowledge_base_name="{{ params.knowledge_base_name }}",
        wait_for_completion=False,
    )

    @task
    def build_evaluation_set(params: dict[str, Any] | None = None) -> None:
        """Work that runs while the job indexes; if it fails, the job is no longer wanted."""
        _check("build_evaluation_set", params or {})

    wait_for_index = GradientIndexingJobSensor(
        task_id="wait_for_index",
        indexing_job_uuid=JOB_UUID,
        deferrable=True,
        poke_interval=30,
        timeout=2 * 60 * 60,
    )

    @task
    def evaluate(index: dict[str, Any]) -> str:
        """Use the fresh index (a stand-in)."""
        return str(index["indexing_job_uuid"])

    # Teardown: always runs once start_indexing succeeded; cancels the job if it is still running.
    cancel_indexing = GradientCancelIndexingJobOperator(task_id="cancel_indexing", indexing_job_uuid=JOB_UUID)

    (
        start_indexing
        >> build_evaluation_set()
        >> wait_for_index
        >> evaluate(wait_for_index.output)
        >> cancel_indexing.as_teardown(setups=start_indexing)
    )
# [END howto_cancel_as_teardown]


# [START howto_cancel_one_failed]
with DAG(dag_id="gradient_cancel_one_failed", **_dag_args()) as one_failed_dag:
    start_indexing = GradientStartIndexingJobOperator(
        task_id="start_indexing",
        knowledge_base_name="{{ params.knowledge_base_name }}",
        wait_for_completion=False,
    )

    @task
    def check_row_counts(params: dict[str, Any] | None = None) -> None:
        _check("check_row_counts", params or {})

    @task
    def check_embedding_budget() -> None:
        _check("check_embedding_budget", {})

    checks = [check_row_counts(), check_embedding_budget()]

    wait_for_index = GradientIndexingJobSensor(
        task_id="wait_for_index",
        indexing_job_uuid=JOB_UUID,
        deferrable=True,
        poke_interval=30,
        timeout=2 * 60 * 60,
    )

    # Runs only when a check failed (skipped otherwise). The run still ends failed.
    cancel_on_failure = GradientCancelIndexingJobOperator(
        task_id="cancel_on_failure",
        indexing_job_uuid=JOB_UUID,
        trigger_rule="one_failed",
    )

    start_indexing >> checks
    checks >> wait_for_index
    checks >> cancel_on_failure
# [END howto_cancel_one_failed]


# [START howto_max_wait]
#: The longest the reindex may take. Read from the environment only so the tests can use seconds.
MAX_WAIT = timedelta(seconds=float(os.environ.get("GRADIENT_MAX_WAIT_SECONDS", 2 * 60 * 60)))

with DAG(dag_id="gradient_reindex_max_wait", **_dag_args(failure_switch=False)) as max_wait_dag:
    GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_name="{{ params.knowledge_base_name }}",
        deferrable=True,
        # When MAX_WAIT runs out, the job is cancelled and the task fails (GradientJobTimeoutError).
        timeout=MAX_WAIT,
        retries=0,  # a retry would start a new job; decide whether you want that
    )
# [END howto_max_wait]
