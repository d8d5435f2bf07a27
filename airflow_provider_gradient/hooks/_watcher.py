"""
One job watcher per event loop and connection settings (token, API, proxy, timeouts, limits): many
waits' reads of their jobs served by sweeps of the team's job list (the decisions are in
:mod:`airflow_provider_gradient._sweep`).

A wait reads its job through :meth:`GradientHook.aobserve_indexing_job
<airflow_provider_gradient.hooks.gradient.GradientHook.aobserve_indexing_job>` and sleeps between
reads through :meth:`GradientHook.await_indexing_job_end
<airflow_provider_gradient.hooks.gradient.GradientHook.await_indexing_job_end>`. The watcher of its
loop and token watches the job from its first read on:

* while enough waits sleep on their jobs or queue reads for a sweep to pay, it sweeps the list
  every :func:`~airflow_provider_gradient._sweep.sweep_gap` seconds, reading every watched job;
* a sweep keeps each job's latest state: a read finds it there at once when it is newer than the
  read before, else queues for the next sweep (if that starts within the reader's ``max_wait``);
* a sweep that sees a job ended wakes the waits sleeping on it, so an end is seen within about one
  sweep gap, however long the waits' poll intervals; while the sweeps see a job running, the waits
  sleeping on it sleep on rather than read what the sweeps saw (up to the wait's longest sleep);
* a sweep decodes its pages but parses a job into a model only when a wait reads it;
* a job's first read joins the sweeps when they run anyway: the sweep looks for it among the
  newest jobs, where a job just started is listed;
* a knowledge base's recent jobs (:meth:`JobWatcher.observe_recent`, for the knowledge-base event
  triggers) are read by the same sweeps, from the newest end of the list back past the time asked
  for, when the list is newest first; each such reader counts as one job read for whether a sweep
  pays.

A read the watcher could not serve (the job was not seen, too few jobs are watched for a sweep to
pay, the sweep failed, sweeps pause after failures, no sweep in time) is answered with ``None``,
and the hook reads that job by its own GET (a recent read: the knowledge base's own list): a
watcher never fails a wait.

The watcher lives in memory only: it stops when no read has queued and no wait has slept on it for
:data:`IDLE` seconds, or its loop ends, and the next read builds a new one. A restarted or
handed-over trigger therefore needs nothing from it. Its list requests go through the token's
request budget as background traffic, like the polls they replace, and are not retried: a failed
sweep is replaced by the per-job GETs at once, and sweeps pause for a while
(:func:`~airflow_provider_gradient._sweep.pause_after_failures`); only after a 429 do its reads
wait for the next sweep, once (:func:`~airflow_provider_gradient._sweep.retry_after_failure`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import math
import statistics
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from airflow_provider_gradient import _api, _sweep
from airflow_provider_gradient._settings import ClientSettings
from airflow_provider_gradient._sweep import Sweep
from airflow_provider_gradient.exceptions import GradientRateLimitError
from airflow_provider_gradient.models import IndexingJob, ListedIndexingJobs

if TYPE_CHECKING:
    from airflow_provider_gradient.hooks.gradient import GradientHook

__all__ = ["IDLE", "WATCHERS", "JobWatcher", "RecentJobs", "watcher_for"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds without any read after which a watcher stops (the next read builds a new one).
IDLE = 600.0
#: A watched job not read for this long (or four of its read intervals, if longer) is no longer
#: watched (its next read is its own GET again).
FORGET_AFTER = 120.0
#: How long the time of a job's last read is kept (or four of its read intervals, if longer): long
#: enough to learn the interval of waits that poll every few minutes, so that they are watched too.
READS_KEPT = 3600.0

#: One watcher per event loop and connection settings that shape its requests (API base URL, token,
#: proxy, timeouts, minute limit, retry policy); the key never contains the token itself.
#: Keyed by the loop object, weakly, like the request budgets.
WATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], JobWatcher]] = (
    weakref.WeakKeyDictionary()
)


def watcher_for(settings: ClientSettings, make_hook: Callable[[], GradientHook]) -> JobWatcher:
    """
    The watcher of the running loop for the settings' token and API, built on first use.

    :param settings: The connection settings of the hook asking.
    :param make_hook: Builds the hook the watcher sends its list requests with (called once).
    """
    loop = asyncio.get_running_loop()
    watchers = WATCHERS.setdefault(loop, {})
    key = (*settings.pool_key, settings.requests_per_minute, settings.requests_per_hour, settings.retry)
    watcher = watchers.get(key)
    if watcher is None or watcher.closed:
        watcher = watchers[key] = JobWatcher(make_hook(), settings.requests_per_minute, key, settings.requests_per_hour)
    return watcher


class RecentJobs(NamedTuple):
    """
    A knowledge base's jobs created since a time, as one sweep listed them.

    :param jobs: Every job of the knowledge base listed with a ``created_at`` at or after the time
        asked for (some a little older may be among them).
    :param next_since: Where the next read of its recent jobs starts so that it misses no job
        created after this one's sweep (:func:`~airflow_provider_gradient._sweep.next_since`).
    """

    jobs: list[IndexingJob]
    next_since: datetime


class _RecentRead(NamedTuple):
    """A reader waiting for a knowledge base's recent jobs."""

    knowledge_base_uuid: str
    since: datetime
    future: asyncio.Future[RecentJobs | None]


class _Seen(NamedTuple):
    """
    A job as a sweep saw it: the sweep's start and when its page arrived (monotonic), the job as
    listed (JSON), whether it ended.
    """

    started: float
    at: float
    listed: dict[str, Any]
    ended: bool


class JobWatcher:
    """
    Serves reads of many jobs with sweeps of the job list; see the module docstring.

    :param hook: The hook its list requests go through (its session share is released on stop).
    :param per_minute: The token's minute limit (sweeps take at most a share of it).
    :param key: Its key in :data:`WATCHERS`.
    :param per_hour: The token's hour limit (sweeps take at most a share of it; ``None``: none).
    """

    def __init__(self, hook: GradientHook, per_minute: int, key: tuple[Any, ...], per_hour: int | None = None) -> None:
        self._hook = hook
        self._per_minute = per_minute
        self._per_hour = per_hour
        self._key = key
        self._created: dict[str, datetime | None] = {}  # watched jobs (not ended) -> created_at, if known
        self._latest: dict[str, _Seen] = {}  # uuid -> the job as the latest sweep that saw it saw it
        self._parsed: dict[str, tuple[dict[str, Any], IndexingJob]] = {}  # uuid -> (as listed, as parsed)
        self._sleepers: dict[str, set[asyncio.Future[bool]]] = {}  # uuid -> the waits sleeping until its next read
        self._last_read: dict[str, float] = {}  # uuid -> monotonic time of its last read
        self._gap: dict[str, float] = {}  # uuid -> its reads' interval (smoothed)
        self._asked: dict[str, float] = {}  # uuid -> the delay its waits last slept for (their poll interval)
        self._ended: dict[str, float] = {}  # uuid -> monotonic time it was seen ended
        self._pending: dict[str, list[asyncio.Future[IndexingJob | None]]] = {}
        self._serving: dict[str, list[asyncio.Future[IndexingJob | None]]] = {}
        self._recent_pending: list[_RecentRead] = []
        self._recent_serving: list[_RecentRead] = []
        self._readers: dict[str, float] = {}  # knowledge base -> monotonic time of its last recent read
        self._reader_gap: dict[str, float] = {}  # knowledge base -> its recent reads' interval (smoothed)
        #: The newest ``created_at`` any page read listed: every job created later has a later time.
        self.newest_listed: datetime | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._memory = _sweep.Memory()
        self._last_start = -math.inf
        self._every = _sweep.MIN_SWEEP_GAP  # the time between sweeps, as last computed
        self._last_pages = 0
        self._failed_in_row = 0
        self._last_forget = time.monotonic()
        self._share = 1.0  # the share of the watched jobs' reads one sweep gathers (expected)
        self._paused_until = -math.inf  # monotonic: sweeps pause after failures
        self._recent_paused_until = -math.inf  # monotonic: recent reads pause in a list not newest first
        self.closed = False
        #: Counters for benchmarks and tests: sweeps made, pages read, reads served, sweeps failed.
        self.sweeps = 0
        self.pages = 0
        self.served = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"<JobWatcher watching {len(self._created)} jobs, {self.sweeps} sweeps>"

    @property
    def watched(self) -> int:
        """How many jobs it watches now."""
        return len(self._created)

    @property
    def _readings(self) -> int:
        """How many reads its sweeps may serve: the jobs watched and the knowledge bases read recently."""
        return len(self._created) + len(self._readers)

    @property
    def remembered(self) -> int:
        """How many jobs it remembers reads of (watched or not)."""
        return len(self._last_read)

    def learn(self, job: IndexingJob) -> None:
        """
        Note a job as read: watch it while it runs, forget it once it has ended. A job once seen
        ended is not watched again (a sweep that read it still running may answer after a GET saw
        its end).
        """
        if job.uuid:
            self._last_read.setdefault(job.uuid, time.monotonic())  # forgotten when no longer read
            self._watch(job.uuid, job.created_at, job.is_terminal)

    def _watch(self, uuid: str, created_at: datetime | None, ended: bool) -> None:
        if ended:
            self._ended[uuid] = time.monotonic()
        if ended or created_at is None or uuid in self._ended:
            self._created.pop(uuid, None)  # an ended job is read no more (a reader GETs it again)
        else:
            self._created[uuid] = created_at

    async def sleep(
        self, uuid: str, seconds: float, *, poll_interval: float | None = None, longest: float | None = None
    ) -> bool:
        """
        Sleep until a wait's next read of a job: ``seconds``, or less when a sweep sees the job end;
        or, while sweeps keep seeing the job run, on for another ``poll_interval`` at a time, up to
        ``longest`` seconds in all (a read would only tell the wait what the sweeps saw).

        :param uuid: The job the wait reads next.
        :param seconds: The wait's delay before its next read.
        :param poll_interval: How often the wait reads its job at most (``None``: ``seconds``); the
            sweeps come a third of that apart (:func:`~airflow_provider_gradient._sweep.sweep_gap`).
        :param longest: The longest the wait may sleep while the sweeps see its job for it
            (``None``: ``seconds``).
        :returns: Whether a sweep saw the job end (the next read finds its state at once).
        """
        if self.closed or uuid not in self._created or seconds <= 0:
            await asyncio.sleep(max(0.0, seconds))
            return False
        interval = max(seconds, poll_interval or 0.0)
        self._asked[uuid] = interval
        self._start()
        self._wake.set()
        now = time.monotonic()
        woken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        until = now + max(seconds, longest or 0.0)
        sleeper = _Sleeper(woken, interval, until, functools.partial(self._covers, uuid), seconds, now)
        sleepers = self._sleepers.setdefault(uuid, set())
        sleepers.add(woken)
        try:
            return await woken
        finally:
            sleeper.timer.cancel()
            sleepers.discard(woken)
            if not sleepers and self._sleepers.get(uuid) is sleepers:
                del self._sleepers[uuid]

    def _covers(self, uuid: str, since: float) -> bool:
        """Whether sweeps see a job for its sleeping waits: a page that arrived since ``since`` listed it running."""
        seen = self._latest.get(uuid)
        return not self.closed and uuid in self._created and seen is not None and not seen.ended and seen.at >= since

    async def observe(self, uuid: str, max_wait: float | None = None) -> IndexingJob | None:
        """
        The job's latest state from a sweep that started after its previous read (at once if one
        has, else from the next sweep), or ``None`` when the caller must read it by its own GET (too
        few watched, not seen, sweep failed, or no sweep can answer within ``max_wait`` seconds).

        :param uuid: The job.
        :param max_wait: The longest the caller may wait for a sweep (``None``: no limit). A read
            whose next sweep is planned to start later is answered ``None`` at once; one whose sweep
            has not answered by then is answered ``None`` when the time is up.
        """
        now = time.monotonic()
        last = _note_read(self._last_read, self._gap, uuid, now, learn=uuid not in self._asked)
        if now - self._last_forget > FORGET_AFTER:
            self._forget_idle(now)  # also when no sweep runs (few waits): a triggerer lives long
        if self.closed:
            return None
        seen = self._latest.get(uuid)
        if seen is not None and _fresh(seen, last, now, max_wait, self._every):
            job = self._job(uuid, seen)
            if job is not None:
                self.served += 1
            return job
        if uuid not in self._created and uuid not in self._ended and self._sweeping():
            self._created[uuid] = None  # a first read: looked for among the newest jobs
        if (
            now < self._paused_until
            or uuid not in self._created
            or not _sweep.worth_sweeping(self._readings * self._share)
            or not _sweep.can_wait_for_sweep(self._last_start + self._every - now, max_wait)
        ):
            return None
        future: asyncio.Future[IndexingJob | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(uuid, []).append(future)
        self._start()
        self._wake.set()
        # Answered None when the time is up: the reader GETs its job; the sweep skips a read nobody waits for.
        return await _within(future, max_wait, None)

    async def observe_recent(
        self, knowledge_base_uuid: str, since: datetime, max_wait: float | None = None
    ) -> RecentJobs | None:
        """
        Every job of a knowledge base created at or after ``since``, from the next sweep, which
        reads the list from its newest end back past ``since``; or ``None`` when the caller must
        read the knowledge base's own list: the list is not newest first (or its order is not
        known from the pages read), the sweep failed or stopped before ``since``, too few reads
        for a sweep to pay, sweeps pause after failures, or no sweep can answer within ``max_wait``.

        :param knowledge_base_uuid: The knowledge base.
        :param since: The oldest ``created_at`` to list (the previous answer's ``next_since``).
        :param max_wait: The longest the caller may wait for a sweep (``None``: no limit).
        """
        now = time.monotonic()
        _note_read(self._readers, self._reader_gap, knowledge_base_uuid, now)
        if now - self._last_forget > FORGET_AFTER:
            self._forget_idle(now)
        if (
            self.closed
            or now < max(self._paused_until, self._recent_paused_until)
            or not _sweep.worth_sweeping(self._readings * self._share)
            or not _sweep.can_wait_for_sweep(self._last_start + self._every - now, max_wait)
        ):
            return None
        future: asyncio.Future[RecentJobs | None] = asyncio.get_running_loop().create_future()
        self._recent_pending.append(_RecentRead(knowledge_base_uuid, since, future))
        self._start()
        self._wake.set()
        return await _within(future, max_wait, None)  # the reader reads its list; the sweep skips it

    def _start(self) -> None:
        if self._task is None:
            # Under an empty context: the watcher serves every wait, not the one whose read started
            # it (its log lines must not go to that trigger's log, nor carry its context).
            loop = asyncio.get_running_loop()
            self._task = contextvars.Context().run(loop.create_task, self._run(), name="gradient-job-watcher")
            self._task.add_done_callback(_log_stop)

    def _targets(self, reading: Iterable[str], enough: int | None = None) -> dict[str, datetime | None]:
        """
        The jobs a sweep reads: those ``reading`` (reads queued) and those waits sleep on, each once;
        only the first ``enough`` of them when given (enough to tell whether a sweep pays).
        """
        targets: dict[str, datetime | None] = {}
        for uuid in itertools.chain(reading, self._sleepers):
            if uuid in self._created and uuid not in targets:
                targets[uuid] = self._created[uuid]
                if enough is not None and len(targets) >= enough:
                    break
        return targets

    def _sweeping(self) -> bool:
        """Whether sweeps run anyway (a first read may then join them instead of its own GET)."""
        return self._task is not None and _sweep.worth_sweeping(len(self._targets(self._pending, _sweep.MIN_WATCHED)))

    # ----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                if not self._pending and not self._recent_pending and not self._sweeping():
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), IDLE)
                    except asyncio.TimeoutError:
                        if not self._pending and not self._sleepers:
                            return
                    continue
                gap = self._gap_now()
                delay = self._last_start + gap - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # reads arriving meanwhile join this sweep
                self._serving, self._pending = self._pending, {}
                self._recent_serving, self._recent_pending = self._recent_pending, []
                self._last_start = time.monotonic()
                await self._serve(self._serving, self._recent_serving)
                self._serving, self._recent_serving = {}, []
        finally:
            self.closed = True
            watchers = WATCHERS.get(asyncio.get_running_loop(), {})
            if watchers.get(self._key) is self:
                del watchers[self._key]
            for futures in (*self._serving.values(), *self._pending.values()):
                _answer(futures, None)  # the readers GET their jobs themselves
            for read in (*self._recent_serving, *self._recent_pending):
                _answer([read.future], None)  # the readers read their knowledge bases' lists
            await self._hook.aclose()

    async def _serve(
        self, batch: dict[str, list[asyncio.Future[IndexingJob | None]]], recent: list[_RecentRead]
    ) -> None:
        self._forget_idle(time.monotonic())
        batch = {uuid: futures for uuid, futures in batch.items() if not all(f.done() for f in futures)}
        recent = [read for read in recent if not read.future.done()]
        started = self._last_start
        targets = self._targets(batch)
        readers = _knowledge_bases(recent)
        # Reads queued while the last sweep was failing (or found the list unsweepable) respect its pause.
        if _sweep.sweep_pays(len(targets), readers) and time.monotonic() >= self._paused_until:
            try:
                await self._sweep(targets, started, batch, recent)
                self._failed_in_row = 0
                self._paused_until = time.monotonic() + _sweep.pause_after_sweep(self._memory)
            except Exception as err:  # never fail a wait: its reader GETs its job instead
                self.failures += 1
                self._failed_in_row += 1
                rate_limited = isinstance(err, GradientRateLimitError)
                if _sweep.retry_after_failure(self._failed_in_row, rate_limited):
                    log.info("Sweeping the job list was rate limited (%s); the next sweep serves its reads.", err)
                    for uuid, futures in batch.items():
                        self._pending.setdefault(uuid, []).extend(futures)
                    self._recent_pending.extend(recent)
                    return
                pause = _sweep.pause_after_failures(self._failed_in_row, rate_limited)
                self._paused_until = time.monotonic() + pause
                log.warning(
                    "Sweeping the job list failed (%s); reading the %d jobs one by one and the lists of %d "
                    "knowledge bases%s.",
                    err,
                    len(batch),
                    readers,
                    f", and every job for {pause:.0f}s" if pause else "",
                )
        for futures in batch.values():
            _answer(futures, None)  # not seen (or the sweep failed): the readers GET their jobs
        for read in recent:
            _answer([read.future], None)  # not covered (or the sweep failed): they read their lists

    async def _sweep(
        self,
        targets: dict[str, datetime | None],
        started: float,
        batch: dict[str, list[asyncio.Future[IndexingJob | None]]],
        recent: list[_RecentRead],
    ) -> None:
        """
        Sweep the list for ``targets`` and the ``recent`` reads; each job found is taken in as soon
        as its page arrives, the recent reads are answered when the sweep ends.
        """
        since = min((read.since for read in recent), default=None)
        readers = _knowledge_bases(recent)
        sweep = _sweep.Sweep(targets, self._memory, len(self._created), since, readers)
        while (number := sweep.next_page()) is not None:
            page = await self._hook.arun(_api.sweep_indexing_jobs(number, sweep.per_page), retry=False)
            self.pages += 1
            known = len(sweep.found)
            sweep.feed(number, page)
            arrived = time.monotonic()
            if sweep.newest is not None and (self.newest_listed is None or sweep.newest > self.newest_listed):
                self.newest_listed = sweep.newest
            for uuid in itertools.islice(sweep.found, known, None):  # found on this page
                listed = sweep.found[uuid]
                seen = self._latest[uuid] = _Seen(started, arrived, listed, ListedIndexingJobs.is_terminal(listed))
                if seen.ended or self._created.get(uuid) is None:  # else it is watched, and its age known
                    self._take_in(uuid, seen)
                if uuid in batch:
                    self._answer_reads(uuid, seen, batch[uuid])
        self.sweeps += 1
        self._memory = sweep.memory()
        self._last_pages = len(sweep.read)
        if recent:
            self._recent_paused_until = time.monotonic() + _sweep.pause_recent_reads(self._memory)
        if recent and sweep.recent_complete:
            self._answer_recent(sweep, recent)

    def _answer_recent(self, sweep: Sweep, recent: list[_RecentRead]) -> None:
        """Answer the recent reads a sweep covered, each with its knowledge base's jobs since its time."""
        listed: dict[str, dict[str, dict[str, Any]]] = {}
        for job in sweep.recent:  # per knowledge base, by uuid: a job listed twice is its later state
            listed.setdefault(str(job.get("knowledge_base_uuid")), {})[str(job.get("uuid"))] = job
        newest = _sweep.next_since(sweep.covered)
        for read in recent:
            jobs: list[IndexingJob] = []
            try:
                for job in listed.get(read.knowledge_base_uuid, {}).values():
                    created = ListedIndexingJobs.created_at_of(job)
                    if created is None or created >= read.since:
                        jobs.append(IndexingJob.model_validate(job))
            except ValueError as err:  # pydantic's ValidationError: the list read reports it
                log.debug("A job of knowledge base %s as listed does not parse (%s).", read.knowledge_base_uuid, err)
                continue  # answered None: the reader reads its knowledge base's list
            # Jobs created after this sweep are listed after its newest job, and after ``since`` too.
            next_since = read.since if newest is None else max(read.since, newest)
            self.served += 1
            _answer([read.future], RecentJobs(jobs, next_since))

    def _take_in(self, uuid: str, seen: _Seen) -> None:
        """
        Take in a job a sweep saw end or saw first: watch it (its age now known) or no more, and
        wake the waits sleeping on its end.
        """
        self._watch(uuid, ListedIndexingJobs.created_at_of(seen.listed), seen.ended)
        if seen.ended:
            for woken in self._sleepers.get(uuid, ()):
                _settle(woken, True)

    def _answer_reads(self, uuid: str, seen: _Seen, futures: Sequence[asyncio.Future[IndexingJob | None]]) -> None:
        """Answer the reads of a job still waiting with the state a sweep saw (as a model)."""
        waiting = [future for future in futures if not future.done()]
        if waiting and (job := self._job(uuid, seen)) is not None:
            self.served += len(waiting)
            _answer(waiting, job)

    def _job(self, uuid: str, seen: _Seen) -> IndexingJob | None:
        """
        A job a sweep saw, as a model for its reader: parsed when first read, not when listed (a
        sweep lists every watched job, its readers read each far less often), and parsed again only
        when it changed; ``None`` when it does not parse (its reader GETs it).
        """
        parsed = self._parsed.get(uuid)
        if parsed is not None and (parsed[0] is seen.listed or parsed[0] == seen.listed):
            return parsed[1]
        try:
            job = IndexingJob.model_validate(seen.listed)
        except ValueError as err:  # pydantic's ValidationError: a GET reports it as the reader's error
            log.debug("Indexing job %s as listed does not parse (%s); it is read by GET.", uuid, err)
            return None
        self._parsed[uuid] = (seen.listed, job)
        return job

    def _gap_now(self) -> float:
        """The time between sweeps now; also updates the share of reads a sweep can expect."""
        poll_gap = self._poll_gap()
        gap = _sweep.sweep_gap(poll_gap, self._last_pages, self._per_minute, self._readings, self._per_hour)
        self._share = _sweep.expected_batch(1, poll_gap, gap)
        self._every = gap
        return gap

    def _poll_gap(self) -> float | None:
        """How often the waits read their jobs (the median of the jobs' read intervals)."""
        gaps = [gap for uuid in self._created if (gap := self._asked.get(uuid, self._gap.get(uuid))) is not None]
        gaps += [self._reader_gap[kb] for kb in self._readers if kb in self._reader_gap]
        return statistics.median(gaps) if gaps else None

    def _forget_idle(self, now: float) -> None:
        self._last_forget = now
        for uuid, last in list(self._last_read.items()):
            if uuid in self._sleepers:
                continue  # a wait sleeps until its next read of the job
            gap = self._gap.get(uuid, 0.0)
            if _idle(now - last, gap, FORGET_AFTER):
                self._created.pop(uuid, None)
            if _idle(now - last, gap, READS_KEPT):
                del self._last_read[uuid]
                self._gap.pop(uuid, None)
                self._asked.pop(uuid, None)
                self._latest.pop(uuid, None)
                self._parsed.pop(uuid, None)
        for kb, last in list(self._readers.items()):
            if _idle(now - last, self._reader_gap.get(kb, 0.0), FORGET_AFTER):
                del self._readers[kb]
                self._reader_gap.pop(kb, None)
        for uuid, ended in list(self._ended.items()):
            if now - ended > READS_KEPT:
                del self._ended[uuid]
        self._gap_now()


class _Sleeper:
    """
    A wait sleeping on a job: its timer checks, every ``interval`` seconds up to ``until``
    (monotonic), that the sweeps still see the job, without waking the wait; the wait wakes when
    they stop seeing it, when ``until`` comes (``future`` answered ``False``), or when a sweep sees
    the job end (answered ``True``).
    """

    __slots__ = ("covers", "future", "interval", "timer", "until")

    def __init__(
        self,
        future: asyncio.Future[bool],
        interval: float,
        until: float,
        covers: Callable[[float], bool],
        first: float,
        now: float,
    ) -> None:
        self.future = future
        self.interval = interval
        self.until = until
        self.covers = covers
        self.timer = self._check_in(first, now)

    def _check_in(self, seconds: float, now: float) -> asyncio.TimerHandle:
        """Check again in ``seconds`` (never past ``until``)."""
        return self.future.get_loop().call_later(max(0.0, min(seconds, self.until - now)), self.check)

    def check(self) -> None:
        """
        On for another interval while a sweep saw the job run within the last one (sweeps that stop
        seeing it are noticed within an interval), else wake the wait.
        """
        now = time.monotonic()
        if now >= self.until or not self.covers(now - self.interval):
            _settle(self.future, False)
        else:
            self.timer = self._check_in(self.interval, now)


def _log_stop(task: asyncio.Task[None]) -> None:
    """Log a watcher that stopped on an unexpected error (its readers were answered ``None``)."""
    if not task.cancelled() and (err := task.exception()) is not None:
        log.error("The job watcher stopped on an unexpected error; its waits read their jobs by GET.", exc_info=err)


def _fresh(seen: _Seen, last: float | None, now: float, max_wait: float | None, every: float) -> bool:
    """
    Whether a read is answered with a job's state from a sweep that started at ``seen.started``: an
    end is final; a state read after the previous read (at ``last``) is as new as a GET's; and for a
    reader that waits at most ``max_wait``, a state younger than that plus one sweep gap (``every``)
    is what waiting for the next sweep would give it (its sleep is cut short by the sweep that sees
    the end, so an older state costs it nothing).
    """
    if seen.ended or (last is not None and seen.started >= last):
        return True
    return max_wait is not None and now - seen.started <= max_wait + every


def _note_read(
    last_reads: dict[str, float], gaps: dict[str, float], key: str, now: float, learn: bool = True
) -> float | None:
    """
    Note a read of ``key`` at ``now`` in ``last_reads``; when ``learn``, smooth the interval since
    its previous read into ``gaps``. Returns the time of the previous read (``None``: the first).
    """
    last = last_reads.get(key)
    if last is not None and learn:
        gap = now - last
        old = gaps.get(key)
        gaps[key] = gap if old is None else (old + gap) / 2
    last_reads[key] = now
    return last


def _idle(idle: float, gap: float, keep: float) -> bool:
    """Whether something not read for ``idle`` seconds, read every ``gap``, is to be forgotten after ``keep``."""
    return idle > max(keep, 4 * gap)


def _knowledge_bases(recent: Iterable[_RecentRead]) -> int:
    """How many knowledge bases the recent reads are of."""
    return len({read.knowledge_base_uuid for read in recent})


def _answer(futures: list[asyncio.Future[T | None]], answer: T | None) -> None:
    for future in futures:
        _settle(future, answer)


def _settle(future: asyncio.Future[T], value: T) -> None:
    """Answer ``future`` with ``value`` unless it has its answer already."""
    if not future.done():
        future.set_result(value)


async def _within(future: asyncio.Future[T], seconds: float | None, default: T) -> T:
    """
    ``await future``, answered ``default`` when ``seconds`` pass first (``None``: no limit). Cheaper
    than :func:`asyncio.wait_for`, which wraps what it waits for in a task: thousands of waits read
    through here.
    """
    if seconds is None:
        return await future
    timer = asyncio.get_running_loop().call_later(seconds, _settle, future, default)
    try:
        return await future
    finally:
        timer.cancel()
