"""Trigger that waits for a Gradient indexing job (or a knowledge base to be fresh) in the triggerer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gradient import _outcome
from airflow_provider_gradient._validation import seconds
from airflow_provider_gradient._wait import DEFAULT_ERROR_TOLERANCE, JobWait, KnowledgeBaseWait
from airflow_provider_gradient._wait_drivers import acancel, await_event
from airflow_provider_gradient.exceptions import GradientError
from airflow_provider_gradient.hooks.gradient import GradientHook

__all__ = ["GradientIndexingJobTrigger"]


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
    :param end_time: Absolute deadline (epoch seconds). Past it the wait ends with ``timeout`` (also
        while transient failures are being waited out).
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
        error_tolerance: float = DEFAULT_ERROR_TOLERANCE,
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
        self._waiting: JobWait | KnowledgeBaseWait | None = None
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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends, the deadline passes or an error persists; yield one event."""
        event = await self._wait()
        await self.cleanup()  # give back the shared session now; the triggerer's cleanup() is then a no-op
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    def _new_wait(self) -> JobWait | KnowledgeBaseWait:
        """The wait these kwargs describe (its rules live in ``_wait``)."""
        if self.indexing_job_uuid:
            return JobWait(
                self.indexing_job_uuid,
                poll_interval=self.poll_interval,
                end_time=self.end_time,
                error_tolerance=self.error_tolerance,
                cancel_on_timeout=self.cancel_on_timeout,
            )
        assert self.knowledge_base_uuid is not None
        return KnowledgeBaseWait(
            self.knowledge_base_uuid,
            indexed_after=self.indexed_after,
            poll_interval=self.poll_interval,
            end_time=self.end_time,
            error_tolerance=self.error_tolerance,
        )

    async def _wait(self) -> dict[str, Any]:
        try:
            self._waiting = self._new_wait()
        except GradientError as err:  # one event, never an exception out of run()
            return _outcome.error_event(self.indexing_job_uuid or self.knowledge_base_uuid, err)
        return await await_event(self._waiting, self.hook, log=self.log)

    async def on_kill(self) -> None:
        """A user marked the deferred task failed/success or cleared it: cancel the job if asked to."""
        uuid = self.indexing_job_uuid
        if not (self.cancel_on_kill and uuid):
            return
        last = self._waiting.last_job if self._waiting is not None else None
        if last is not None and last.is_terminal:
            self.log.info("Indexing job %s already ended; nothing to cancel.", uuid)
            return
        await acancel(self.hook, uuid, "the task was stopped by a user", log=self.log)

    async def cleanup(self) -> None:
        """Release this trigger's share of the HTTP session."""
        if self._hook is not None:
            await self._hook.aclose()
