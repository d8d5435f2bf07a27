"""
The system-test DAGs. Knowledge bases come from the test: a DAG run's conf (``kb`` / ``kbs``) or,
for the scheduled DAG, the Airflow Variable ``gradient_system_kb``. Poll intervals are short so
the suite fits its time budget; the emulator runs its clock 10x faster than wall time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task

from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
KB_FROM_CONF = "{{ dag_run.conf['kb'] }}"
JOB_FROM_START = "{{ ti.xcom_pull(task_ids='start', key='indexing_job_uuid') }}"

# 1. A scheduled nightly reindex. Unpausing it creates exactly one scheduled run (catchup=False).
with DAG(
    dag_id="gradient_scheduled_reindex",
    schedule=timedelta(days=1),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    tags=["system-test"],
):
    GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid="{{ var.value.gradient_system_kb }}",
        deferrable=True,
        poll_interval=5.0,
        timeout=600.0,
    )

# 2 and 4. A deferrable reindex of the knowledge base in the run's conf.
with DAG(dag_id="gradient_reindex", schedule=None, start_date=START, catchup=False, tags=["system-test"]):
    GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid=KB_FROM_CONF,
        deferrable=True,
        poll_interval=5.0,
        timeout=600.0,
        cancel_on_kill=True,
    )

# 3. Waiting in the worker (not deferred), with one retry: a killed worker's retry must reattach.
with DAG(dag_id="gradient_reindex_sync_retry", schedule=None, start_date=START, catchup=False, tags=["system-test"]):
    GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid=KB_FROM_CONF,
        deferrable=False,
        poll_interval=3.0,
        timeout=600.0,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

# 5. Fifty knowledge bases at once, all deferred, all polling through one token.
with DAG(
    dag_id="gradient_fanout",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_tasks=64,
    tags=["system-test"],
):

    @task
    def knowledge_bases(**context: Any) -> list[str]:
        return list(context["dag_run"].conf["kbs"])

    GradientStartIndexingJobOperator.partial(
        task_id="reindex",
        deferrable=True,
        poll_interval=5.0,
        timeout=900.0,
    ).expand(knowledge_base_uuid=knowledge_bases())


def _upstream_check_fails() -> None:
    raise RuntimeError("the upstream data check failed (on purpose, system test)")


# 6. The on-failure cancellation pattern: start the job, a downstream step fails, the teardown
#    cancels the job that is still running (and is a no-op when the job already ended).
with DAG(dag_id="gradient_cancel_on_failure", schedule=None, start_date=START, catchup=False, tags=["system-test"]):
    start = GradientStartIndexingJobOperator(
        task_id="start",
        knowledge_base_uuid=KB_FROM_CONF,
        wait_for_completion=False,
    )
    check = PythonOperator(task_id="check_source_data", python_callable=_upstream_check_fails)
    wait = GradientIndexingJobSensor(
        task_id="wait", indexing_job_uuid=JOB_FROM_START, deferrable=True, poke_interval=5.0
    )
    cancel = GradientCancelIndexingJobOperator(task_id="cancel", indexing_job_uuid=JOB_FROM_START)
    start >> check >> wait >> cancel.as_teardown(setups=start)
