"""
The job watcher against the real emulator over real sockets: many waits on one loop and token read
their jobs with ``aobserve_indexing_job``; sweeps of the job list serve them, in whatever order the
list comes, with thousands of older jobs in the account. Outcomes are checked against the
emulator's own state and the cost against its request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import time
from collections import Counter
from typing import Any

import pytest
from task_support import logged, sweeps_made

from airflow_provider_gradient import _api, _sweep
from airflow_provider_gradient.exceptions import GradientConfigError, GradientNotFoundError
from airflow_provider_gradient.hooks import _watcher
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.models import IndexingJob, ListedIndexingJobs
from airflow_provider_gradient.testing.emulator import GradientEmulator

ORDERS = ["newest", "oldest", "none"]
HISTORY = 3000
OUTCOMES = ["COMPLETED", "FAILED", "PARTIAL", "NO_CHANGES"]
LIST = "genai_list_indexing_jobs"
GET = "genai_get_indexing_job"


@pytest.fixture
def emu(gradient_emulator: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> GradientEmulator:
    """The emulator without rate limits, a connection that does not pace itself, and history."""
    gradient_emulator.set_rate_limits(None, None)
    conn = json.loads(gradient_emulator.airflow_conn_json())
    conn["extra"] = {"requests_per_minute": 1_000_000, "requests_per_hour": 100_000_000}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps(conn))
    history = gradient_emulator.create_knowledge_base("history")
    gradient_emulator.add_finished_jobs(history.uuid, HISTORY)
    return gradient_emulator


def _start_jobs(emu: GradientEmulator, count: int) -> dict[str, str]:
    """Start ``count`` jobs (one per knowledge base), ending at different times; uuid -> outcome."""
    jobs = {}
    for index in range(count):
        kb = emu.create_knowledge_base(f"kb{index}", data_sources=1)
        outcome = OUTCOMES[index % len(OUTCOMES)]
        emu.script_jobs(kb.uuid, outcome, duration=20.0 + (index % 7) * 10.0, pending=1.0)
        jobs[emu.start_job_server_side(kb.uuid)] = outcome
    return jobs


async def _wait(hook: GradientHook, uuid: str, reads: Counter[str], pause: float = 0.2) -> IndexingJob:
    """A wait: read the job until it has ended."""
    while True:
        job = await hook.aobserve_indexing_job(uuid)
        reads[uuid] += 1
        if job.is_terminal:
            return job
        await asyncio.sleep(pause)


async def _wait_all(uuids: list[str], reads: Counter[str]) -> list[IndexingJob | BaseException]:
    hooks = [GradientHook() for _ in uuids]  # one hook per wait, as one per trigger
    try:
        waits = (_wait(hook, uuid, reads) for hook, uuid in zip(hooks, uuids, strict=True))
        return await asyncio.gather(*waits, return_exceptions=True)
    finally:
        for hook in hooks:
            await hook.aclose()


def _final(emu: GradientEmulator, uuid: str) -> tuple[str, str]:
    job = emu.job(uuid)
    return job["phase"], job["status"]


@pytest.mark.parametrize("gradient_list_order", ORDERS)
def test_many_waits_see_every_end_in_any_list_order(emu: GradientEmulator, gradient_list_order: str) -> None:
    jobs = _start_jobs(emu, 120)
    emu.reset_requests()
    emu.clock.speed = 20.0
    reads: Counter[str] = Counter()
    results = asyncio.run(_wait_all(list(jobs), reads))

    for uuid, job in zip(jobs, results, strict=True):
        assert isinstance(job, IndexingJob), job
        assert job.uuid == uuid
        assert (job.phase, job.status) == _final(emu, uuid)
        assert job.outcome.value != "running"
    total_reads = sum(reads.values())
    gets, lists = emu.count("GET", GET), emu.count("GET", LIST)
    assert emu.count() == gets + lists  # nothing else was read
    list_queries = [r.query for r in emu.requests if r.operation == LIST]
    assert all(int(q["per_page"]) <= 200 for q in list_queries)
    if gradient_list_order == "none":
        # No order: a sweep reads the whole list (16 pages) only when that costs less than a GET
        # per job it serves; it never costs more than a GET per read and a look at page 1.
        assert gets + lists <= total_reads + total_reads // 10
    else:
        # One GET per job to learn its created_at, a few stragglers at most; then every request
        # serves five reads or more (how many reads a wait makes depends on the machine's speed).
        assert gets <= len(jobs) + len(jobs) // 10
        assert (gets - len(jobs) + lists) * 5 <= total_reads - len(jobs)
        # Only as far back as the oldest watched job: never the 3,000 older jobs' pages. A sweep
        # sizes its pages to the watched jobs, so pages are counted per page size.
        pages: dict[int, set[int]] = {}
        for q in list_queries:
            pages.setdefault(int(q["per_page"]), set()).add(int(q["page"]))
        # Oldest first, page 1 only tells where the list ends.
        first = 0 if gradient_list_order == "newest" else 1
        deepest = max(len({p for p in numbers if p > first}) for numbers in pages.values())
        assert deepest <= 3, pages


@pytest.mark.parametrize("gradient_list_order", ORDERS)
def test_jobs_deleted_mid_watch_raise_not_found_as_a_get_would(emu: GradientEmulator, gradient_list_order: str) -> None:
    jobs = _start_jobs(emu, 30)
    doomed = list(jobs)[::10]

    class Reads(Counter[str]):
        """Counts reads; ``watched`` is set once every job was read a few times (sweeps serve them)."""

        watched = asyncio.Event()

        def __setitem__(self, key: str, value: int) -> None:
            super().__setitem__(key, value)
            if len(self) == len(jobs) and min(self.values()) >= 3:
                self.watched.set()

    reads = Reads()

    async def scenario() -> list[IndexingJob | BaseException]:
        waits = asyncio.ensure_future(_wait_all(list(jobs), reads))
        await reads.watched.wait()
        for uuid in doomed:
            emu.delete_job(uuid)
        emu.clock.speed = 40.0
        return await waits

    results = asyncio.run(scenario())
    for uuid, job in zip(jobs, results, strict=True):
        if uuid in doomed:
            assert isinstance(job, GradientNotFoundError), job
        else:
            assert isinstance(job, IndexingJob), job
            assert (job.phase, job.status) == _final(emu, uuid)
    # A deleted job is read by its own GET once a sweep misses it; it is not looked for again.
    not_found = [r for r in emu.requests if r.operation == GET and r.status == 404]
    assert len(not_found) == len(doomed)


def test_a_failing_list_falls_back_to_each_jobs_own_get(emu: GradientEmulator) -> None:
    jobs = _start_jobs(emu, 20)
    emu.reset_requests()
    emu.faults.add(operation=LIST, kind="status", status=500, times=None)
    emu.clock.speed = 40.0
    reads: Counter[str] = Counter()
    results = asyncio.run(_wait_all(list(jobs), reads))
    for uuid, job in zip(jobs, results, strict=True):
        assert isinstance(job, IndexingJob), job
        assert (job.phase, job.status) == _final(emu, uuid)
    # One try, not retried; then the sweeps pause (longer than this test) and GETs serve every read.
    assert emu.count("GET", LIST) == emu.count("GET", LIST, status=500) == 1
    assert emu.count("GET", GET) == sum(reads.values())  # every read was answered by a GET


def test_few_waits_read_each_job_by_get(emu: GradientEmulator) -> None:
    jobs = _start_jobs(emu, _sweep.MIN_WATCHED - 1)
    emu.reset_requests()
    emu.clock.speed = 40.0
    reads: Counter[str] = Counter()
    results = asyncio.run(_wait_all(list(jobs), reads))
    assert all(isinstance(job, IndexingJob) and job.is_terminal for job in results)
    assert emu.count("GET", LIST) == 0
    assert emu.count("GET", GET) == sum(reads.values())


def test_a_watcher_that_cannot_be_built_leaves_every_wait_to_its_own_gets(
    emu: GradientEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no watcher today")

    monkeypatch.setattr(_watcher.JobWatcher, "__init__", broken)
    jobs = _start_jobs(emu, 20)
    emu.reset_requests()
    emu.clock.speed = 40.0
    first = next(iter(jobs))

    async def sleep_then_read() -> tuple[bool, list[IndexingJob | BaseException]]:
        hook = GradientHook()
        try:
            woken = await hook.await_indexing_job_end(first, 0.01, poll_interval=5.0, longest=60.0)
        finally:
            await hook.aclose()
        return woken, await _wait_all(list(jobs), reads)

    reads: Counter[str] = Counter()
    caplog.set_level(logging.WARNING)
    woken, results = asyncio.run(sleep_then_read())
    assert woken is False  # a plain sleep
    for uuid, job in zip(jobs, results, strict=True):
        assert isinstance(job, IndexingJob), job
        assert (job.phase, job.status) == _final(emu, uuid)
    assert emu.count("GET", LIST) == 0
    assert emu.count("GET", GET) == sum(reads.values())  # every read was its job's own GET
    text = logged(caplog, capfd)
    assert "The job watcher failed (no watcher today); sleeping 0s." in text
    assert f"The job watcher failed (no watcher today); reading indexing job {first} by itself." in text


def test_reads_arriving_while_a_sweep_is_pending_are_served_by_it(emu: GradientEmulator) -> None:
    jobs = list(_start_jobs(emu, 50))

    async def scenario() -> tuple[list[IndexingJob], int, int]:
        hook = GradientHook()
        try:
            for uuid in jobs:  # first reads: one GET each, the watcher learns the jobs
                await hook.aobserve_indexing_job(uuid)
            before = emu.count("GET", LIST)
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            sweeps = watcher.sweeps
            results = await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs * 3))
            return results, emu.count("GET", LIST) - before, watcher.sweeps - sweeps
        finally:
            await hook.aclose()

    emu.reset_requests()
    results, pages, sweeps = asyncio.run(scenario())
    assert [job.uuid for job in results] == jobs * 3
    assert emu.count("GET", GET) == len(jobs)  # only the first reads
    assert sweeps == 1  # 150 reads, one sweep
    assert pages == 1  # 50 newest jobs in one page sized to them (not the 3,000 older ones)
    query = next(r.query for r in emu.requests if r.operation == LIST)
    assert int(query["per_page"]) == _sweep.page_size(len(jobs), None, _sweep.ListOrder.UNKNOWN)


def test_recent_reads_of_knowledge_bases_join_the_sweep_of_the_job_reads(emu: GradientEmulator) -> None:
    jobs = list(_start_jobs(emu, 10))  # one per knowledge base
    kbs = [emu.job(uuid)["knowledge_base_uuid"] for uuid in jobs]
    created = [ListedIndexingJobs.created_at_of(emu.job(uuid)) for uuid in jobs]
    since = min(time for time in created if time is not None)

    async def scenario() -> tuple[list[Any], int, int]:
        hook = GradientHook()
        try:
            for uuid in jobs:  # first reads: one GET each, the watcher learns the jobs
                await hook.aobserve_indexing_job(uuid)
            before = emu.count()
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            sweeps = watcher.sweeps
            results = await asyncio.gather(
                *(hook.aobserve_indexing_job(uuid) for uuid in jobs),
                *(hook.alist_recent_knowledge_base_indexing_jobs(kb, since) for kb in kbs),
            )
            return results, emu.count() - before, watcher.sweeps - sweeps
        finally:
            await hook.aclose()

    results, requests, sweeps = asyncio.run(scenario())
    assert [job.uuid for job in results[: len(jobs)]] == jobs
    assert (sweeps, requests) == (1, 1)  # one page: ten jobs' reads and ten knowledge bases' recent jobs
    for uuid, recent in zip(jobs, results[len(jobs) :], strict=True):
        assert not recent.listed
        assert [job.uuid for job in recent.jobs] == [uuid]
        # From the newest job listed, less the slack; never before the time asked for.
        assert recent.next_since == max(since, max(time for time in created if time is not None) - _sweep.CLOCK_SLACK)


def test_bad_input_fails_before_any_request(emu: GradientEmulator) -> None:
    emu.reset_requests()

    async def scenario() -> None:
        with pytest.raises(GradientConfigError, match="indexing_job_uuid"):
            await GradientHook().aobserve_indexing_job("not-a-uuid")
        with pytest.raises(GradientConfigError, match="knowledge_base_uuid"):
            await GradientHook().alist_recent_knowledge_base_indexing_jobs("not-a-kb", None)

    asyncio.run(scenario())
    assert emu.count() == 0


def test_the_watcher_is_rebuilt_for_each_loop_and_releases_its_session(emu: GradientEmulator) -> None:
    from airflow_provider_gradient.hooks._transport import SESSION_POOL

    jobs = list(_start_jobs(emu, 5))

    async def scenario() -> Any:
        hook = GradientHook()
        for uuid in jobs:
            await hook.aobserve_indexing_job(uuid)
        await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
        await hook.aclose()
        (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
        return watcher

    first = asyncio.run(scenario())
    second = asyncio.run(scenario())
    assert first is not second
    assert first.closed  # stopped with its loop
    assert second.closed
    assert first.sweeps == second.sweeps == 1
    assert SESSION_POOL.open_sessions() == 0


def test_a_cancelled_read_does_not_disturb_the_others(emu: GradientEmulator) -> None:
    jobs = list(_start_jobs(emu, 10))

    async def scenario() -> list[IndexingJob | BaseException]:
        hook = GradientHook()
        try:
            for uuid in jobs:
                await hook.aobserve_indexing_job(uuid)
            reads = [asyncio.ensure_future(hook.aobserve_indexing_job(uuid)) for uuid in jobs]
            await asyncio.sleep(0)  # every read has queued for the next sweep
            for read in reads[:3]:
                read.cancel()
            return await asyncio.gather(*reads, return_exceptions=True)
        finally:
            await hook.aclose()

    emu.reset_requests()
    results = asyncio.run(scenario())
    assert all(isinstance(result, asyncio.CancelledError) for result in results[:3])
    assert [job.uuid for job in results[3:] if isinstance(job, IndexingJob)] == jobs[3:]
    assert emu.count("GET", GET) == len(jobs)  # the first reads only: the sweep served the rest
    assert emu.count("GET", LIST) == 1


def test_jobs_no_longer_read_are_forgotten_also_without_sweeps(
    emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _start_jobs(emu, 2)

    async def scenario() -> list[tuple[int, int]]:
        hook = GradientHook()
        try:
            await hook.aobserve_indexing_job(first)
            await hook.aobserve_indexing_job(second)
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            counts = [(watcher.watched, watcher.remembered)]
            monkeypatch.setattr(_watcher, "FORGET_AFTER", 0.0)
            await asyncio.sleep(0.01)
            await hook.aobserve_indexing_job(second)
            counts.append((watcher.watched, watcher.remembered))
            monkeypatch.setattr(_watcher, "READS_KEPT", 0.0)
            await asyncio.sleep(0.01)
            await hook.aobserve_indexing_job(second)
            counts.append((watcher.watched, watcher.remembered))
            return counts
        finally:
            await hook.aclose()

    # The job read again is kept; the other is no longer watched, and its last read is forgotten later.
    assert asyncio.run(scenario()) == [(2, 2), (1, 2), (1, 1)]


class _ShiftedClock:
    """The watcher's monotonic clock moved forward at will: a test's stand-in for minutes passing
    between reads (the event loop and the emulator keep real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def shifted(monkeypatch: pytest.MonkeyPatch) -> _ShiftedClock:
    clock = _ShiftedClock()
    monkeypatch.setattr(_watcher, "time", clock)
    return clock


async def _watched_with_a_sweep_planned(hook: GradientHook, jobs: list[str], shifted: _ShiftedClock) -> Any:
    """Read ``jobs`` three times: the first reads, then ``poll`` seconds later (watcher time) a round
    one sweep serves, and right after it a round served by that sweep's states (the next read of a
    job then has no newer state to be served from); the next sweep is planned a third of ``poll``
    after the first one (:data:`~airflow_provider_gradient._sweep.SWEEPS_PER_POLL`). Returns the
    watcher."""
    for uuid in jobs:
        await hook.aobserve_indexing_job(uuid)  # the first reads: GETs
    shifted.offset += 100.0  # the waits poll every 100 s: the next sweep starts 33 s after one
    await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
    (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
    assert (watcher.sweeps, watcher.served) == (1, len(jobs))
    await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
    assert (watcher.sweeps, watcher.served) == (1, 2 * len(jobs))  # at once, from the sweep's states
    return watcher


def test_a_read_whose_next_sweep_starts_too_late_is_its_own_get_at_once(
    emu: GradientEmulator, shifted: _ShiftedClock
) -> None:
    """
    Catches a read queued for a sweep planned after its ``max_wait``: a wait polling every 2 s next
    to waits polling every 100 s would wait ~33 s for its read (and its deadline or cancel with it).
    Its job is watched but was not in the last sweep, so no state of it is there to answer with.
    """
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[int, int, int]:
        hook = GradientHook()
        try:
            await hook.aobserve_indexing_job(jobs[0])  # watched; not read again until below
            watcher = await _watched_with_a_sweep_planned(hook, jobs[1:], shifted)
            shifted.offset += 1.0  # the next sweep is 32 s away
            gets, lists = emu.count("GET", GET), emu.count("GET", LIST)
            job = await asyncio.wait_for(hook.aobserve_indexing_job(jobs[0], max_wait=2.0), 15.0)
            assert job.uuid == jobs[0], "the read waited for a sweep planned ~32 s later"
            return emu.count("GET", GET) - gets, emu.count("GET", LIST) - lists, watcher.served
        finally:
            await hook.aclose()

    emu.reset_requests()
    assert asyncio.run(scenario()) == (1, 0, 38)  # its own GET, no list read, nothing more served


def test_a_read_not_answered_within_max_wait_is_its_own_get(emu: GradientEmulator, shifted: _ShiftedClock) -> None:
    """
    Catches a read that waits out a slow sweep (each list page may wait long in the request budget):
    the reads must come back by their own GETs while the sweep's page is still on its way.
    """
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[list[IndexingJob], int, int]:
        hook = GradientHook()
        try:
            watcher = await _watched_with_a_sweep_planned(hook, jobs, shifted)
            shifted.offset += 40.0  # the next sweep is due: it starts at once
            emu.faults.add(operation=LIST, kind="delay", seconds=30.0)
            gets, pages = emu.count("GET", GET), watcher.pages
            results = await asyncio.gather(*(hook.aobserve_indexing_job(uuid, max_wait=0.5) for uuid in jobs))
            assert watcher.pages == pages, "the reads waited for the slow sweep's page"
            return results, emu.count("GET", GET) - gets, watcher.served
        finally:
            await hook.aclose()

    emu.reset_requests()
    results, gets, served = asyncio.run(scenario())
    assert [job.uuid for job in results] == jobs
    assert (gets, served) == (len(jobs), 2 * len(jobs))  # every read its own GET; the sweep served none


def test_a_rate_limited_list_serves_its_reads_with_the_next_sweep_not_one_get_each(emu: GradientEmulator) -> None:
    """
    Catches a 429 on the list answered by one GET per read at once, into the token being refused:
    the reads must wait for the next sweep (after the retry-after), one list request for them all.
    """
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[list[IndexingJob], int]:
        hook = GradientHook()
        try:
            for uuid in jobs:
                await hook.aobserve_indexing_job(uuid)  # the first reads: GETs
            emu.faults.add(operation=LIST, kind="status", status=429, headers={"retry-after": "1"})
            results = await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            return results, watcher.served
        finally:
            await hook.aclose()

    emu.reset_requests()
    results, served = asyncio.run(scenario())
    assert [job.uuid for job in results] == jobs
    assert served == len(jobs)
    assert emu.count("GET", GET) == len(jobs)  # the first reads only
    assert emu.count("GET", LIST, status=429) == 1
    assert emu.count("GET", LIST) == 2


def test_a_list_that_stays_rate_limited_falls_back_to_gets(emu: GradientEmulator) -> None:
    """Catches reads held for the next sweep again and again while the list keeps answering 429."""
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> list[IndexingJob]:
        hook = GradientHook()
        try:
            for uuid in jobs:
                await hook.aobserve_indexing_job(uuid)
            emu.faults.add(operation=LIST, kind="status", status=429, times=None, headers={"retry-after": "1"})
            return await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
        finally:
            await hook.aclose()

    emu.reset_requests()
    assert [job.uuid for job in asyncio.run(scenario())] == jobs
    assert emu.count("GET", LIST) == emu.count("GET", LIST, status=429) == 2  # one retry, then GETs
    assert emu.count("GET", GET) == 2 * len(jobs)


def test_jobs_polled_every_few_minutes_are_served_by_sweeps(emu: GradientEmulator, shifted: _ShiftedClock) -> None:
    """
    Catches waits that poll less often than the watcher forgets idle jobs: if a job's last read is
    forgotten before its next one, its read interval is never learnt and every read is its own GET.
    """
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[list[int], int]:
        hook = GradientHook()
        gets = []
        try:
            for _ in range(4):  # four rounds of polls, 300 s apart
                before = emu.count("GET", GET)
                await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
                gets.append(emu.count("GET", GET) - before)
                shifted.offset += 300.0
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            return gets, watcher.served
        finally:
            await hook.aclose()

    emu.reset_requests()
    gets, served = asyncio.run(scenario())
    assert gets[0] == len(jobs)  # the first reads
    assert gets[2:] == [0, 0], gets  # once the interval is known, the sweeps serve every read
    assert served >= 2 * len(jobs)


def test_a_job_seen_ended_is_not_watched_again_by_a_late_sweep(emu: GradientEmulator) -> None:
    """
    Catches a sweep that read a job still running, answering after a GET saw the job end, putting
    the ended job back on the watch list (it would be looked for by every later sweep).
    """
    jobs = list(_start_jobs(emu, 3))

    async def scenario() -> tuple[int, int]:
        hook = GradientHook()
        try:
            running = [await hook.aobserve_indexing_job(uuid) for uuid in jobs]
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            emu.clock.advance(3600.0)  # every job ends
            ended = await hook.aget_indexing_job(jobs[0])
            assert ended.is_terminal
            assert not running[0].is_terminal
            before = watcher.watched
            watcher.learn(ended)  # a GET saw the end ...
            watcher.learn(running[0])  # ... then a sweep that read it earlier answers
            return before, watcher.watched
        finally:
            await hook.aclose()

    assert asyncio.run(scenario()) == (3, 2)


def test_connections_of_one_token_with_other_limits_get_their_own_watcher(
    emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Catches a watcher keyed on the token alone: a second connection of the same token with another
    minute limit would have its sweeps paced by the first connection's limit.
    """
    value = json.loads(emu.airflow_conn_json())
    value["extra"] = {"requests_per_minute": 60, "requests_per_hour": 100_000_000}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_SLOW", json.dumps(value))
    jobs = list(_start_jobs(emu, 3))

    async def scenario() -> list[int]:
        fast, slow = GradientHook(), GradientHook(gradient_conn_id="gradient_slow")
        try:
            await fast.aobserve_indexing_job(jobs[0])
            await slow.aobserve_indexing_job(jobs[1])
            return sorted(w._per_minute for w in _watcher.WATCHERS[asyncio.get_running_loop()].values())
        finally:
            await fast.aclose()
            await slow.aclose()

    assert asyncio.run(scenario()) == [60, 1_000_000]


@pytest.mark.parametrize("gradient_list_order", ["oldest"])
def test_an_oldest_first_list_that_hides_its_end_is_not_swept_again_and_again(
    emu: GradientEmulator, gradient_list_order: str
) -> None:
    """
    Catches sweeps of an oldest-first list whose answers give no ``meta`` and no ``links``: each
    would read the page of the oldest jobs, serve nothing, and cost one request per sweep forever.
    """
    jobs = list(_start_jobs(emu, 20))
    emu.faults.add(operation=LIST, kind="missing_fields", fields=["meta", "links"], times=None)

    async def scenario() -> list[IndexingJob]:
        hook = GradientHook()
        try:
            for uuid in jobs:
                await hook.aobserve_indexing_job(uuid)
            results = []
            for _ in range(3):
                results += await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            return results
        finally:
            await hook.aclose()

    emu.reset_requests()
    assert [job.uuid for job in asyncio.run(scenario())] == jobs * 3
    assert emu.count("GET", LIST) == 1  # one look, then the per-job GETs serve until the pause ends
    assert emu.count("GET", GET) == 4 * len(jobs)


def test_reads_queued_during_a_failing_sweep_respect_its_pause(
    emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Catches reads that queued while a sweep was failing being swept again right after it, despite
    the pause that failure set: a list that keeps failing then costs a request per sweep.
    """
    value = json.loads(emu.airflow_conn_json())
    value["extra"] = {"requests_per_minute": 1_000_000, "requests_per_hour": 100_000_000, "timeout": 1.0}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps(value))
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[list[IndexingJob], int]:
        hook = GradientHook()
        try:
            for uuid in jobs:
                await hook.aobserve_indexing_job(uuid)
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            emu.faults.add(operation=LIST, kind="delay", seconds=5.0, times=None)  # the list times out
            first = asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs[:10]))
            while not watcher._serving:  # noqa: ASYNC110 - until the sweep for the first reads is under way
                await asyncio.sleep(0)
            second = asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs[10:]))
            results = [*await first, *await second]
            return results, watcher.failures
        finally:
            await hook.aclose()

    results, failures = asyncio.run(scenario())
    assert [job.uuid for job in results] == jobs
    assert failures == 1


WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who")


def test_the_watcher_does_not_run_in_the_context_of_the_read_that_started_it(emu: GradientEmulator) -> None:
    """
    Catches a watcher task that inherits the context of the first trigger that read through it: its
    log lines (a failed sweep's warning here) would carry that trigger's context (its log file).
    """
    jobs = list(_start_jobs(emu, 10))
    seen: list[str | None] = []

    class Spy(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(WHO.get(None))
            return True

    async def scenario() -> None:
        hook = GradientHook()
        try:
            for uuid in jobs:
                await hook.aobserve_indexing_job(uuid)
            emu.faults.add(operation=LIST, kind="status", status=500)
            WHO.set("the first trigger")
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
        finally:
            await hook.aclose()

    spy = Spy()
    logging.getLogger(_watcher.__name__).addFilter(spy)
    try:
        asyncio.run(scenario())
    finally:
        logging.getLogger(_watcher.__name__).removeFilter(spy)
    assert seen == [None]  # the failed sweep's warning, logged outside the trigger's context


def test_the_async_wait_driver_reads_by_get_when_the_next_sweep_is_after_its_poll_interval(
    emu: GradientEmulator, shifted: _ShiftedClock
) -> None:
    """
    Catches the async driver reading through the watcher without its poll interval as the bound:
    a trigger polling every 2 s next to triggers polling every 100 s would wait ~33 s per poll (its
    job was not in the last sweep).
    """
    from airflow_provider_gradient._wait import JobWait
    from airflow_provider_gradient._wait_drivers import astep

    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[dict[str, Any] | None, int, int]:
        hook = GradientHook()
        try:
            await hook.aobserve_indexing_job(jobs[0])
            await _watched_with_a_sweep_planned(hook, jobs[1:], shifted)
            shifted.offset += 1.0  # the next sweep is 32 s away
            wait = JobWait(jobs[0], poll_interval=2.0)
            # Past its first read (which may wait for a sweep as long as the wait may sleep on one),
            # the wait's reads wait at most its poll interval.
            wait.evaluate(await hook.aget_indexing_job(jobs[0]))
            gets, lists = emu.count("GET", GET), emu.count("GET", LIST)
            event = await asyncio.wait_for(astep(wait, hook, log=logging.getLogger(__name__)), 15.0)
            assert wait.last_job is not None, "the poll waited for a sweep planned ~32 s later"
            return event, emu.count("GET", GET) - gets, emu.count("GET", LIST) - lists
        finally:
            await hook.aclose()

    emu.reset_requests()
    assert asyncio.run(scenario()) == (None, 1, 0)  # still running; its own GET, no list read


def test_a_wait_sleeping_on_its_job_is_woken_by_the_sweep_that_sees_it_end(emu: GradientEmulator) -> None:
    """
    Catches ends seen only at the next poll: waits that may sleep an hour must be woken by the sweep
    that sees their jobs end, and their next read answered from that sweep, without a request.
    """
    jobs = list(_start_jobs(emu, 10))

    async def scenario() -> tuple[list[bool], list[IndexingJob], int]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))  # watched from here
            sleeps = asyncio.gather(*(hook.await_indexing_job_end(uuid, 20.0, longest=3600.0) for uuid in jobs))
            await asyncio.sleep(0.1)
            emu.clock.advance(3600.0)  # every job ends
            woken = await asyncio.wait_for(sleeps, 60.0)
            requests = emu.count()
            ended = await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            return woken, ended, emu.count() - requests
        finally:
            await hook.aclose()

    woken, ended, requests = asyncio.run(scenario())
    assert woken == [True] * len(jobs)
    assert [(job.phase, job.status) for job in ended] == [_final(emu, uuid) for uuid in jobs]
    assert requests == 0  # every read answered from the sweep that saw the end


def _count_parses(monkeypatch: pytest.MonkeyPatch, parsed: Counter[str]) -> None:
    """From now on, count in ``parsed`` the jobs validated into models, by uuid."""
    validate = IndexingJob.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[IndexingJob], obj: Any, *args: Any, **kwargs: Any) -> IndexingJob:
        parsed[obj.get("uuid") if isinstance(obj, dict) else "?"] += 1
        return validate(cls, obj, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(IndexingJob, "model_validate", classmethod(counting))


def test_a_wait_sleeps_on_while_the_sweeps_see_its_job_run_and_parses_nothing_meanwhile(
    emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Catches waits that wake at every poll interval although the sweeps see their jobs for them: a
    triggerer with thousands of waits would spend its CPU on reads that tell nothing new. Also
    catches sweeps that parse jobs nobody reads.
    """
    jobs = list(_start_jobs(emu, 10))
    parsed: Counter[str] = Counter()

    async def scenario() -> tuple[int, list[bool], int]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            _count_parses(monkeypatch, parsed)
            sleeps = [asyncio.ensure_future(hook.await_indexing_job_end(uuid, 1.0, longest=3600.0)) for uuid in jobs]
            # Four sweeps, at least one sweep gap (1 s here) apart: more than the 1 s asked for.
            await asyncio.wait_for(sweeps_made(4), 60.0)
            awake = sum(sleep.done() for sleep in sleeps)
            emu.clock.advance(3600.0)  # every job ends
            woken = await asyncio.wait_for(asyncio.gather(*sleeps), 60.0)
            return awake, list(woken), sum(parsed.values())
        finally:
            await hook.aclose()

    assert asyncio.run(scenario()) == (0, [True] * len(jobs), 0)


def test_a_wait_whose_delay_is_shorter_than_the_sweep_gap_sleeps_on_the_sweep_before_it(emu: GradientEmulator) -> None:
    """
    Catches a wait that takes as cover only a sweep made during its own sleep: a trigger's first
    delays (a fraction of its poll interval) are shorter than the sweep gap, so after a read the
    sweep served it would wake to read again what that sweep saw, a read per job for nothing.
    """
    jobs = list(_start_jobs(emu, 10))

    async def scenario() -> tuple[int, int, list[bool]]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))  # GETs: no sweep yet
            sweeps = await asyncio.gather(*(hook.aobserve_indexing_job(uuid, max_wait=30.0) for uuid in jobs))
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            served = watcher.served
            sleeps = [
                asyncio.ensure_future(hook.await_indexing_job_end(uuid, 0.2, poll_interval=8.0, longest=3600.0))
                for uuid in jobs
            ]
            await asyncio.wait_for(sweeps_made(2), 60.0)  # sweeps at least 1 s apart: past every 0.2 s
            awake = sum(sleep.done() for sleep in sleeps)
            emu.clock.advance(3600.0)  # every job ends
            woken = await asyncio.wait_for(asyncio.gather(*sleeps), 60.0)
            return served - len(sweeps), awake, list(woken)
        finally:
            await hook.aclose()

    # The second reads were the sweep's; no wait woke before its job ended.
    assert asyncio.run(scenario()) == (0, 0, [True] * len(jobs))


def test_reads_are_answered_page_by_page_as_the_sweep_reads(emu: GradientEmulator) -> None:
    """
    Catches reads answered only once a whole sweep is done: a sweep of thousands of jobs takes many
    pages, paced by the budget, and the reads of jobs on its first pages would wait for the last,
    or give up and GET. Here the sweep's second page fails: the jobs of its first page are answered.
    """
    jobs = list(_start_jobs(emu, _api.MAX_PER_PAGE + 50))

    async def scenario() -> tuple[list[str], int, int]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            emu.faults.add(operation=LIST, kind="status", status=500, after=1, times=None)
            gets, lists = emu.count("GET", GET), emu.count("GET", LIST)
            results = await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            return [job.uuid for job in results], emu.count("GET", GET) - gets, emu.count("GET", LIST) - lists
        finally:
            await hook.aclose()

    uuids, gets, lists = asyncio.run(scenario())
    assert uuids == jobs
    assert lists == 2  # a page of 200 answered, the next one failed
    assert gets == len(jobs) - _api.MAX_PER_PAGE  # the jobs on the failed page only


def test_a_wait_whose_job_the_sweeps_no_longer_see_wakes_to_read_it(emu: GradientEmulator) -> None:
    """
    Catches waits left asleep on the sweeps' word when the sweeps stop seeing their jobs (deleted,
    or a list that no longer shows them): each must wake after its own delay and read the job.
    """
    jobs = list(_start_jobs(emu, 10))

    async def scenario() -> list[bool]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            sleeps = asyncio.gather(*(hook.await_indexing_job_end(uuid, 1.0, longest=3600.0) for uuid in jobs))
            await asyncio.wait_for(sweeps_made(1), 60.0)
            for uuid in jobs:
                emu.delete_job(uuid)
            return list(await asyncio.wait_for(sleeps, 60.0))
        finally:
            await hook.aclose()

    assert asyncio.run(scenario()) == [False] * len(jobs)  # awake by themselves, not by a sweep


def test_a_wait_wakes_to_read_its_job_when_no_sweep_read_it_within_its_poll_interval(
    emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Catches a sweep taken as cover for longer than the poll interval it was read in: with sweeps
    spaced out (here by a small hour limit: one page every 72 s) or stopped (the last jobs of a
    batch), a wait must not sleep on the word of a sweep older than its own poll interval.
    """
    conn = json.loads(os.environ["AIRFLOW_CONN_GRADIENT_DEFAULT"])
    conn["extra"]["requests_per_hour"] = 100  # sweeps of one page at most every 72 s
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps(conn))
    jobs = list(_start_jobs(emu, 3))

    async def scenario() -> tuple[list[bool], int]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            sleeps = asyncio.gather(
                *(hook.await_indexing_job_end(uuid, 1.0, poll_interval=1.0, longest=3600.0) for uuid in jobs)
            )
            woken = await asyncio.wait_for(sleeps, 30.0)
            (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
            return list(woken), watcher.sweeps
        finally:
            await hook.aclose()

    assert asyncio.run(scenario()) == ([False] * len(jobs), 1)  # one sweep saw them run; then no cover


@pytest.mark.parametrize("gradient_list_order", ["newest", "oldest"])
def test_a_new_jobs_first_read_joins_the_sweeps_that_run_anyway(
    emu: GradientEmulator, gradient_list_order: str
) -> None:
    """
    Catches a GET for every new job's first read while sweeps run anyway for other waits: on a busy
    token those GETs are most of the cost. The sweep finds new jobs at the newest end of the list.
    """
    jobs = list(_start_jobs(emu, 10))

    async def scenario() -> tuple[list[IndexingJob], int]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            sleeps = asyncio.gather(*(hook.await_indexing_job_end(uuid, 3600.0) for uuid in jobs))
            new = list(_start_jobs(emu, 5))
            gets = emu.count("GET", GET)
            first = await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in new))
            assert [job.uuid for job in first] == new
            sleeps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sleeps
            return first, emu.count("GET", GET) - gets
        finally:
            await hook.aclose()

    first, gets = asyncio.run(scenario())
    assert all(job.created_at is not None for job in first)
    assert gets == 0


def test_a_sweep_parses_only_the_watched_jobs_that_changed(
    emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Catches sweeps that validate every listed job on every page: a triggerer watching thousands of
    jobs would spend its CPU re-parsing pages of jobs that did not change since the last sweep.
    """
    jobs = list(_start_jobs(emu, 20))
    parsed: Counter[str] = Counter()

    async def scenario() -> list[IndexingJob]:
        hook = GradientHook()
        try:
            await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            _count_parses(monkeypatch, parsed)
            results = []
            # Three rounds of reads, two sweeps (the round after a sweep is answered from its states);
            # the jobs do not change (the emulator's clock stands still).
            for _ in range(3):
                results += await asyncio.gather(*(hook.aobserve_indexing_job(uuid) for uuid in jobs))
            return results
        finally:
            await hook.aclose()

    emu.clock.speed = 0.0
    emu.reset_requests()
    results = asyncio.run(scenario())
    assert [job.uuid for job in results] == jobs * 3
    assert emu.count("GET", LIST) == 2
    assert emu.count("GET", GET) == len(jobs)  # the first reads only
    assert parsed == Counter(jobs)  # each watched job once; not the older jobs listed, not again


def test_a_read_is_answered_from_a_recent_sweep_without_waiting_for_the_next(
    emu: GradientEmulator, shifted: _ShiftedClock
) -> None:
    """
    Catches reads that wait for the next sweep (or GET) when the last one is recent enough: with
    thousands of jobs a sweep takes many pages and comes every half minute, and waits polling
    about as often would each fall back to their own GET, spending the token the sweeps save.
    """
    jobs = list(_start_jobs(emu, 20))

    async def scenario() -> tuple[list[str], int]:
        hook = GradientHook()
        try:
            await _watched_with_a_sweep_planned(hook, jobs, shifted)
            shifted.offset += 20.0  # the last sweep is 20 s old, the next one 5 s away
            requests = emu.count()
            results = await asyncio.wait_for(
                asyncio.gather(*(hook.aobserve_indexing_job(uuid, max_wait=2.0) for uuid in jobs)), 15.0
            )
            return [job.uuid for job in results], emu.count() - requests
        finally:
            await hook.aclose()

    emu.reset_requests()
    assert asyncio.run(scenario()) == (jobs, 0)  # at once, from the last sweep's states
