"""GradientIndexingJobSensor: poke, reschedule and deferrable modes give the same outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_provider_gradient.exceptions import (
    GradientConfigError,
    GradientError,
    GradientJobCancelledError,
    GradientJobError,
)
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

try:  # newer Airflow (not in 3.0)
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef,attr-defined]

U1 = "123e4567-e89b-12d3-a456-426614174000"
MODES = ["poke", "reschedule", "deferrable"]


def make_sensor(mode: str, **kwargs: Any) -> GradientIndexingJobSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 20)
    if mode == "deferrable":
        return GradientIndexingJobSensor(task_id="sense", deferrable=True, **kwargs)
    return GradientIndexingJobSensor(task_id="sense", deferrable=False, mode=mode, **kwargs)


async def _event(trigger: GradientIndexingJobTrigger) -> dict[str, Any]:
    events = [dict(event.payload) async for event in trigger.run()]
    await trigger.cleanup()
    return events[0]


def run_sensor(sensor: GradientIndexingJobSensor, context: dict[str, Any]) -> Any:
    """Drive the sensor the way Airflow would: reschedule until done, or defer and resume."""
    give_up = time.monotonic() + 30
    while True:
        assert time.monotonic() < give_up
        try:
            return sensor.execute(context)
        except AirflowRescheduleException:
            time.sleep(0.1)
        except TaskDeferred as deferred:
            trigger = deferred.trigger
            assert isinstance(trigger, GradientIndexingJobTrigger)
            kwargs = trigger.serialize()[1]
            assert kwargs["cancel_on_kill"] is False  # the sensor never cancels
            assert kwargs["cancel_on_timeout"] is False
            assert deferred.timeout is None  # noqa: PT017 - checking the deferral, not an error
            event = asyncio.run(_event(trigger))
            return sensor.resume_execution(deferred.method_name, {"event": event, **(deferred.kwargs or {})}, context)


def job_on(emu: GradientEmulator, outcome: str = "COMPLETED", **script: Any) -> tuple[str, str]:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, outcome, **{"duration": 0.5, "pending": 0.1, **script})
    return kb.uuid, emu.start_job_server_side(kb.uuid)


# -------------------------------------------------------------------------------------------
# Construction
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of"),
        ({"indexing_job_uuid": U1, "knowledge_base_uuid": U1}, "exactly one of"),
        ({"indexing_job_uuid": U1, "indexed_after": "2026-01-01T00:00:00Z"}, "only applies with knowledge_base_uuid"),
        ({"indexing_job_uuid": "job"}, "indexing_job_uuid must be a UUID"),
        ({"knowledge_base_uuid": U1, "indexed_after": "tomorrow"}, "indexed_after must be an ISO-8601 time"),
        ({"indexing_job_uuid": U1, "poke_interval": 0}, "poke_interval must be greater than 0"),
        ({"indexing_job_uuid": U1, "error_tolerance": 0}, "error_tolerance must be greater than 0"),
        ({"indexing_job_uuid": U1, "error_tolerance": None}, "error_tolerance must be seconds"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(GradientError, match=match):
        GradientIndexingJobSensor(task_id="s", **kwargs)


def test_templated_values_are_validated_before_any_request(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    for mode in MODES:
        sensor = make_sensor(mode, knowledge_base_uuid="{{ params.kb }}", indexed_after="{{ params.after }}")
        context = make_context(params={"kb": U1, "after": "soon"})
        sensor.render_template_fields(context)
        with pytest.raises(GradientError, match="indexed_after must be an ISO-8601 time"):
            run_sensor(sensor, context)
        sensor = make_sensor(mode, indexing_job_uuid="{{ params.job }}")
        context = make_context(params={"job": "None"})
        sensor.render_template_fields(context)
        with pytest.raises(GradientConfigError, match="indexing_job_uuid is required"):
            run_sensor(sensor, context)
    assert emu.count() == 0


# -------------------------------------------------------------------------------------------
# Job mode: the same outcome in every mode
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_success(mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    _, job = job_on(emu)
    result = run_sensor(make_sensor(mode, indexing_job_uuid=job), make_context())
    assert result["indexing_job_uuid"] == job
    assert result["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert result["completed_datasources"] == 2


@pytest.mark.parametrize("mode", MODES)
def test_failure(mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    _, job = job_on(emu, "FAILED", error_msg="source_unreachable")
    with pytest.raises(GradientJobError, match="source_unreachable"):
        run_sensor(make_sensor(mode, indexing_job_uuid=job), make_context())


@pytest.mark.parametrize("mode", MODES)
def test_partial(mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    _, job = job_on(emu, "PARTIAL")
    assert run_sensor(make_sensor(mode, indexing_job_uuid=job), make_context())["outcome"] == "partial"
    with pytest.raises(GradientJobError, match="fail_on_partial"):
        run_sensor(make_sensor(mode, indexing_job_uuid=job, fail_on_partial=True), make_context())


@pytest.mark.parametrize("mode", MODES)
def test_cancelled_is_never_success(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu, duration=600)
    GradientHook().cancel_indexing_job(job)
    with pytest.raises(GradientJobCancelledError):
        run_sensor(make_sensor(mode, indexing_job_uuid=job), make_context())


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_turns_failure_into_skip(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu, "FAILED")
    with pytest.raises(AirflowSkipException):
        run_sensor(make_sensor(mode, indexing_job_uuid=job, soft_fail=True), make_context())


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_timeout_never_cancels(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu, duration=600)
    with pytest.raises(AirflowSensorTimeout):
        run_sensor(make_sensor(mode, indexing_job_uuid=job, timeout=0.6), make_context())
    assert emu.job(job)["phase"] != "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    with pytest.raises(AirflowSkipException):
        run_sensor(make_sensor(mode, indexing_job_uuid=job, timeout=0.6, soft_fail=True), make_context())
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0


@pytest.mark.parametrize("mode", MODES)
def test_transient_errors_within_error_tolerance_are_not_yet(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu)
    fault = emu.faults.add("genai_get_indexing_job", "status", status=503, times=4)
    result = run_sensor(make_sensor(mode, indexing_job_uuid=job, error_tolerance=60), make_context())
    assert result["indexing_job_uuid"] == job
    assert fault.fired == 4


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_errors_outlasting_error_tolerance_fail_the_sensor(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu, duration=600)
    emu.faults.add("genai_get_indexing_job", "status", status=503, times=None, message="down for maintenance")
    sensor = make_sensor(mode, indexing_job_uuid=job, error_tolerance=0.5, timeout=60)
    with pytest.raises(GradientError, match="down for maintenance"):
        run_sensor(sensor, make_context())
    assert emu.count("GET", "genai_get_indexing_job", status=503) >= 2  # it kept trying first
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0


def test_deferred_sensor_passes_error_tolerance(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu, duration=600)
    sensor = make_sensor("deferrable", indexing_job_uuid=job, error_tolerance=timedelta(minutes=3))
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(make_context())
    assert info.value.trigger.serialize()[1]["error_tolerance"] == 180.0


def test_on_kill_never_cancels(emu: GradientEmulator, conn: str) -> None:
    _, job = job_on(emu, duration=600)
    make_sensor("poke", indexing_job_uuid=job).on_kill()
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0


def test_deferrable_finishes_inline_when_already_done(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = job_on(emu, duration=0, pending=0)
    emu.clock.advance(1)
    result = make_sensor("deferrable", indexing_job_uuid=job).execute(make_context())  # no TaskDeferred
    assert result["indexing_job_uuid"] == job


def test_execute_complete_is_strict(make_context: Callable[..., dict[str, Any]]) -> None:
    sensor = make_sensor("deferrable", indexing_job_uuid=U1)
    for event in (None, {}, {"status": "yes"}):
        with pytest.raises(GradientError):
            sensor.execute_complete(make_context(), event)


# -------------------------------------------------------------------------------------------
# Knowledge-base mode (the data-pipeline dependency)
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_waits_until_the_knowledge_base_is_fresh(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb, job = job_on(emu)
    result = run_sensor(make_sensor(mode, knowledge_base_uuid=kb), make_context())
    assert result["indexing_job_uuid"] == job
    assert emu.count("GET", "genai_get_knowledge_base") >= 2  # it was not fresh at first
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0


@pytest.mark.parametrize("mode", MODES)
def test_indexed_after_needs_a_newer_job(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=0, pending=0)
    emu.start_job_server_side(kb.uuid)
    emu.clock.advance(5)
    after = datetime.fromtimestamp(emu.clock.now() - 1, tz=timezone.utc).isoformat()
    sensor = make_sensor(mode, knowledge_base_uuid=kb.uuid, indexed_after=after, timeout=0.5)
    if mode == "reschedule":  # run_sensor reschedules without a sensor timeout: one poke is enough
        with pytest.raises(AirflowRescheduleException):
            sensor.execute(make_context())
    else:
        with pytest.raises(AirflowSensorTimeout):
            run_sensor(sensor, make_context())
    newer = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(1)
    sensor = make_sensor(mode, knowledge_base_uuid=kb.uuid, indexed_after=after)
    assert run_sensor(sensor, make_context())["indexing_job_uuid"] == newer


@pytest.mark.parametrize("mode", MODES)
def test_latest_job_failed_fails_or_skips(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb, _ = job_on(emu, "FAILED", duration=0.2)
    with pytest.raises(GradientJobError):
        run_sensor(make_sensor(mode, knowledge_base_uuid=kb), make_context())
    with pytest.raises(AirflowSkipException):
        run_sensor(make_sensor(mode, knowledge_base_uuid=kb, soft_fail=True), make_context())


@pytest.mark.parametrize("mode", MODES)
def test_outlet_asset_event_extra(
    mode: str, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import OutletEventAccessors

    kb, job = job_on(emu)
    asset = Asset(f"gradient://knowledge-bases/{kb}")
    outlet_events = OutletEventAccessors()
    sensor = make_sensor(mode, knowledge_base_uuid=kb, outlets=[asset])
    run_sensor(sensor, make_context(outlet_events=outlet_events))
    extra = outlet_events[asset].extra
    assert extra["indexing_job_uuid"] == job
    assert extra["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert extra["total_tokens"] == int(emu.job(job)["total_tokens"])
