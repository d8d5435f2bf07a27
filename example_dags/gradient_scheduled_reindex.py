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

Which knowledge bases, by name as the console shows them: the Airflow Variable
``gradient_knowledge_base_names`` (a JSON list) when it is set, otherwise the DAG param
``knowledge_base_names``, whose default comes from the environment variable ``GRADIENT_KB_NAMES``
(comma-separated). Each task looks its name up in the list of knowledge bases once per try
(``knowledge_base_name``); a name that matches no knowledge base, or several, fails that task
before anything starts. Nothing calls the API while the file is parsed.

Connection: ``gradient_default`` (API token with genai:read, genai:create and genai:update).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

# [START howto_scheduled_reindex_knowledge_bases]
#: Default list of knowledge-base names (the DAG param's default). Read from the environment here so
#: the same file runs against the emulator in tests and against your account in production; you can
#: just as well hard-code your names.
_FROM_ENV = os.environ.get("GRADIENT_KB_NAMES", "").split(",")
DEFAULT_KNOWLEDGE_BASE_NAMES = [name.strip() for name in _FROM_ENV if name.strip()]
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
        "knowledge_base_names": Param(
            DEFAULT_KNOWLEDGE_BASE_NAMES,
            type="array",
            items={"type": "string"},
            description="Knowledge bases to reindex, by name (used when the Variable gradient_knowledge_base_names "
            "is unset).",
        ),
    },
    tags=["gradient", "example"],
) as dag:

    @task
    def knowledge_bases(params: dict | None = None) -> list[str]:
        """The knowledge bases to reindex this run (names): the Variable if set, else the DAG param."""
        names = Variable.get("gradient_knowledge_base_names", default=None, deserialize_json=True)
        names = names or (params or {}).get("knowledge_base_names") or []
        if not names:
            raise ValueError(
                "No knowledge bases to reindex: set the Variable gradient_knowledge_base_names "
                '(e.g. ["product-docs", ...]), the DAG param knowledge_base_names, or GRADIENT_KB_NAMES.'
            )
        return [str(name) for name in names]

    # One mapped task instance per knowledge base. Everything in partial() is shared by all of them.
    GradientStartIndexingJobOperator.partial(
        task_id="reindex",
        deferrable=True,  # wait in the triggerer, not in a worker slot
        timeout=timedelta(hours=3),  # maximum wait: cancel the job and fail after 3 hours
        retries=2,  # a FAILED job or a timeout is retried; a CANCELLED job is not
        retry_delay=timedelta(minutes=10),
        max_active_tis_per_dagrun=4,  # at most 4 jobs at a time (API rate limits, cost)
    ).expand(knowledge_base_name=knowledge_bases())
# [END howto_scheduled_reindex]
