"""
Small DAGs run for real (``dag.test()`` and ``airflow dags test``) against the Gradient emulator.

Every DAG takes the knowledge base from ``params.kb`` (the runner passes it as the run's conf).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, task

from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor

KB = "{{ params.kb }}"
JOB_XCOM = "{{ ti.xcom_pull(task_ids='start', key='indexing_job_uuid') }}"
#: The recommended asset URI of a knowledge base's index.
KB_ASSET = Asset("gradient://knowledge-bases/docs")
KB_FRESH = Asset("gradient://knowledge-bases/docs/fresh")
COMMON = {"schedule": None, "start_date": datetime(2026, 1, 1), "catchup": False, "params": {"kb": ""}}

with DAG("gradient_start_sense_cancel", **COMMON) as start_sense_cancel:
    start = GradientStartIndexingJobOperator(
        task_id="start", knowledge_base_uuid=KB, deferrable=True, poll_interval=0.2, outlets=[KB_ASSET]
    )
    sense = GradientIndexingJobSensor(
        task_id="sense", indexing_job_uuid=JOB_XCOM, deferrable=True, poke_interval=0.2, timeout=60
    )
    fresh = GradientIndexingJobSensor(
        task_id="fresh",
        knowledge_base_uuid=KB,
        mode="reschedule",
        poke_interval=1,
        timeout=60,
        outlets=[KB_FRESH],
    )
    cancel = GradientCancelIndexingJobOperator(task_id="cancel", indexing_job_uuid=JOB_XCOM)
    start >> [sense, fresh] >> cancel.as_teardown(setups=start)

with DAG("gradient_failing_job", **COMMON) as failing_job:
    # The job fails: the sensor fails, and the teardown still runs (a no-op: the job has ended).
    start = GradientStartIndexingJobOperator(task_id="start", knowledge_base_uuid=KB, wait_for_completion=False)
    sense = GradientIndexingJobSensor(
        task_id="sense", indexing_job_uuid=JOB_XCOM, deferrable=True, poke_interval=0.2, timeout=60
    )
    cancel = GradientCancelIndexingJobOperator(task_id="cancel", indexing_job_uuid=JOB_XCOM)
    start >> sense >> cancel.as_teardown(setups=start)

with DAG("gradient_failing_start", **COMMON) as failing_start:
    # The start task itself fails. Airflow skips the teardowns of a failed setup, so an on-failure
    # cancel (trigger_rule="one_failed") is the way to clean up after the start task.
    start = GradientStartIndexingJobOperator(
        task_id="start", knowledge_base_uuid=KB, deferrable=True, poll_interval=0.2
    )
    cancel_on_failure = GradientCancelIndexingJobOperator(
        task_id="cancel_on_failure", indexing_job_uuid=JOB_XCOM, trigger_rule="one_failed"
    )
    start >> cancel_on_failure

with DAG("gradient_upstream_failure", **COMMON) as upstream_failure:
    start = GradientStartIndexingJobOperator(task_id="start", knowledge_base_uuid=KB, wait_for_completion=False)

    @task
    def boom() -> None:
        raise RuntimeError("downstream step failed")

    cancel = GradientCancelIndexingJobOperator(task_id="cancel", indexing_job_uuid=JOB_XCOM)
    on_failure = GradientCancelIndexingJobOperator(
        task_id="cancel_on_failure", knowledge_base_uuid=KB, trigger_rule="one_failed"
    )
    failed = boom()
    start >> failed >> cancel.as_teardown(setups=start)
    failed >> on_failure

with DAG("gradient_retry_reattach", **COMMON) as retry_reattach:
    GradientStartIndexingJobOperator(
        task_id="start",
        knowledge_base_uuid=KB,
        deferrable=True,
        poll_interval=0.2,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )

with DAG("gradient_sync_start", **COMMON) as sync_start:
    GradientStartIndexingJobOperator(task_id="start", knowledge_base_uuid=KB, deferrable=False, poll_interval=0.2)
