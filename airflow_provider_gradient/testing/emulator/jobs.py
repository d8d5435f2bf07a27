"""Indexing jobs: the scripted plan of one job and its lazily computed state.

A :class:`Job` is created with a complete timeline (pending period, then one slot per data source,
run one after the other). Nothing runs in the background: :meth:`Job.render` computes the phase,
status, per-data-source entries and counters for a given emulated time. Cancelling only records the
emulated time of the cancel.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_gradient.testing.emulator.clock import rfc3339

__all__ = [
    "DEFAULT_PENDING_SECONDS",
    "DEFAULT_SECONDS_PER_SOURCE",
    "OUTCOMES",
    "DataSourcePlan",
    "Job",
    "JobScript",
    "plan_job",
]

#: Outcomes a job can be scripted to end with.
OUTCOMES = ("COMPLETED", "NO_CHANGES", "PARTIAL", "FAILED")
DEFAULT_PENDING_SECONDS = 2.0
DEFAULT_SECONDS_PER_SOURCE = 30.0

_PHASE = "BATCH_JOB_PHASE_"
_STATUS = "INDEX_JOB_STATUS_"
_DS_STATUS = "DATA_SOURCE_STATUS_"

#: job outcome -> (final phase, final status)
_FINAL = {
    "COMPLETED": ("SUCCEEDED", "COMPLETED"),
    "NO_CHANGES": ("SUCCEEDED", "NO_CHANGES"),
    "PARTIAL": ("SUCCEEDED", "PARTIAL"),
    "FAILED": ("FAILED", "FAILED"),
}

#: Per-data-source counters, all uint64 rendered as strings.
COUNTER_FIELDS = (
    "failed_item_count",
    "indexed_file_count",
    "indexed_item_count",
    "removed_item_count",
    "skipped_item_count",
    "total_bytes",
    "total_bytes_indexed",
    "total_file_count",
)
#: Counters known before the data source starts; the others grow with progress.
_FIXED_COUNTERS = frozenset({"total_bytes", "total_file_count"})


@dataclass(frozen=True)
class JobScript:
    """How the next job of a knowledge base behaves.

    :param outcome: ``COMPLETED``, ``NO_CHANGES``, ``PARTIAL`` or ``FAILED``.
    :param duration: emulated seconds spent RUNNING, split evenly over the data sources;
        ``None`` means 30 s per data source.
    :param pending: emulated seconds spent PENDING before RUNNING; ``None`` means 2 s.
    :param failed_data_sources: data sources that fail (``FAILED``) or partially fail (``PARTIAL``);
        ``None`` means the job's last data source.
    :param error_msg: ``error_msg`` of the failing data sources.
    :param error_details: ``error_details`` of the failing data sources.
    :param failed_item_count: ``failed_item_count`` of each failing data source.
    """

    outcome: str = "COMPLETED"
    duration: float | None = None
    pending: float | None = None
    failed_data_sources: tuple[str, ...] | None = None
    error_msg: str | None = None
    error_details: str | None = None
    failed_item_count: int | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        for name in ("duration", "pending"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.failed_item_count is not None and self.failed_item_count < 0:
            raise ValueError("failed_item_count must be >= 0")


@dataclass
class DataSourcePlan:
    """The slot of one data source inside a job, with its final counters."""

    uuid: str
    start: float
    end: float
    status: str
    counters: dict[str, int]
    tokens: int
    error_msg: str | None = None
    error_details: str | None = None

    def render(self, at: float, cancelled: bool) -> dict[str, Any]:
        """Render this data source's entry as of emulated time ``at`` (which is >= start).

        :param at: emulated time.
        :param cancelled: whether the job was cancelled at ``at``.
        """
        entry: dict[str, Any] = {"data_source_uuid": self.uuid, "started_at": rfc3339(self.start)}
        if at >= self.end:
            entry["status"] = _DS_STATUS + self.status
            entry["completed_at"] = rfc3339(self.end)
            for name in COUNTER_FIELDS:
                entry[name] = str(self.counters[name])
            if self.error_msg is not None:
                entry["error_msg"] = self.error_msg
            if self.error_details is not None:
                entry["error_details"] = self.error_details
            return entry
        fraction = self.progress(at)
        entry["status"] = _DS_STATUS + ("CANCELLED" if cancelled else "IN_PROGRESS")
        if cancelled:
            entry["completed_at"] = rfc3339(at)
        for name in COUNTER_FIELDS:
            value = self.counters[name]
            entry[name] = str(value if name in _FIXED_COUNTERS else int(value * fraction))
        return entry

    def progress(self, at: float) -> float:
        """Fraction of this data source done at emulated time ``at`` (0..1)."""
        if at >= self.end:
            return 1.0
        if at <= self.start:
            return 0.0
        return (at - self.start) / (self.end - self.start)

    def tokens_at(self, at: float) -> int:
        """Embedding tokens spent on this data source by emulated time ``at``."""
        return int(self.tokens * self.progress(at))


@dataclass
class Job:
    """One indexing job and its full timeline in emulated seconds."""

    uuid: str
    knowledge_base_uuid: str
    seq: int
    created_at: float
    started_at: float
    finished_at: float
    outcome: str
    plans: list[DataSourcePlan]
    origin: str = "api"
    cancelled_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- state -----------------------------------------------------------------------------
    def end_time(self) -> float:
        """Emulated time the job ends (finishes or was cancelled)."""
        return self.cancelled_at if self.cancelled_at is not None else self.finished_at

    def is_active(self, now: float) -> bool:
        """Whether the job is PENDING or RUNNING at emulated time ``now``."""
        return self.created_at <= now < self.end_time()

    def is_terminal(self, now: float) -> bool:
        """Whether the job has finished or was cancelled by emulated time ``now``."""
        return now >= self.end_time()

    def report_available(self, now: float) -> bool:
        """Whether the details report exists: only for jobs that ran to completion."""
        return self.cancelled_at is None and now >= self.finished_at

    def phase_status(self, now: float) -> tuple[str, str]:
        """Return ``(phase, status)`` (full enum spellings) at emulated time ``now``."""
        if self.cancelled_at is not None and now >= self.cancelled_at:
            phase, status = "CANCELLED", "CANCELLED"
        elif now >= self.finished_at:
            phase, status = _FINAL[self.outcome]
        elif now >= self.started_at:
            phase, status = "RUNNING", "IN_PROGRESS"
        else:
            phase, status = "PENDING", "PENDING"
        return _PHASE + phase, _STATUS + status

    # -- rendering -------------------------------------------------------------------------
    def render_data_sources(self, now: float) -> list[dict[str, Any]]:
        """The ``data_source_jobs`` entries: one per data source that has started by ``now``."""
        at = min(now, self.end_time())
        cancelled = self.cancelled_at is not None and now >= self.cancelled_at
        return [plan.render(at, cancelled) for plan in self.plans if plan.start <= at and at >= self.started_at]

    def render(self, now: float) -> dict[str, Any]:
        """Render the job as the API does (``apiIndexingJob``) at emulated time ``now``."""
        phase, status = self.phase_status(now)
        at = min(now, self.end_time())
        sources = self.render_data_sources(now)
        started = at >= self.started_at
        terminal = self.is_terminal(now)
        tokens = sum(plan.tokens_at(at) for plan in self.plans) if started else 0
        completed = sum(1 for plan in self.plans if at >= plan.end) if started else 0
        job: dict[str, Any] = {
            "uuid": self.uuid,
            "knowledge_base_uuid": self.knowledge_base_uuid,
            "data_source_uuids": [plan.uuid for plan in self.plans],
            "phase": phase,
            "status": status,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(at if started else self.created_at),
            "completed_datasources": completed,
            "total_datasources": len(self.plans),
            "tokens": tokens,
            "total_tokens": str(tokens),
            "is_report_available": self.report_available(now),
            "data_source_jobs": sources,
            "total_items_indexed": str(sum(int(s["indexed_item_count"]) for s in sources)),
            "total_items_failed": str(sum(int(s["failed_item_count"]) for s in sources)),
            "total_items_skipped": str(sum(int(s["skipped_item_count"]) for s in sources)),
        }
        if started:
            job["started_at"] = rfc3339(self.started_at)
        if terminal:
            job["finished_at"] = rfc3339(self.end_time())
        return job


def _size(data_source_uuid: str) -> tuple[int, int, int, int]:
    """Deterministic (files, bytes, items, tokens) of a data source, derived from its uuid."""
    rng = random.Random(data_source_uuid)
    files = rng.randint(5, 120)
    size = files * rng.randint(20_000, 400_000)
    items = files * rng.randint(4, 20)
    tokens = items * rng.randint(200, 600)
    return files, size, items, tokens


def _plan_counters(
    data_source_uuid: str, status: str, script: JobScript
) -> tuple[dict[str, int], int, str | None, str | None]:
    files, size, items, tokens = _size(data_source_uuid)
    counters = dict.fromkeys(COUNTER_FIELDS, 0)
    counters["total_file_count"] = files
    counters["total_bytes"] = size
    if status == "NOT_UPDATED":
        counters["skipped_item_count"] = items
        return counters, 0, None, None
    if status == "UPDATED":
        counters.update(indexed_item_count=items, indexed_file_count=files, total_bytes_indexed=size)
        return counters, tokens, None, None
    if status == "PARTIALLY_UPDATED":
        failed = min(items, script.failed_item_count if script.failed_item_count is not None else max(1, items // 10))
        msg, details = "some_items_failed", f"{failed} of {items} items could not be indexed (emulated)"
    else:  # FAILED
        failed = min(items, script.failed_item_count if script.failed_item_count is not None else items)
        msg, details = "indexing_failed", "the data source could not be indexed (emulated failure)"
    indexed = items - failed
    indexed_files = files * indexed // items if items else 0
    counters.update(
        failed_item_count=failed,
        indexed_item_count=indexed,
        indexed_file_count=indexed_files,
        total_bytes_indexed=size * indexed // items if items else 0,
    )
    return (
        counters,
        tokens * indexed // items if items else 0,
        script.error_msg if script.error_msg is not None else msg,
        script.error_details if script.error_details is not None else details,
    )


def plan_job(
    *,
    uuid: str,
    knowledge_base_uuid: str,
    seq: int,
    created_at: float,
    data_source_uuids: Sequence[str],
    script: JobScript,
    origin: str,
    default_pending: float = DEFAULT_PENDING_SECONDS,
    default_per_source: float = DEFAULT_SECONDS_PER_SOURCE,
) -> Job:
    """Build a :class:`Job` with its whole timeline from a :class:`JobScript`.

    :param uuid: the job uuid.
    :param knowledge_base_uuid: the knowledge base the job indexes.
    :param seq: creation sequence number (tie-breaker for ordering).
    :param created_at: emulated creation time.
    :param data_source_uuids: the data sources to index, in order.
    :param script: outcome, durations and errors.
    :param origin: who started it (``api``, ``server``, ``schedule``, ``kb_creation``).
    :param default_pending: pending seconds when the script has none.
    :param default_per_source: running seconds per data source when the script has none.
    """
    count = len(data_source_uuids)
    pending = script.pending if script.pending is not None else default_pending
    running = script.duration if script.duration is not None else default_per_source * count
    per_source = running / count if count else 0.0
    started_at = created_at + pending
    if script.outcome in ("PARTIAL", "FAILED"):
        failing = (
            set(script.failed_data_sources) if script.failed_data_sources is not None else set(data_source_uuids[-1:])
        )
    else:
        failing = set()
    plans: list[DataSourcePlan] = []
    for index, ds_uuid in enumerate(data_source_uuids):
        if script.outcome == "NO_CHANGES":
            status = "NOT_UPDATED"
        elif ds_uuid in failing:
            status = "PARTIALLY_UPDATED" if script.outcome == "PARTIAL" else "FAILED"
        else:
            status = "UPDATED"
        counters, tokens, msg, details = _plan_counters(ds_uuid, status, script)
        start = started_at + index * per_source
        plans.append(DataSourcePlan(ds_uuid, start, start + per_source, status, counters, tokens, msg, details))
    return Job(
        uuid=uuid,
        knowledge_base_uuid=knowledge_base_uuid,
        seq=seq,
        created_at=created_at,
        started_at=started_at,
        finished_at=started_at + running,
        outcome=script.outcome,
        plans=plans,
        origin=origin,
    )
