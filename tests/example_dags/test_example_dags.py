"""
Every example DAG, run for real with ``dag.test()`` against the Gradient API emulator.

The DAGs are the files users copy: each test checks the state the run ends in, the state of every
task, and what happened on the (emulated) API side: how many jobs were started, how they ended,
whether a job was cancelled.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.airflow_db, pytest.mark.timeout(600)]

#: Long enough that only a cancellation ends the job during a test (emulated seconds).
LONG_JOB = 10_000_000.0


def _phase(job: dict[str, Any]) -> str:
    return str(job["phase"]).removeprefix("BATCH_JOB_PHASE_")


def _new_jobs(emulator: Any, kb_uuid: str, before: int) -> list[dict[str, Any]]:
    """The knowledge base's jobs started since it had ``before`` jobs, oldest first."""
    jobs = list(reversed(emulator.jobs(kb_uuid)))
    return jobs[before:]


def _cancel_posts(emulator: Any, job_uuid: str) -> int:
    return sum(
        1
        for request in emulator.requests
        if request.operation == "genai_cancel_indexing_job" and job_uuid in request.path
    )


# ----------------------------------------------------------------------------------------------
# Scheduled reindexing
# ----------------------------------------------------------------------------------------------


def test_scheduled_reindex_maps_over_the_knowledge_bases(example_env: Any, run_dag: Any) -> None:
    emulator = example_env.emulator
    before = {kb: len(emulator.jobs(kb)) for kb in example_env.scheduled_kbs}

    result = run_dag("gradient_scheduled_reindex")

    assert result.state == "success", result
    assert result.task_states == {
        "knowledge_bases": "success",
        "reindex[0]": "success",
        "reindex[1]": "success",
    }
    assert result.returns["knowledge_bases"] == example_env.scheduled_names
    for index, kb in enumerate(example_env.scheduled_kbs):
        jobs = _new_jobs(emulator, kb, before[kb])
        assert len(jobs) == 1, f"exactly one job per knowledge base, got {jobs}"
        assert _phase(jobs[0]) == "SUCCEEDED"
        summary = result.returns[f"reindex[{index}]"]
        assert summary["indexing_job_uuid"] == jobs[0]["uuid"]
        assert summary["knowledge_base_uuid"] == kb
        assert summary["outcome"] == "succeeded"


def test_scheduled_reindex_prefers_the_variable(
    example_env: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = example_env.emulator
    only = emulator.create_knowledge_base("from-variable", data_sources=1).uuid
    monkeypatch.setenv("AIRFLOW_VAR_GRADIENT_KNOWLEDGE_BASE_NAMES", json.dumps(["from-variable"]))
    before = {kb: len(emulator.jobs(kb)) for kb in example_env.scheduled_kbs}

    result = run_dag("gradient_scheduled_reindex")

    assert result.state == "success", result
    assert result.task_states == {"knowledge_bases": "success", "reindex[0]": "success"}
    assert [_phase(job) for job in emulator.jobs(only)] == ["SUCCEEDED"]
    assert {kb: len(emulator.jobs(kb)) for kb in example_env.scheduled_kbs} == before


# ----------------------------------------------------------------------------------------------
# Data-pipeline dependency: sensor in the same DAG, and a DAG scheduled on the Asset
# ----------------------------------------------------------------------------------------------


def test_data_pipeline_reindexes_emits_the_asset_and_feeds_the_consumer(example_env: Any, run_dag: Any) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    emulator = example_env.emulator
    kb = example_env.pipeline_kb
    before = len(emulator.jobs(kb))

    result = run_dag("gradient_data_pipeline")

    assert result.state == "success", result
    assert result.task_states == {
        "update_source_data": "success",
        "reindex": "success",
        "wait_until_fresh": "success",
        "answer_questions": "success",
    }
    jobs = _new_jobs(emulator, kb, before)
    assert [_phase(job) for job in jobs] == ["SUCCEEDED"]
    job_uuid = jobs[0]["uuid"]
    # The sensor saw the job that finished after the data changed, and handed it on.
    assert result.returns["wait_until_fresh"]["indexing_job_uuid"] == job_uuid
    assert result.returns["answer_questions"] == job_uuid

    uri = f"gradient://knowledge-bases/{kb}"
    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.uri == uri)).one()
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        assert [event.extra.get("indexing_job_uuid") for event in events][-1] == job_uuid
        assert events[-1].extra["knowledge_base_uuid"] == kb
        assert events[-1].extra["outcome"] == "succeeded"
        queued = session.scalars(select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id))
        # The scheduler would now run the consumer DAG.
        assert "gradient_knowledge_base_consumer" in set(queued)

    consumer = run_dag("gradient_knowledge_base_consumer")

    assert consumer.state == "success", consumer
    assert consumer.task_states == {"refresh_cached_answers": "success"}
    assert consumer.returns["refresh_cached_answers"]["indexing_job_uuid"] == job_uuid
    assert consumer.returns["refresh_cached_answers"]["status"] == "INDEX_JOB_STATUS_COMPLETED"


def test_data_pipeline_failed_job_emits_no_asset_event(
    example_env: Any, example_dagbag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    emulator = example_env.emulator
    kb = example_env.pipeline_kb
    uri = f"gradient://knowledge-bases/{kb}"

    def event_count() -> int:
        with create_session() as session:
            return int(
                session.scalar(
                    select(func.count(AssetEvent.id))
                    .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                    .where(AssetModel.uri == uri)
                )
                or 0
            )

    # dag.test() honours retry_delay (minutes) before a retry: run this failure without the retry.
    monkeypatch.setattr(example_dagbag.get_dag("gradient_data_pipeline").get_task("reindex"), "retries", 0)
    events_before = event_count()
    emulator.script_jobs(kb, "FAILED", error_msg="bucket not found")
    try:
        result = run_dag("gradient_data_pipeline")
    finally:
        emulator.script_jobs(kb, "COMPLETED")

    assert result.state == "failed", result
    assert result.task_states["reindex"] == "failed"
    assert result.task_states["wait_until_fresh"] == "upstream_failed"
    assert result.task_states["answer_questions"] == "upstream_failed"
    assert event_count() == events_before


# ----------------------------------------------------------------------------------------------
# On-failure cancellation
# ----------------------------------------------------------------------------------------------


def test_cancel_teardown_cancels_the_job_when_the_run_fails(example_env: Any, run_dag: Any) -> None:
    emulator = example_env.emulator
    name = "teardown"
    kb = emulator.create_knowledge_base(name, data_sources=1).uuid
    emulator.script_jobs(kb, "COMPLETED", duration=LONG_JOB)

    result = run_dag("gradient_cancel_teardown", knowledge_base_name=name, simulate_failure=True)

    assert result.state == "failed", result
    assert result.task_states == {
        "start_indexing": "success",
        "build_evaluation_set": "failed",
        "wait_for_index": "upstream_failed",
        "evaluate": "upstream_failed",
        "cancel_indexing": "success",
    }
    jobs = emulator.jobs(kb)
    assert [_phase(job) for job in jobs] == ["CANCELLED"]
    assert _cancel_posts(emulator, jobs[0]["uuid"]) == 1


def test_cancel_teardown_is_a_no_op_when_the_run_succeeds(example_env: Any, run_dag: Any) -> None:
    emulator = example_env.emulator
    name = "teardown-ok"
    kb = emulator.create_knowledge_base(name, data_sources=1).uuid

    result = run_dag("gradient_cancel_teardown", knowledge_base_name=name, simulate_failure=False)

    assert result.state == "success", result
    assert set(result.task_states.values()) == {"success"}
    jobs = emulator.jobs(kb)
    assert [_phase(job) for job in jobs] == ["SUCCEEDED"]
    assert result.returns["evaluate"] == jobs[0]["uuid"]
    assert _cancel_posts(emulator, jobs[0]["uuid"]) == 0


def test_cancel_one_failed_cancels_when_a_check_fails(example_env: Any, run_dag: Any) -> None:
    emulator = example_env.emulator
    name = "one-failed"
    kb = emulator.create_knowledge_base(name, data_sources=1).uuid
    emulator.script_jobs(kb, "COMPLETED", duration=LONG_JOB)

    result = run_dag("gradient_cancel_one_failed", knowledge_base_name=name, simulate_failure=True)

    assert result.state == "failed", result
    assert result.task_states == {
        "start_indexing": "success",
        "check_row_counts": "failed",
        "check_embedding_budget": "success",
        "wait_for_index": "upstream_failed",
        "cancel_on_failure": "success",
    }
    jobs = emulator.jobs(kb)
    assert [_phase(job) for job in jobs] == ["CANCELLED"]
    assert _cancel_posts(emulator, jobs[0]["uuid"]) == 1


def test_cancel_one_failed_is_skipped_when_the_checks_pass(example_env: Any, run_dag: Any) -> None:
    emulator = example_env.emulator
    name = "one-failed-ok"
    kb = emulator.create_knowledge_base(name, data_sources=1).uuid

    result = run_dag("gradient_cancel_one_failed", knowledge_base_name=name, simulate_failure=False)

    assert result.state == "success", result
    assert result.task_states["cancel_on_failure"] == "skipped"
    assert result.task_states["wait_for_index"] == "success"
    jobs = emulator.jobs(kb)
    assert [_phase(job) for job in jobs] == ["SUCCEEDED"]
    assert _cancel_posts(emulator, jobs[0]["uuid"]) == 0


def test_max_wait_cancels_the_job_on_expiry(example_env: Any, run_dag: Any) -> None:
    emulator = example_env.emulator
    name = "max-wait"
    kb = emulator.create_knowledge_base(name, data_sources=1).uuid
    emulator.script_jobs(kb, "COMPLETED", duration=LONG_JOB)

    result = run_dag("gradient_reindex_max_wait", knowledge_base_name=name)

    assert result.state == "failed", result
    assert result.task_states == {"reindex": "failed"}
    jobs = emulator.jobs(kb)
    assert [_phase(job) for job in jobs] == ["CANCELLED"], "the maximum wait must cancel the job, once"
    assert _cancel_posts(emulator, jobs[0]["uuid"]) == 1
