"""
Event-driven: run a DAG whenever a Gradient knowledge base is reindexed, whoever started the job.

A reindex can start from many places besides an Airflow task: creating the knowledge base, adding a
data source, DigitalOcean's scheduled auto-indexing, the control panel, another tool. An
``AssetWatcher`` with :class:`GradientKnowledgeBaseEventTrigger` watches the knowledge base from the
triggerer and records an asset event each time one of its indexing jobs ends; this DAG is
scheduled on that asset, so it runs once per reindex (or once for several, if they end close
together), with each job's details in the asset event's ``extra["payload"]``.

Here: re-run an agent evaluation when the knowledge base changed. ``only_changed=True`` skips jobs
that ended NO_CHANGES; failed jobs are still reported, so the DAG can tell someone.

Set ``GRADIENT_EXAMPLE_KB_UUID`` to your knowledge base's uuid (the default only lets the file
parse) and define the ``gradient_default`` connection (password = a DigitalOcean API token with
``genai:read``). Needs a running triggerer. See ``docs/events.md``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_gradient.assets import knowledge_base_asset
from airflow_provider_gradient.triggers.knowledge_base_event import GradientKnowledgeBaseEventTrigger

#: The watched knowledge base. Read from the environment so the file parses without any network
#: access or metadata-DB lookup (a top-level ``Variable.get`` would query at every parse).
KNOWLEDGE_BASE_UUID = os.environ.get("GRADIENT_EXAMPLE_KB_UUID", "00000000-0000-4000-8000-000000000000")

# The knowledge base's one Asset (the same the start operator's outlets and gradient_data_pipeline
# use), here with a watcher that records an asset event for every reindex, whoever started it.
knowledge_base_reindexed = knowledge_base_asset(
    KNOWLEDGE_BASE_UUID,
    watchers=[
        AssetWatcher(
            name="gradient_knowledge_base_reindex_watcher",
            trigger=GradientKnowledgeBaseEventTrigger(
                knowledge_base_uuid=KNOWLEDGE_BASE_UUID,
                gradient_conn_id="gradient_default",
                poll_interval=60,
                only_changed=True,
            ),
        )
    ],
)


def reindex_payloads(triggering_asset_events: Any, asset: Asset) -> list[dict[str, Any]]:
    """
    The ended jobs behind this run: one payload per asset event the watcher recorded.

    :param triggering_asset_events: The task context's ``triggering_asset_events``.
    :param asset: The watched asset.
    """
    payloads = []
    for event in triggering_asset_events[asset] if triggering_asset_events else []:
        payload = (event.extra or {}).get("payload")
        if isinstance(payload, dict):
            payloads.append(payload)
    return payloads


with DAG(
    dag_id="example_gradient_event_driven",
    schedule=[knowledge_base_reindexed],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "gradient", "event-driven"],
    doc_md=__doc__,
):

    @task
    def describe_reindexes(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Log each reindex that triggered this run and pass its essentials on."""
        reindexes = []
        for payload in reindex_payloads(triggering_asset_events, knowledge_base_reindexed):
            print(
                f"Knowledge base {payload['knowledge_base_uuid']}: indexing job "
                f"{payload['indexing_job_uuid']} ended {payload['outcome']} at {payload['finished_at']} "
                f"({payload['tokens']} tokens)."
            )
            reindexes.append(
                {
                    key: payload.get(key)
                    for key in ("indexing_job_uuid", "knowledge_base_uuid", "outcome", "is_success", "tokens")
                }
            )
        return reindexes

    @task
    def evaluate_agent(reindexes: list[dict[str, Any]]) -> dict[str, Any]:
        """Stand-in for the real work: evaluate the agent on the fresh index, report failed reindexes."""
        fresh = [item["indexing_job_uuid"] for item in reindexes if item["is_success"]]
        failed = [item["indexing_job_uuid"] for item in reindexes if not item["is_success"]]
        if failed:
            print(f"Reindexes that did not succeed (tell the knowledge base's owner): {failed}")
        if fresh:
            print(f"Evaluating the agent against the index built by {fresh[-1]}.")
        return {"evaluated_after": fresh[-1] if fresh else None, "failed_reindexes": failed}

    evaluate_agent(describe_reindexes())
