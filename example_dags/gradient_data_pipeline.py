"""
Data-pipeline dependency: change the source data, reindex the knowledge base, then use it fresh.

Two DAGs, two ways for a consumer to wait for a fresh knowledge base:

``gradient_data_pipeline`` (the producer)
    ``update_source_data`` writes new documents to the knowledge base's data source (a stand-in
    here), ``reindex`` indexes them (deferrable) and, when the job succeeds, emits an event on the
    knowledge base's Asset. In the same DAG, ``wait_until_fresh`` is a
    :class:`GradientIndexingJobSensor` in knowledge-base mode: it passes once the knowledge base has
    no job running and its latest job succeeded *after* the data changed (``indexed_after``). That
    is the check to use whenever someone else may start the reindex (another DAG, the console, the
    knowledge base's own schedule); here it also guards ``answer_questions``.

``gradient_knowledge_base_consumer``
    Scheduled on the knowledge base's Asset: Airflow runs it after each successful reindex. It reads
    the job's details from the asset event's ``extra``.

A knowledge base's Asset comes from ``knowledge_base_asset(uuid)``: one Asset per knowledge base,
stable across renames, the same wherever it is used. The reindex task attaches
``indexing_job_uuid``, ``knowledge_base_uuid``, ``status``, ``outcome`` and ``total_tokens`` to the
event's ``extra``.

The knowledge base comes from the environment variable ``GRADIENT_KB_UUID`` (so the same file runs
against the emulator in tests); hard-code your uuid instead if you prefer. Assets are fixed when the
file is parsed, so this DAG names its knowledge base by uuid (a name would need the API to find
the uuid) and as a constant rather than a DAG param. Nothing calls the API at parse time.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_gradient.assets import knowledge_base_asset
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor

# [START howto_knowledge_base_asset]
#: The knowledge base this pipeline feeds. The all-zero placeholder keeps the file importable when
#: GRADIENT_KB_UUID is unset; a run against it fails with "knowledge base not found".
KNOWLEDGE_BASE_UUID = os.environ.get("GRADIENT_KB_UUID") or "00000000-0000-0000-0000-000000000000"

#: The knowledge base's Asset (one per knowledge base, whoever refers to it).
DOCS_KNOWLEDGE_BASE = knowledge_base_asset(KNOWLEDGE_BASE_UUID)
# [END howto_knowledge_base_asset]

with DAG(
    dag_id="gradient_data_pipeline",
    description="Update the source documents, reindex the knowledge base, use it once it is fresh.",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["gradient", "example"],
) as pipeline_dag:

    @task
    def update_source_data() -> str:
        """
        Stand-in for your ETL step that writes documents to the knowledge base's data source (for
        example a Spaces bucket or a crawled site). Returns when the data changed (ISO-8601, UTC).
        """
        changed_at = pendulum.now("UTC")
        print(f"Source documents updated at {changed_at.isoformat()}.")
        return changed_at.isoformat()

    changed_at = update_source_data()

    # [START howto_reindex_with_outlet]
    reindex = GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid=KNOWLEDGE_BASE_UUID,
        deferrable=True,
        timeout=timedelta(hours=2),  # maximum wait; the job is cancelled when it runs out
        retries=1,
        # On success, an asset event with the job's details in its extra: consumers scheduled on
        # this Asset run next. A failed job emits no event.
        outlets=[DOCS_KNOWLEDGE_BASE],
    )
    # [END howto_reindex_with_outlet]

    # [START howto_sensor_knowledge_base_fresh]
    wait_until_fresh = GradientIndexingJobSensor(
        task_id="wait_until_fresh",
        knowledge_base_uuid=KNOWLEDGE_BASE_UUID,
        # Only a job that finished after the data changed counts; older successes keep it waiting.
        indexed_after=changed_at,  # an XComArg: also makes update_source_data upstream
        deferrable=True,
        poke_interval=60,  # seconds between checks (polls start sooner and back off to this)
        timeout=3 * 60 * 60,  # fail (or skip, with soft_fail=True) after 3 hours
    )
    # [END howto_sensor_knowledge_base_fresh]

    @task
    def answer_questions(index: dict[str, Any]) -> str:
        """Stand-in for the consumer: query an agent that uses the knowledge base."""
        print(f"Knowledge base {index['knowledge_base_uuid']} is fresh (job {index['indexing_job_uuid']}).")
        return str(index["indexing_job_uuid"])

    changed_at >> reindex >> wait_until_fresh
    answer_questions(wait_until_fresh.output)


# [START howto_asset_consumer]
with DAG(
    dag_id="gradient_knowledge_base_consumer",
    description="Runs after every successful reindex of the docs knowledge base (scheduled on its Asset).",
    schedule=[DOCS_KNOWLEDGE_BASE],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["gradient", "example"],
) as consumer_dag:

    @task(inlets=[DOCS_KNOWLEDGE_BASE])
    def refresh_cached_answers(
        triggering_asset_events: Any = None,
        inlet_events: Any = None,
    ) -> dict[str, Any]:
        """
        Use the reindexed knowledge base. The event that triggered this run carries the job's
        details; a manual run falls back to the asset's latest event.
        """
        events = list(triggering_asset_events[DOCS_KNOWLEDGE_BASE]) if triggering_asset_events else []
        if not events:
            events = list(inlet_events[DOCS_KNOWLEDGE_BASE]) if inlet_events else []
        if not events:
            raise ValueError(f"No asset event yet for {DOCS_KNOWLEDGE_BASE.uri}: run gradient_data_pipeline first.")
        extra = dict(events[-1].extra)
        print(f"Refreshing answers: indexing job {extra.get('indexing_job_uuid')} ended {extra.get('status')}.")
        return extra

    refresh_cached_answers()
# [END howto_asset_consumer]
