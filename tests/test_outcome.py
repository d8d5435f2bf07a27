"""Events and task results: the one set of rules for the trigger, the sync wait and the sensor."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_gradient import _outcome
from airflow_provider_gradient.exceptions import (
    GradientAPIError,
    GradientError,
    GradientJobCancelledError,
    GradientJobError,
    GradientJobTimeoutError,
)
from airflow_provider_gradient.models import IndexingJob, KnowledgeBaseDetails

JOB = "123e4567-e89b-12d3-a456-426614174000"
KB = "223e4567-e89b-12d3-a456-426614174000"
DS1 = "323e4567-e89b-12d3-a456-426614174000"
DS2 = "423e4567-e89b-12d3-a456-426614174000"
T0 = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)


def job(phase: str, status: str, **fields: Any) -> IndexingJob:
    data: dict[str, Any] = {
        "uuid": JOB,
        "knowledge_base_uuid": KB,
        "phase": f"BATCH_JOB_PHASE_{phase}",
        "status": f"INDEX_JOB_STATUS_{status}",
        "total_tokens": "1234",
        "completed_datasources": 2,
        "total_datasources": 2,
        "finished_at": T0.isoformat(),
        "data_source_jobs": [
            {"data_source_uuid": DS1, "status": "DATA_SOURCE_STATUS_UPDATED", "indexed_item_count": "10"},
        ],
    }
    data.update(fields)
    return IndexingJob.model_validate(data)


FAILED_SOURCE = {
    "data_source_uuid": DS2,
    "status": "DATA_SOURCE_STATUS_FAILED",
    "failed_item_count": "7",
    "error_msg": "crawl_refused",
    "error_details": "robots.txt forbids /docs",
}


@pytest.mark.parametrize(
    ("phase", "status", "event_status"),
    [
        ("SUCCEEDED", "COMPLETED", "success"),
        ("SUCCEEDED", "NO_CHANGES", "success"),
        ("SUCCEEDED", "PARTIAL", "partial"),
        ("SUCCEEDED", "FAILED", "failed"),
        ("FAILED", "FAILED", "failed"),
        ("ERROR", "UNKNOWN", "failed"),
        ("CANCELLED", "CANCELLED", "cancelled"),
        ("CANCELLED", "COMPLETED", "cancelled"),  # a cancelled job is never a success
    ],
)
def test_job_event_statuses(phase: str, status: str, event_status: str) -> None:
    event = _outcome.job_event(job(phase, status))
    assert event is not None
    assert event["status"] == event_status
    assert event["indexing_job_uuid"] == JOB
    assert event["knowledge_base_uuid"] == KB
    assert event["phase"] == f"BATCH_JOB_PHASE_{phase}"
    assert event["job_status"] == f"INDEX_JOB_STATUS_{status}"
    assert "1234 tokens" in event["message"]
    assert json.loads(json.dumps(event)) == event  # JSON primitives only


@pytest.mark.parametrize(
    ("phase", "status"),
    [("PENDING", "PENDING"), ("RUNNING", "IN_PROGRESS"), ("FUTURE", "COMPLETED"), ("UNKNOWN", "COMPLETED")],
)
def test_running_or_unknown_phase_has_no_event(phase: str, status: str) -> None:
    assert _outcome.job_event(job(phase, status)) is None


def test_missing_phase_has_no_event() -> None:
    assert _outcome.job_event(IndexingJob.model_validate({"uuid": JOB, "status": "INDEX_JOB_STATUS_COMPLETED"})) is None


# -------------------------------------------------------------------------------------------
# Strict validation
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        None,
        "success",
        ["success"],
        {},
        {"status": None},
        {"status": "SUCCESS"},
        {"status": "succeeded"},
        {"status": "ok", "summary": {"indexing_job_uuid": JOB}},
        {"message": "done"},
    ],
)
def test_bad_events_are_errors_never_success(event: Any) -> None:
    with pytest.raises(GradientError) as info:
        _outcome.validate_event(event)
    assert not isinstance(info.value, GradientJobError)
    with pytest.raises(GradientError):
        _outcome.finish(event, fail_on_partial=False)


def test_unknown_status_message_names_the_status() -> None:
    with pytest.raises(GradientError, match=r"unknown status 'done'.*refusing to treat it as success"):
        _outcome.validate_event({"status": "done"})


# -------------------------------------------------------------------------------------------
# finish(): each outcome
# -------------------------------------------------------------------------------------------


def test_success_returns_the_small_summary() -> None:
    event = _outcome.job_event(job("SUCCEEDED", "COMPLETED"))
    summary = _outcome.finish(event, fail_on_partial=True)
    assert summary["indexing_job_uuid"] == JOB
    assert summary["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert summary["total_tokens"] == 1234
    assert summary["data_sources"] == [
        {
            "data_source_uuid": DS1,
            "status": "DATA_SOURCE_STATUS_UPDATED",
            "indexed_item_count": 10,
            "failed_item_count": None,
            "skipped_item_count": None,
            "error_msg": None,
        }
    ]
    assert json.loads(json.dumps(summary)) == summary


def test_no_changes_succeeds() -> None:
    summary = _outcome.finish(_outcome.job_event(job("SUCCEEDED", "NO_CHANGES")), fail_on_partial=True)
    assert summary["outcome"] == "no_changes"


def test_partial_warns_by_default(caplog: pytest.LogCaptureFixture) -> None:
    partial = job("SUCCEEDED", "PARTIAL", data_source_jobs=[FAILED_SOURCE])
    logger = logging.getLogger("test.partial")
    with caplog.at_level(logging.WARNING, logger="test.partial"):
        summary = _outcome.finish(_outcome.job_event(partial), fail_on_partial=False, log=logger)
    assert summary["outcome"] == "partial"
    assert "Some items failed to index" in caplog.text
    assert "crawl_refused" in caplog.text


def test_partial_fails_with_fail_on_partial() -> None:
    partial = job("SUCCEEDED", "PARTIAL", data_source_jobs=[FAILED_SOURCE])
    with pytest.raises(GradientJobError, match="fail_on_partial=True") as info:
        _outcome.finish(_outcome.job_event(partial), fail_on_partial=True)
    assert not isinstance(info.value, GradientJobCancelledError)
    assert "crawl_refused" in str(info.value)


def test_failed_lists_each_data_source_error() -> None:
    failed = job("FAILED", "FAILED", data_source_jobs=[FAILED_SOURCE])
    with pytest.raises(GradientJobError) as info:
        _outcome.finish(_outcome.job_event(failed), fail_on_partial=False)
    text = str(info.value)
    assert DS2 in text
    assert "crawl_refused" in text
    assert "robots.txt forbids /docs" in text
    assert "7 failed items" in text
    assert info.value.indexing_job_uuid == JOB
    assert info.value.phase == "BATCH_JOB_PHASE_FAILED"
    assert type(info.value) is GradientJobError  # retried as configured


def test_cancelled_fails_without_retry() -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(GradientJobCancelledError) as info:
        _outcome.finish(_outcome.job_event(job("CANCELLED", "CANCELLED")), fail_on_partial=False)
    assert isinstance(info.value, AirflowFailException)


def test_timeout() -> None:
    running = job("RUNNING", "IN_PROGRESS", finished_at=None)
    event = _outcome.timeout_event(running, JOB, cancelled=True, waited="the maximum wait")
    assert event["status"] == "timeout"
    assert event["cancelled"] is True
    assert "did not finish within the maximum wait" in event["message"]
    assert "The job was cancelled." in event["message"]
    assert "RUNNING" in event["message"]
    with pytest.raises(GradientJobTimeoutError, match="The job was cancelled"):
        _outcome.finish(event, fail_on_partial=False)
    quiet = _outcome.timeout_event(None, JOB, cancelled=False, waited="x")
    assert "cancelled" not in quiet["message"]


def test_error_carries_the_request_id() -> None:
    err = GradientAPIError(http_status=403, error_id="forbidden", message="no scope", request_id="req-1")
    event = _outcome.error_event(JOB, err)
    assert event["status"] == "error"
    assert event["request_id"] == "req-1"
    with pytest.raises(GradientError, match=r"403.*no scope.*request_id=req-1") as info:
        _outcome.finish(event, fail_on_partial=False)
    assert not isinstance(info.value, GradientJobError)


# -------------------------------------------------------------------------------------------
# Knowledge-base freshness
# -------------------------------------------------------------------------------------------


def details(last: IndexingJob | None) -> KnowledgeBaseDetails:
    kb: dict[str, Any] = {"uuid": KB}
    if last is not None:
        kb["last_indexing_job"] = last.model_dump(mode="json")
    return KnowledgeBaseDetails.model_validate({"knowledge_base": kb, "database_status": "ONLINE"})


def test_kb_fresh_after_a_success() -> None:
    event = _outcome.knowledge_base_event(details(job("SUCCEEDED", "COMPLETED")), None)
    assert event is not None
    assert event["status"] == "success"
    assert event["message"].startswith(f"Knowledge base {KB}: latest indexing job")


def test_kb_not_fresh_without_a_job_or_while_running() -> None:
    assert _outcome.knowledge_base_event(details(None), None) is None
    assert _outcome.knowledge_base_event(details(job("RUNNING", "IN_PROGRESS", finished_at=None)), None) is None


def test_kb_latest_job_failed() -> None:
    event = _outcome.knowledge_base_event(details(job("FAILED", "FAILED")), None)
    assert event is not None
    assert event["status"] == "failed"


def test_kb_indexed_after() -> None:
    done = details(job("SUCCEEDED", "COMPLETED"))
    assert _outcome.knowledge_base_event(done, T0 + timedelta(seconds=1)) is None
    assert _outcome.knowledge_base_event(done, T0)["status"] == "success"  # type: ignore[index]
    # An older failure does not end the wait either: a newer job may still come.
    failed = details(job("FAILED", "FAILED"))
    assert _outcome.knowledge_base_event(failed, T0 + timedelta(hours=1)) is None


def test_parse_time() -> None:
    assert _outcome.parse_time(None) is None
    assert _outcome.parse_time("") is None
    assert _outcome.parse_time("2026-01-31T12:00:00Z") == T0
    assert _outcome.parse_time("2026-01-31T12:00:00") == T0  # naive means UTC
    assert _outcome.parse_time(T0) == T0
    with pytest.raises(GradientError, match="indexed_after must be an ISO-8601 time"):
        _outcome.parse_time("last tuesday")


def test_error_request_id_is_not_repeated() -> None:
    err = GradientAPIError(http_status=403, error_id="forbidden", message="no scope", request_id="req-9")
    with pytest.raises(GradientError) as info:
        _outcome.finish(_outcome.error_event(JOB, err), fail_on_partial=False)
    assert str(info.value).count("req-9") == 1
