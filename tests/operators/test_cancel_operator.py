"""GradientCancelIndexingJobOperator against the emulator: idempotent and teardown-safe."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_gradient.exceptions import GradientAPIError, GradientConfigError, GradientJobTimeoutError
from airflow_provider_gradient.operators.indexing_job import GradientCancelIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator

U1 = "123e4567-e89b-12d3-a456-426614174000"
PUT = ("PUT", "genai_cancel_indexing_job")


def cancel_op(**kwargs: Any) -> GradientCancelIndexingJobOperator:
    kwargs.setdefault("poll_interval", 0.1)
    return GradientCancelIndexingJobOperator(task_id="cancel", **kwargs)


def running_job(emu: GradientEmulator, **script: Any) -> tuple[str, str]:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, **{"duration": 600, "pending": 0, **script})
    return kb.uuid, emu.start_job_server_side(kb.uuid)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs indexing_job_uuid"),
        ({"indexing_job_uuid": "job-1"}, "indexing_job_uuid must be a UUID"),
        ({"knowledge_base_uuid": "kb"}, "knowledge_base_uuid must be a UUID"),
        ({"indexing_job_uuid": U1, "cancellation_timeout": 0}, "cancellation_timeout must be greater than 0"),
        ({"indexing_job_uuid": U1, "poll_interval": -1}, "poll_interval must be greater than 0"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(GradientConfigError, match=match):
        GradientCancelIndexingJobOperator(task_id="c", **kwargs)


def test_cancel_by_uuid(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    _, job = running_job(emu)
    summary = cancel_op(indexing_job_uuid=job).execute(make_context())
    assert summary["indexing_job_uuid"] == job
    assert summary["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count(*PUT) == 1


def test_cancel_templated_uuid_from_xcom(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = running_job(emu)
    op = cancel_op(indexing_job_uuid="{{ params.job }}")
    context = make_context(params={"job": job})
    op.render_template_fields(context)
    op.execute(context)
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"


def test_cancel_the_running_job_of_a_knowledge_base(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb, job = running_job(emu)
    summary = cancel_op(knowledge_base_uuid=kb).execute(make_context())
    assert summary["indexing_job_uuid"] == job
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"


def test_knowledge_base_without_a_running_job_is_a_no_op(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base()
    assert cancel_op(knowledge_base_uuid=kb.uuid).execute(make_context()) is None
    emu.script_jobs(kb.uuid, duration=0, pending=0)
    done = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(1)
    assert cancel_op(knowledge_base_uuid=kb.uuid).execute(make_context()) is None
    assert emu.job(done)["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert emu.count(*PUT) == 0


def test_already_finished_is_a_logged_no_op_success(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = running_job(emu, duration=0)
    emu.clock.advance(1)
    summary = cancel_op(indexing_job_uuid=job).execute(make_context())
    assert summary["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert emu.count(*PUT) == 0


@pytest.mark.parametrize("rendered", ["", "None", "null", None])
def test_no_job_uuid_is_a_logged_no_op(
    rendered: Any, emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """What the start task's XCom renders to when it never ran: nothing to cancel, no request."""
    op = cancel_op(indexing_job_uuid="{{ ti.xcom_pull(task_ids='start', key='indexing_job_uuid') }}")
    op.indexing_job_uuid = rendered  # as rendered from an empty XCom
    assert op.execute(make_context()) is None
    assert emu.count() == 0


def test_unknown_job_is_a_no_op(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    assert cancel_op(indexing_job_uuid=U1).execute(make_context()) is None
    assert emu.count("GET", "genai_get_indexing_job", status=404) == 1
    assert emu.count(*PUT) == 0


def test_job_gone_between_read_and_cancel_is_a_no_op(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = running_job(emu)
    emu.faults.add("genai_cancel_indexing_job", "status", status=404, message="job not found")
    assert cancel_op(indexing_job_uuid=job).execute(make_context()) is None


def test_refused_cancel_of_a_job_that_just_ended_succeeds(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = running_job(emu, duration=0.3)
    # The read still shows it running; by the time the cancel arrives it has ended and is refused.
    emu.faults.add("genai_get_indexing_job", "missing_fields", times=1)
    emu.faults.add("genai_cancel_indexing_job", "status", status=400, message="job already finished")
    emu.clock.advance(1)
    summary = cancel_op(indexing_job_uuid=job).execute(make_context())
    assert summary["status"] == "INDEX_JOB_STATUS_COMPLETED"


def test_refused_cancel_of_a_running_job_fails(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = running_job(emu)
    emu.faults.add("genai_cancel_indexing_job", "status", status=400, message="cannot cancel now")
    with pytest.raises(GradientAPIError, match="cannot cancel now"):
        cancel_op(indexing_job_uuid=job).execute(make_context())


def test_wait_for_cancellation(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    _, job = running_job(emu)
    # The cancel answer does not show the end yet (no phase): the operator polls until it does.
    emu.faults.add("genai_cancel_indexing_job", "missing_fields")
    emu.faults.add("genai_get_indexing_job", "missing_fields", after=1, times=2)
    summary = cancel_op(indexing_job_uuid=job, wait_for_cancellation=True).execute(make_context())
    assert summary["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("GET", "genai_get_indexing_job") == 4  # the first read, then three polls


def test_wait_for_cancellation_is_bounded(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    _, job = running_job(emu)
    emu.faults.add("genai_cancel_indexing_job", "missing_fields")
    emu.faults.add("genai_get_indexing_job", "missing_fields", after=1, times=None)
    op = cancel_op(indexing_job_uuid=job, wait_for_cancellation=True, cancellation_timeout=0.5)
    with pytest.raises(GradientJobTimeoutError, match="after it was asked to cancel"):
        op.execute(make_context())


def test_wait_for_cancellation_tolerates_a_transient_error(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Catches a wait for the cancellation that fails the task on one transient error (a 503 on a
    poll, with no HTTP-level retries) instead of tolerating it as every other wait does.
    """
    value = json.loads(emu.airflow_conn_json())
    value["extra"] = {**(value.get("extra") or {}), "max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps(value))
    _, job = running_job(emu)
    emu.faults.add("genai_cancel_indexing_job", "missing_fields")
    emu.faults.add("genai_get_indexing_job", "missing_fields", after=1, times=1)
    emu.faults.add("genai_get_indexing_job", "status", status=503, after=2, times=1)
    summary = cancel_op(indexing_job_uuid=job, wait_for_cancellation=True).execute(make_context())
    assert summary["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count("GET", "genai_get_indexing_job", status=503) == 1


def test_teardown_and_on_failure_usage() -> None:
    from airflow.sdk import DAG

    from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

    with DAG("teardown"):
        start = GradientStartIndexingJobOperator(task_id="start", knowledge_base_uuid=U1)
        teardown = cancel_op(indexing_job_uuid="{{ ti.xcom_pull(task_ids='start', key='indexing_job_uuid') }}")
        on_failure = GradientCancelIndexingJobOperator(
            task_id="cancel_on_failure", knowledge_base_uuid=U1, trigger_rule="one_failed"
        )
        start >> teardown.as_teardown(setups=start)
        start >> on_failure
    assert teardown.is_teardown
    assert start.is_setup
    assert on_failure.trigger_rule == "one_failed"
