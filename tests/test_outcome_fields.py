"""
The fields of the wait events and of the errors a task finishes with: what a caller (a retry, an
``on_failure_callback``, the "View indexing job" link) reads from them, field by field.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_gradient import _outcome
from airflow_provider_gradient.exceptions import (
    GradientError,
    GradientJobCancelledError,
    GradientJobError,
    GradientJobTimeoutError,
)
from airflow_provider_gradient.models import IndexingJob, KnowledgeBaseDetails

JOB = "123e4567-e89b-12d3-a456-426614174000"
KB = "223e4567-e89b-12d3-a456-426614174000"


def job(phase: str, status: str, **fields: Any) -> IndexingJob:
    data = {"uuid": JOB, "phase": f"BATCH_JOB_PHASE_{phase}", "status": f"INDEX_JOB_STATUS_{status}", **fields}
    return IndexingJob.model_validate(data)


@pytest.mark.parametrize(
    ("phase", "status", "error", "fail_on_partial"),
    [
        ("SUCCEEDED", "PARTIAL", GradientJobError, True),
        ("FAILED", "FAILED", GradientJobError, False),
        ("CANCELLED", "CANCELLED", GradientJobCancelledError, False),
    ],
)
def test_a_failing_end_names_the_job_its_phase_and_status(
    phase: str, status: str, error: type[GradientJobError], fail_on_partial: bool
) -> None:
    """Dropping the job's uuid, phase or status from the raised error turns this red."""
    event = _outcome.job_event(job(phase, status))
    with pytest.raises(error) as info:
        _outcome.finish(event, fail_on_partial=fail_on_partial)
    assert (info.value.indexing_job_uuid, info.value.phase, info.value.status) == (
        JOB,
        f"BATCH_JOB_PHASE_{phase}",
        f"INDEX_JOB_STATUS_{status}",
    )


def test_a_timeout_names_the_job_and_what_was_last_seen() -> None:
    running = job("RUNNING", "IN_PROGRESS")
    event = _outcome.timeout_event(running, JOB, cancelled=False, waited="the maximum wait")
    assert (event["indexing_job_uuid"], event["outcome"], event["phase"]) == (JOB, "running", "BATCH_JOB_PHASE_RUNNING")
    assert event["message"] == (
        f"Indexing job {JOB} did not finish within the maximum wait. Last seen: {running.describe()}."
    )
    with pytest.raises(GradientJobTimeoutError) as info:
        _outcome.finish(event, fail_on_partial=False)
    assert (info.value.indexing_job_uuid, info.value.phase, info.value.status) == (
        JOB,
        "BATCH_JOB_PHASE_RUNNING",
        "INDEX_JOB_STATUS_IN_PROGRESS",
    )
    unseen = _outcome.timeout_event(None, JOB, cancelled=True, waited="x")
    assert unseen["indexing_job_uuid"] == JOB  # the uuid asked for, when no job was ever read
    assert unseen["message"] == f"Indexing job {JOB} did not finish within x. The job was cancelled."


def test_an_error_event_keeps_the_uuid_and_the_last_job() -> None:
    running = job("RUNNING", "IN_PROGRESS")
    event = _outcome.error_event(JOB, RuntimeError("boom"), running)
    assert (event["indexing_job_uuid"], event["phase"], event["request_id"]) == (JOB, "BATCH_JOB_PHASE_RUNNING", None)
    assert _outcome.error_event(JOB, RuntimeError("boom"))["indexing_job_uuid"] == JOB


def test_an_error_gets_its_request_id_once() -> None:
    """A request id the message lacks is appended (dropping it turns this red)."""
    with pytest.raises(GradientError) as info:
        _outcome.finish({"status": "error", "message": "boom", "request_id": "r-7"}, fail_on_partial=False)
    assert str(info.value) == "boom [request_id=r-7]"


def test_the_messages_of_partial_and_failed_ends() -> None:
    event = {"status": "partial", "indexing_job_uuid": JOB, "message": "Indexing job x ended PARTIAL."}
    with pytest.raises(GradientJobError) as info:
        _outcome.finish(event, fail_on_partial=True)
    assert str(info.value) == (
        "Indexing job x ended PARTIAL. Some items failed to index: (no details given)\n"
        "Failing because fail_on_partial=True."
    )
    failed = {"status": "failed", "indexing_job_uuid": JOB, "message": "Failed.", "errors": ["a", "b"]}
    with pytest.raises(GradientJobError) as info:
        _outcome.finish(failed, fail_on_partial=False)
    assert str(info.value) == "Failed.\n  - a\n  - b"


def test_a_success_without_a_summary_still_names_the_job() -> None:
    assert _outcome.finish({"status": "success", "indexing_job_uuid": JOB}, fail_on_partial=False) == {
        "indexing_job_uuid": JOB
    }


def test_a_knowledge_base_event_names_the_knowledge_base() -> None:
    """The job as the knowledge base lists it may lack its knowledge base's uuid: the event has it."""
    details = KnowledgeBaseDetails.model_validate(
        {"knowledge_base": {"uuid": KB, "last_indexing_job": job("SUCCEEDED", "COMPLETED").model_dump(mode="json")}}
    )
    event = _outcome.knowledge_base_event(details, None)
    assert event is not None
    assert (event["knowledge_base_uuid"], event["outcome"]) == (KB, "succeeded")
    assert event["message"].startswith(f"Knowledge base {KB}: latest ")


def test_a_knowledge_base_whose_latest_job_has_no_uuid_is_not_fresh() -> None:
    details = KnowledgeBaseDetails.model_validate(
        {"knowledge_base": {"uuid": KB, "last_indexing_job": {"phase": "BATCH_JOB_PHASE_SUCCEEDED"}}}
    )
    assert _outcome.knowledge_base_event(details, None) is None


def test_a_bad_event_is_described() -> None:
    with pytest.raises(GradientError) as info:
        _outcome.validate_event([1])
    assert str(info.value) == "Expected a trigger event (a dict), got list: [1]."


def test_an_offset_time_is_converted_not_relabelled() -> None:
    """``+02:00`` noon is 10:00 UTC (replacing the zone instead of converting turns this red)."""
    assert _outcome.parse_time("2026-01-31T12:00:00+02:00") == datetime(2026, 1, 31, 10, 0, tzinfo=timezone.utc)
    assert _outcome.parse_time("2026-01-31T12:00:00") == datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)


def test_a_job_event_message_is_one_sentence() -> None:
    event = _outcome.job_event(job("FAILED", "FAILED"))
    assert event is not None
    assert event["message"].endswith(".")
    assert not event["message"].endswith("..")


def test_a_cancelled_end_says_so_with_the_errors() -> None:
    event = {"status": "cancelled", "indexing_job_uuid": JOB, "message": "Cancelled.", "errors": ["a"]}
    with pytest.raises(GradientJobCancelledError) as info:
        _outcome.finish(event, fail_on_partial=False)
    assert str(info.value) == "Cancelled.\n  - a"


@pytest.mark.parametrize(
    ("event", "level", "logged"),
    [
        ({"status": "success", "message": "Done: 100% indexed."}, logging.INFO, "Done: 100% indexed."),
        ({"status": "success"}, logging.INFO, ""),
        (
            {"status": "partial", "message": "Part."},
            logging.WARNING,
            "Part. Some items failed to index: (no details given)",
        ),
    ],
)
def test_finish_logs_the_message_as_is_on_the_modules_logger(
    caplog: pytest.LogCaptureFixture, event: dict[str, Any], level: int, logged: str
) -> None:
    with caplog.at_level(logging.INFO, logger="airflow_provider_gradient._outcome"):
        _outcome.finish({"indexing_job_uuid": JOB, **event}, fail_on_partial=False)
    records = [r for r in caplog.records if r.name == "airflow_provider_gradient._outcome"]
    assert [(r.levelno, r.getMessage()) for r in records] == [(level, logged)]
