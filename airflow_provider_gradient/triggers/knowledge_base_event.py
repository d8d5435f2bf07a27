"""
Event trigger for asset watchers: one event per indexing job of a knowledge base that ends.

Used in ``Asset(..., watchers=[AssetWatcher(name=..., trigger=GradientKnowledgeBaseEventTrigger(...))])``
so that DAGs scheduled on the asset run whenever the knowledge base is reindexed, whoever started
the job (our operator, the console, DigitalOcean's scheduled auto-indexing, adding a data source).
See ``docs/events.md``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from typing import Any

from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import TriggerEvent

from airflow_provider_gradient._api import validate_uuid
from airflow_provider_gradient._validation import knowledge_base_name as checked_name
from airflow_provider_gradient._validation import seconds
from airflow_provider_gradient._wait import LONGEST_SWEPT_SLEEP, WatchPacing
from airflow_provider_gradient.exceptions import GradientConfigError, GradientError
from airflow_provider_gradient.hooks.gradient import GradientHook, KnowledgeBaseJobs
from airflow_provider_gradient.models import IndexingJob, JobOutcome

__all__ = ["STATE_KEY_PREFIX", "GradientKnowledgeBaseEventTrigger"]

#: Asset-state-store key prefix; the full key is ``<prefix><knowledge base uuid>``. Do not rename:
#: a renamed key loses the watermark of every running watcher.
STATE_KEY_PREFIX = "gradient.knowledge_base_events."
#: How many handled job uuids are remembered per knowledge base. The API lists a knowledge base's
#: latest 15 jobs, so a job leaves the list long before it leaves this memory.
SEEN_LIMIT = 64
#: Version of the stored watermark's layout.
STATE_VERSION = 1


def _uuids(
    knowledge_base_uuid: str | None, knowledge_base_uuids: Iterable[str] | None, knowledge_base_name: str | None
) -> list[str]:
    if isinstance(knowledge_base_uuids, str):
        raise GradientConfigError("knowledge_base_uuids must be a list of uuids, not a string.")
    given = ([knowledge_base_uuid] if knowledge_base_uuid else []) + list(knowledge_base_uuids or [])
    result: list[str] = []
    for value in given:
        uuid = validate_uuid(value, "knowledge_base_uuids")
        if uuid not in result:
            result.append(uuid)
    if result and knowledge_base_name is not None:
        raise GradientConfigError(
            "GradientKnowledgeBaseEventTrigger takes knowledge_base_uuid(s) or knowledge_base_name, not both. "
            "Keep one of them."
        )
    if not result and knowledge_base_name is None:
        raise GradientConfigError(
            "GradientKnowledgeBaseEventTrigger needs knowledge_base_uuid, knowledge_base_uuids or knowledge_base_name."
        )
    return result


def _end_time(job: IndexingJob) -> datetime:
    """When a job ended, as well as it can be told (for ordering only)."""
    moment = job.finished_at or job.updated_at or job.created_at
    return moment if moment is not None else datetime.min.replace(tzinfo=timezone.utc)


def event_payload(job: IndexingJob, knowledge_base_uuid: str) -> dict[str, Any]:
    """
    The JSON payload of the event for a job that ended (it becomes the asset event's
    ``extra["payload"]``).

    :param job: The ended job.
    :param knowledge_base_uuid: The watched knowledge base (used when the job omits it).
    """
    payload = job.summary()
    payload["knowledge_base_uuid"] = payload["knowledge_base_uuid"] or knowledge_base_uuid
    payload["tokens"] = job.token_count
    payload["is_success"] = job.outcome.is_success
    payload["data_source_uuids"] = list(job.data_source_uuids)
    payload["created_at"] = job.created_at.isoformat() if job.created_at else None
    payload["started_at"] = job.started_at.isoformat() if job.started_at else None
    return payload


class GradientKnowledgeBaseEventTrigger(BaseEventTrigger):
    """
    Watch one or a few knowledge bases and fire one event per indexing job that ends.

    Made for ``AssetWatcher``: a DAG scheduled on the asset runs once per ended job, whoever
    started it. The first poll of a knowledge base reads its latest jobs (``GET
    /v2/gen-ai/knowledge_bases/{uuid}/indexing_jobs``, the newest 15); later polls read the jobs
    created since the previous poll and the jobs it saw running, through
    :meth:`~airflow_provider_gradient.hooks.gradient.GradientHook.alist_recent_knowledge_base_indexing_jobs`:
    many knowledge bases watched on one triggerer and token are served together by the job
    watcher's sweeps of the team's job list (a request lists up to 200 jobs) when that list is
    newest first; otherwise, and at least every :data:`~airflow_provider_gradient._wait.LONGEST_SWEPT_SLEEP`
    seconds, the poll reads the knowledge base's own list. Watchers share the HTTP session and the
    per-token request budget with every other Gradient trigger in the triggerer.

    Whether a job has ended, and how, is decided by :func:`~airflow_provider_gradient.models.classify`.
    The event payload holds the job's ``indexing_job_uuid``, ``knowledge_base_uuid``, ``phase``,
    ``status``, ``outcome``, ``is_success``, ``tokens``, ``finished_at`` and more (see
    :func:`event_payload`).

    **Restarts.** The uuids of handled jobs are kept per knowledge base. On Airflow 3.3+ they are
    stored in the asset state store (key ``gradient.knowledge_base_events.<kb uuid>``), so a
    trigger re-created after a triggerer restart emits no job twice and catches up on jobs that
    ended while it was down (as long as they are still among the knowledge base's latest 15).
    Without a state store (older Airflow), a (re)started trigger takes the jobs that have already
    ended as seen: jobs that end while no triggerer runs it are not reported. On the very first
    start, past jobs are never reported, only jobs that end from then on.

    Transient API failures (connection errors, timeouts, 429, 5xx) are retried in place; other
    errors (a deleted knowledge base, a revoked token) are logged and retried at a slower pace,
    since an asset watcher is meant to run forever. Its kwargs are JSON primitives without any
    secret: the token is read from the connection in the triggerer.

    :param knowledge_base_uuid: The knowledge base to watch.
    :param knowledge_base_uuids: Several knowledge bases to watch (with or instead of
        ``knowledge_base_uuid``). Each costs one request per poll, or a share of a sweep.
    :param knowledge_base_name: Or the name of the one knowledge base to watch, as the console shows
        it (not with the uuids): looked up in the triggerer when the trigger starts. No match or
        several matches are logged as errors and looked up again at the slower error pace.
    :param gradient_conn_id: The ``gradient`` connection.
    :param poll_interval: Seconds between polls (±10 % jitter). Default 60.
    :param only_successful: Only report jobs that succeeded (COMPLETED, NO_CHANGES or PARTIAL);
        failed and cancelled jobs are skipped.
    :param only_changed: Skip jobs that ended NO_CHANGES (nothing was reindexed).
    """

    def __init__(
        self,
        *,
        knowledge_base_uuid: str | None = None,
        knowledge_base_uuids: list[str] | None = None,
        knowledge_base_name: str | None = None,
        gradient_conn_id: str = GradientHook.default_conn_name,
        poll_interval: float = 60.0,
        only_successful: bool = False,
        only_changed: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.knowledge_base_uuids = _uuids(knowledge_base_uuid, knowledge_base_uuids, knowledge_base_name)
        self.knowledge_base_name = None if knowledge_base_name is None else checked_name(knowledge_base_name)
        self.gradient_conn_id = gradient_conn_id
        self.poll_interval = seconds(poll_interval, "poll_interval")
        self.only_successful = bool(only_successful)
        self.only_changed = bool(only_changed)
        self._named: list[str] = []  # the uuid of knowledge_base_name, once looked up (kwargs stay as given)
        self._seen: dict[str, list[str]] = {}
        self._since: dict[str, datetime | None] = {}  # knowledge base -> where its next recent read starts
        self._running: dict[str, list[str]] = {}  # knowledge base -> its jobs last seen running
        self._listed_at: dict[str, float] = {}  # knowledge base -> monotonic time its own list was last read
        self._store_usable = True
        self._pacing = WatchPacing(self.poll_interval)
        self._hook: GradientHook | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-primitive kwargs (stable, so ``BaseEventTrigger.hash`` is too)."""
        kwargs: dict[str, Any] = {
            "knowledge_base_uuids": list(self.knowledge_base_uuids),
            "gradient_conn_id": self.gradient_conn_id,
            "poll_interval": self.poll_interval,
            "only_successful": self.only_successful,
            "only_changed": self.only_changed,
        }
        if self.knowledge_base_name is not None:  # only when given: a uuid watcher's hash stays as it was
            kwargs["knowledge_base_name"] = self.knowledge_base_name
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    @property
    def hook(self) -> GradientHook:
        """The hook, created on first use in the triggerer."""
        if self._hook is None:
            self._hook = GradientHook(gradient_conn_id=self.gradient_conn_id)
        return self._hook

    def wanted(self, job: IndexingJob) -> bool:
        """Whether an ended job passes the filters."""
        outcome = job.outcome
        if self.only_successful and not outcome.is_success:
            return False
        return not (self.only_changed and outcome is JobOutcome.NO_CHANGES)

    # ----------------------------------------------------------------------------------------
    # Watermark
    # ----------------------------------------------------------------------------------------

    def _store(self) -> Any:
        """Airflow's asset state store accessor (3.3+), or ``None``."""
        return getattr(self, "asset_state_store", None) if self._store_usable else None

    async def _load(self, kb_uuid: str) -> list[str] | None:
        """The handled job uuids stored for a knowledge base, or ``None`` if nothing is stored."""
        store = self._store()
        if store is None:
            return None
        try:
            value = await store.aget(STATE_KEY_PREFIX + kb_uuid)
        except Exception as err:  # e.g. one trigger watched by several assets: no single store
            self._store_usable = False
            self.log.warning(
                "Cannot use the asset state store (%s): jobs that end while this trigger is not "
                "running will not be reported.",
                err,
            )
            return None
        if isinstance(value, dict) and isinstance(value.get("seen"), list):
            return [str(uuid) for uuid in value["seen"]]
        return None

    async def _save(self, kb_uuid: str, last: IndexingJob | None = None) -> None:
        store = self._store()
        if store is None:
            return
        value: dict[str, Any] = {"version": STATE_VERSION, "seen": self._seen[kb_uuid]}
        if last is not None:
            value["last_job_uuid"] = last.uuid
            value["last_finished_at"] = last.finished_at.isoformat() if last.finished_at else None
        try:
            await store.aset(STATE_KEY_PREFIX + kb_uuid, value)
        except Exception as err:
            self.log.warning("Could not store the watermark of knowledge base %s: %s", kb_uuid, err)

    def _remember(self, kb_uuid: str, uuids: Iterable[str]) -> None:
        seen = self._seen.setdefault(kb_uuid, [])
        for uuid in uuids:
            if uuid not in seen:
                seen.append(uuid)
        del seen[:-SEEN_LIMIT]

    # ----------------------------------------------------------------------------------------
    # Polling
    # ----------------------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield one event per job that ends (and passes the filters)."""
        while True:
            async for event in self.poll():
                yield event
            await asyncio.sleep(self._pacing.next_read_in())

    async def poll(self) -> AsyncIterator[TriggerEvent]:
        """
        One round: read each knowledge base's jobs once (its latest jobs, or those created since the
        last round and those last seen running: :meth:`_read`) and yield the events of the jobs that
        ended since they were last seen. :meth:`run` repeats it forever.
        """
        if not self.knowledge_base_uuids and not self._named and self.knowledge_base_name is not None:
            try:
                self._named = [await self.hook.aknowledge_base_uuid_for(self.knowledge_base_name)]
            except GradientError as err:
                level, message = self._pacing.on_error(err, f"knowledge base {self.knowledge_base_name!r} by name")
                self.log.log(level, "%s", message)
                return
        kb_uuids = list(self.knowledge_base_uuids or self._named)
        reads = await asyncio.gather(*(self._read(kb_uuid) for kb_uuid in kb_uuids), return_exceptions=True)
        for kb_uuid, read in zip(kb_uuids, reads, strict=True):
            if isinstance(read, GradientError):
                level, message = self._pacing.on_error(read, f"the jobs of knowledge base {kb_uuid}")
                self.log.log(level, "%s", message)
                continue
            if isinstance(read, BaseException):
                raise read
            async for event in self._handle(kb_uuid, read.jobs):
                yield event
            self._since[kb_uuid] = read.next_since
            self._running[kb_uuid] = [job.uuid for job in read.jobs if job.uuid and not job.is_terminal]
            if read.listed:
                self._listed_at[kb_uuid] = time.monotonic()

    async def _read(self, kb_uuid: str) -> KnowledgeBaseJobs:
        """
        A knowledge base's jobs for this round: its own list on the first round and at least every
        :data:`~airflow_provider_gradient._wait.LONGEST_SWEPT_SLEEP` seconds, else the jobs created
        since the last round and those it saw running (served by the job watcher's sweeps when it can).
        """
        listed_at = self._listed_at.get(kb_uuid)
        due = kb_uuid not in self._seen or listed_at is None or time.monotonic() - listed_at >= LONGEST_SWEPT_SLEEP
        return await self.hook.alist_recent_knowledge_base_indexing_jobs(
            kb_uuid,
            None if due else self._since.get(kb_uuid),
            running=self._running.get(kb_uuid, ()),
            max_wait=self.poll_interval,
        )

    async def _handle(self, kb_uuid: str, jobs: list[IndexingJob]) -> AsyncIterator[TriggerEvent]:
        ended = sorted((job for job in jobs if job.uuid and job.is_terminal), key=_end_time)
        if kb_uuid not in self._seen:
            stored = await self._load(kb_uuid)
            if stored is None:
                # First start (or no state store): what has ended so far is history, not news.
                self._remember(kb_uuid, (job.uuid for job in ended if job.uuid))
                self.log.info(
                    "Watching knowledge base %s; %d job(s) already ended and are not reported.",
                    kb_uuid,
                    len(ended),
                )
                await self._save(kb_uuid, ended[-1] if ended else None)
                return
            self._seen[kb_uuid] = stored
            self.log.info("Watching knowledge base %s from its stored watermark.", kb_uuid)
        seen = self._seen[kb_uuid]
        for job in ended:
            if job.uuid in seen:
                continue
            if self.wanted(job):
                self.log.info("Indexing job %s of knowledge base %s ended: %s.", job.uuid, kb_uuid, job.describe())
                yield TriggerEvent(event_payload(job, kb_uuid))  # type: ignore[no-untyped-call]
            else:
                self.log.info("Indexing job %s ended (%s): filtered out.", job.uuid, job.outcome.value)
            # Stored once the triggerer has taken the event: a crash before this line repeats the
            # event after the restart rather than losing it.
            self._remember(kb_uuid, [job.uuid or ""])
            await self._save(kb_uuid, job)

    async def cleanup(self) -> None:
        """Release this trigger's share of the HTTP session."""
        if self._hook is not None:
            await self._hook.aclose()
