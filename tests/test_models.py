"""Model tolerance and the one table that says what a job's phase and status mean."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from airflow_provider_gradient.models import (
    TERMINAL_PHASES,
    DataSourceStatus,
    IndexedDataSource,
    IndexingJob,
    IndexingJobPage,
    JobOutcome,
    JobPhase,
    JobStatus,
    KnowledgeBaseDetails,
    KnowledgeBasePage,
    ListedIndexingJobs,
    classify,
)

JOB_UUID = "11111111-2222-4333-8444-555555555555"


# --------------------------------------------------------------------------------------------
# classify: the full table, every known phase x every known status (and unknown / missing)
# --------------------------------------------------------------------------------------------

ALL_STATUSES = [s.value for s in JobStatus] + ["INDEX_JOB_STATUS_FROM_THE_FUTURE", None, ""]
ALL_PHASES = [p.value for p in JobPhase] + ["BATCH_JOB_PHASE_COMPLETED", "weird", None, ""]


def expected_outcome(phase: str | None, status: str | None) -> JobOutcome:
    """The table of the notes (gradient-api.md section 4), written independently of classify."""
    if phase == "BATCH_JOB_PHASE_CANCELLED":
        return JobOutcome.CANCELLED
    if phase in ("BATCH_JOB_PHASE_FAILED", "BATCH_JOB_PHASE_ERROR"):
        return JobOutcome.FAILED
    if phase == "BATCH_JOB_PHASE_SUCCEEDED":
        return {
            "INDEX_JOB_STATUS_PARTIAL": JobOutcome.PARTIAL,
            "INDEX_JOB_STATUS_NO_CHANGES": JobOutcome.NO_CHANGES,
            "INDEX_JOB_STATUS_FAILED": JobOutcome.FAILED,
            "INDEX_JOB_STATUS_CANCELLED": JobOutcome.FAILED,
        }.get(status or "", JobOutcome.SUCCEEDED)
    # PENDING, RUNNING, UNKNOWN, missing, and anything this provider does not know yet.
    return JobOutcome.RUNNING


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("phase", ALL_PHASES)
def test_classify_table(phase: str | None, status: str | None) -> None:
    outcome = classify(phase, status)
    assert outcome is expected_outcome(phase, status)
    job = IndexingJob.model_validate({"phase": phase, "status": status})
    assert job.outcome is outcome
    assert job.is_terminal is outcome.is_terminal


@pytest.mark.parametrize("phase", [p.value for p in JobPhase])
def test_terminal_phases_match_classify(phase: str) -> None:
    # Every terminal phase classifies as terminal whatever the status, every other phase as running.
    for status in ALL_STATUSES:
        assert classify(phase, status).is_terminal is (phase in TERMINAL_PHASES)


def test_terminal_phases_are_exactly_the_four_end_phases() -> None:
    assert {
        JobPhase.SUCCEEDED.value,
        JobPhase.FAILED.value,
        JobPhase.ERROR.value,
        JobPhase.CANCELLED.value,
    } == TERMINAL_PHASES


@pytest.mark.parametrize(
    ("outcome", "terminal", "success"),
    [
        (JobOutcome.RUNNING, False, False),
        (JobOutcome.SUCCEEDED, True, True),
        (JobOutcome.NO_CHANGES, True, True),
        (JobOutcome.PARTIAL, True, True),
        (JobOutcome.FAILED, True, False),
        (JobOutcome.CANCELLED, True, False),
    ],
)
def test_outcome_flags(outcome: JobOutcome, terminal: bool, success: bool) -> None:
    assert outcome.is_terminal is terminal
    assert outcome.is_success is success


def test_every_outcome_is_reachable() -> None:
    reached = {classify(p, s) for p in ALL_PHASES for s in ALL_STATUSES}
    assert reached == set(JobOutcome)


# --------------------------------------------------------------------------------------------
# Tolerance
# --------------------------------------------------------------------------------------------

COUNTERS = ("completed_datasources", "total_datasources", "tokens", "total_tokens")
DS_COUNTERS = (
    "failed_item_count",
    "indexed_file_count",
    "indexed_item_count",
    "removed_item_count",
    "skipped_item_count",
    "total_bytes",
    "total_bytes_indexed",
    "total_file_count",
)


@pytest.mark.parametrize("raw", ["12345", 12345, " 12345 ", 12345.0, "12345.0"])
@pytest.mark.parametrize("name", COUNTERS)
def test_job_counters_accept_strings_and_numbers(name: str, raw: object) -> None:
    job = IndexingJob.model_validate({name: raw})
    assert getattr(job, name) == 12345
    assert type(getattr(job, name)) is int


@pytest.mark.parametrize("raw", ["18446744073709551615", 18446744073709551615])
@pytest.mark.parametrize("name", DS_COUNTERS)
def test_data_source_counters_accept_uint64_strings(name: str, raw: object) -> None:
    ds = IndexedDataSource.model_validate({name: raw})
    assert getattr(ds, name) == 18446744073709551615


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_empty_counters_become_none(raw: object) -> None:
    assert IndexingJob.model_validate({"total_tokens": raw}).total_tokens is None


def test_garbage_counter_is_a_validation_error() -> None:
    with pytest.raises(ValueError, match="total_tokens"):
        IndexingJob.model_validate({"total_tokens": "lots"})


def test_everything_may_be_missing() -> None:
    job = IndexingJob.model_validate({})
    assert job.uuid is None
    assert job.phase is None
    assert job.data_source_jobs == []
    assert job.outcome is JobOutcome.RUNNING
    assert job.describe() == "phase UNKNOWN, status UNKNOWN"
    assert job.summary()["outcome"] == "running"
    assert job.error_summary() == []


def test_unknown_enum_values_are_kept_raw() -> None:
    job = IndexingJob.model_validate(
        {
            "phase": "BATCH_JOB_PHASE_TELEPORTING",
            "status": "INDEX_JOB_STATUS_HAZY",
            "data_source_jobs": [{"status": "DATA_SOURCE_STATUS_SHINY"}],
        }
    )
    assert job.phase == "BATCH_JOB_PHASE_TELEPORTING"
    assert job.status == "INDEX_JOB_STATUS_HAZY"
    assert job.data_source_jobs[0].status == "DATA_SOURCE_STATUS_SHINY"
    assert job.outcome is JobOutcome.RUNNING
    assert not job.is_terminal


def test_non_string_enum_is_stringified() -> None:
    assert IndexingJob.model_validate({"phase": 3}).phase == "3"


def test_extra_fields_are_kept() -> None:
    job = IndexingJob.model_validate(
        {"uuid": JOB_UUID, "total_items_indexed": "42", "something_new": {"a": 1}},
    )
    assert job.model_extra == {"total_items_indexed": "42", "something_new": {"a": 1}}
    assert job.model_dump()["something_new"] == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2025-01-02T03:04:05.123456Z", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)),
        ("", None),
        (None, None),
        ("not a date", None),
    ],
)
def test_timestamps(raw: object, expected: datetime | None) -> None:
    assert IndexingJob.model_validate({"finished_at": raw}).finished_at == expected


def test_token_count_prefers_total_tokens() -> None:
    assert IndexingJob.model_validate({"tokens": 5, "total_tokens": "7"}).token_count == 7
    assert IndexingJob.model_validate({"tokens": 5}).token_count == 5
    assert IndexingJob.model_validate({}).token_count is None


def test_describe_and_summary() -> None:
    job = IndexingJob.model_validate(
        {
            "uuid": JOB_UUID,
            "knowledge_base_uuid": "kb",
            "phase": "BATCH_JOB_PHASE_SUCCEEDED",
            "status": "INDEX_JOB_STATUS_PARTIAL",
            "completed_datasources": 1,
            "total_datasources": 2,
            "total_tokens": "99",
            "finished_at": "2025-01-02T03:04:05Z",
            "data_source_jobs": [
                {"data_source_uuid": "ds1", "status": "DATA_SOURCE_STATUS_UPDATED", "indexed_item_count": "3"},
                {
                    "data_source_uuid": "ds2",
                    "status": "DATA_SOURCE_STATUS_FAILED",
                    "failed_item_count": "2",
                    "error_msg": "bucket gone",
                },
            ],
        }
    )
    assert job.describe() == "phase SUCCEEDED, status PARTIAL, 1/2 data sources done"
    summary = job.summary()
    assert summary["outcome"] == "partial"
    assert summary["total_tokens"] == 99
    assert summary["finished_at"] == "2025-01-02T03:04:05+00:00"
    assert [ds["indexed_item_count"] for ds in summary["data_sources"]] == [3, None]
    assert job.error_summary() == ["data source ds2: FAILED; 2 failed items; bucket gone"]
    assert job.progress_key() == ("BATCH_JOB_PHASE_SUCCEEDED", "INDEX_JOB_STATUS_PARTIAL", 1, 2)


def test_data_source_failed_flag() -> None:
    assert IndexedDataSource(status=DataSourceStatus.FAILED.value).failed
    assert IndexedDataSource.model_validate({"failed_item_count": "1"}).failed
    assert not IndexedDataSource.model_validate({"failed_item_count": "0", "status": "X"}).failed
    assert IndexedDataSource(status=DataSourceStatus.UPDATED.value).describe_error() == ""


def test_pages_use_previous_not_prev() -> None:
    page = IndexingJobPage.model_validate(
        {
            "jobs": [{"uuid": JOB_UUID}],
            "links": {"pages": {"previous": "https://x/?page=1", "next": "https://x/?page=3"}},
            "meta": {"page": "2", "pages": 3, "total": "41"},
        }
    )
    assert page.next_url == "https://x/?page=3"
    assert page.links is not None
    assert page.links.pages is not None
    assert page.links.pages.previous == "https://x/?page=1"
    assert page.meta is not None
    assert (page.meta.page, page.meta.pages, page.meta.total) == (2, 3, 41)
    assert IndexingJobPage.model_validate({}).next_url is None
    assert IndexingJobPage.model_validate({"links": {}}).next_url is None


def test_knowledge_base_details() -> None:
    details = KnowledgeBaseDetails.model_validate(
        {
            "knowledge_base": {
                "uuid": "kb",
                "user_id": "123",
                "last_indexing_job": {"phase": "BATCH_JOB_PHASE_RUNNING"},
            },
            "database_status": "CREATING",
        }
    )
    assert details.knowledge_base.user_id == 123
    assert details.knowledge_base.last_indexing_job is not None
    assert details.knowledge_base.last_indexing_job.outcome is JobOutcome.RUNNING
    assert not details.database_ready
    assert KnowledgeBaseDetails.model_validate({"database_status": "ONLINE"}).database_ready
    assert KnowledgeBaseDetails.model_validate({}).database_ready
    assert KnowledgeBaseDetails.model_validate({}).knowledge_base.uuid is None


def test_knowledge_base_page_tolerates_missing_list() -> None:
    assert KnowledgeBasePage.model_validate({"meta": {"total": 0}}).knowledge_bases == []


# --------------------------------------------------------------------------------------------
# A listed job, read without its model (the job watcher's sweeps)
# --------------------------------------------------------------------------------------------

ALL_PHASES = [p.value for p in JobPhase] + ["BATCH_JOB_PHASE_FROM_THE_FUTURE", None, "", 7]


@pytest.mark.parametrize("phase", ALL_PHASES)
@pytest.mark.parametrize("status", [*ALL_STATUSES, 3])
def test_a_listed_job_has_ended_exactly_when_its_model_says_so(phase: object, status: object) -> None:
    """Catches a sweep that wakes a wait on an end its model would not call one, or misses one."""
    item = {"uuid": JOB_UUID, "phase": phase, "status": status}
    assert ListedIndexingJobs.is_terminal(item) is IndexingJob.model_validate(item).is_terminal


@pytest.mark.parametrize(
    "created_at", ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123+02:00", 1767323045, 1767323045.5, "", "soon", None]
)
def test_a_listed_jobs_created_at_is_read_as_its_model_reads_it(created_at: object) -> None:
    """Catches a sweep that places a job in the list by another time than the job's own (or none)."""
    item = {"uuid": JOB_UUID, "created_at": created_at}
    assert ListedIndexingJobs.created_at_of(item) == IndexingJob.model_validate(item).created_at
    assert ListedIndexingJobs.created_at_of(item) == IndexingJob.model_validate(item).created_at  # cached: same


@pytest.mark.parametrize("jobs", [None, "jobs", {"uuid": JOB_UUID}, [{"uuid": JOB_UUID}, "job"], [[JOB_UUID]]])
def test_a_listed_page_whose_jobs_are_not_objects_does_not_parse(jobs: object) -> None:
    """Catches a sweep that takes a malformed page for jobs (it must fail, so its readers GET their jobs)."""
    with pytest.raises(ValidationError):
        ListedIndexingJobs.model_validate({"jobs": jobs})


def test_a_listed_page_keeps_its_jobs_as_decoded() -> None:
    """Catches a page that copies every job it lists: a sweep lists thousands, and reads few of them."""
    decoded = [{"uuid": JOB_UUID, "phase": "BATCH_JOB_PHASE_RUNNING"}, {"uuid": JOB_UUID, "extra": {"a": [1]}}]
    page = ListedIndexingJobs.model_validate({"jobs": decoded})
    assert page.jobs == decoded
    assert all(listed is item for listed, item in zip(page.jobs, decoded, strict=True))
