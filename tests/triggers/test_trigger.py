"""GradientIndexingJobTrigger against the emulator over real sockets (plus its serialization)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_gradient import _outcome
from airflow_provider_gradient.exceptions import GradientError, GradientJobError
from airflow_provider_gradient.hooks import _transport
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

try:  # newer Airflow (not in 3.0)
    from airflow.sdk.serde import deserialize, serialize
except ImportError:  # Airflow 3.0
    from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.2}


async def run_to_event(trigger: GradientIndexingJobTrigger, timeout: float = 20.0) -> dict[str, Any]:
    """Run the trigger the way the triggerer does; return its one event (and check there is one)."""

    async def collect() -> list[dict[str, Any]]:
        return [dict(event.payload) async for event in trigger.run()]

    try:
        events = await asyncio.wait_for(collect(), timeout)
    finally:
        await trigger.cleanup()
    assert len(events) == 1, events
    return events[0]


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "condition not reached in time"
        await asyncio.sleep(0.02)


def new_job(emu: GradientEmulator, outcome: str = "COMPLETED", *, sources: int = 2, **script: Any) -> tuple[str, str]:
    """A knowledge base with a scripted job started server-side: (kb uuid, job uuid)."""
    kb = emu.create_knowledge_base(data_sources=sources)
    emu.script_jobs(kb.uuid, outcome, **{"duration": 0.6, "pending": 0.1, **script})
    return kb.uuid, emu.start_job_server_side(kb.uuid)


# -------------------------------------------------------------------------------------------
# Serialization
# -------------------------------------------------------------------------------------------


def test_serialize_is_json_primitives_without_secret(gradient_emulator: GradientEmulator) -> None:
    trigger = GradientIndexingJobTrigger(
        indexing_job_uuid="123e4567-e89b-12d3-a456-426614174000",
        knowledge_base_uuid="223e4567-e89b-12d3-a456-426614174000",
        gradient_conn_id="gradient_default",
        poll_interval=7,
        end_time=1_900_000_000.5,
        cancel_on_kill=False,
        cancel_on_timeout=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_gradient.triggers.indexing_job.GradientIndexingJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    for value in kwargs.values():
        assert value is None or isinstance(value, (str, int, float, bool))
    assert kwargs["end_time"] == 1_900_000_000.5
    assert kwargs["poll_interval"] == 7.0
    assert kwargs["cancel_on_kill"] is False
    text = json.dumps(kwargs) + repr(trigger)
    assert gradient_emulator.token not in text
    assert "password" not in text
    assert "token" not in text


def test_serde_round_trip_recreates_an_equal_trigger() -> None:
    trigger = GradientIndexingJobTrigger(
        knowledge_base_uuid="223e4567-e89b-12d3-a456-426614174000",
        indexed_after="2026-01-31T12:00:00+00:00",
        poll_interval=12.5,
        end_time=None,
        error_tolerance=60,
    )
    classpath, kwargs = trigger.serialize()
    encoded = serialize(kwargs)
    json.dumps(encoded)  # what the metadata DB stores
    decoded = deserialize(encoded)
    again = import_string(classpath)(**decoded)
    assert type(again) is GradientIndexingJobTrigger
    assert again.serialize() == (classpath, kwargs)


def test_needs_a_job_or_a_knowledge_base() -> None:
    with pytest.raises(GradientError, match="indexing_job_uuid or knowledge_base_uuid"):
        GradientIndexingJobTrigger()


# -------------------------------------------------------------------------------------------
# Job mode: outcomes
# -------------------------------------------------------------------------------------------


async def test_success(emu: GradientEmulator, conn: str) -> None:
    kb, job = new_job(emu)
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, knowledge_base_uuid=kb, **FAST))
    assert event["status"] == "success"
    assert event["indexing_job_uuid"] == job
    assert event["job_status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert event["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"
    summary = event["summary"]
    assert summary["total_tokens"] == int(emu.job(job)["total_tokens"]) > 0
    assert summary["completed_datasources"] == summary["total_datasources"] == 2
    assert [ds["indexed_item_count"] for ds in summary["data_sources"]] == [
        int(ds["indexed_item_count"]) for ds in emu.job(job)["data_source_jobs"]
    ]
    json.dumps(event)
    # The event becomes the task's result through the shared rules.
    assert _outcome.finish(event, fail_on_partial=False) == summary
    # cleanup() gave the shared HTTP session back.
    assert _transport.SESSION_POOL.open_sessions() == 0


async def test_no_changes_is_success(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, "NO_CHANGES")
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST))
    assert (event["status"], event["job_status"]) == ("success", "INDEX_JOB_STATUS_NO_CHANGES")


async def test_failure_carries_per_data_source_errors(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, "FAILED", duration=0.4, pending=0.1, error_msg="crawl_refused", error_details="403 at x")
    job = emu.start_job_server_side(kb.uuid)
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST))
    assert event["status"] == "failed"
    failing = kb.data_source_uuids[-1]
    assert any(failing in line and "crawl_refused" in line and "403 at x" in line for line in event["errors"])
    with pytest.raises(GradientJobError, match="crawl_refused") as info:
        _outcome.finish(event, fail_on_partial=False)
    assert info.value.indexing_job_uuid == job


async def test_partial(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, "PARTIAL", failed_item_count=3)
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST))
    assert event["status"] == "partial"
    assert any("3 failed items" in line for line in event["errors"])


async def test_cancelled_server_side(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST)
    task = asyncio.ensure_future(run_to_event(trigger))
    await wait_until(lambda: emu.count("GET", "genai_get_indexing_job") >= 1)
    await asyncio.to_thread(GradientHook().cancel_indexing_job, job)  # someone else cancels it
    event = await task
    assert event["status"] == "cancelled"
    assert event["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    # The trigger itself never cancelled anything: the one cancel was the test's.
    assert emu.count("PUT", "genai_cancel_indexing_job") == 1


# -------------------------------------------------------------------------------------------
# Deadline
# -------------------------------------------------------------------------------------------


async def test_timeout_cancels_the_job(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    started = time.monotonic()
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, end_time=time.time() + 1.0, **FAST)
    event = await run_to_event(trigger)
    took = time.monotonic() - started
    assert took < 60, f"a 1 s deadline took {took:.1f}s (the job runs 600 s)"
    assert event["status"] == "timeout"
    assert event["cancelled"] is True
    assert "did not finish within the maximum wait" in event["message"]
    assert "cancelled" in event["message"]
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 1


async def test_timeout_without_cancel_leaves_the_job(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    trigger = GradientIndexingJobTrigger(
        indexing_job_uuid=job, end_time=time.time() + 0.6, cancel_on_timeout=False, **FAST
    )
    event = await run_to_event(trigger)
    assert (event["status"], event["cancelled"]) == ("timeout", False)
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_RUNNING"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0


async def test_deadline_already_passed_checks_once_then_times_out(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, end_time=time.time() - 5, **FAST))
    assert event["status"] == "timeout"
    assert emu.count("GET", "genai_get_indexing_job") == 1


# -------------------------------------------------------------------------------------------
# Transient and permanent errors
# -------------------------------------------------------------------------------------------


async def test_transient_faults_are_survived(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=1.5)
    op = "genai_get_indexing_job"
    faults = [
        emu.faults.add(op, "status", status=503, times=3),
        emu.faults.add(op, "reset", after=3),
        emu.faults.add(op, "malformed_json", after=4),
        emu.faults.add(op, "status", status=429, after=5, headers={"Retry-After": "1"}),
        emu.faults.add(op, "html", status=502, after=6),
    ]
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST))
    assert event["status"] == "success", event
    assert [fault.fired for fault in faults] == [3, 1, 1, 1, 1]
    assert emu.count("GET", op, status=503) == 3
    assert emu.count("GET", op, status=429) == 1


async def test_transient_faults_with_http_retries(emu: GradientEmulator, connect: Callable[..., str]) -> None:
    connect(max_retries=2)  # the hook retries in place before the trigger sees anything
    _, job = new_job(emu)
    fault = emu.faults.add("genai_get_indexing_job", "status", status=503, times=2)
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST))
    assert event["status"] == "success"
    assert fault.fired == 2


async def test_a_long_run_of_failures_ends_with_an_error(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    emu.faults.add("genai_get_indexing_job", "status", status=503, times=None, message="down for maintenance")
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, error_tolerance=0.8, **FAST)
    event = await run_to_event(trigger)
    assert event["status"] == "error"
    assert "503" in event["message"]
    assert "down for maintenance" in event["message"]
    assert emu.count("GET", "genai_get_indexing_job") >= 3  # it kept trying first
    with pytest.raises(GradientError, match="503"):
        _outcome.finish(event, fail_on_partial=False)


async def test_not_found_is_an_error_event_at_once(emu: GradientEmulator, conn: str) -> None:
    missing = "123e4567-e89b-12d3-a456-426614174000"
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=missing, **FAST))
    assert event["status"] == "error"
    assert "404" in event["message"]
    assert emu.count("GET", "genai_get_indexing_job") == 1


async def test_token_never_in_events_or_logs(
    emu: GradientEmulator, conn: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    _, job = new_job(emu, duration=0.8)
    emu.faults.add("genai_get_indexing_job", "status", status=503, times=2)
    caplog.set_level("DEBUG")
    event = await run_to_event(GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST))
    assert event["status"] == "success"
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert emu.token not in json.dumps(event)
    assert emu.token not in logs
    assert "HTTP 503" in logs  # the transient failures were logged (without the token)
    # Progress is logged when it changes, not on every poll.
    progress = [line for line in logs.splitlines() if f"Indexing job {job}: phase" in line]
    assert len(progress) == len(set(progress)) >= 1


# -------------------------------------------------------------------------------------------
# Restart and kill
# -------------------------------------------------------------------------------------------


async def test_restart_from_serialized_kwargs_resumes(emu: GradientEmulator, conn: str) -> None:
    kb, job = new_job(emu, duration=1.5)
    first = GradientIndexingJobTrigger(indexing_job_uuid=job, knowledge_base_uuid=kb, **FAST)
    task = asyncio.ensure_future(run_to_event(first))
    await wait_until(lambda: emu.count("GET", "genai_get_indexing_job") >= 2)
    task.cancel()  # the triggerer went away: no on_kill, nothing is cancelled
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emu.job(job)["phase"] in ("BATCH_JOB_PHASE_PENDING", "BATCH_JOB_PHASE_RUNNING")

    classpath, kwargs = first.serialize()
    again = import_string(classpath)(**deserialize(serialize(kwargs)))
    event = await run_to_event(again)
    assert (event["status"], event["indexing_job_uuid"]) == ("success", job)
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    assert len(emu.jobs(kb)) == 1


async def test_on_kill_cancels_the_job(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST)
    task = asyncio.ensure_future(run_to_event(trigger))
    await wait_until(lambda: emu.count("GET", "genai_get_indexing_job") >= 1)
    task.cancel("__airflow_user_action__")
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(trigger.on_kill(), 25)
    await trigger.cleanup()
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 1
    assert _transport.SESSION_POOL.open_sessions() == 0


async def test_on_kill_does_nothing_without_cancel_on_kill(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu, duration=600)
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, cancel_on_kill=False, **FAST)
    task = asyncio.ensure_future(run_to_event(trigger))
    await wait_until(lambda: emu.count("GET", "genai_get_indexing_job") >= 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await trigger.on_kill()
    await trigger.cleanup()
    assert emu.job(job)["phase"] != "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0


async def test_on_kill_does_nothing_once_the_job_ended(emu: GradientEmulator, conn: str) -> None:
    _, job = new_job(emu)
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST)
    assert (await run_to_event(trigger))["status"] == "success"
    await trigger.on_kill()
    await trigger.cleanup()
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    assert emu.job(job)["status"] == "INDEX_JOB_STATUS_COMPLETED"


async def test_on_kill_never_raises_when_the_cancel_fails(emu: GradientEmulator, conn: str) -> None:
    """A cancel answered 500 is logged, not raised (its bound: ``test_trigger_cancel_bound.py``)."""
    _, job = new_job(emu, duration=600)
    emu.faults.add("genai_cancel_indexing_job", "status", status=500, times=None)
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, **FAST)
    await asyncio.wait_for(trigger.on_kill(), 25)  # logs the failure, does not raise
    await trigger.cleanup()
    assert emu.count("PUT", "genai_cancel_indexing_job") >= 1


# -------------------------------------------------------------------------------------------
# Knowledge-base mode
# -------------------------------------------------------------------------------------------


async def test_kb_fresh_is_success_at_once(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=0, pending=0)
    job = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(1)
    event = await run_to_event(GradientIndexingJobTrigger(knowledge_base_uuid=kb.uuid, **FAST))
    assert (event["status"], event["indexing_job_uuid"], event["knowledge_base_uuid"]) == ("success", job, kb.uuid)
    assert emu.count("GET", "genai_get_knowledge_base") == 1


async def test_kb_not_fresh_waits_for_the_running_job(emu: GradientEmulator, conn: str) -> None:
    kb, job = new_job(emu, duration=1.0)
    event = await run_to_event(GradientIndexingJobTrigger(knowledge_base_uuid=kb, **FAST))
    assert (event["status"], event["indexing_job_uuid"]) == ("success", job)
    assert emu.count("GET", "genai_get_knowledge_base") >= 3


async def test_kb_without_any_job_keeps_waiting(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base()
    event = await run_to_event(
        GradientIndexingJobTrigger(knowledge_base_uuid=kb.uuid, end_time=time.time() + 0.7, **FAST)
    )
    assert event["status"] == "timeout"
    assert event["cancelled"] is False  # knowledge-base mode never cancels


async def test_kb_latest_job_failed(emu: GradientEmulator, conn: str) -> None:
    kb, _ = new_job(emu, "FAILED", duration=0.3)
    event = await run_to_event(GradientIndexingJobTrigger(knowledge_base_uuid=kb, **FAST))
    assert event["status"] == "failed"
    assert event["message"].startswith(f"Knowledge base {kb}: latest indexing job")


async def test_kb_indexed_after_waits_for_a_newer_job(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=0, pending=0)
    old = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(5)
    cutoff = datetime.fromtimestamp(emu.clock.now() + 1, tz=timezone.utc)
    trigger = GradientIndexingJobTrigger(knowledge_base_uuid=kb.uuid, indexed_after=cutoff.isoformat(), **FAST)
    task = asyncio.ensure_future(run_to_event(trigger))
    await wait_until(lambda: emu.count("GET", "genai_get_knowledge_base") >= 2)
    assert not task.done()  # the older success does not count
    emu.clock.advance(3)
    new = emu.start_job_server_side(kb.uuid)
    event = await task
    assert (event["status"], event["indexing_job_uuid"]) == ("success", new)
    assert new != old


async def test_bad_indexed_after_is_an_error_event(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base()
    event = await run_to_event(GradientIndexingJobTrigger(knowledge_base_uuid=kb.uuid, indexed_after="yesterday"))
    assert event["status"] == "error"
    assert "indexed_after" in event["message"]
    assert emu.count() == 0
