"""Trigger that waits for a Gradient indexing job (or a knowledge base to be fresh) in the triggerer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gradient import _outcome
from airflow_provider_gradient._polling import next_delay
from airflow_provider_gradient._validation import seconds
from airflow_provider_gradient.exceptions import TRANSIENT_ERRORS, GradientError
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.models import IndexingJob

__all__ = ["GradientIndexingJobTrigger"]

#: Seconds ``on_kill`` may spend cancelling (Airflow allows 30 by default, ``[triggerer] on_kill_timeout``).
ON_KILL_CANCEL_TIMEOUT = 20.0


class GradientIndexingJobTrigger(BaseTrigger):
    """
    Wait in the triggerer until an indexing job ends, or until a knowledge base is fresh.

    Give either ``indexing_job_uuid`` (wait for that job) or ``knowledge_base_uuid`` (wait until
    the knowledge base has no job running and its latest job succeeded, optionally finishing at or
    after ``indexed_after``).

    The trigger yields exactly one event: ``status`` is ``success``, ``partial``, ``failed``,
    ``cancelled``, ``timeout`` or ``error``, with the job uuid, ``phase``, ``job_status``,
    ``message``, per-data-source ``errors`` and a ``summary``.

    Transient failures (connection errors, timeouts, 429, 5xx) are retried in place with backoff;
    only a non-retryable error, or failures lasting ``error_tolerance`` seconds, end the wait with an
    ``error`` event. Re-created from its serialized kwargs (after a triggerer restart) it simply
    resumes. Its kwargs are JSON primitives and never hold a secret: the token is read from the
    connection in the triggerer.

    :param indexing_job_uuid: The job to wait for.
    :param knowledge_base_uuid: The knowledge base to wait for (when no job uuid is given), or the
        job's knowledge base (for messages).
    :param gradient_conn_id: The ``gradient`` connection.
    :param poll_interval: The longest wait between polls, in seconds. Polls start sooner and back
        off towards it.
    :param end_time: Absolute deadline (epoch seconds). Past it the wait ends with ``timeout``.
    :param cancel_on_kill: Cancel the job when a user marks the deferred task failed/success or
        clears it (Airflow 3.3+ trigger ``on_kill``).
    :param cancel_on_timeout: Cancel the job when ``end_time`` passes.
    :param indexed_after: Knowledge-base mode only: ISO-8601 time the latest job must have finished
        at or after.
    :param error_tolerance: Seconds of consecutive transient failures tolerated before giving up.
    """

    def __init__(
        self,
        *,
        indexing_job_uuid: str | None = None,
        knowledge_base_uuid: str | None = None,
        gradient_conn_id: str = GradientHook.default_conn_name,
        poll_interval: float = 30.0,
        end_time: float | None = None,
        cancel_on_kill: bool = True,
        cancel_on_timeout: bool = True,
        indexed_after: str | None = None,
        error_tolerance: float = 1800.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not indexing_job_uuid and not knowledge_base_uuid:
            raise GradientError("GradientIndexingJobTrigger needs indexing_job_uuid or knowledge_base_uuid.")
        self.indexing_job_uuid = indexing_job_uuid
        self.knowledge_base_uuid = knowledge_base_uuid
        self.gradient_conn_id = gradient_conn_id
        # A zero or negative interval would poll in a tight loop (every 0.1 s): refuse it up front.
        self.poll_interval = seconds(poll_interval, "poll_interval")
        self.end_time = float(end_time) if end_time is not None else None
        self.cancel_on_kill = bool(cancel_on_kill)
        self.cancel_on_timeout = bool(cancel_on_timeout)
        self.indexed_after = indexed_after
        self.error_tolerance = seconds(error_tolerance, "error_tolerance")
        self._last_job: IndexingJob | None = None
        self._hook: GradientHook | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-primitive kwargs (no secrets: the token stays in the connection)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "indexing_job_uuid": self.indexing_job_uuid,
                "knowledge_base_uuid": self.knowledge_base_uuid,
                "gradient_conn_id": self.gradient_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "cancel_on_kill": self.cancel_on_kill,
                "cancel_on_timeout": self.cancel_on_timeout,
                "indexed_after": self.indexed_after,
                "error_tolerance": self.error_tolerance,
            },
        )

    @property
    def hook(self) -> GradientHook:
        """The hook, created on first use in the triggerer."""
        if self._hook is None:
            self._hook = GradientHook(gradient_conn_id=self.gradient_conn_id)
        return self._hook

    @property
    def _job_mode(self) -> bool:
        return bool(self.indexing_job_uuid)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends, the deadline passes or an error persists; yield one event."""
        event = await self._wait()
        await self.cleanup()  # give back the shared session now; the triggerer's cleanup() is then a no-op
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        polls = 0
        failing_since: float | None = None
        last_progress: tuple[Any, ...] | None = None
        try:
            indexed_after = _outcome.parse_time(self.indexed_after)
        except GradientError as err:  # one event, never an exception out of run()
            return _outcome.error_event(self.indexing_job_uuid or self.knowledge_base_uuid, err)
        target = self.indexing_job_uuid or self.knowledge_base_uuid
        while True:
            try:
                event = await self._poll(indexed_after)
                failing_since = None
            except TRANSIENT_ERRORS as err:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.error_tolerance:
                    return _outcome.error_event(self.indexing_job_uuid, err, self._last_job)
                wait = getattr(err, "retry_after", None)
                self.log.warning(
                    "Polling %s failed (%s); still waiting. Failing for %.0fs of %.0fs tolerated.",
                    target,
                    err,
                    now - failing_since,
                    self.error_tolerance,
                )
                await asyncio.sleep(self._bounded(wait if wait is not None else next_delay(self.poll_interval, polls)))
                polls += 1
                continue
            except GradientError as err:
                return _outcome.error_event(self.indexing_job_uuid, err, self._last_job)
            if event is not None:
                return event
            job = self._last_job
            if job is not None and job.progress_key() != last_progress:
                last_progress = job.progress_key()
                self.log.info("Indexing job %s: %s.", job.uuid, job.describe())
            if self.end_time is not None and time.time() >= self.end_time:
                return await self._timeout()
            await asyncio.sleep(self._bounded(next_delay(self.poll_interval, polls)))
            polls += 1

    def _bounded(self, delay: float) -> float:
        """Never sleep past the deadline (plus a moment, so the deadline check sees it passed)."""
        if self.end_time is None:
            return delay
        return max(0.0, min(delay, self.end_time - time.time() + 0.05))

    async def _poll(self, indexed_after: Any) -> dict[str, Any] | None:
        if self.indexing_job_uuid:
            job = await self.hook.aobserve_indexing_job(self.indexing_job_uuid)
            self._last_job = job
            event = _outcome.job_event(job)
            if _outcome.needs_data_source_detail(job, event):
                try:
                    job.data_source_jobs = await self.hook.alist_indexing_job_data_sources(self.indexing_job_uuid)
                    event = _outcome.job_event(job)
                except GradientError as err:
                    self.log.warning("Could not read the job's data-source results: %s", err)
            return event
        assert self.knowledge_base_uuid is not None
        details = await self.hook.aget_knowledge_base(self.knowledge_base_uuid)
        self._last_job = details.knowledge_base.last_indexing_job
        return _outcome.knowledge_base_event(details, indexed_after)

    async def _timeout(self) -> dict[str, Any]:
        deadline = datetime.fromtimestamp(self.end_time or time.time(), tz=timezone.utc)
        waited = f"the maximum wait (deadline {deadline.isoformat(timespec='seconds')})"
        cancelled = False
        job = self._last_job
        if self.cancel_on_timeout and self._job_mode and (job is None or not job.is_terminal):
            cancelled = await self._cancel("the maximum wait ran out")
        return _outcome.timeout_event(job, self.indexing_job_uuid, cancelled=cancelled, waited=waited)

    async def _cancel(self, reason: str) -> bool:
        """Cancel the job, best effort and bounded; never raises."""
        uuid = self.indexing_job_uuid
        if not uuid:
            return False
        try:
            job = await asyncio.wait_for(self.hook.acancel_indexing_job(uuid), timeout=ON_KILL_CANCEL_TIMEOUT)
        except Exception as err:  # best effort: log and go on
            self.log.warning("Could not cancel indexing job %s (%s): %s", uuid, reason, err)
            return False
        self._last_job = job
        self.log.info("Cancelled indexing job %s (%s): %s.", uuid, reason, job.describe())
        return True

    async def on_kill(self) -> None:
        """A user marked the deferred task failed/success or cleared it: cancel the job if asked to."""
        if not (self.cancel_on_kill and self._job_mode):
            return
        if self._last_job is not None and self._last_job.is_terminal:
            self.log.info("Indexing job %s already ended; nothing to cancel.", self.indexing_job_uuid)
            return
        await self._cancel("the task was stopped by a user")

    async def cleanup(self) -> None:
        """Release this trigger's share of the HTTP session."""
        if self._hook is not None:
            await self._hook.aclose()
