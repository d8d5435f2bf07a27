"""
Scheduled reindexing: every night, reindex a list of Gradient knowledge bases in parallel.

What this shows:

* a cron schedule (02:00 UTC every day);
* dynamic task mapping: one ``reindex`` task instance per knowledge base, so each one has its own
  state, log, retries and "View indexing job" link;
* deferrable waits: while the jobs run, no worker slot is held (the triggerer polls the API);
* a maximum wait (``timeout``): a job still running after it is cancelled and the task fails;
* retries: a FAILED job, a timeout or an API outage is retried (a CANCELLED job is not). A retry
  reattaches to the job its earlier attempt started instead of starting a second one (Airflow 3.3+
  task state store).

Which knowledge bases: the Airflow Variable ``gradient_knowledge_base_uuids`` (a JSON list) when it
is set, otherwise the DAG param ``knowledge_base_uuids``, whose default comes from the environment
variable ``GRADIENT_KB_UUIDS`` (comma-separated). Nothing calls the API while the file is parsed.

Connection: ``gradient_default`` (API token with genai:read, genai:create and genai:update).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

# [START howto_scheduled_reindex_knowledge_bases]
#: Default list of knowledge bases (the DAG param's default). Read from the environment here so the
#: same file runs against the emulator in tests and against your account in production; you can
#: just as well hard-code your uuids.
_FROM_ENV = os.environ.get("GRADIENT_KB_UUIDS", "").split(",")
DEFAULT_KNOWLEDGE_BASE_UUIDS = [uuid.strip() for uuid in _FROM_ENV if uuid.strip()]
# [END howto_scheduled_reindex_knowledge_bases]

# [START howto_scheduled_reindex]
with DAG(
    dag_id="gradient_scheduled_reindex",
    description="Reindex Gradient knowledge bases every night, one mapped task per knowledge base.",
    schedule="0 2 * * *",  # 02:00 UTC, daily
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # never let two nights overlap on the same knowledge bases
    params={
        "knowledge_base_uuids": Param(
            DEFAULT_KNOWLEDGE_BASE_UUIDS,
            type="array",
            items={"type": "string"},
            description="Knowledge bases to reindex (used when the Variable gradient_knowledge_base_uuids is unset).",
        ),
    },
    tags=["gradient", "example"],
) as dag:

    @task
    def knowledge_bases(params: dict | None = None) -> list[str]:
        """The knowledge bases to reindex this run: the Variable if set, else the DAG param."""
        uuids = Variable.get("gradient_knowledge_base_uuids", default=None, deserialize_json=True)
        uuids = uuids or (params or {}).get("knowledge_base_uuids") or []
        if not uuids:
            raise ValueError(
                "No knowledge bases to reindex: set the Variable gradient_knowledge_base_uuids "
                '(e.g. ["<kb uuid>", ...]), the DAG param knowledge_base_uuids, or GRADIENT_KB_UUIDS.'
            )
        return [str(uuid) for uuid in uuids]

    # One mapped task instance per knowledge base. Everything in partial() is shared by all of them.
    GradientStartIndexingJobOperator.partial(
        task_id="reindex",
        deferrable=True,  # wait in the triggerer, not in a worker slot
        timeout=timedelta(hours=3),  # maximum wait: cancel the job and fail after 3 hours
        retries=2,  # a FAILED job or a timeout is retried; a CANCELLED job is not
        retry_delay=timedelta(minutes=10),
        max_active_tis_per_dagrun=4,  # at most 4 jobs at a time (API rate limits, cost)
    ).expand(knowledge_base_uuid=knowledge_bases())
# [END howto_scheduled_reindex]
