"""The sweep's decisions, without I/O: order detection, pages to read, where to stop, what is left to GET."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_gradient import _sweep
from airflow_provider_gradient._sweep import ListOrder, Memory, Sweep
from airflow_provider_gradient.models import IndexingJob, ListedIndexingJobs

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _uuid(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def _jobs(count: int) -> list[IndexingJob]:
    """``count`` jobs, oldest first, one second apart."""
    return [IndexingJob(uuid=_uuid(i), created_at=T0 + timedelta(seconds=i)) for i in range(count)]


def _listed(jobs: list[IndexingJob], order: str) -> list[IndexingJob]:
    if order == "newest":
        return jobs[::-1]
    if order == "oldest":
        return list(jobs)
    return sorted(jobs, key=lambda job: random.Random(job.uuid).random())


def _as_listed(jobs: list[IndexingJob], **envelope: Any) -> ListedIndexingJobs:
    """A page of the job list as the API answers it (the jobs as JSON)."""
    return ListedIndexingJobs(jobs=[job.model_dump(mode="json", exclude_none=True) for job in jobs], **envelope)


def _page(listed: list[IndexingJob], number: int, per_page: int) -> ListedIndexingJobs:
    pages = max(1, math.ceil(len(listed) / per_page))
    chunk = listed[(number - 1) * per_page : number * per_page]
    return _as_listed(chunk, meta={"page": number, "pages": pages, "total": len(listed)})


def _run(sweep: Sweep, listed: list[IndexingJob]) -> list[int]:
    """Drive a sweep over a list; return the pages it read, in order."""
    numbers = []
    while (number := sweep.next_page()) is not None:
        numbers.append(number)
        sweep.feed(number, _page(listed, number, sweep.per_page))
        assert len(numbers) <= _sweep.MAX_PAGES
    return numbers


def _targets(jobs: list[IndexingJob]) -> dict[str, datetime]:
    return {job.uuid: job.created_at for job in jobs if job.uuid and job.created_at}


@pytest.mark.parametrize(
    ("times", "order"),
    [
        ([3, 2, 2, 1], ListOrder.NEWEST),
        ([1, 2, 2, 3], ListOrder.OLDEST),
        ([1, 3, 2], ListOrder.NONE),
        ([2, 2, 2], ListOrder.UNKNOWN),
        ([5], ListOrder.UNKNOWN),
        ([], ListOrder.UNKNOWN),
        ([3, None, 1], ListOrder.NEWEST),
    ],
)
def test_order_of(times: list[int | None], order: ListOrder) -> None:
    stamps = [None if t is None else T0 + timedelta(seconds=t) for t in times]
    assert _sweep.order_of(stamps) is order


def test_newest_first_reads_only_as_far_back_as_the_oldest_target() -> None:
    jobs = _jobs(5000)
    watched = jobs[-300:]  # the newest 300; 4,700 older jobs below them
    sweep = Sweep(_targets(watched), Memory())
    assert sweep.per_page == 200  # 300 jobs to read: the largest page
    assert _run(sweep, _listed(jobs, "newest")) == [1, 2]
    assert sweep.unseen == set()
    assert set(sweep.found) == {job.uuid for job in watched}
    memory = sweep.memory()
    assert memory == Memory(ListOrder.NEWEST, 5000, 300)


def test_oldest_first_is_detected_then_read_from_the_last_page_backwards() -> None:
    jobs = _jobs(5000)
    watched = jobs[-300:]
    listed = _listed(jobs, "oldest")
    first = Sweep(_targets(watched), Memory())
    assert _run(first, listed) == [1, 25, 24]  # page 1 shows the order; 24 and 25 hold the newest 400
    assert first.unseen == set()
    memory = first.memory()
    assert (memory.order, memory.total) == (ListOrder.OLDEST, 5000)
    # The next sweep starts where the last page was: no page 1.
    second = Sweep(_targets(watched), memory)
    assert _run(second, listed) == [25, 24]
    assert second.unseen == set()


def test_oldest_first_with_newer_jobs_since_the_last_sweep_reads_up_to_the_new_end() -> None:
    jobs = _jobs(5000)
    watched = jobs[4800:4900]
    memory = Memory(ListOrder.OLDEST, 4700, 100)  # 300 jobs were created since
    sweep = Sweep(_targets(watched), memory)
    assert sweep.per_page == 125
    # Page 38 was the end; the answer says 40 is now: read down from there until a page starts
    # before the oldest target (38, already read).
    assert _run(sweep, _listed(jobs, "oldest")) == [38, 40, 39]
    assert sweep.unseen == set()


def test_oldest_first_started_past_the_end_after_deletions() -> None:
    jobs = _jobs(1000)
    watched = jobs[-50:]
    sweep = Sweep(_targets(watched), Memory(ListOrder.OLDEST, 5000, 50))
    pages = _run(sweep, _listed(jobs, "oldest"))
    assert pages[0] == 80  # empty: the list shrank
    assert pages[1] == 16  # its answer names the real last page
    assert sweep.unseen == set()


def test_a_list_in_no_order_is_read_whole_only_when_that_is_cheaper_than_gets() -> None:
    jobs = _jobs(1000)
    listed = _listed(jobs, "none")
    many = Sweep(_targets(jobs[-400:]), Memory(ListOrder.NONE))
    assert many.per_page == 200
    assert _run(many, listed) == [1, 2, 3, 4, 5]
    assert many.unseen == set()
    few = Sweep(_targets(jobs[-5:]), Memory(ListOrder.NONE))
    assert _run(few, listed) == [1]  # four more pages for at most five jobs: GET them
    assert few.unseen == {job.uuid for job in jobs[-5:]} - set(few.found)
    assert few.order is ListOrder.NONE


def test_a_page_that_contradicts_the_remembered_order_stops_the_sweep_and_is_remembered() -> None:
    jobs = _jobs(3000)
    watched = jobs[-20:]
    sweep = Sweep(_targets(watched), Memory(ListOrder.NEWEST, 3000, 20))
    assert _run(sweep, _listed(jobs, "oldest")) == [1]
    assert sweep.order is ListOrder.NONE  # not what was remembered: trust neither
    assert sweep.unseen == set(_targets(watched))
    # The next sweep looks at page 1 again and learns the list's order anew.
    relearn = Sweep(_targets(watched), sweep.memory())
    assert _run(relearn, _listed(jobs, "oldest")) == [1, 15]  # a list seen in no order: pages of 200
    assert relearn.order is ListOrder.OLDEST
    assert relearn.unseen == set()
    shuffled = _listed(jobs, "none")
    again = Sweep(_targets(watched), Memory(ListOrder.OLDEST, 3000, 20))
    pages = _run(again, shuffled)
    assert again.order is ListOrder.NONE
    assert len(pages) < 3000 / again.per_page  # it did not read the whole list for 20 jobs
    assert again.unseen  # left to GET


def test_a_deleted_target_is_left_to_get_and_does_not_make_the_sweep_read_on() -> None:
    jobs = _jobs(5000)
    watched = jobs[-100:]
    listed = [job for job in _listed(jobs, "newest") if job.uuid != watched[0].uuid]
    sweep = Sweep(_targets(watched), Memory(ListOrder.NEWEST, 5000, 100))
    pages = _run(sweep, listed)
    assert sweep.unseen == {watched[0].uuid}
    assert len(pages) == 1  # 125 per page holds all of them; one unseen job is not worth a page


def test_an_old_straggler_is_read_by_get_not_by_reading_thousands_of_jobs() -> None:
    jobs = _jobs(5000)
    straggler = jobs[10]  # a job started long ago, still watched
    watched = [*jobs[-30:], straggler]
    sweep = Sweep(_targets(watched), Memory(ListOrder.NEWEST))
    pages = _run(sweep, _listed(jobs, "newest"))
    assert pages == [1]
    assert sweep.unseen == {straggler.uuid}


def test_dry_pages_raise_the_bar_for_reading_on() -> None:
    jobs = _jobs(2000)
    # Five targets deep in the list, none near the top.
    watched = jobs[1000:1005]
    sweep = Sweep(_targets(watched), Memory(ListOrder.NEWEST))
    pages = _run(sweep, _listed(jobs, "newest"))
    assert pages == [1, 2]  # after two dry pages five unseen jobs no longer justify a third
    assert sweep.unseen == set(_targets(watched))


def test_a_single_page_list_in_any_order_is_read_once() -> None:
    jobs = _jobs(9)
    for order in ("newest", "oldest", "none"):
        sweep = Sweep(_targets(jobs[:6]), Memory())
        assert _run(sweep, _listed(jobs, order)) == [1]
        assert sweep.unseen == set()


def test_page_size_follows_what_is_watched() -> None:
    assert _sweep.page_size(3, None, ListOrder.NEWEST) == _sweep.MIN_PER_PAGE
    assert _sweep.page_size(40, None, ListOrder.NEWEST) == 50
    assert _sweep.page_size(40, 120, ListOrder.OLDEST) == 150
    assert _sweep.page_size(1000, None, ListOrder.NEWEST) == 200
    assert _sweep.page_size(3, None, ListOrder.NONE) == 200


def test_sweep_gap_follows_the_polls_and_the_budget() -> None:
    assert _sweep.sweep_gap(None, 0, 250) == _sweep.MIN_SWEEP_GAP
    assert _sweep.sweep_gap(30.0, 1, 250) == 10.0  # a third of the poll interval
    assert _sweep.sweep_gap(30.0, 50, 250) == 24.0  # 50 pages a sweep: at most half of 250/min
    assert _sweep.sweep_gap(0.2, 1, 100000) == _sweep.MIN_SWEEP_GAP


def test_worth_sweeping() -> None:
    assert not _sweep.worth_sweeping(_sweep.MIN_WATCHED - 1)
    assert _sweep.worth_sweeping(_sweep.MIN_WATCHED)


def test_a_sweep_needs_targets() -> None:
    with pytest.raises(ValueError, match="at least one job"):
        Sweep({}, Memory())


def test_jobs_created_in_the_same_second_do_not_make_the_list_look_unordered() -> None:
    history = _jobs(1000)
    burst = [IndexingJob(uuid=_uuid(5000 + i), created_at=T0 + timedelta(hours=1)) for i in range(40)]
    listed = [*burst, *history[::-1]]  # newest first; the burst shares one created_at
    sweep = Sweep(_targets(burst[::4]), Memory())  # 10 targets spread over the burst
    assert sweep.per_page == 13
    pages = _run(sweep, listed)
    assert sweep.unseen == set()
    assert pages == [1, 2, 3]  # each page says nothing (one time): read on while it finds targets
    assert sweep.order is ListOrder.UNKNOWN
    deeper = Sweep({**_targets(burst[::4]), **_targets(history[-5:])}, Memory())
    assert _run(deeper, listed) == [1, 2, 3]  # page 3 reaches the history: newest first
    assert deeper.order is ListOrder.NEWEST
    assert deeper.unseen == set()


def test_the_page_is_sized_for_every_watched_job_not_only_those_waiting_now() -> None:
    jobs = _jobs(500)
    sweep = Sweep(_targets(jobs[-3:]), Memory(), watched=120)
    assert sweep.per_page == 150


def test_pause_after_failures_doubles_and_is_capped() -> None:
    assert _sweep.pause_after_failures(0) == 0.0
    assert _sweep.pause_after_failures(1) == _sweep.FAILURE_PAUSE
    assert _sweep.pause_after_failures(2) == 2 * _sweep.FAILURE_PAUSE
    assert _sweep.pause_after_failures(50) == _sweep.MAX_FAILURE_PAUSE
    assert _sweep.pause_after_failures(3, rate_limited=True) == 0.0


def test_expected_batch_is_the_share_of_reads_a_sweep_gathers() -> None:
    assert _sweep.expected_batch(10, None, 7.5) == 10.0  # intervals not known yet
    assert _sweep.expected_batch(10, 30.0, 7.5) == 2.5  # too few for a sweep to pay: GET
    assert not _sweep.worth_sweeping(_sweep.expected_batch(10, 30.0, 7.5))
    assert _sweep.worth_sweeping(_sweep.expected_batch(12, 30.0, 7.5))
    assert _sweep.expected_batch(10, 0.5, 1.0) == 10.0  # reads faster than sweeps: all of them


def test_a_read_queues_only_for_a_sweep_that_starts_within_its_max_wait() -> None:
    """Catches a read made to wait for a sweep planned after its reader's poll interval or deadline."""
    assert _sweep.can_wait_for_sweep(5.0, None)
    assert _sweep.can_wait_for_sweep(5.0, 5.0)
    assert _sweep.can_wait_for_sweep(-3.0, 0.0)  # due already
    assert not _sweep.can_wait_for_sweep(5.0, 4.9)
    assert not _sweep.can_wait_for_sweep(0.1, 0.0)


def test_only_a_first_rate_limited_failure_keeps_the_reads_for_the_next_sweep() -> None:
    """Catches a 429 on the list turned into one GET per read at once, and reads held for a list that keeps failing."""
    assert _sweep.retry_after_failure(1, rate_limited=True)
    assert not _sweep.retry_after_failure(2, rate_limited=True)  # then every reader GETs its job
    assert not _sweep.retry_after_failure(1, rate_limited=False)


def test_an_oldest_first_list_without_its_end_is_not_swept_again_for_a_while() -> None:
    """
    Catches sweeps that read the oldest jobs' page forever: an oldest-first list whose answers
    give neither ``meta.pages`` nor ``links.pages.last`` nor a total cannot be swept.
    """
    jobs = _jobs(500)
    watched = jobs[-20:]
    sweep = Sweep(_targets(watched), Memory())
    listed = _listed(jobs, "oldest")
    while (number := sweep.next_page()) is not None:
        chunk = listed[(number - 1) * sweep.per_page : number * sweep.per_page]
        sweep.feed(number, _as_listed(chunk))  # no meta, no links
    assert sweep.found == {}
    memory = sweep.memory()
    assert memory.end_unknown
    assert _sweep.pause_after_sweep(memory) == _sweep.MAX_FAILURE_PAUSE
    # With its length or last page known, the list is swept from its end: no pause.
    assert _sweep.pause_after_sweep(Memory(ListOrder.OLDEST, 500, 20)) == 0.0
    sweep = Sweep(_targets(watched), Memory())
    assert _run(sweep, listed)  # (pages with meta)
    assert not sweep.memory().end_unknown


def _unknown_age(jobs: list[IndexingJob]) -> dict[str, datetime | None]:
    """Targets read for the first time: their ``created_at`` is not known yet."""
    return {job.uuid: None for job in jobs if job.uuid}


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_new_jobs_of_unknown_age_are_found_at_the_newest_end_only(order: str) -> None:
    jobs = _jobs(5000)
    new = jobs[-300:]  # just started: the newest jobs
    memory = Memory() if order == "newest" else Memory(ListOrder.OLDEST, 5000)
    sweep = Sweep(_unknown_age(new), memory)
    pages = _run(sweep, _listed(jobs, order))
    assert sweep.unseen == set()
    assert set(sweep.found) == {job.uuid for job in new}
    assert len(pages) == 2, pages  # pages of 200: the two that hold the 300 new jobs


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_an_old_job_of_unknown_age_is_left_to_get_without_reading_the_whole_list(order: str) -> None:
    jobs = _jobs(5000)
    targets = {**_unknown_age(jobs[-30:]), **_unknown_age([jobs[100]])}  # one job far down the list
    memory = Memory() if order == "newest" else Memory(ListOrder.OLDEST, 5000)
    sweep = Sweep(targets, memory)
    pages = _run(sweep, _listed(jobs, order))
    assert sweep.unseen == {jobs[100].uuid}
    assert len(pages) <= 2, pages


def test_known_targets_bound_the_sweep_and_new_ones_are_found_on_the_way() -> None:
    jobs = _jobs(5000)
    known, new = jobs[-400:-100], jobs[-100:]
    sweep = Sweep({**_targets(known), **_unknown_age(new)}, Memory())
    assert _run(sweep, _listed(jobs, "newest")) == [1, 2]  # 200 a page: the 400 newest, no further
    assert sweep.unseen == set()


def test_sweeps_never_cost_more_than_the_gets_they_replace() -> None:
    # Four jobs polled every 30 s: one page replaces two GETs only if it comes at most every 15 s.
    assert _sweep.sweep_gap(30.0, 1, 250, watched=4) == pytest.approx(15.0)
    # A thousand: a third of the poll interval; six pages every 10 s stay within half the limit.
    assert _sweep.sweep_gap(30.0, 6, 250, watched=1000) == pytest.approx(10.0)
    # Four thousand: twenty pages a sweep, paced to half of 250 a minute.
    assert _sweep.sweep_gap(24.0, 20, 250, watched=4000) == pytest.approx(20 * 60 / 125)


def test_sweeps_spend_at_most_their_share_of_the_hour() -> None:
    """
    Catches sweeps paced to the minute limit alone: 4,000 jobs take 20 pages a sweep, and sweeps
    every ten seconds would spend 7,200 requests an hour of a token allowed 5,000, queueing in its
    budget (and every end seen late).
    """
    gap = _sweep.sweep_gap(30.0, 20, 250, watched=4000, per_hour=5000)
    assert gap == pytest.approx(20 * 3600 / (5000 * _sweep.SWEEP_SHARE))
    assert 3600 / gap * 20 <= 5000 * _sweep.SWEEP_SHARE + 1e-6
    assert _sweep.sweep_gap(24.0, 20, 250, watched=4000, per_hour=1_000_000) == pytest.approx(20 * 60 / 125)


# -------------------------------------------------------------------------------------------
# Recent jobs: every job created since a time, from the newest end of the list
# -------------------------------------------------------------------------------------------


def test_recent_jobs_are_read_from_page_one_back_past_since() -> None:
    jobs = _jobs(1000)
    since = jobs[-25].created_at
    assert since is not None
    sweep = Sweep({}, Memory(), since=since)
    assert sweep.per_page == _sweep.MIN_PER_PAGE
    assert _run(sweep, _listed(jobs, "newest")) == [1, 2, 3]  # page 3 reaches back past ``since``
    assert sweep.recent_complete
    assert [job["uuid"] for job in sweep.recent] == [job.uuid for job in jobs[-25:][::-1]]
    assert sweep.covered == jobs[-1].created_at
    assert sweep.memory().recent_depth == 25
    # The next sweep sizes its page for as many recent jobs.
    assert Sweep({}, sweep.memory(), since=since).per_page == 32


def test_recent_jobs_take_at_most_one_page_per_knowledge_base_they_serve() -> None:
    """Catches recent reads that cost more pages than the knowledge bases' own lists they replace."""
    jobs = _jobs(1000)
    since = jobs[-25].created_at
    two = Sweep({}, Memory(), since=since, readers=2)
    assert _run(two, _listed(jobs, "newest")) == [1, 2]
    assert not two.recent_complete  # its two readers read their lists
    three = Sweep({}, Memory(), since=since, readers=3)
    assert _run(three, _listed(jobs, "newest")) == [1, 2, 3]
    assert three.recent_complete


def test_recent_jobs_with_targets_read_as_deep_as_either_needs() -> None:
    jobs = _jobs(1000)
    since = jobs[-5].created_at
    sweep = Sweep(_targets(jobs[-60:-50]), Memory(), since=since)
    assert sweep.per_page == 13
    # ``since`` is on page 1; the targets (the 51st to 60th newest) end on page 5.
    assert _run(sweep, _listed(jobs, "newest")) == [1, 2, 3, 4, 5]
    assert sweep.unseen == set()
    assert sweep.recent_complete
    assert len(sweep.recent) == 5


@pytest.mark.parametrize("order", ["oldest", "none"])
def test_recent_jobs_are_not_answered_when_the_list_is_not_newest_first(order: str) -> None:
    jobs = _jobs(1000)
    sweep = Sweep({}, Memory(), since=jobs[-25].created_at)
    _run(sweep, _listed(jobs, order))
    assert not sweep.recent_complete
    assert _sweep.pause_recent_reads(sweep.memory()) == _sweep.MAX_FAILURE_PAUSE


def test_recent_jobs_only_in_a_list_known_oldest_first_read_nothing() -> None:
    jobs = _jobs(1000)
    memory = Memory(ListOrder.OLDEST, 1000, 10)
    sweep = Sweep({}, memory, since=jobs[-25].created_at)
    assert sweep.next_page() is None
    assert not sweep.recent_complete
    assert sweep.memory() == memory


def test_recent_jobs_past_the_page_limit_are_not_answered() -> None:
    jobs = _jobs(5000)
    sweep = Sweep({}, Memory(), since=jobs[0].created_at)  # the whole list: more than MAX_PAGES pages
    assert len(_run(sweep, _listed(jobs, "newest"))) == _sweep.MAX_PAGES
    assert not sweep.recent_complete


def test_recent_jobs_need_the_order_confirmed_and_end_with_the_list() -> None:
    empty = Sweep({}, Memory(), since=T0)
    assert _run(empty, []) == [1]
    assert not empty.recent_complete  # no order seen: the readers read their own lists
    assert empty.covered is None
    jobs = _jobs(15)
    short = Sweep({}, Memory(), since=T0)  # older than every job: the list's end stops the read
    assert _run(short, _listed(jobs, "newest")) == [1, 2]
    assert short.recent_complete
    assert len(short.recent) == 15


def test_next_since_keeps_clock_slack() -> None:
    assert _sweep.next_since(None) is None
    assert _sweep.next_since(T0) == T0 - _sweep.CLOCK_SLACK


def test_a_sweep_is_made_for_any_queued_recent_read_but_for_jobs_only_when_it_pays() -> None:
    assert _sweep.sweep_pays(0, 1)
    assert not _sweep.sweep_pays(_sweep.MIN_WATCHED - 1, 0)
    assert _sweep.sweep_pays(_sweep.MIN_WATCHED, 0)
