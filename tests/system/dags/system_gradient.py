"""
The system-test DAGs (the scheduled reindex and the on-failure cancellation scenarios run the
project's example DAGs instead). Knowledge bases come from the test, in the run's conf (``kb`` /
``kbs``). Poll intervals are short so the suite fits its time budget.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
KB_FROM_CONF = "{{ dag_run.conf['kb'] }}"

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

# 5. Fifty knowledge bases at once, all deferred, all polling through one token (the run's conf
# may name another connection, i.e. another token).
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
        gradient_conn_id="{{ dag_run.conf.get('conn_id', 'gradient_default') }}",
        deferrable=True,
        poll_interval=5.0,
        timeout=900.0,
    ).expand(knowledge_base_uuid=knowledge_bases())

# The CeleryExecutor scenarios (tests/system/celery): one mapped task per ``[knowledge base uuid,
# connection id]`` pair of the run's conf ``targets``, all deferred; a run starts once the one
# before it ended (a knowledge base runs one job at a time). ``gradient_fleet_retry`` retries once.
for fleet_dag_id, fleet_retries in (("gradient_fleet", 0), ("gradient_fleet_retry", 1)):
    with DAG(
        dag_id=fleet_dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=128,
        tags=["system-test"],
    ):

        @task
        def targets(**context: Any) -> list[dict[str, str]]:
            return [
                {"knowledge_base_uuid": kb, "gradient_conn_id": conn_id}
                for kb, conn_id in context["dag_run"].conf["targets"]
            ]

        GradientStartIndexingJobOperator.partial(
            task_id="reindex",
            deferrable=True,
            poll_interval=5.0,
            timeout=900.0,
            retries=fleet_retries,
            retry_delay=timedelta(seconds=1),
        ).expand_kwargs(targets())
