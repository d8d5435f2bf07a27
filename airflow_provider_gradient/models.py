"""
Typed models of the Gradient indexing-job API (pydantic v2).

The models tolerate what the real API sends: counters as strings or numbers, missing fields,
unknown enum values (kept as the raw string) and fields the spec does not document (kept as
extras). :func:`classify` is the one place that decides what a job's phase and status mean.
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, TypeAdapter

__all__ = [
    "TERMINAL_PHASES",
    "DataSourceStatus",
    "IndexedDataSource",
    "IndexingJob",
    "IndexingJobPage",
    "JobOutcome",
    "JobPhase",
    "JobStatus",
    "KnowledgeBase",
    "KnowledgeBaseDataSource",
    "KnowledgeBaseDataSourcePage",
    "KnowledgeBaseDetails",
    "KnowledgeBasePage",
    "Links",
    "ListedIndexingJobs",
    "Meta",
    "Pages",
    "ScheduledIndexingInfo",
    "classify",
]


class JobPhase(str, enum.Enum):
    """``apiBatchJobPhase``: where a job is in its life."""

    UNKNOWN = "BATCH_JOB_PHASE_UNKNOWN"
    PENDING = "BATCH_JOB_PHASE_PENDING"
    RUNNING = "BATCH_JOB_PHASE_RUNNING"
    SUCCEEDED = "BATCH_JOB_PHASE_SUCCEEDED"
    FAILED = "BATCH_JOB_PHASE_FAILED"
    ERROR = "BATCH_JOB_PHASE_ERROR"
    CANCELLED = "BATCH_JOB_PHASE_CANCELLED"


class JobStatus(str, enum.Enum):
    """``apiIndexJobStatus``: how a job went."""

    UNKNOWN = "INDEX_JOB_STATUS_UNKNOWN"
    PARTIAL = "INDEX_JOB_STATUS_PARTIAL"
    IN_PROGRESS = "INDEX_JOB_STATUS_IN_PROGRESS"
    COMPLETED = "INDEX_JOB_STATUS_COMPLETED"
    FAILED = "INDEX_JOB_STATUS_FAILED"
    NO_CHANGES = "INDEX_JOB_STATUS_NO_CHANGES"
    PENDING = "INDEX_JOB_STATUS_PENDING"
    CANCELLED = "INDEX_JOB_STATUS_CANCELLED"


class DataSourceStatus(str, enum.Enum):
    """``apiIndexedDataSourceStatus``: how one data source of a job went."""

    UNKNOWN = "DATA_SOURCE_STATUS_UNKNOWN"
    IN_PROGRESS = "DATA_SOURCE_STATUS_IN_PROGRESS"
    UPDATED = "DATA_SOURCE_STATUS_UPDATED"
    PARTIALLY_UPDATED = "DATA_SOURCE_STATUS_PARTIALLY_UPDATED"
    NOT_UPDATED = "DATA_SOURCE_STATUS_NOT_UPDATED"
    FAILED = "DATA_SOURCE_STATUS_FAILED"
    CANCELLED = "DATA_SOURCE_STATUS_CANCELLED"


#: Phases after which a job never changes again. Anything else, including a missing or unknown
#: phase, means "still running".
TERMINAL_PHASES = frozenset(
    {JobPhase.SUCCEEDED.value, JobPhase.FAILED.value, JobPhase.ERROR.value, JobPhase.CANCELLED.value}
)


class JobOutcome(str, enum.Enum):
    """What a job's phase and status mean for a task. See :func:`classify`."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    NO_CHANGES = "no_changes"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended."""
        return self is not JobOutcome.RUNNING

    @property
    def is_success(self) -> bool:
        """Whether the job ended in a success (PARTIAL counts; ``fail_on_partial`` decides later)."""
        return self in (JobOutcome.SUCCEEDED, JobOutcome.NO_CHANGES, JobOutcome.PARTIAL)


def classify(phase: str | None, status: str | None) -> JobOutcome:
    """
    Decide what a job's phase and status mean. The only place in the provider that does.

    ========================  ==========================  =============
    phase                     status                      outcome
    ========================  ==========================  =============
    SUCCEEDED                 PARTIAL                     PARTIAL
    SUCCEEDED                 NO_CHANGES                  NO_CHANGES
    SUCCEEDED                 FAILED or CANCELLED         FAILED
    SUCCEEDED                 anything else               SUCCEEDED
    FAILED, ERROR             any                         FAILED
    CANCELLED                 any                         CANCELLED
    missing, unknown, other   any                         RUNNING
    ========================  ==========================  =============

    A phase this provider does not know yet is treated as not terminal: the wait goes on until the
    phase becomes known or the maximum wait runs out, never a silent success.

    :param phase: The job's ``phase`` as sent (may be ``None`` or unknown).
    :param status: The job's ``status`` as sent (may be ``None`` or unknown).
    """
    if phase == JobPhase.CANCELLED.value:
        return JobOutcome.CANCELLED
    if phase in (JobPhase.FAILED.value, JobPhase.ERROR.value):
        return JobOutcome.FAILED
    if phase == JobPhase.SUCCEEDED.value:
        if status == JobStatus.PARTIAL.value:
            return JobOutcome.PARTIAL
        if status == JobStatus.NO_CHANGES.value:
            return JobOutcome.NO_CHANGES
        if status in (JobStatus.FAILED.value, JobStatus.CANCELLED.value):
            return JobOutcome.FAILED
        return JobOutcome.SUCCEEDED
    return JobOutcome.RUNNING


def _to_int(value: Any) -> Any:
    """Accept uint64 counters sent as strings (``"12345"``) as well as numbers; empty → None."""
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        try:
            return int(stripped)
        except ValueError:
            return int(float(stripped))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _to_str(value: Any) -> Any:
    """Enum-like fields: keep any string as sent (unknown values survive); anything else → None."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _to_datetime(value: Any) -> Any:
    """Timestamps: empty strings and unparsable values become None instead of failing a poll."""
    if value in ("", None):
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value


Counter = Annotated[int | None, BeforeValidator(_to_int)]
RawEnum = Annotated[str | None, BeforeValidator(_to_str)]
Timestamp = Annotated[datetime | None, BeforeValidator(_to_datetime)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)


class IndexedDataSource(_Model):
    """One data source of an indexing job (``apiIndexedDataSource``)."""

    data_source_uuid: str | None = None
    status: RawEnum = None
    started_at: Timestamp = None
    completed_at: Timestamp = None
    error_msg: str | None = None
    error_details: str | None = None
    failed_item_count: Counter = None
    indexed_file_count: Counter = None
    indexed_item_count: Counter = None
    removed_item_count: Counter = None
    skipped_item_count: Counter = None
    total_bytes: Counter = None
    total_bytes_indexed: Counter = None
    total_file_count: Counter = None

    @property
    def failed(self) -> bool:
        """Whether this data source failed or had failed items."""
        return self.status == DataSourceStatus.FAILED.value or bool(self.failed_item_count)

    def describe_error(self) -> str:
        """A one-line account of this data source's problem, or ``""`` if it has none."""
        bits = []
        if self.status and self.status != DataSourceStatus.UPDATED.value:
            bits.append(self.status.removeprefix("DATA_SOURCE_STATUS_"))
        if self.failed_item_count:
            bits.append(f"{self.failed_item_count} failed items")
        if self.error_msg:
            bits.append(self.error_msg)
        if self.error_details:
            bits.append(self.error_details)
        if not (self.error_msg or self.error_details or self.failed):
            return ""
        return f"data source {self.data_source_uuid}: " + "; ".join(bits)


class IndexingJob(_Model):
    """An indexing job (``apiIndexingJob``). Every field may be missing; see :func:`classify`."""

    uuid: str | None = None
    knowledge_base_uuid: str | None = None
    phase: RawEnum = None
    status: RawEnum = None
    completed_datasources: Counter = None
    total_datasources: Counter = None
    tokens: Counter = None
    total_tokens: Counter = None
    data_source_uuids: list[str] = Field(default_factory=list)
    data_source_jobs: list[IndexedDataSource] = Field(default_factory=list)
    is_report_available: bool | None = None
    created_at: Timestamp = None
    started_at: Timestamp = None
    finished_at: Timestamp = None
    updated_at: Timestamp = None

    @property
    def outcome(self) -> JobOutcome:
        """What this job's phase and status mean (see :func:`classify`)."""
        return classify(self.phase, self.status)

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended."""
        return self.outcome.is_terminal

    @property
    def token_count(self) -> int | None:
        """Tokens consumed: ``total_tokens``, or the deprecated ``tokens`` when that is missing."""
        return self.total_tokens if self.total_tokens is not None else self.tokens

    def progress_key(self) -> tuple[Any, ...]:
        """What a user wants to hear about when it changes: phase, status and data-source progress."""
        return (self.phase, self.status, self.completed_datasources, self.total_datasources)

    def describe(self) -> str:
        """A short, readable state line such as ``RUNNING (1/3 data sources)``."""
        phase = (self.phase or "UNKNOWN").removeprefix("BATCH_JOB_PHASE_")
        status = (self.status or "UNKNOWN").removeprefix("INDEX_JOB_STATUS_")
        text = f"phase {phase}, status {status}"
        if self.total_datasources:
            text += f", {self.completed_datasources or 0}/{self.total_datasources} data sources done"
        return text

    def error_summary(self) -> list[str]:
        """One line per data source that failed or reported an error."""
        return [line for line in (ds.describe_error() for ds in self.data_source_jobs) if line]

    def summary(self) -> dict[str, Any]:
        """A small JSON-serializable summary for XCom and trigger events."""
        return {
            "indexing_job_uuid": self.uuid,
            "knowledge_base_uuid": self.knowledge_base_uuid,
            "phase": self.phase,
            "status": self.status,
            "outcome": self.outcome.value,
            "total_tokens": self.token_count,
            "completed_datasources": self.completed_datasources,
            "total_datasources": self.total_datasources,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "data_sources": [
                {
                    "data_source_uuid": ds.data_source_uuid,
                    "status": ds.status,
                    "indexed_item_count": ds.indexed_item_count,
                    "failed_item_count": ds.failed_item_count,
                    "skipped_item_count": ds.skipped_item_count,
                    "error_msg": ds.error_msg,
                }
                for ds in self.data_source_jobs
            ],
        }


class Pages(_Model):
    """``apiPages``: absolute page URLs. Note the API says ``previous``, not ``prev``."""

    first: str | None = None
    previous: str | None = None
    next: str | None = None
    last: str | None = None


class Links(_Model):
    """``apiLinks``."""

    pages: Pages | None = None


class Meta(_Model):
    """``apiMeta``."""

    page: Counter = None
    pages: Counter = None
    total: Counter = None


class _Page(_Model):
    links: Links | None = None
    meta: Meta | None = None

    @property
    def next_url(self) -> str | None:
        """The next page's URL, or ``None`` on the last page."""
        return self.links.pages.next if self.links and self.links.pages else None


class IndexingJobPage(_Page):
    """One page of indexing jobs (``apiListKnowledgeBaseIndexingJobsOutput``)."""

    jobs: list[IndexingJob] = Field(default_factory=list)


def _listed_jobs(value: Any) -> list[dict[str, Any]]:
    """A page's jobs as decoded, checked to be JSON objects but not copied (a sweep reads thousands)."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("jobs must be a list of objects")
    return value


class ListedIndexingJobs(_Page):
    """
    One page of the team's job list as the job watcher reads it: the jobs left as decoded JSON, so
    that a sweep validates only the jobs it watches, and only when they changed
    (:meth:`created_at_of` reads the one field every listed job is looked at for).
    """

    jobs: Annotated[list[dict[str, Any]], PlainValidator(_listed_jobs)] = Field(default_factory=list)

    @staticmethod
    def created_at_of(item: dict[str, Any]) -> datetime | None:
        """A listed job's ``created_at`` (``None`` when missing or unparsable)."""
        value = item.get("created_at")
        if isinstance(value, str):
            return _created_at(value)  # every sweep reads the same jobs' times: parse each once
        try:
            return _TIMESTAMP.validate_python(value)  # as the job's model reads it
        except ValueError:
            return None

    @staticmethod
    def is_terminal(item: dict[str, Any]) -> bool:
        """Whether a listed job has ended, as :attr:`IndexingJob.is_terminal` of the job would say."""
        return _ends(_to_str(item.get("phase")), _to_str(item.get("status")))


_TIMESTAMP: TypeAdapter[datetime | None] = TypeAdapter(Timestamp)


@functools.lru_cache(maxsize=1024)  # a sweep looks at thousands of listed jobs, in a handful of states
def _ends(phase: str | None, status: str | None) -> bool:
    return classify(phase, status).is_terminal


@functools.lru_cache(maxsize=16384)
def _created_at(value: str) -> datetime | None:
    parsed = _to_datetime(value)
    return parsed if isinstance(parsed, datetime) else None


class ScheduledIndexingInfo(_Model):
    """A knowledge base's indexing schedule (``apiScheduledIndexingInfo``)."""

    uuid: str | None = None
    knowledge_base_uuid: str | None = None
    days: list[int] = Field(default_factory=list)
    time: str | None = None
    is_active: bool | None = None
    next_run_at: Timestamp = None
    last_ran_at: Timestamp = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    deleted_at: Timestamp = None


class KnowledgeBase(_Model):
    """A knowledge base (``apiKnowledgeBase``)."""

    uuid: str | None = None
    name: str | None = None
    region: str | None = None
    project_id: str | None = None
    database_id: str | None = None
    embedding_model_uuid: str | None = None
    user_id: Counter = None
    tags: list[str] = Field(default_factory=list)
    is_public: bool | None = None
    last_indexing_job: IndexingJob | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    added_to_agent_at: Timestamp = None


class KnowledgeBaseDetails(_Model):
    """``apiGetKnowledgeBaseOutput``: a knowledge base and its database's status."""

    knowledge_base: KnowledgeBase = Field(default_factory=KnowledgeBase)
    database_status: RawEnum = None

    @property
    def database_ready(self) -> bool:
        """Whether the knowledge base's database is ONLINE (a missing status counts as ready)."""
        return self.database_status in (None, "", "ONLINE")


class KnowledgeBasePage(_Page):
    """One page of knowledge bases."""

    knowledge_bases: list[KnowledgeBase] = Field(default_factory=list)


class KnowledgeBaseDataSource(_Model):
    """A knowledge base's data source (``apiKnowledgeBaseDataSource``)."""

    uuid: str | None = None
    bucket_name: str | None = None
    item_path: str | None = None
    region: str | None = None
    last_datasource_indexing_job: IndexedDataSource | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class KnowledgeBaseDataSourcePage(_Page):
    """One page of a knowledge base's data sources."""

    knowledge_base_data_sources: list[KnowledgeBaseDataSource] = Field(default_factory=list)
