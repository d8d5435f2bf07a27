"""
The decisions of a sweep: observing many indexing jobs through the team's job list.

``GET /v2/gen-ai/indexing_jobs?page=&per_page=`` returns up to 200 full job objects per request,
so one request can observe many running jobs. The order of that list is not documented, so a
:class:`Sweep` detects it from the jobs' ``created_at`` on every page it reads:

* newest first: read from page 1 on, until a page reaches back past the oldest watched job;
* oldest first: start at the last page (``meta.pages`` / ``links.pages.last``, or where the last
  sweep saw it) and read backwards, until a page starts before the oldest watched job;
* no order (or an order a page contradicts): read every page only while that is cheaper than one
  GET per job not seen yet, else stop.

A sweep may also read the recent jobs: every job created since a time (``since``), for the
knowledge-base event triggers. That needs the list newest first, read contiguously from page 1
back past ``since`` (:attr:`Sweep.recent_complete`); the newest ``created_at`` on page 1 then tells
how far the sweep covered (:attr:`Sweep.covered`): every job created later is listed at or after
that time, so the next read starts there, less :data:`CLOCK_SLACK` (:func:`next_since`). In any
other order a recent read is not answered, and its reader reads its knowledge base's own list.

A target whose ``created_at`` is not known yet (a job a wait reads for the first time) is looked
for where new jobs are listed: the newest end of the list, read on while its pages hold targets.
Every watched job a sweep did not see (deleted, moved, older than the pages read, a list in no
order, a sweep that stopped because reading on cost more than it saved) is read by its own GET. A full page is about a
hundred times the bytes of one job, so with few jobs watched reading each one stays cheaper
(:func:`worth_sweeping`), and pages are sized to what is watched (:func:`page_size`).

Nothing here does I/O: :mod:`airflow_provider_gradient.hooks._watcher` moves the bytes.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_gradient._api import MAX_PER_PAGE, last_page_number
from airflow_provider_gradient.models import ListedIndexingJobs

__all__ = [
    "CLOCK_SLACK",
    "GETS_PER_PAGE",
    "MAX_PAGES",
    "MIN_PER_PAGE",
    "MIN_SWEEP_GAP",
    "MIN_WATCHED",
    "SWEEPS_PER_POLL",
    "SWEEP_SHARE",
    "ListOrder",
    "Memory",
    "Sweep",
    "can_wait_for_sweep",
    "expected_batch",
    "next_since",
    "order_of",
    "page_size",
    "pause_after_failures",
    "pause_after_sweep",
    "pause_recent_reads",
    "retry_after_failure",
    "sweep_gap",
    "sweep_pays",
    "worth_sweeping",
]

#: Fewer jobs than this waiting for a read are read one GET each: a sweep would not save a request.
MIN_WATCHED = 3
#: A sweep reads another page only while the jobs it has not seen yet number at least this many
#: per page read in a row without finding one (each page must be able to replace two GETs).
GETS_PER_PAGE = 2
#: The smallest page a sweep asks for (a handful of jobs cost about what one page's envelope does).
MIN_PER_PAGE = 10
#: The most pages one sweep reads, whatever the list looks like.
MAX_PAGES = 50
#: Sweeps per poll interval of the waits: a job's end is seen within a third of its poll interval
#: (a wait polling its own job sees it within one); every further sweep reads all its pages again.
SWEEPS_PER_POLL = 3
#: The shortest time (seconds) between the starts of two sweeps: the reads that arrive meanwhile
#: are served together by the next one.
MIN_SWEEP_GAP = 1.0
#: Seconds sweeps pause after one failed (the per-job GETs serve meanwhile); doubled for each
#: further failure in a row, up to :data:`MAX_FAILURE_PAUSE`.
FAILURE_PAUSE = 30.0
MAX_FAILURE_PAUSE = 600.0
#: The share of the token's minute limit sweeps may take at most (the rest is the tasks' own calls,
#: the per-job reads and the token's other users).
SWEEP_SHARE = 0.5
#: How far before the newest job a sweep saw a recent read starts next time: room for the server's
#: clocks to disagree about ``created_at`` (the jobs read twice are told apart by their uuids).
CLOCK_SLACK = timedelta(seconds=60)


class ListOrder(str, enum.Enum):
    """The order of the job list, as detected from ``created_at``."""

    NEWEST = "newest"
    OLDEST = "oldest"
    NONE = "none"
    UNKNOWN = "unknown"


def order_of(times: Sequence[datetime | None]) -> ListOrder:
    """
    The order of one page's ``created_at`` values: ``UNKNOWN`` when fewer than two distinct times
    say anything, ``NONE`` when they go both ways (missing times are skipped).
    """
    known = [time for time in times if time is not None]
    if len(set(known)) < 2:
        return ListOrder.UNKNOWN
    pairs = list(itertools.pairwise(known))
    if all(a >= b for a, b in pairs):
        return ListOrder.NEWEST
    if all(a <= b for a, b in pairs):
        return ListOrder.OLDEST
    return ListOrder.NONE


def worth_sweeping(waiting: float) -> bool:
    """Whether a sweep may save requests over one GET per job, with ``waiting`` jobs to read."""
    return waiting >= MIN_WATCHED


def next_since(newest: datetime | None) -> datetime | None:
    """
    Where the next recent read starts, after a read that covered the list up to the job created at
    ``newest`` (every job created later is listed at or after that time): :data:`CLOCK_SLACK`
    before it; ``None`` when nothing told the time (the next read cannot be a recent read).
    """
    return None if newest is None else newest - CLOCK_SLACK


def sweep_pays(targets: int, readers: int) -> bool:
    """
    Whether a sweep is made for ``targets`` jobs to read and the recent jobs of ``readers``
    knowledge bases: for any reader (it was queued because enough reads were expected,
    :func:`worth_sweeping`; its alternative, its knowledge base's own list, costs a request too),
    else when the jobs alone make it pay.
    """
    return readers > 0 or worth_sweeping(targets)


def can_wait_for_sweep(starts_in: float, max_wait: float | None) -> bool:
    """
    Whether a read should queue for the next sweep, which is planned to start in ``starts_in``
    seconds, when its reader may wait at most ``max_wait`` seconds (``None``: any time): a read
    whose sweep starts too late is read by its own GET at once, so no wait polls less often than
    it asked for because of its neighbours, nor overruns its deadline.
    """
    return max_wait is None or max(0.0, starts_in) <= max_wait


def expected_batch(watched: int, poll_gap: float | None, gap: float) -> float:
    """
    How many reads one sweep can expect to serve: the watched jobs' reads are spread over their
    poll interval, so a sweep every ``gap`` seconds gathers ``gap / poll_gap`` of them (all, when
    the interval is not known yet). Below :data:`MIN_WATCHED` the reads go straight to their GETs
    instead of waiting for a sweep that would not pay.
    """
    if poll_gap is None or poll_gap <= 0:
        return float(watched)
    return watched * min(1.0, gap / poll_gap)


def page_size(targets: int, depth: int | None, order: ListOrder) -> int:
    """
    ``per_page`` for a sweep: room for the jobs to read and the unwatched jobs listed between them
    (``depth``: how far down the list the last sweep found its oldest job), with a quarter to
    spare; the largest page when the list has no order (every page may hold any job).
    """
    if order is ListOrder.NONE:
        return MAX_PER_PAGE
    need = max(targets, depth or 0)
    return min(MAX_PER_PAGE, max(MIN_PER_PAGE, math.ceil(need * 1.25)))


def sweep_gap(
    poll_gap: float | None, pages: int, per_minute: int, watched: int = 0, per_hour: int | None = None
) -> float:
    """
    Seconds between the starts of two sweeps: a :data:`SWEEPS_PER_POLL`-th of how often the waits
    read their jobs (so a read waits little for the sweep that serves it, and a job's end is seen
    within that share of its poll interval), at least :data:`MIN_SWEEP_GAP`; long enough that
    sweeps of ``pages`` pages stay within :data:`SWEEP_SHARE` of the minute limit and of the hour
    limit (``per_hour``; a token's hour is spent evenly, so sweeps that outrun it only queue in its
    budget); and long enough that each page replaces at least :data:`GETS_PER_PAGE` of the
    ``watched`` jobs' own GETs (sweeps never cost more than the reads they serve).
    """
    gap = MIN_SWEEP_GAP
    if poll_gap is not None and poll_gap > 0:
        gap = max(gap, poll_gap / SWEEPS_PER_POLL)
        if watched > 0:
            gap = max(gap, GETS_PER_PAGE * max(1, pages) * poll_gap / watched)
    if per_hour is not None:
        gap = max(gap, pages * 3600.0 / (max(1, per_hour) * SWEEP_SHARE))
    return max(gap, pages * 60.0 / (max(1, per_minute) * SWEEP_SHARE))


def pause_after_failures(failures: int, rate_limited: bool = False) -> float:
    """
    Seconds to read jobs by GET only after ``failures`` sweeps failed in a row: a list that keeps
    failing (a missing scope, a proxy that refuses it) must not cost a request per sweep forever.
    A rate-limited sweep pauses nothing: the budget already slows every request down, and a sweep
    is the cheaper way through it.
    """
    if failures <= 0 or rate_limited:
        return 0.0
    return min(MAX_FAILURE_PAUSE, FAILURE_PAUSE * 2.0 ** (failures - 1))


def pause_after_sweep(memory: Memory) -> float:
    """
    Seconds to read jobs by GET only after a sweep that left ``memory``: :data:`MAX_FAILURE_PAUSE`
    when the list cannot be swept (oldest first with no last page known: each sweep would read
    the oldest jobs' page and serve nothing), else none. The list is looked at again after that,
    in case its answers say more.
    """
    return MAX_FAILURE_PAUSE if memory.end_unknown else 0.0


def pause_recent_reads(memory: Memory) -> float:
    """
    Seconds recent reads are not queued for sweeps after a sweep that left ``memory``: a list
    seen oldest first or in no order cannot answer them (each sweep would read a page for
    nothing), so their readers read their knowledge bases' own lists; the list is looked at again
    after :data:`MAX_FAILURE_PAUSE`, in case its order was one odd page.
    """
    return MAX_FAILURE_PAUSE if memory.order in (ListOrder.OLDEST, ListOrder.NONE) else 0.0


def retry_after_failure(failures: int, rate_limited: bool) -> bool:
    """
    Whether the reads a failed sweep should have served wait for the next sweep instead of each
    reading its job by GET at once: after the first rate-limited failure in a row (N GETs into a
    token that is being refused would cost N requests where one page would do; the next sweep waits
    in the budget until the server's ``retry-after``). Each reader still waits no longer than it
    allowed; after a second failure in a row every reader GETs its job, so no read waits for a list
    that keeps failing.
    """
    return rate_limited and failures == 1


@dataclass(frozen=True)
class Memory:
    """
    What one sweep leaves for the next: the order it saw, the list's length, and ``depth``: how
    many jobs from the newest end of the list down to the oldest job it found.
    """

    order: ListOrder = ListOrder.UNKNOWN
    total: int | None = None
    depth: int | None = None
    #: The list is oldest first and its answers tell neither its last page nor its length: a sweep
    #: can only read its first page (the oldest jobs), so it serves nothing.
    end_unknown: bool = False
    #: How many jobs the last sweep's recent read listed (the page is sized for them too).
    recent_depth: int | None = None


class Sweep:
    """
    One sweep of the job list, as a state machine: ask :meth:`next_page` which page to read, hand
    the answer to :meth:`feed`, until :meth:`next_page` says ``None``. Then :attr:`found` holds
    the latest state of every target it saw (as listed: decoded JSON) and :attr:`unseen` the
    targets to read by GET.

    With ``since``, it also reads the list from page 1 back past that time while the list is newest
    first (:attr:`recent_complete`); :attr:`recent` then holds every job listed with a ``created_at``
    at or after ``since``, in list order, and :attr:`covered` the newest ``created_at`` on page 1.

    :param targets: The jobs to observe: uuid -> ``created_at`` (``None``: not known yet; such a job
        is looked for at the newest end of the list only).
    :param memory: What the previous sweep learnt (order, list length, depth).
    :param watched: How many jobs are watched in all (the page is sized for them too: they lie
        between the targets in the list).
    :param since: The oldest ``created_at`` of the recent jobs to read (``None``: none to read).
    :param readers: How many knowledge bases' recent reads it serves (``None``: any number): it reads
        at most that many pages for them, as each page must replace at least one knowledge base's
        own list (the readers of a read not complete read their lists).
    """

    def __init__(
        self,
        targets: Mapping[str, datetime | None],
        memory: Memory,
        watched: int = 0,
        since: datetime | None = None,
        readers: int | None = None,
    ) -> None:
        if not targets and since is None:
            raise ValueError("a sweep needs at least one job or a time to read the recent jobs from")
        self.targets = dict(targets)
        self.unseen = set(targets)
        self.found: dict[str, dict[str, Any]] = {}
        known = [created for created in targets.values() if created is not None]
        #: The oldest known ``created_at`` of a target (``None``: no target's age is known).
        self.oldest: datetime | None = min(known) if known else None
        self.order = memory.order
        self.since = since
        self.readers = readers
        self._memory = memory
        recent_depth = memory.recent_depth if since is not None else None
        self.per_page = page_size(max(len(targets), watched, recent_depth or 0), memory.depth, memory.order)
        #: The jobs listed with a ``created_at`` at or after :attr:`since` (as listed: decoded JSON).
        self.recent: list[dict[str, Any]] = []
        #: The newest ``created_at`` on page 1, once read (``None``: not read, or no time on it).
        self.covered: datetime | None = None
        #: The newest ``created_at`` on any page read (``None``: none read, or no time on them).
        self.newest: datetime | None = None
        self._recent_end = False  # the pages read from page 1 on reach back past ``since``
        #: page number -> the ``created_at`` of its jobs, in list order
        self.read: dict[int, list[datetime | None]] = {}
        self.pages: int | None = None  # the last page's number, once an answer said it
        self.total = memory.total
        self._positions: list[int] = []  # list positions (0-based) of the targets found
        self._dry = 0  # pages read in a row without finding a target
        self._first = True
        start = 1
        if self.order is ListOrder.OLDEST and memory.total and not targets:
            start = 0  # only recent jobs to read, and the list is oldest first: nothing to read
        elif self.order is ListOrder.OLDEST and memory.total:
            start = max(1, math.ceil(memory.total / self.per_page))
        self._next: int | None = start or None

    def next_page(self) -> int | None:
        """The page to read next, or ``None`` when the sweep is done."""
        return self._next

    def feed(self, number: int, page: ListedIndexingJobs) -> None:
        """Take the answer for page ``number`` and decide what to read next."""
        hits = 0
        for index, job in enumerate(page.jobs):
            uuid = job.get("uuid")
            if uuid in self.unseen:
                self.unseen.discard(uuid)
                self.found[uuid] = job
                self._positions.append((number - 1) * self.per_page + index)
                hits += 1
        self._dry = 0 if hits else self._dry + 1
        last = last_page_number(page)
        if last is not None:
            self.pages = last
        if page.meta is not None and page.meta.total is not None:
            self.total = int(page.meta.total)
        times = [page.created_at_of(job) for job in page.jobs]
        newest = max(filter(None, times), default=None)
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest
        if number == 1:
            self.covered = newest
        self.read[number] = times
        self._learn_order(number, times)
        self._first = False
        if self.since is not None:
            self._take_recent(number, page.jobs, times)
        self._next = self._decide(number, times)

    @property
    def recent_complete(self) -> bool:
        """
        Whether :attr:`recent` holds every job created since :attr:`since`: the pages read from
        page 1 on, one after another, newest first, reach back past it (or to the list's end).
        """
        return (
            self.since is not None
            and self._recent_end
            and self.order is ListOrder.NEWEST
            and (self.covered is not None or not self.read[1])
            and all(number in self.read for number in range(1, max(self.read) + 1))
        )

    def _take_recent(self, number: int, jobs: list[dict[str, Any]], times: list[datetime | None]) -> None:
        if self._recent_end or number != len(self.read) or number not in self.read or self.since is None:
            return  # not the next page down from page 1: the read is not contiguous
        self.recent.extend(job for job, time in zip(jobs, times, strict=True) if time is None or time >= self.since)
        oldest = min(filter(None, times), default=None)
        last = self.pages is not None and number >= self.pages
        self._recent_end = not jobs or last or (oldest is not None and oldest < self.since)

    def _wants_recent(self, number: int) -> bool:
        """Whether the recent read needs the next page down (contiguous, newest first or not known yet)."""
        return (
            self.since is not None
            and not self._recent_end
            and self.order in (ListOrder.NEWEST, ListOrder.UNKNOWN)
            and number == len(self.read)
            and self.covered is not None
            and (self.readers is None or len(self.read) < self.readers)
        )

    def memory(self) -> Memory:
        """What the next sweep should start from."""
        if not self.read:
            return self._memory  # nothing read: nothing learnt
        depth: int | None = None
        if self._positions and self.order is ListOrder.NEWEST:
            depth = max(self._positions) + 1
        elif self._positions and self.order is ListOrder.OLDEST and self.total is not None:
            depth = max(1, self.total - min(self._positions))
        end_unknown = self.order is ListOrder.OLDEST and self.pages is None and self.total is None
        recent_depth = len(self.recent) if self.recent_complete else None
        return Memory(self.order, self.total, depth, end_unknown, recent_depth)

    # ----------------------------------------------------------------------------------------

    def _learn_order(self, number: int, times: list[datetime | None]) -> None:
        seen = order_of(times)
        if self._first and self.order is ListOrder.NONE:
            # A list once seen in no order is looked at again: one odd page must not make every
            # later sweep give up.
            self.order = seen
            return
        if self.order is ListOrder.UNKNOWN:
            # Jobs created in the same second say nothing: read on until a page says something.
            self.order = seen
            return
        ordered = self.order in (ListOrder.NEWEST, ListOrder.OLDEST)
        if ordered and (seen not in (self.order, ListOrder.UNKNOWN) or not self._fits_neighbours(number, times)):
            self.order = ListOrder.NONE

    def _fits_neighbours(self, number: int, times: list[datetime | None]) -> bool:
        """Whether this page continues the pages read next to it in the assumed order."""
        mine = [time for time in times if time is not None]
        if not mine:
            return True
        newest_first = self.order is ListOrder.NEWEST
        before = [time for time in self.read.get(number - 1, []) if time is not None]
        after = [time for time in self.read.get(number + 1, []) if time is not None]
        if newest_first:
            return (not before or min(before) >= max(mine)) and (not after or min(mine) >= max(after))
        return (not before or max(before) <= min(mine)) and (not after or max(mine) <= min(after))

    def _worth_another_page(self) -> bool:
        return len(self.unseen) >= GETS_PER_PAGE * (self._dry + 1)

    def _decide(self, number: int, times: list[datetime | None]) -> int | None:
        if len(self.read) >= MAX_PAGES:
            return None
        if self._wants_recent(number):
            return number + 1
        if not self.unseen:
            return None
        if self.order is ListOrder.NEWEST:
            return self._newest_next(number, times)
        if self.order is ListOrder.OLDEST:
            return self._oldest_next(number, times)
        if self.order is ListOrder.UNKNOWN:
            if not times or (self.pages is not None and number >= self.pages):
                return None
            return number + 1 if self._worth_another_page() else None
        return self._unordered_next(number, times)

    def _past_every_target(self, reached: list[datetime]) -> bool:
        """
        Whether pages that reach back to ``reached`` leave no target below them: they are past the
        oldest known target, and either every target of unknown age was seen or the last page held
        no target (new jobs are listed together at the newest end).
        """
        past_known = self.oldest is None or (bool(reached) and min(reached) < self.oldest)
        unknown_left = any(self.targets[uuid] is None for uuid in self.unseen)
        return past_known and (not unknown_left or self._dry > 0)

    def _newest_next(self, number: int, times: list[datetime | None]) -> int | None:
        known = [time for time in times if time is not None]
        if not times or (self.pages is not None and number >= self.pages):
            return None  # the end of the list
        if self._past_every_target(known):
            return None  # this page already reaches back past every target
        return number + 1 if self._worth_another_page() else None

    def _oldest_next(self, number: int, times: list[datetime | None]) -> int | None:
        # Read down from the last page (the newest jobs) in one run of pages; the run may
        # already hold the page a sweep started at (where the last sweep saw the end).
        top = self.pages if self.pages is not None else max(self.read)
        if top not in self.read:
            return top
        bottom = top
        while bottom - 1 in self.read:
            bottom -= 1
        first = [time for time in self.read[bottom] if time is not None]
        if bottom <= 1 or self._past_every_target(first):
            return None  # back at the start, or the pages below hold only older jobs
        return bottom - 1 if self._worth_another_page() else None

    def _unordered_next(self, number: int, times: list[datetime | None]) -> int | None:
        if self.pages is None:
            return number + 1 if times and len(self.unseen) >= GETS_PER_PAGE else None
        left = [page for page in range(1, self.pages + 1) if page not in self.read]
        if not left or len(left) * GETS_PER_PAGE > len(self.unseen):
            return None  # every page would have to be read: GETs are cheaper
        return left[0]
