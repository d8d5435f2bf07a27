"""The waits without a transport: what to read, when, and what an answer or an error means."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_gradient._polling import next_delay
from airflow_provider_gradient._wait import (
    DEADLINE_MARGIN,
    LONGEST_SWEPT_SLEEP,
    JobWait,
    KnowledgeBaseWait,
    Read,
    WatchPacing,
)
from airflow_provider_gradient.exceptions import (
    GradientConfigError,
    GradientNotFoundError,
    GradientRateLimitError,
    GradientServerError,
    GradientTransportError,
)
from airflow_provider_gradient.models import IndexedDataSource, IndexingJob, KnowledgeBaseDetails

JOB = "123e4567-e89b-12d3-a456-426614174000"
KB = "223e4567-e89b-12d3-a456-426614174000"
DS1 = "323e4567-e89b-12d3-a456-426614174000"
DS2 = "423e4567-e89b-12d3-a456-426614174000"
T0 = 1_900_000_000.0


def job(phase: str = "RUNNING", status: str = "IN_PROGRESS", *, sources: bool = True, **fields: Any) -> IndexingJob:
    data: dict[str, Any] = {
        "uuid": JOB,
        "knowledge_base_uuid": KB,
        "phase": f"BATCH_JOB_PHASE_{phase}",
        "status": f"INDEX_JOB_STATUS_{status}",
        "completed_datasources": 1,
        "total_datasources": 2,
        "finished_at": datetime.fromtimestamp(T0, tz=timezone.utc).isoformat() if phase != "RUNNING" else None,
    }
    if sources:
        data["data_source_jobs"] = [{"data_source_uuid": DS1, "status": "DATA_SOURCE_STATUS_UPDATED"}]
    data.update(fields)
    return IndexingJob.model_validate(data)


FAILED_SOURCE = IndexedDataSource.model_validate(
    {"data_source_uuid": DS2, "status": "DATA_SOURCE_STATUS_FAILED", "error_msg": "crawl_refused"}
)


def server_error(**kwargs: Any) -> GradientServerError:
    return GradientServerError(http_status=503, error_id="unavailable", message="down for maintenance", **kwargs)


def job_wait(**kwargs: Any) -> JobWait:
    kwargs.setdefault("poll_interval", 30.0)
    return JobWait(JOB, rng=random.Random(1), **kwargs)


# -------------------------------------------------------------------------------------------
# Job wait: answers
# -------------------------------------------------------------------------------------------


def test_a_running_job_keeps_the_wait_going() -> None:
    wait = job_wait()
    assert wait.next_read() == Read("job", JOB)
    assert wait.evaluate(job()) is None
    assert not wait.more_to_read
    assert wait.next_read() == Read("job", JOB)


@pytest.mark.parametrize(
    ("phase", "status", "expected"),
    [
        ("SUCCEEDED", "COMPLETED", "success"),
        ("SUCCEEDED", "NO_CHANGES", "success"),
        ("SUCCEEDED", "PARTIAL", "partial"),
        ("FAILED", "FAILED", "failed"),
        ("CANCELLED", "CANCELLED", "cancelled"),
    ],
)
def test_an_ended_job_with_its_detail_ends_the_wait(phase: str, status: str, expected: str) -> None:
    wait = job_wait()
    event = wait.evaluate(job(phase, status))
    assert event is not None
    assert (event["status"], event["indexing_job_uuid"], event["job_status"]) == (
        expected,
        JOB,
        f"INDEX_JOB_STATUS_{status}",
    )
    assert not wait.more_to_read


@pytest.mark.parametrize(("phase", "status"), [("FAILED", "FAILED"), ("SUCCEEDED", "PARTIAL")])
def test_a_failed_or_partial_job_without_detail_reads_its_data_sources_first(phase: str, status: str) -> None:
    wait = job_wait()
    assert wait.evaluate(job(phase, status, sources=False)) is None
    assert wait.more_to_read
    assert wait.next_read() == Read("data_sources", JOB)
    event = wait.evaluate([FAILED_SOURCE])
    assert event is not None
    assert event["status"] == ("failed" if phase == "FAILED" else "partial")
    assert any(DS2 in line and "crawl_refused" in line for line in event["errors"])
    assert not wait.more_to_read


@pytest.mark.parametrize(("phase", "status"), [("SUCCEEDED", "COMPLETED"), ("CANCELLED", "CANCELLED")])
def test_other_ended_jobs_never_read_their_data_sources(phase: str, status: str) -> None:
    wait = job_wait()
    assert wait.evaluate(job(phase, status, sources=False)) is not None
    assert not wait.more_to_read


def test_a_failed_detail_read_leaves_the_verdict_standing() -> None:
    wait = job_wait(error_tolerance=0.001)
    wait.evaluate(job("FAILED", "FAILED", sources=False))
    event = wait.on_error(GradientNotFoundError(http_status=404, error_id="not_found", message="gone"), T0)
    assert event is not None
    assert event["status"] == "failed"
    assert wait.note is not None
    assert wait.note[0] == logging.WARNING
    assert "data-source results" in wait.note[1]
    assert "gone" in wait.note[1]
    assert not wait.more_to_read


def test_progress_is_noted_only_when_it_changes() -> None:
    wait = job_wait()
    wait.evaluate(job())
    assert wait.note is not None
    assert wait.note == (logging.INFO, f"Indexing job {JOB}: {job().describe()}.")
    wait.evaluate(job())
    assert wait.note is None
    wait.evaluate(job(completed_datasources=2))
    assert wait.note is not None
    assert wait.note[0] == logging.INFO


# -------------------------------------------------------------------------------------------
# Errors: one tolerance policy
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        server_error(),
        GradientTransportError("connection reset", request_sent=True),
        GradientRateLimitError(http_status=429, error_id="too_many_requests", message="slow down"),
    ],
)
def test_transient_errors_are_tolerated_for_error_tolerance_seconds(error: Exception) -> None:
    wait = job_wait(error_tolerance=60)
    assert wait.on_error(error, T0) is None
    assert wait.note is not None
    assert wait.note[0] == logging.WARNING
    assert "still waiting" in wait.note[1]
    assert wait.on_error(error, T0 + 59.9) is None
    event = wait.on_error(error, T0 + 60)
    assert event is not None
    assert event["status"] == "error"
    assert event["indexing_job_uuid"] == JOB
    assert str(error) in event["message"]


def test_a_good_answer_restarts_the_tolerance() -> None:
    wait = job_wait(error_tolerance=60)
    assert wait.on_error(server_error(), T0) is None
    wait.evaluate(job())
    assert wait.on_error(server_error(), T0 + 100) is None
    assert wait.on_error(server_error(), T0 + 159) is None
    assert wait.on_error(server_error(), T0 + 160) is not None


def test_a_permanent_error_ends_the_wait_at_once_with_the_last_job_seen() -> None:
    wait = job_wait()
    wait.evaluate(job())
    error = GradientNotFoundError(http_status=404, error_id="not_found", message="no such job", request_id="r-1")
    event = wait.on_error(error, T0)
    assert event is not None
    assert (event["status"], event["request_id"], event["phase"]) == ("error", "r-1", "BATCH_JOB_PHASE_RUNNING")
    assert "no such job" in event["message"]


# -------------------------------------------------------------------------------------------
# Timing and the deadline
# -------------------------------------------------------------------------------------------


def test_reads_back_off_towards_the_poll_interval() -> None:
    wait = job_wait(poll_interval=60.0)
    delays = [wait.next_read_in(T0) for _ in range(12)]
    rng = random.Random(1)
    assert delays == [next_delay(60.0, polls, rng) for polls in range(12)]
    assert delays[0] < 10 < 54 <= delays[-1] <= 66


def test_retry_after_is_honoured_once() -> None:
    wait = job_wait(poll_interval=60.0)
    wait.on_error(server_error(retry_after=7.5), T0)
    assert wait.next_read_in(T0) == 7.5
    assert wait.next_read_in(T0) != 7.5


def test_no_read_is_scheduled_past_the_deadline() -> None:
    wait = job_wait(poll_interval=60.0, end_time=T0 + 3)
    for _ in range(5):
        wait.next_read_in(T0)  # grow the delay well past 3 s
    assert wait.next_read_in(T0) == pytest.approx(3 + DEADLINE_MARGIN)
    assert wait.next_read_in(T0 + 10) == 0.0
    assert not wait.timed_out(T0 + 2.9)
    assert wait.timed_out(T0 + 3)
    assert not job_wait().timed_out(T0 + 10**9)


def test_the_deadline_cancels_a_job_not_seen_ended() -> None:
    wait = job_wait(end_time=T0)
    assert wait.cancel_due() == JOB  # never read
    wait.evaluate(job())
    assert wait.cancel_due() == JOB
    assert job_wait(end_time=T0, cancel_on_timeout=False).cancel_due() is None
    ended = job_wait(end_time=T0)
    ended.evaluate(job("SUCCEEDED", "COMPLETED"))
    assert ended.cancel_due() is None


def test_timeout_event_names_the_deadline_and_the_cancel() -> None:
    wait = job_wait(end_time=T0)
    wait.evaluate(job())
    kept = wait.timeout_event()
    assert (kept["status"], kept["cancelled"], kept["phase"]) == ("timeout", False, "BATCH_JOB_PHASE_RUNNING")
    assert "deadline 2030-03-17T17:46:40+00:00" in kept["message"]
    cancelled = wait.timeout_event(job("CANCELLED", "CANCELLED"))
    assert (cancelled["cancelled"], cancelled["phase"]) == (True, "BATCH_JOB_PHASE_CANCELLED")
    assert "The job was cancelled." in cancelled["message"]


# -------------------------------------------------------------------------------------------
# Knowledge-base wait
# -------------------------------------------------------------------------------------------


def details(last: IndexingJob | None) -> KnowledgeBaseDetails:
    kb: dict[str, Any] = {"uuid": KB}
    if last is not None:
        kb["last_indexing_job"] = last.model_dump(mode="json")
    return KnowledgeBaseDetails.model_validate({"knowledge_base": kb, "database_status": "ONLINE"})


def kb_wait(**kwargs: Any) -> KnowledgeBaseWait:
    kwargs.setdefault("poll_interval", 30.0)
    return KnowledgeBaseWait(KB, **kwargs)


def test_kb_wait_reads_the_knowledge_base_until_it_is_fresh() -> None:
    wait = kb_wait()
    assert wait.next_read() == Read("knowledge_base", KB)
    assert wait.evaluate(details(None)) is None
    assert wait.note is not None
    assert "latest job: none" in wait.note[1]
    assert wait.evaluate(details(job())) is None
    assert wait.note is not None
    assert f"latest job: {JOB}" in wait.note[1]
    assert wait.evaluate(details(job())) is None
    assert wait.note is None  # nothing changed: nothing to say
    event = wait.evaluate(details(job("SUCCEEDED", "COMPLETED")))
    assert event is not None
    assert (event["status"], event["knowledge_base_uuid"]) == ("success", KB)
    assert not wait.more_to_read


def test_a_wait_sleeps_on_its_job_and_a_kb_wait_on_its_latest_job_while_it_runs() -> None:
    """
    Catches a knowledge-base wait that re-reads its knowledge base while its latest job still runs,
    or sleeps on one that ended.
    """
    assert job_wait().sleeps_on == JOB
    wait = kb_wait(indexed_after="2999-01-01T00:00:00Z")
    assert wait.sleeps_on is None  # nothing read yet
    wait.evaluate(details(None))
    assert wait.sleeps_on is None
    wait.evaluate(details(job()))
    assert wait.sleeps_on == JOB
    wait.evaluate(details(job("SUCCEEDED", "COMPLETED")))  # too old for indexed_after: still waiting
    assert wait.sleeps_on is None


def test_kb_wait_honours_indexed_after() -> None:
    after = datetime.fromtimestamp(T0 + 1, tz=timezone.utc).isoformat()
    assert kb_wait(indexed_after=after).evaluate(details(job("SUCCEEDED", "COMPLETED"))) is None
    before = datetime.fromtimestamp(T0, tz=timezone.utc).isoformat()
    assert kb_wait(indexed_after=before).evaluate(details(job("SUCCEEDED", "COMPLETED"))) is not None


def test_kb_wait_refuses_a_bad_indexed_after() -> None:
    with pytest.raises(GradientConfigError, match="indexed_after"):
        kb_wait(indexed_after="yesterday")


def test_kb_wait_never_cancels_and_shares_the_error_policy() -> None:
    wait = kb_wait(end_time=T0, error_tolerance=10)
    wait.evaluate(details(job()))
    assert wait.cancel_due() is None
    assert wait.timeout_event()["cancelled"] is False
    assert wait.on_error(server_error(), T0) is None
    event = wait.on_error(server_error(), T0 + 10)
    assert event is not None
    assert event["status"] == "error"


# -------------------------------------------------------------------------------------------
# A watch's pace (the asset watcher)
# -------------------------------------------------------------------------------------------


def test_watch_backoff_grows_and_is_capped() -> None:
    pacing = WatchPacing(60)
    normal = [pacing.delay(0) for _ in range(50)]
    assert all(54 <= delay <= 66 for delay in normal)
    assert len({round(delay, 3) for delay in normal}) > 1, "polls must be jittered"
    assert 108 <= pacing.delay(1) <= 132
    assert 432 <= pacing.delay(10) <= 528


def test_watch_rounds_back_off_while_they_fail_and_honour_retry_after() -> None:
    pacing = WatchPacing(10, rng=random.Random(3))
    assert 9 <= pacing.next_read_in() <= 11
    level, message = pacing.on_error(server_error(), "the jobs of knowledge base x")
    assert (level, message.endswith("retrying.")) == (logging.WARNING, True)
    assert 18 <= pacing.next_read_in() <= 22
    pacing.on_error(server_error(), "x")
    assert 36 <= pacing.next_read_in() <= 44
    pacing.on_error(server_error(retry_after=500), "x")
    assert pacing.next_read_in() == 500
    assert 9 <= pacing.next_read_in() <= 11  # a good round: back to the normal pace
    level, message = pacing.on_error(GradientNotFoundError(http_status=404, error_id=None, message="gone"), "x")
    assert (level, message.endswith("Retrying later.")) == (logging.ERROR, True)


def test_a_read_waits_for_others_at_most_a_poll_interval_and_never_past_the_deadline() -> None:
    """
    Catches a read allowed to wait for a sweep longer than its poll interval or its deadline, and a
    first read that gives up on the sweeps after one poll interval: on a busy token, thousands of
    first reads sent as GETs would crowd out the sweeps they could have joined.
    """
    first = JobWait(JOB, poll_interval=30.0)
    assert first.read_patience(1000.0) == LONGEST_SWEPT_SLEEP
    assert JobWait(JOB, poll_interval=30.0, end_time=1010.0).read_patience(1000.0) == 10.0
    assert JobWait(JOB, poll_interval=30.0, end_time=990.0).read_patience(1000.0) == 0.0
    assert first.evaluate(job()) is None
    assert first.read_patience(1000.0) == 30.0
    assert JobWait(JOB, poll_interval=900.0).read_patience(1000.0) == 900.0


def test_a_wait_sleeps_on_while_sweeps_see_its_job_at_most_the_longest_swept_sleep_and_to_its_deadline() -> None:
    """Catches a wait left asleep past its deadline, or never reading its job (its log never shows progress)."""
    assert JobWait(JOB, poll_interval=30.0).longest_sleep(1000.0) == LONGEST_SWEPT_SLEEP
    assert JobWait(JOB, poll_interval=30.0, end_time=1010.0).longest_sleep(1000.0) == 10.0 + DEADLINE_MARGIN
    assert JobWait(JOB, poll_interval=30.0, end_time=990.0).longest_sleep(1000.0) == 0.0


def test_an_answer_older_than_one_seen_does_not_set_the_wait_back() -> None:
    """
    Catches a lagging answer (a sweep's page read before a GET that saw the job further on) taken
    as the job's state: its progress would go backwards in the log, and its end could be missed.
    """
    wait = JobWait(JOB, poll_interval=30.0)
    later = job(updated_at="2026-01-01T00:00:10Z", completed_datasources=1)
    earlier = job(updated_at="2026-01-01T00:00:05Z", completed_datasources=0)
    assert wait.evaluate(later) is None
    assert wait.note is not None
    assert wait.evaluate(earlier) is None
    assert wait.last_job is later
    assert wait.note is None  # no progress to report: nothing went back
    event = wait.evaluate(job("SUCCEEDED", "COMPLETED", updated_at="2026-01-01T00:00:20Z"))
    assert event is not None
    assert event["status"] == "success"
