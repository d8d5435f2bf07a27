"""GradientStartIndexingJobOperator: construction, deferral, and the sync path against the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk import DAG, Asset
from airflow.sdk.execution_time.context import OutletEventAccessors
from task_support import ExecuteInThread

from airflow_provider_gradient.exceptions import (
    GradientConfigError,
    GradientDatabaseNotReadyError,
    GradientError,
    GradientJobCancelledError,
    GradientJobError,
    GradientJobTimeoutError,
)
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

U1 = "123e4567-e89b-12d3-a456-426614174000"
KEY = GradientStartIndexingJobOperator.STATE_KEY
PENDING = GradientStartIndexingJobOperator.PENDING_KEY
POST = ("POST", "genai_create_indexing_job")


def start_op(kb: str, **kwargs: Any) -> GradientStartIndexingJobOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 0.2)
    return GradientStartIndexingJobOperator(task_id=kwargs.pop("task_id", "reindex"), knowledge_base_uuid=kb, **kwargs)


def quick_kb(emu: GradientEmulator, outcome: str = "COMPLETED", sources: int = 2, **script: Any) -> str:
    kb = emu.create_knowledge_base(data_sources=sources)
    emu.script_jobs(kb.uuid, outcome, **{"duration": 0.6, "pending": 0.1, **script})
    return kb.uuid


async def run_trigger(trigger: GradientIndexingJobTrigger) -> dict[str, Any]:
    events = [dict(event.payload) async for event in trigger.run()]
    await trigger.cleanup()
    assert len(events) == 1
    return events[0]


# -------------------------------------------------------------------------------------------
# Construction: validated at parse time, no request
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"if_job_running": "ignore"}, r"if_job_running must be one of \('wait', 'adopt', 'fail'\), got 'ignore'"),
        ({"poll_interval": 0}, "poll_interval must be greater than 0"),
        ({"poll_interval": -5}, "poll_interval must be greater than 0"),
        ({"poll_interval": "30"}, "poll_interval must be seconds"),
        ({"timeout": 0}, "timeout must be greater than 0"),
        ({"timeout": timedelta(seconds=-1)}, "timeout must be greater than 0"),
        ({"database_ready_timeout": -1}, "database_ready_timeout must be greater than 0"),
        ({"error_tolerance": 0}, "error_tolerance must be greater than 0"),
        ({"error_tolerance": "1h"}, "error_tolerance must be seconds"),
        ({"knowledge_base_uuid": "my-docs"}, "knowledge_base_uuid must be a UUID"),
        ({"knowledge_base_uuid": None}, "needs knowledge_base_uuid or knowledge_base_name"),
        ({"knowledge_base_uuid": ""}, "knowledge_base_uuid is required"),
        ({"data_source_uuids": U1}, "data_source_uuids must be a list of UUID strings"),
        ({"data_source_uuids": [U1, "x"]}, r"data_source_uuids\[1\] must be a UUID"),
        ({"data_source_uuids": []}, "data_source_uuids must not be empty"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"knowledge_base_uuid": U1, **kwargs}
    with pytest.raises(GradientConfigError, match=match):
        GradientStartIndexingJobOperator(task_id="t", **kwargs)


def test_templates_and_xcomargs_pass_construction() -> None:
    with DAG("templated") as dag:
        op = GradientStartIndexingJobOperator(
            task_id="t",
            knowledge_base_uuid="{{ params.kb }}",
            data_source_uuids="{{ params.sources }}",
            poll_interval=timedelta(seconds=15),
            timeout=None,
        )
    assert op.poll_interval == 15.0
    assert op.timeout is None
    assert dag.task_dict["t"] is op


def test_constructing_operators_makes_no_request(emu: GradientEmulator, conn: str) -> None:
    from airflow_provider_gradient.operators.indexing_job import GradientCancelIndexingJobOperator
    from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor

    kb = emu.create_knowledge_base()
    with DAG("parse_only"):
        start = GradientStartIndexingJobOperator(task_id="start", knowledge_base_uuid=kb.uuid, deferrable=True)
        sensor = GradientIndexingJobSensor(task_id="sense", knowledge_base_uuid=kb.uuid, deferrable=True)
        cancel = GradientCancelIndexingJobOperator(
            task_id="cancel", indexing_job_uuid="{{ ti.xcom_pull(task_ids='start', key='indexing_job_uuid') }}"
        )
        start >> sensor >> cancel.as_teardown(setups=start)
    assert emu.count() == 0


def test_deferrable_defaults_to_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "true")
    assert GradientStartIndexingJobOperator(task_id="a", knowledge_base_uuid=U1).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    assert GradientStartIndexingJobOperator(task_id="b", knowledge_base_uuid=U1).deferrable is False
    assert GradientStartIndexingJobOperator(task_id="c", knowledge_base_uuid=U1, deferrable=True).deferrable


def test_templated_values_are_validated_after_rendering_before_any_request(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    op = start_op("{{ params.kb }}", data_source_uuids="{{ params.sources }}")
    context = make_context(params={"kb": "not-a-uuid", "sources": None})
    op.render_template_fields(context)
    assert op.knowledge_base_uuid == "not-a-uuid"
    with pytest.raises(GradientConfigError, match="knowledge_base_uuid must be a UUID"):
        op.execute(context)

    op = start_op("{{ params.kb }}", data_source_uuids="{{ params.sources }}")
    context = make_context(params={"kb": U1, "sources": U1})  # one uuid, not a list
    op.render_template_fields(context)
    with pytest.raises(GradientConfigError, match="data_source_uuids must be a list"):
        op.execute(context)
    assert emu.count() == 0


def test_rendered_data_source_list_is_used(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base(data_sources=3)
    emu.script_jobs(kb.uuid, duration=0.2, pending=0)
    op = start_op("{{ params.kb }}", data_source_uuids="{{ params.sources }}")
    context = make_context(params={"kb": kb.uuid, "sources": kb.data_source_uuids[:2]})
    op.render_template_fields(context)
    summary = op.execute(context)
    assert summary["total_datasources"] == 2
    assert emu.job(summary["indexing_job_uuid"])["data_source_uuids"] == kb.data_source_uuids[:2]


# -------------------------------------------------------------------------------------------
# Deferral
# -------------------------------------------------------------------------------------------


async def test_defers_with_the_right_trigger_then_completes(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    op = start_op(kb, deferrable=True, poll_interval=0.25, timeout=600, cancel_on_kill=False)
    context = make_context()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        await asyncio.to_thread(op.execute, context)
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout is None  # the trigger enforces the deadline itself
    trigger = deferred.trigger
    assert isinstance(trigger, GradientIndexingJobTrigger)
    job = emu.jobs(kb)[0]["uuid"]
    _, kwargs = trigger.serialize()
    assert kwargs["indexing_job_uuid"] == job
    assert kwargs["knowledge_base_uuid"] == kb
    assert kwargs["gradient_conn_id"] == "gradient_default"
    assert kwargs["poll_interval"] == 0.25
    assert before + 600 <= kwargs["end_time"] <= time.time() + 600
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["cancel_on_timeout"] is True
    assert emu.token not in json.dumps(kwargs)

    # XCom (uuid and link) was pushed before deferring, and the job id is stored for retries.
    ti = context["ti"]
    assert ti.xcom["indexing_job_uuid"] == job
    assert job in ti.xcom["indexing_job_url"] or kb in ti.xcom["indexing_job_url"]
    store = context["task_state_store"]
    assert store.data == {KEY: job}

    event = await run_trigger(trigger)
    summary = await asyncio.to_thread(op.execute_complete, context, event)
    assert summary["indexing_job_uuid"] == job
    assert summary["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert store.data == {}  # removed once the job ended
    assert emu.count(*POST) == 1


def test_finishes_inline_when_already_terminal(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """A reattached job that already ended is not deferred for."""
    kb = quick_kb(emu, duration=0, pending=0)
    job = emu.start_job_server_side(kb)
    emu.clock.advance(1)
    context = make_context({KEY: job})
    summary = start_op(kb, deferrable=True).execute(context)  # no TaskDeferred
    assert summary["indexing_job_uuid"] == job
    assert emu.count(*POST) == 0


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, GradientError),
        ({}, GradientError),
        ({"status": "done"}, GradientError),
        ({"status": "failed", "indexing_job_uuid": U1, "message": "boom"}, GradientJobError),
        ({"status": "cancelled", "indexing_job_uuid": U1, "message": "stopped"}, GradientJobCancelledError),
        ({"status": "timeout", "indexing_job_uuid": U1, "message": "late", "cancelled": True}, GradientJobTimeoutError),
        ({"status": "error", "indexing_job_uuid": U1, "message": "HTTP 403"}, GradientError),
    ],
)
def test_execute_complete_is_strict(
    event: Any, error: type[Exception], make_context: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(error):
        start_op(U1).execute_complete(make_context(), event)


def test_execute_complete_partial(make_context: Callable[..., dict[str, Any]]) -> None:
    event = {"status": "partial", "indexing_job_uuid": U1, "message": "m", "errors": ["ds: 3 failed items"]}
    assert start_op(U1).execute_complete(make_context(), event) == {"indexing_job_uuid": U1}
    with pytest.raises(GradientJobError, match="3 failed items"):
        start_op(U1, fail_on_partial=True).execute_complete(make_context(), event)


def test_error_event_keeps_the_stored_job_for_a_retry(make_context: Callable[..., dict[str, Any]]) -> None:
    context = make_context({KEY: U1})
    with pytest.raises(GradientError):
        start_op(U1).execute_complete(context, {"status": "error", "indexing_job_uuid": U1, "message": "HTTP 403"})
    assert context["task_state_store"].data == {KEY: U1}  # the job may still run: a retry reattaches


# -------------------------------------------------------------------------------------------
# Sync path
# -------------------------------------------------------------------------------------------


def test_sync_success_pushes_xcom_before_waiting(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    context = make_context()
    summary = start_op(kb).execute(context)
    job = summary["indexing_job_uuid"]
    assert summary["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert summary["total_tokens"] == int(emu.job(job)["total_tokens"]) > 0
    assert len(summary["data_sources"]) == 2
    json.dumps(summary)
    pushes = context["ti"].pushes
    assert [(key, polls) for key, _, polls in pushes] == [("indexing_job_uuid", 0), ("indexing_job_url", 0)]
    assert pushes[0][1] == job
    store = context["task_state_store"]
    # The start is marked as in flight before the POST, the job stored as soon as it is answered,
    # and nothing is left once the job has ended.
    assert [(op, key) for op, key, _ in store.history][:3] == [("set", PENDING), ("set", KEY), ("delete", PENDING)]
    assert store.history[1][2] == job
    assert store.data == {}
    assert emu.count(*POST) == 1
    assert emu.token not in json.dumps(summary) + json.dumps([p[1] for p in pushes])


def test_sync_failure_fails_with_details_and_keeps_the_link(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, "FAILED", error_msg="bad_credentials", error_details="bucket denied")
    context = make_context()
    with pytest.raises(GradientJobError, match="bad_credentials") as info:
        start_op(kb).execute(context)
    assert "bucket denied" in str(info.value)
    assert context["ti"].xcom["indexing_job_uuid"] == info.value.indexing_job_uuid
    assert context["task_state_store"].data == {}


def test_sync_partial(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    kb = quick_kb(emu, "PARTIAL")
    assert start_op(kb).execute(make_context())["outcome"] == "partial"
    with pytest.raises(GradientJobError, match="fail_on_partial"):
        start_op(kb, fail_on_partial=True).execute(make_context())


def test_sync_timeout_cancels_the_job(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=600)
    context = make_context()
    started = time.monotonic()
    with pytest.raises(GradientJobTimeoutError, match="maximum wait") as info:
        start_op(kb, timeout=1.0).execute(context)
    took = time.monotonic() - started
    assert took < 60, f"a 1 s timeout took {took:.1f}s (the job runs 600 s)"
    job = info.value.indexing_job_uuid
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 1
    assert context["task_state_store"].data == {}


def test_execution_timeout_also_caps_the_wait(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=600)
    op = start_op(kb, deferrable=True, timeout=None, execution_timeout=timedelta(seconds=30))
    with pytest.raises(TaskDeferred) as info:
        op.execute(make_context())
    end_time = info.value.trigger.serialize()[1]["end_time"]
    assert time.time() + 25 < end_time <= time.time() + 30


def test_no_wait_returns_once_started(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=600)
    context = make_context()
    summary = start_op(kb, wait_for_completion=False).execute(context)
    assert summary["outcome"] == "running"
    assert emu.job(summary["indexing_job_uuid"])["phase"] != "BATCH_JOB_PHASE_CANCELLED"
    assert context["ti"].xcom["indexing_job_uuid"] == summary["indexing_job_uuid"]
    assert context["task_state_store"].data == {}


def test_error_tolerance_reaches_the_trigger(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=600)
    with pytest.raises(TaskDeferred) as info:
        start_op(kb, deferrable=True, error_tolerance=timedelta(minutes=2)).execute(make_context())
    assert info.value.trigger.serialize()[1]["error_tolerance"] == 120.0


def test_sync_wait_fails_once_errors_outlast_error_tolerance(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=600)
    emu.faults.add("genai_get_indexing_job", "status", status=503, times=None, message="down for maintenance")
    context = make_context()
    with pytest.raises(GradientError, match="down for maintenance"):
        start_op(kb, error_tolerance=0.5).execute(context)
    job = context["ti"].xcom["indexing_job_uuid"]
    assert emu.job(job)["phase"] != "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    assert context["task_state_store"].data == {KEY: job}  # the job may still run: a retry reattaches
    assert emu.count("GET", "genai_get_indexing_job", status=503) >= 2  # it kept trying first


def test_sync_wait_rides_out_errors_within_error_tolerance(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    fault = emu.faults.add("genai_get_indexing_job", "status", status=503, times=4)
    summary = start_op(kb, error_tolerance=60).execute(make_context())
    assert summary["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert fault.fired == 4


# -------------------------------------------------------------------------------------------
# A job already running on the knowledge base
# -------------------------------------------------------------------------------------------


def test_if_job_running_adopt(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    kb = quick_kb(emu)
    theirs = emu.start_job_server_side(kb)
    summary = start_op(kb, if_job_running="adopt").execute(make_context())
    assert summary["indexing_job_uuid"] == theirs
    assert emu.count(*POST) == 0


def test_if_job_running_fail(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    kb = quick_kb(emu, duration=600)
    theirs = emu.start_job_server_side(kb)
    with pytest.raises(GradientError, match=f"{theirs}.*if_job_running='fail'"):
        start_op(kb, if_job_running="fail").execute(make_context())
    assert emu.count(*POST) == 0


def test_if_job_running_wait_then_starts_ours(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    theirs = emu.start_job_server_side(kb)
    summary = start_op(kb).execute(make_context())
    ours = summary["indexing_job_uuid"]
    assert ours != theirs
    assert emu.job(theirs)["status"] == "INDEX_JOB_STATUS_COMPLETED"  # theirs was not cancelled
    assert emu.count(*POST) == 1
    assert [job["uuid"] for job in emu.jobs(kb)] == [ours, theirs]


def test_if_job_running_wait_deferrable(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    theirs = emu.start_job_server_side(kb)
    op = start_op(kb, deferrable=True)
    context = make_context()
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.method_name == "execute_after_running_job"
    kwargs = info.value.trigger.serialize()[1]
    assert kwargs["indexing_job_uuid"] == theirs
    assert kwargs["cancel_on_kill"] is False  # never cancel someone else's job
    assert kwargs["cancel_on_timeout"] is False
    event = asyncio.run(run_trigger(info.value.trigger))
    with pytest.raises(TaskDeferred) as again:
        op.execute_after_running_job(context, event, **info.value.kwargs)
    ours = again.value.trigger.serialize()[1]["indexing_job_uuid"]
    assert ours != theirs
    assert again.value.method_name == "execute_complete"
    assert emu.count(*POST) == 1


def test_if_job_running_wait_times_out_without_starting(make_context: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(GradientJobTimeoutError, match="no job was started"):
        start_op(U1).execute_after_running_job(make_context(), {"status": "timeout", "indexing_job_uuid": U1})


# -------------------------------------------------------------------------------------------
# Database not ready
# -------------------------------------------------------------------------------------------


def test_waits_for_the_database(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    kb = emu.create_knowledge_base(database_ready=False, database_ready_after=0.8)
    emu.script_jobs(kb.uuid, duration=0.2, pending=0)
    summary = start_op(kb.uuid).execute(make_context())
    assert summary["outcome"] == "succeeded"
    assert emu.count("GET", "genai_get_knowledge_base") >= 2
    assert emu.count(*POST) == 1


def test_database_wait_is_bounded(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base(database_ready=False)
    started = time.monotonic()
    with pytest.raises(GradientDatabaseNotReadyError, match="database_ready_timeout"):
        start_op(kb.uuid, database_ready_timeout=0.7).execute(make_context())
    took = time.monotonic() - started
    assert took < 60, f"a 0.7 s database wait took {took:.1f}s (the database never gets ready)"
    assert emu.count(*POST) == 0


# -------------------------------------------------------------------------------------------
# Durability: reattach, ambiguous start, kill
# -------------------------------------------------------------------------------------------


def test_retry_reattaches_to_the_stored_job(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """Attempt 1 starts the job and fails while waiting (a 403 poll); attempt 2 follows that job."""
    kb = quick_kb(emu, duration=1.0)
    emu.faults.add("genai_get_indexing_job", "status", status=403, times=1, message="scope hiccup")
    first = make_context()
    with pytest.raises(GradientError, match="403"):
        start_op(kb).execute(first)
    job = first["ti"].xcom["indexing_job_uuid"]
    state = first["task_state_store"].data
    assert state == {KEY: job}  # kept: the job is still running

    second = make_context(state, try_number=2)  # XComs are wiped between attempts; the store is not
    summary = start_op(kb).execute(second)
    assert summary["indexing_job_uuid"] == job
    assert second["ti"].xcom["indexing_job_uuid"] == job
    assert second["task_state_store"].data == {}
    assert emu.count(*POST) == 1
    assert len(emu.jobs(kb)) == 1


def test_retry_after_a_start_in_flight_follows_the_job_it_created(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """Attempt 1 died after its POST reached the API, before the job uuid was stored."""
    kb = quick_kb(emu, duration=1.0)
    sent_at = time.time()
    job = emu.start_job_server_side(kb)  # what attempt 1's POST created
    second = make_context({PENDING: sent_at}, try_number=2)
    summary = start_op(kb).execute(second)
    assert summary["indexing_job_uuid"] == job
    assert emu.count(*POST) == 0
    assert len(emu.jobs(kb)) == 1
    assert second["task_state_store"].data == {}


def test_retry_after_a_start_that_created_nothing_starts_one(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=0.2)
    old = emu.start_job_server_side(kb)  # someone else's job, long before attempt 1's start
    emu.clock.advance(3600)
    summary = start_op(kb).execute(make_context({PENDING: time.time() + 3600}, try_number=2))
    assert summary["indexing_job_uuid"] != old
    assert emu.count(*POST) == 1


def test_stored_job_that_already_succeeded_is_not_rerun(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=0, pending=0)
    job = emu.start_job_server_side(kb)
    emu.clock.advance(1)
    summary = start_op(kb).execute(make_context({KEY: job}, try_number=2))
    assert summary["indexing_job_uuid"] == job
    assert emu.count(*POST) == 0


def test_stored_job_that_failed_starts_a_new_one(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, ["FAILED", "COMPLETED"], duration=0, pending=0)
    failed = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(1)
    summary = start_op(kb.uuid).execute(make_context({KEY: failed}, try_number=2))
    assert summary["indexing_job_uuid"] != failed
    assert summary["outcome"] == "succeeded"
    assert emu.count(*POST) == 1


def test_stored_job_that_vanished_starts_a_new_one(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    context = make_context({KEY: U1}, try_number=2)
    summary = start_op(kb).execute(context)
    assert summary["indexing_job_uuid"] != U1
    assert emu.count(*POST) == 1


def test_ambiguous_start_makes_exactly_one_job(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    fault = emu.faults.add("genai_create_indexing_job", "create_then_fail", status=502)
    summary = start_op(kb).execute(make_context())
    assert fault.fired == 1
    assert emu.count(*POST) == 1  # never re-sent
    assert [job["uuid"] for job in emu.jobs(kb)] == [summary["indexing_job_uuid"]]


def test_retry_without_a_state_store_adopts_the_running_job(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """Older Airflow (no task state store): a retry follows the job still running instead of waiting."""
    kb = quick_kb(emu)
    running = emu.start_job_server_side(kb)
    summary = start_op(kb).execute(make_context(store=False, try_number=2))
    assert summary["indexing_job_uuid"] == running
    assert emu.count(*POST) == 0


def test_on_kill_cancels_the_job_during_a_sync_wait(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu, duration=600)
    op = start_op(kb)
    worker = ExecuteInThread(op, make_context())
    give_up = time.monotonic() + 10
    while emu.count("GET", "genai_get_indexing_job") < 1:
        assert time.monotonic() < give_up
        time.sleep(0.02)
    started = time.monotonic()
    op.on_kill()
    took = time.monotonic() - started
    assert took < 60, f"on_kill took {took:.1f}s"
    job = emu.jobs(kb)[0]
    assert job["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert isinstance(worker.join(10), GradientJobCancelledError)
    assert emu.count("PUT", "genai_cancel_indexing_job") == 1


def test_on_kill_respects_cancel_on_kill_and_needs_a_job(emu: GradientEmulator, conn: str) -> None:
    op = start_op(U1, cancel_on_kill=False)
    op._job_uuid = U1
    op.on_kill()
    start_op(U1).on_kill()  # no job yet: nothing to do
    assert emu.count() == 0


# -------------------------------------------------------------------------------------------
# Outlets
# -------------------------------------------------------------------------------------------


def test_outlet_asset_event_extra(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = quick_kb(emu)
    asset = Asset(f"gradient://knowledge-bases/{kb}")
    outlet_events = OutletEventAccessors()
    summary = start_op(kb, outlets=[asset]).execute(make_context(outlet_events=outlet_events))
    extra = outlet_events[asset].extra
    assert extra["indexing_job_uuid"] == summary["indexing_job_uuid"]
    assert extra["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert extra["total_tokens"] == summary["total_tokens"]
    assert extra["knowledge_base_uuid"] == kb
