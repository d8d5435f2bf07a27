"""
Waits without a transport: what to read next, when, and what each answer means.

As :mod:`~airflow_provider_gradient._api` is for requests, this module is for waiting: a
:class:`JobWait` (until an indexing job ends) and a :class:`KnowledgeBaseWait` (until a knowledge
base is fresh) are plain objects holding the waiting rules — poll timing, the one error-tolerance
policy, the deadline and whether it cancels, the one rule for re-reading a failed or partial job's
data-source detail. They do no I/O, never sleep and are handed the clock. The drivers in
:mod:`~airflow_provider_gradient._wait_drivers` do the reading, sleeping and cancelling: a sync one
for the start operator's worker-side wait and the sensor's poke, an async one for the trigger.
:class:`WatchPacing` is the pace of the asset watcher, a watch that never ends.

A driver's loop::

    while True:
        read = wait.next_read()                  # what to read
        try:
            event = wait.evaluate(<answer to read>)
        except GradientError as err:
            event = wait.on_error(err, now)
        if event is not None: return event
        if wait.more_to_read: continue           # e.g. a failed job's data-source detail
        if wait.timed_out(now): <cancel wait.cancel_due()>; return wait.timeout_event(cancelled_job)
        sleep(wait.next_read_in(now))
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_gradient import _outcome
from airflow_provider_gradient._polling import next_delay
from airflow_provider_gradient.exceptions import TRANSIENT_ERRORS

if TYPE_CHECKING:
    from airflow_provider_gradient.models import IndexedDataSource, IndexingJob, KnowledgeBaseDetails

__all__ = [
    "DEADLINE_MARGIN",
    "DEFAULT_ERROR_TOLERANCE",
    "LONGEST_SWEPT_SLEEP",
    "MAX_ERROR_BACKOFF",
    "ErrorTolerance",
    "JobWait",
    "KnowledgeBaseWait",
    "Note",
    "Read",
    "WatchPacing",
    "needs_data_source_detail",
]

#: Seconds of consecutive transient failures a wait tolerates by default.
DEFAULT_ERROR_TOLERANCE = 1800.0
#: Longest wait between a watch's rounds while reads keep failing, as a multiple of ``poll_interval``.
MAX_ERROR_BACKOFF = 8
#: A wait never sleeps past its deadline, only this moment beyond it (so the deadline check sees it passed).
DEADLINE_MARGIN = 0.05
#: While sweeps of the job list see a wait's job running for it, the wait still reads it at least
#: this often (seconds), so its log shows the job's progress.
LONGEST_SWEPT_SLEEP = 300.0

_NOTHING_NOTED = object()

#: A line worth logging: (logging level, message).
Note = tuple[int, str]


@dataclass(frozen=True)
class Read:
    """
    What a wait needs read next.

    :param kind: ``"job"`` (``GET`` the indexing job), ``"data_sources"`` (the job's per-data-source
        results) or ``"knowledge_base"`` (``GET`` the knowledge base).
    :param uuid: The job's or the knowledge base's uuid.
    """

    kind: Literal["job", "data_sources", "knowledge_base"]
    uuid: str


class ErrorTolerance:
    """
    The one error-tolerance rule of every wait.

    A transient error (connection, timeout, 429, 5xx: :data:`~airflow_provider_gradient.exceptions.TRANSIENT_ERRORS`)
    is tolerated until transient errors have lasted ``seconds`` without a good answer in between;
    any other error is never tolerated.

    :param seconds: How long consecutive transient failures are tolerated.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: When the current run of failures began (``None``: the last read succeeded).
        self.failing_since: float | None = None

    def recovered(self) -> None:
        """A read succeeded: the run of failures is over."""
        self.failing_since = None

    def tolerates(self, error: BaseException, now: float) -> bool:
        """Whether the wait goes on after ``error`` at ``now`` (it counts towards the run of failures)."""
        if not isinstance(error, TRANSIENT_ERRORS):
            return False
        if self.failing_since is None:
            self.failing_since = now
        return now - self.failing_since < self.seconds

    def failing_for(self, now: float) -> float:
        """Seconds the current run of failures has lasted."""
        return 0.0 if self.failing_since is None else now - self.failing_since


class _Wait:
    """What both waits share: timing, error tolerance, the deadline, notes to log."""

    def __init__(
        self,
        *,
        poll_interval: float,
        end_time: float | None = None,
        error_tolerance: float = DEFAULT_ERROR_TOLERANCE,
        rng: random.Random | None = None,
    ) -> None:
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.tolerance = ErrorTolerance(error_tolerance)
        #: How many waits between reads were scheduled so far.
        self.polls = 0
        #: The latest job seen (in knowledge-base mode: the knowledge base's latest job).
        self.last_job: IndexingJob | None = None
        #: The line worth logging about the last answer or error, if any.
        self.note: Note | None = None
        self._retry_after: float | None = None
        self._progress: Any = _NOTHING_NOTED
        self._rng = rng

    # What the event names as the job waited for (``None`` in knowledge-base mode).
    _job_uuid: str | None = None

    @property
    def target(self) -> str:
        """The uuid waited for (for messages)."""
        raise NotImplementedError

    @property
    def more_to_read(self) -> bool:
        """Whether :meth:`next_read` is due now, before any wait (a follow-up of the last read)."""
        return False

    def next_read(self) -> Read:
        """What to read next."""
        raise NotImplementedError

    @property
    def sleeps_on(self) -> str | None:
        """
        The job whose end ends the wait's sleep before its next read is due (a sweep of the job
        list that sees the job end wakes the wait; while the sweeps see it run, the wait may sleep
        on, up to :meth:`longest_sleep`), or ``None``: a plain sleep.
        """
        return None

    def evaluate(self, observation: Any) -> dict[str, Any] | None:
        """The event for the answer to :meth:`next_read`, or ``None`` to keep waiting."""
        raise NotImplementedError

    def next_read_in(self, now: float) -> float:
        """
        Seconds to wait before the next read (and count it): the adaptive poll delay, or what a
        429/503 asked for, never past the deadline.

        :param now: The current time (epoch seconds).
        """
        if self._retry_after is not None:
            delay = self._retry_after
        else:
            delay = next_delay(self.poll_interval, self.polls, self._rng)
        self._retry_after = None
        self.polls += 1
        return self._until_deadline(delay, now, DEADLINE_MARGIN)

    def longest_sleep(self, now: float) -> float:
        """
        Seconds the wait may sleep while something else reads its job for it (a sweep of the job
        list that wakes it when the job ends): :data:`LONGEST_SWEPT_SLEEP`, never past the deadline.

        :param now: The current time (epoch seconds).
        """
        return self._until_deadline(LONGEST_SWEPT_SLEEP, now, DEADLINE_MARGIN)

    def read_patience(self, now: float) -> float:
        """
        Seconds a read may wait to be served with other waits' reads (a sweep of the job list)
        before the reader reads by itself: one poll interval; the first read as long as the wait
        may sleep while sweeps see its job (:meth:`longest_sleep`: the job just started, and the
        sweep that finds it also sees it end); never past the deadline.

        :param now: The current time (epoch seconds).
        """
        patience = self.poll_interval if self.last_job is not None else max(self.poll_interval, LONGEST_SWEPT_SLEEP)
        return self._until_deadline(patience, now)

    def _until_deadline(self, seconds: float, now: float, margin: float = 0.0) -> float:
        """``seconds``, but never more than until the deadline (plus ``margin``), nor less than 0."""
        if self.end_time is not None:
            seconds = min(seconds, self.end_time - now + margin)
        return max(0.0, seconds)

    def on_error(self, error: BaseException, now: float) -> dict[str, Any] | None:
        """
        The event that ends the wait after a failed read, or ``None`` when the error is tolerated.

        :param error: What the read raised.
        :param now: The current time (epoch seconds).
        """
        self.note = None
        if not self.tolerance.tolerates(error, now):
            return _outcome.error_event(self._job_uuid, error, self.last_job)
        retry_after = getattr(error, "retry_after", None)
        self._retry_after = float(retry_after) if retry_after is not None else None
        self.note = (
            logging.WARNING,
            f"Polling {self.target} failed ({error}); still waiting. Failing for "
            f"{self.tolerance.failing_for(now):.0f}s of {self.tolerance.seconds:.0f}s tolerated.",
        )
        return None

    def timed_out(self, now: float) -> bool:
        """Whether the deadline has passed."""
        return self.end_time is not None and now >= self.end_time

    def cancel_due(self) -> str | None:
        """The job to cancel now that the deadline passed, or ``None``."""
        return None

    def timeout_event(self, cancelled_job: IndexingJob | None = None) -> dict[str, Any]:
        """
        The event of a wait whose deadline passed.

        :param cancelled_job: The job as the cancel request answered it (``None``: not cancelled).
        """
        if cancelled_job is not None:
            self.last_job = cancelled_job
        deadline = datetime.fromtimestamp(self.end_time or 0.0, tz=timezone.utc)
        waited = f"the maximum wait (deadline {deadline.isoformat(timespec='seconds')})"
        return _outcome.timeout_event(self.last_job, self._job_uuid, cancelled=cancelled_job is not None, waited=waited)

    def _progressed(self, key: Any, message: str) -> None:
        """Note ``message`` if the progress ``key`` changed since the last note."""
        self.note = None
        if key != self._progress:
            self._progress = key
            self.note = (logging.INFO, message)


class JobWait(_Wait):
    """
    Wait until an indexing job ends.

    A job that ended FAILED or PARTIAL without its per-data-source results is read once more for
    them (they name what went wrong); if that read fails, the verdict stands without them.

    :param indexing_job_uuid: The job.
    :param poll_interval: The longest wait between reads (seconds).
    :param end_time: The deadline (epoch seconds), or ``None``.
    :param error_tolerance: Seconds of consecutive transient failures tolerated.
    :param cancel_on_timeout: Whether the job is to be cancelled when the deadline passes.
    :param rng: A random source for the poll jitter (reproducible tests).
    """

    def __init__(
        self,
        indexing_job_uuid: str,
        *,
        poll_interval: float,
        end_time: float | None = None,
        error_tolerance: float = DEFAULT_ERROR_TOLERANCE,
        cancel_on_timeout: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(poll_interval=poll_interval, end_time=end_time, error_tolerance=error_tolerance, rng=rng)
        self._job_uuid = indexing_job_uuid
        self.indexing_job_uuid = indexing_job_uuid
        self.cancel_on_timeout = cancel_on_timeout
        self._verdict: dict[str, Any] | None = None  # an ended job's event, waiting for its detail

    @property
    def target(self) -> str:
        """The job's uuid."""
        return self.indexing_job_uuid

    @property
    def more_to_read(self) -> bool:
        """A failed or partial job's data-source detail is due."""
        return self._verdict is not None

    def next_read(self) -> Read:
        """The job, or its data-source results when :attr:`more_to_read`."""
        return Read("data_sources" if self._verdict is not None else "job", self.indexing_job_uuid)

    @property
    def sleeps_on(self) -> str | None:
        """The job: its end is what the wait waits for."""
        return self.indexing_job_uuid

    def evaluate(self, observation: IndexingJob | list[IndexedDataSource]) -> dict[str, Any] | None:
        """
        The job's event once it ended, else ``None``.

        :param observation: The job (for a ``"job"`` read) or its data-source results (for a
            ``"data_sources"`` read).
        """
        self.tolerance.recovered()
        if isinstance(observation, list):
            assert self.last_job is not None
            self.last_job.data_source_jobs = observation
            self._verdict = None
            self.note = None
            return _outcome.job_event(self.last_job)
        job = observation
        if self.last_job is not None and _older(job, self.last_job):
            job = self.last_job  # an answer older than one already seen (a lagging list): no step back
        self.last_job = job
        event = _outcome.job_event(job)
        self._progressed(job.progress_key(), f"Indexing job {job.uuid}: {job.describe()}.")
        if event is not None:
            self.note = None
        if needs_data_source_detail(job, event):
            self._verdict = event
            return None
        return event

    def on_error(self, error: BaseException, now: float) -> dict[str, Any] | None:
        """As for every wait; a failed data-source read leaves the job's verdict standing."""
        if self._verdict is not None:
            event, self._verdict = self._verdict, None
            self.note = (logging.WARNING, f"Could not read the job's data-source results: {error}")
            return event
        return super().on_error(error, now)

    def cancel_due(self) -> str | None:
        """The job, if it is to be cancelled at the deadline and was not seen ended."""
        if not self.cancel_on_timeout or (self.last_job is not None and self.last_job.is_terminal):
            return None
        return self.indexing_job_uuid


class KnowledgeBaseWait(_Wait):
    """
    Wait until a knowledge base is fresh: no job running and its latest job succeeded (finishing at
    or after ``indexed_after``, if given). Never cancels anything.

    :param knowledge_base_uuid: The knowledge base.
    :param indexed_after: ISO-8601 time (or datetime) the latest job must have finished at or after.
    :param poll_interval: The longest wait between reads (seconds).
    :param end_time: The deadline (epoch seconds), or ``None``.
    :param error_tolerance: Seconds of consecutive transient failures tolerated.
    :param rng: A random source for the poll jitter (reproducible tests).
    :raises GradientConfigError: For an ``indexed_after`` that is not an ISO-8601 time.
    """

    def __init__(
        self,
        knowledge_base_uuid: str,
        *,
        indexed_after: str | datetime | None = None,
        poll_interval: float,
        end_time: float | None = None,
        error_tolerance: float = DEFAULT_ERROR_TOLERANCE,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(poll_interval=poll_interval, end_time=end_time, error_tolerance=error_tolerance, rng=rng)
        self.knowledge_base_uuid = knowledge_base_uuid
        self.indexed_after = _outcome.parse_time(indexed_after)

    @property
    def target(self) -> str:
        """The knowledge base's uuid."""
        return self.knowledge_base_uuid

    def next_read(self) -> Read:
        """The knowledge base."""
        return Read("knowledge_base", self.knowledge_base_uuid)

    @property
    def sleeps_on(self) -> str | None:
        """
        The knowledge base's latest job while it runs: the knowledge base cannot be fresh before
        that job ends, so the next read is worth making only then.
        """
        job = self.last_job
        return job.uuid if job is not None and job.uuid and not job.is_terminal else None

    def evaluate(self, observation: KnowledgeBaseDetails) -> dict[str, Any] | None:
        """
        The event once the knowledge base is fresh (or its latest job failed), else ``None``.

        :param observation: The knowledge base.
        """
        self.tolerance.recovered()
        last = observation.knowledge_base.last_indexing_job
        self.last_job = last
        event = _outcome.knowledge_base_event(observation, self.indexed_after)
        self._progressed(
            (last.uuid, last.progress_key()) if last else None,
            f"Knowledge base {self.knowledge_base_uuid} is not fresh yet (latest job: "
            f"{f'{last.uuid}, {last.describe()}' if last else 'none'}).",
        )
        if event is not None:
            self.note = None
        return event


class WatchPacing:
    """
    The pace of a watch that never ends (the asset watcher's rounds over its knowledge bases).

    A round comes every ``poll_interval`` (±10 % jitter). No error ends a watch: a transient one
    is retried at the next round, any other (a deleted knowledge base, a revoked token) too, as an
    asset watcher is meant to run forever. While rounds keep failing they back off (twice as long per
    failed round, up to :data:`MAX_ERROR_BACKOFF` times as long), and never come sooner than a 429/503 asked.

    :param poll_interval: Seconds between rounds.
    :param rng: A random source for the jitter (reproducible tests).
    """

    def __init__(self, poll_interval: float, rng: random.Random | None = None) -> None:
        self.poll_interval = poll_interval
        #: How many rounds in a row had a failed read.
        self.failures = 0
        self._failed = False
        self._retry_after = 0.0
        self._rng = rng or random.Random()

    def on_error(self, error: BaseException, what: str) -> Note:
        """
        Count a failed read in this round; the line to log about it.

        :param error: What the read raised.
        :param what: What was read, for the message (``"the jobs of knowledge base <uuid>"``).
        """
        self._failed = True
        self._retry_after = max(self._retry_after, float(getattr(error, "retry_after", None) or 0.0))
        if isinstance(error, TRANSIENT_ERRORS):
            return logging.WARNING, f"Reading {what} failed ({error}); retrying."
        return logging.ERROR, f"Reading {what} failed: {error}. Retrying later."

    def next_read_in(self) -> float:
        """End the round: seconds until the next one."""
        self.failures = self.failures + 1 if self._failed else 0
        delay = max(self._retry_after, self.delay(self.failures))
        self._failed, self._retry_after = False, 0.0
        return delay

    def delay(self, failures: int) -> float:
        """Seconds between rounds after ``failures`` failed rounds in a row (jittered)."""
        factor = min(2**failures, MAX_ERROR_BACKOFF) if failures else 1
        return self.poll_interval * factor * self._rng.uniform(0.9, 1.1)


def needs_data_source_detail(job: IndexingJob, event: dict[str, Any] | None) -> bool:
    """
    Whether a job's event should be rebuilt with its per-data-source results: it failed or was
    partial, and the job object did not carry them (they name what went wrong).
    """
    return event is not None and event["status"] in ("failed", "partial") and not job.data_source_jobs


def _older(job: IndexingJob, seen: IndexingJob) -> bool:
    """Whether ``job`` is an older state of the job than ``seen`` (by ``updated_at``, when both tell)."""
    return job.updated_at is not None and seen.updated_at is not None and job.updated_at < seen.updated_at
