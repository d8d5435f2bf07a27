"""The emulator's store: knowledge bases, data sources, schedules and indexing jobs.

Everything is guarded by one re-entrant lock, because the HTTP server thread and the test thread
both use the store. Job state is computed lazily from :class:`EmulatedClock` time
(see :mod:`.jobs`); schedules and the "database becomes ONLINE after a delay" rule are evaluated
lazily as well, whenever the store is touched.
"""

from __future__ import annotations

import random
import threading
import uuid as uuid_module
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from airflow_provider_gradient.testing.emulator.clock import EmulatedClock, rfc3339
from airflow_provider_gradient.testing.emulator.errors import ApiError
from airflow_provider_gradient.testing.emulator.jobs import (
    DEFAULT_PENDING_SECONDS,
    DEFAULT_SECONDS_PER_SOURCE,
    Job,
    JobScript,
    plan_job,
)

__all__ = ["LIST_ORDERS", "DataSource", "KnowledgeBase", "ListOrder", "Schedule", "Store", "check_list_order"]

#: Jobs the per-KB endpoint returns ("latest 15").
KB_JOBS_LIMIT = 15
_MAX_SCHEDULE_CATCH_UP = 1000

#: The order ``GET /v2/gen-ai/indexing_jobs`` lists jobs in (the API does not document one):
#: ``newest`` first, ``oldest`` first, or ``none`` (an order unrelated to creation, stable between
#: requests).
ListOrder = Literal["newest", "oldest", "none"]
LIST_ORDERS: tuple[ListOrder, ...] = ("newest", "oldest", "none")


def check_list_order(order: str) -> ListOrder:
    """Return ``order`` if it is one of :data:`LIST_ORDERS`, else raise ``ValueError`` naming them."""
    if order not in LIST_ORDERS:
        raise ValueError(f"list_order must be one of {', '.join(LIST_ORDERS)}; got {order!r}")
    return order


@dataclass
class DataSource:
    """A web-crawler data source of a knowledge base."""

    uuid: str
    knowledge_base_uuid: str
    base_url: str
    created_at: float


@dataclass
class Schedule:
    """Scheduled ("auto") indexing of a knowledge base: ``days`` (cron style, Monday = 1) at ``time``."""

    uuid: str
    knowledge_base_uuid: str
    days: list[int]
    time: str
    is_active: bool
    created_at: float
    updated_at: float
    next_run_at: float | None = None
    last_ran_at: float | None = None

    def compute_next(self, after: float) -> float | None:
        """Next run strictly after emulated time ``after`` (``None`` if no valid day)."""
        wanted = {7 if day % 7 == 0 else day % 7 for day in self.days}
        if not wanted:
            return None
        hours, minutes, seconds = (int(part) for part in [*self.time.split(":"), "0", "0"][:3])
        base = datetime.fromtimestamp(after, tz=timezone.utc).replace(
            hour=hours, minute=minutes, second=seconds, microsecond=0
        )
        for offset in range(8):
            candidate = base + timedelta(days=offset)
            if candidate.timestamp() > after and candidate.isoweekday() in wanted:
                return candidate.timestamp()
        return None

    def render(self) -> dict[str, Any]:
        """Render as ``apiScheduledIndexingInfo``."""
        info: dict[str, Any] = {
            "uuid": self.uuid,
            "knowledge_base_uuid": self.knowledge_base_uuid,
            "days": list(self.days),
            "time": self.time,
            "is_active": self.is_active,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
        if self.next_run_at is not None and self.is_active:
            info["next_run_at"] = rfc3339(self.next_run_at)
        if self.last_ran_at is not None:
            info["last_ran_at"] = rfc3339(self.last_ran_at)
        return info


@dataclass
class KnowledgeBase:
    """A knowledge base with its data sources, jobs and scripted job outcomes."""

    uuid: str
    name: str
    region: str
    project_id: str
    database_id: str
    embedding_model_uuid: str
    created_at: float
    database_ready: bool
    database_ready_after: float | None
    data_sources: list[DataSource] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    scripts: list[JobScript] = field(default_factory=list)
    schedule: Schedule | None = None
    tags: list[str] = field(default_factory=list)

    def database_status(self, now: float) -> str:
        """``ONLINE`` once ready (explicitly or after the emulated delay), else ``CREATING``."""
        if self.database_ready:
            return "ONLINE"
        if self.database_ready_after is not None and now >= self.created_at + self.database_ready_after:
            return "ONLINE"
        return "CREATING"

    def next_script(self) -> JobScript:
        """Consume the next scripted outcome; the last one stays in force."""
        if not self.scripts:
            return JobScript()
        if len(self.scripts) > 1:
            return self.scripts.pop(0)
        return self.scripts[0]


class Store:
    """All emulated server-side state.

    :param clock: the emulated clock jobs progress on.
    :param seed: seed of the random generator used for every uuid, so runs are reproducible.
    :param default_pending: emulated seconds a job stays PENDING unless scripted.
    :param default_per_source: emulated seconds each data source takes unless scripted.
    :param conflict_status: HTTP status for "already has an indexing job running".
    :param db_not_ready_status: HTTP status for "failed to get db creds".
    :param list_order: the order of the team-wide job list (see :data:`LIST_ORDERS`).
    """

    def __init__(
        self,
        clock: EmulatedClock,
        seed: int = 0,
        *,
        default_pending: float = DEFAULT_PENDING_SECONDS,
        default_per_source: float = DEFAULT_SECONDS_PER_SOURCE,
        conflict_status: int = 409,
        db_not_ready_status: int = 400,
        list_order: ListOrder = "newest",
    ) -> None:
        self.clock = clock
        self.list_order = check_list_order(list_order)
        self.seed = seed
        self.default_pending = default_pending
        self.default_per_source = default_per_source
        self.conflict_status = conflict_status
        self.db_not_ready_status = db_not_ready_status
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every knowledge base and job and re-seed the uuid generator."""
        with self.lock:
            self._rng = random.Random(self.seed)
            self.knowledge_bases: dict[str, KnowledgeBase] = {}
            self.data_sources: dict[str, DataSource] = {}
            self.jobs_by_uuid: dict[str, Job] = {}
            self._jobs: list[Job] = []
            self._seq = 0
            self._next_schedule_at: float | None = None

    def new_uuid(self) -> str:
        """A uuid4-shaped id drawn from the seeded generator."""
        with self.lock:
            return str(uuid_module.UUID(int=self._rng.getrandbits(128), version=4))

    # -- lazy time-driven work -------------------------------------------------------------
    def now(self) -> float:
        """Current emulated time, after firing any schedule that became due."""
        now = self.clock.now()
        if self._next_schedule_at is not None and now >= self._next_schedule_at:
            self._fire_schedules(now)
        return now

    def _fire_schedules(self, now: float) -> None:
        with self.lock:
            for kb in self.knowledge_bases.values():
                schedule = kb.schedule
                if schedule is None or not schedule.is_active:
                    continue
                for _ in range(_MAX_SCHEDULE_CATCH_UP):
                    due = schedule.next_run_at
                    if due is None or due > now:
                        break
                    if not any(job.is_active(due) for job in kb.jobs):
                        self._create_job(kb, None, origin="schedule", at=due)
                    schedule.last_ran_at = due
                    schedule.next_run_at = schedule.compute_next(due)
            self._refresh_next_schedule()

    def _refresh_next_schedule(self) -> None:
        times = [
            kb.schedule.next_run_at
            for kb in self.knowledge_bases.values()
            if kb.schedule is not None and kb.schedule.is_active and kb.schedule.next_run_at is not None
        ]
        self._next_schedule_at = min(times) if times else None

    # -- knowledge bases -------------------------------------------------------------------
    def create_knowledge_base(
        self,
        name: str,
        data_sources: int | Sequence[str] = 1,
        *,
        database_ready: bool = True,
        database_ready_after: float | None = None,
        auto_index: bool = False,
        region: str = "tor1",
    ) -> KnowledgeBase:
        """Create a knowledge base (see :meth:`GradientEmulator.create_knowledge_base`)."""
        with self.lock:
            now = self.now()
            kb = KnowledgeBase(
                uuid=self.new_uuid(),
                name=name,
                region=region,
                project_id=self.new_uuid(),
                database_id=self.new_uuid(),
                embedding_model_uuid=self.new_uuid(),
                created_at=now,
                database_ready=database_ready,
                database_ready_after=database_ready_after,
                tags=["emulator"],
            )
            urls = (
                [f"https://docs.example.com/{name}/{index}" for index in range(data_sources)]
                if isinstance(data_sources, int)
                else list(data_sources)
            )
            for url in urls:
                source = DataSource(self.new_uuid(), kb.uuid, url, now)
                kb.data_sources.append(source)
                self.data_sources[source.uuid] = source
            self.knowledge_bases[kb.uuid] = kb
            if auto_index:
                self._create_job(kb, None, origin="kb_creation", at=now)
            return kb

    def get_knowledge_base(self, kb_uuid: str) -> KnowledgeBase:
        """Look up a knowledge base; :class:`ApiError` 404 if unknown."""
        kb = self.knowledge_bases.get(kb_uuid)
        if kb is None:
            raise ApiError(404, "The resource you were accessing could not be found.")
        return kb

    def set_database_ready(self, kb_uuid: str, ready: bool = True) -> None:
        """Mark the knowledge base's database ONLINE (or back to CREATING)."""
        with self.lock:
            kb = self.get_knowledge_base(kb_uuid)
            kb.database_ready = ready
            if not ready:
                kb.database_ready_after = None

    def script_jobs(self, kb_uuid: str, scripts: Sequence[JobScript]) -> None:
        """Replace the scripted outcomes of the knowledge base's next jobs."""
        if not scripts:
            raise ValueError("at least one outcome is needed")
        with self.lock:
            self.get_knowledge_base(kb_uuid).scripts = list(scripts)

    def set_schedule(
        self, kb_uuid: str, *, days: Sequence[int], time: str = "02:00:00", is_active: bool = True
    ) -> Schedule:
        """Configure scheduled indexing of a knowledge base (fires lazily on emulated time)."""
        with self.lock:
            kb = self.get_knowledge_base(kb_uuid)
            now = self.now()
            if time.count(":") == 1:
                time = f"{time}:00"
            schedule = Schedule(
                uuid=kb.schedule.uuid if kb.schedule else self.new_uuid(),
                knowledge_base_uuid=kb_uuid,
                days=list(days),
                time=time,
                is_active=is_active,
                created_at=kb.schedule.created_at if kb.schedule else now,
                updated_at=now,
                last_ran_at=kb.schedule.last_ran_at if kb.schedule else None,
            )
            schedule.next_run_at = schedule.compute_next(now)
            kb.schedule = schedule
            self._refresh_next_schedule()
            return schedule

    def clear_schedule(self, kb_uuid: str) -> None:
        """Remove the knowledge base's schedule."""
        with self.lock:
            self.get_knowledge_base(kb_uuid).schedule = None
            self._refresh_next_schedule()

    # -- jobs ------------------------------------------------------------------------------
    def _create_job(
        self,
        kb: KnowledgeBase,
        data_source_uuids: Sequence[str] | None,
        *,
        origin: str,
        at: float,
        script: JobScript | None = None,
    ) -> Job:
        sources = list(data_source_uuids) if data_source_uuids else [ds.uuid for ds in kb.data_sources]
        self._seq += 1
        job = plan_job(
            uuid=self.new_uuid(),
            knowledge_base_uuid=kb.uuid,
            seq=self._seq,
            created_at=at,
            data_source_uuids=sources,
            script=script or kb.next_script(),
            origin=origin,
            default_pending=self.default_pending,
            default_per_source=self.default_per_source,
        )
        kb.jobs.append(job)
        self._jobs.append(job)
        self.jobs_by_uuid[job.uuid] = job
        return job

    def start_job(
        self,
        kb_uuid: str,
        data_source_uuids: Sequence[str] | None = None,
        *,
        origin: str = "api",
        require_database: bool = True,
    ) -> Job:
        """Start an indexing job, enforcing the API's rules.

        :raises ApiError: 404 unknown KB, 400 foreign data source, ``db_not_ready_status`` when the
            database is not ONLINE, ``conflict_status`` when a job is already running.
        """
        with self.lock:
            now = self.now()
            kb = self.get_knowledge_base(kb_uuid)
            if data_source_uuids:
                own = {ds.uuid for ds in kb.data_sources}
                foreign = [ds for ds in data_source_uuids if ds not in own]
                if foreign:
                    raise ApiError(
                        400,
                        f"data source(s) {', '.join(foreign)} do not belong to knowledge base {kb_uuid}",
                    )
            if require_database and kb.database_status(now) != "ONLINE":
                raise ApiError(
                    self.db_not_ready_status,
                    f"failed to get db creds: the database of knowledge base {kb_uuid} is not ready "
                    f"(status {kb.database_status(now)})",
                )
            running = next((job for job in kb.jobs if job.is_active(now)), None)
            if running is not None:
                raise ApiError(
                    self.conflict_status,
                    f"knowledge base {kb_uuid} already has an indexing job running ({running.uuid})",
                )
            return self._create_job(kb, data_source_uuids, origin=origin, at=now)

    def get_job(self, job_uuid: str) -> Job:
        """Look up a job; :class:`ApiError` 404 if unknown."""
        job = self.jobs_by_uuid.get(job_uuid)
        if job is None:
            raise ApiError(404, "The resource you were accessing could not be found.")
        return job

    def cancel_job(self, job_uuid: str) -> Job:
        """Cancel a PENDING or RUNNING job; a finished job is returned unchanged."""
        with self.lock:
            now = self.now()
            job = self.get_job(job_uuid)
            if job.is_active(now):
                job.cancelled_at = now
            return job

    def delete_job(self, job_uuid: str) -> None:
        """Remove a job as if it had been deleted: every endpoint then answers 404 or leaves it out."""
        with self.lock:
            job = self.get_job(job_uuid)
            del self.jobs_by_uuid[job_uuid]
            self._jobs.remove(job)
            self.knowledge_bases[job.knowledge_base_uuid].jobs.remove(job)

    def add_finished_jobs(self, kb_uuid: str, count: int, *, before: float = 3600.0, spacing: float = 1.0) -> list[str]:
        """Add ``count`` finished (COMPLETED) jobs to a knowledge base, created in the past.

        Cheap history for tests: no request, no running-job rule. The newest is created ``before``
        emulated seconds ago, the others ``spacing`` seconds apart before it; every one had ended
        by the time the next was created.

        :returns: their uuids, oldest first.
        """
        if count < 0 or spacing <= 0 or before < 0:
            raise ValueError("count and before must be >= 0 and spacing > 0")
        with self.lock:
            kb = self.get_knowledge_base(kb_uuid)
            now = self.now()
            script = JobScript(outcome="COMPLETED", pending=0.0, duration=spacing / 2)
            jobs = []
            for index in range(count):
                at = now - before - (count - 1 - index) * spacing
                jobs.append(self._create_job(kb, None, origin="history", at=at, script=script))
            return [job.uuid for job in jobs]

    def list_all_jobs(self) -> list[Job]:
        """Every job of the team in the order the list endpoint uses (:attr:`list_order`)."""
        with self.lock:
            self.now()
            if self.list_order == "none":
                return sorted(self._jobs, key=lambda job: job.uuid)
            return sorted(self._jobs, key=lambda job: (job.created_at, job.seq), reverse=self.list_order == "newest")

    def list_jobs(self, kb_uuid: str | None = None) -> list[Job]:
        """Jobs newest first, optionally of one knowledge base."""
        with self.lock:
            self.now()
            jobs = self.get_knowledge_base(kb_uuid).jobs if kb_uuid is not None else self._jobs
            return sorted(jobs, key=lambda job: (job.created_at, job.seq), reverse=True)

    # -- rendering -------------------------------------------------------------------------
    def render_job(self, job: Job, now: float) -> dict[str, Any]:
        """Render a job as ``apiIndexingJob``."""
        return job.render(now)

    def render_knowledge_base(self, kb: KnowledgeBase, now: float) -> dict[str, Any]:
        """Render a knowledge base as ``apiKnowledgeBase``."""
        body: dict[str, Any] = {
            "uuid": kb.uuid,
            "name": kb.name,
            "region": kb.region,
            "project_id": kb.project_id,
            "database_id": kb.database_id,
            "embedding_model_uuid": kb.embedding_model_uuid,
            "tags": list(kb.tags),
            "is_public": False,
            "user_id": "12345",
            "created_at": rfc3339(kb.created_at),
            "updated_at": rfc3339(kb.created_at),
            "reranking_config": {"enabled": False},
        }
        latest = self._latest_job(kb)
        if latest is not None:
            body["last_indexing_job"] = latest.render(now)
            body["updated_at"] = rfc3339(max(kb.created_at, min(now, latest.created_at)))
        return body

    @staticmethod
    def _latest_job(kb: KnowledgeBase) -> Job | None:
        if not kb.jobs:
            return None
        return max(kb.jobs, key=lambda job: (job.created_at, job.seq))

    def render_data_source(self, kb: KnowledgeBase, source: DataSource, now: float) -> dict[str, Any]:
        """Render a data source as ``apiKnowledgeBaseDataSource``."""
        body: dict[str, Any] = {
            "uuid": source.uuid,
            "created_at": rfc3339(source.created_at),
            "updated_at": rfc3339(source.created_at),
            "chunking_algorithm": "CHUNKING_ALGORITHM_SECTION_BASED",
            "web_crawler_data_source": {
                "base_url": source.base_url,
                "crawling_option": "PATH",
                "embed_media": False,
            },
        }
        for job in sorted(kb.jobs, key=lambda job: (job.created_at, job.seq), reverse=True):
            for entry in job.render_data_sources(now):
                if entry["data_source_uuid"] == source.uuid:
                    body["last_datasource_indexing_job"] = entry
                    return body
        return body
