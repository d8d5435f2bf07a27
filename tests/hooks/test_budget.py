"""The per-token request budget: its windows, the server's view, priorities, and where budgets live."""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import random
import threading
import time
import weakref
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from budget_simulation import virtual_time_loop

from airflow_provider_gradient.hooks import _budget
from airflow_provider_gradient.hooks._budget import RequestBudget, budget_for, sync_budget_for
from airflow_provider_gradient.hooks.gradient import GradientHook

JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"
T0 = 1000.0  # a monotonic instant
WALL = 1_700_000_000.0  # an epoch instant


def budget(per_minute: int = 250, per_hour: int = 5000, **kwargs: Any) -> RequestBudget:
    return RequestBudget(per_minute, per_hour, rng=random.Random(0), **kwargs)


def seen(b: RequestBudget, remaining: int, *, now: float = T0, reset: float | None = None, wall: float = WALL) -> None:
    """``b`` hears ``remaining`` (and ``reset``, epoch seconds) from a response at ``now``."""
    headers = {"ratelimit-remaining": str(remaining)}
    if reset is not None:
        headers["ratelimit-reset"] = str(reset)
    b.observe(headers, now=now, wall=wall)


def test_defaults_are_fractions_of_the_declared_limits() -> None:
    b = RequestBudget(250, 5000)
    assert (b.per_minute, b.per_hour) == (225, 4500)  # 90 % headroom for this process's own traffic
    assert (b.reserve, b.band) == (50, 75)
    assert RequestBudget(1, 1).per_minute == 1  # never zero
    assert RequestBudget(5, 100).reserve == 2


@pytest.mark.parametrize("foreground", [True, False])
def test_own_traffic_never_exceeds_the_headroom_of_a_minute(foreground: bool) -> None:
    b = budget(10, 5000, headroom=1.0, burst=1.0)
    for i in range(10):
        assert b.try_take(T0 + i, WALL, foreground=foreground) == 0
    # The 11th must wait until the first leaves the rolling minute (plus some jitter).
    assert 50.0 <= b.try_take(T0 + 10, WALL, foreground=foreground) <= 55.0
    assert b.try_take(T0 + 60, WALL, foreground=foreground) == 0


def test_own_traffic_never_exceeds_the_headroom_of_an_hour() -> None:
    b = budget(1000, 3, headroom=1.0)
    for i in range(3):
        b.take(T0 + i * 100, foreground=True)
    assert 3300.0 <= b.try_take(T0 + 300, WALL, foreground=True) <= 3305.0
    assert b.try_take(T0 + 3600, WALL, foreground=True) == 0


def test_remaining_is_estimated_between_responses() -> None:
    b = budget(250, 5000)
    assert b.remaining(T0) is None  # nothing seen yet
    b.take(T0, foreground=True)
    seen(b, 100, now=T0 + 0.1)
    assert b.remaining(T0 + 0.1) == 100
    for i in range(3):
        b.take(T0 + 1 + i, foreground=True)
    assert b.remaining(T0 + 5) == 97  # minus what this process sent since
    assert b.remaining(T0 + 60.05) == 98  # plus its own requests that left the window since
    assert b.remaining(T0 + 60.2) is None  # a whole window later the count says nothing


def test_background_slows_down_in_proportion_as_the_token_fills_up() -> None:
    b = budget(250, 5000)  # reserve 50, band 75
    top = b.rate(T0, WALL)
    seen(b, 200)
    assert b.rate(T0, WALL) == pytest.approx(top)  # plenty left: full speed
    seen(b, 50 + 75 // 2)
    assert b.rate(T0, WALL) == pytest.approx(top * (75 // 2) / 75)
    seen(b, 50)
    assert b.rate(T0, WALL) == pytest.approx(top * RequestBudget.PROBE_FRACTION)  # at the reserve: a probe
    seen(b, 3)
    assert b.rate(T0, WALL) == pytest.approx(top * RequestBudget.PROBE_FRACTION)


def test_foreground_calls_use_the_reserve_background_polls_leave() -> None:
    b = budget(250, 5000)
    seen(b, 20, reset=WALL + 30)
    assert b.try_take(T0, WALL) == 0  # one probe...
    assert b.try_take(T0, WALL) > 1.0  # ...then one every ~1/probe-rate seconds...
    assert b.try_take(T0, WALL, foreground=True) == 0  # ...while a start or cancel goes at once
    for _ in range(18):
        b.take(T0, foreground=True)
    assert b.remaining(T0) == 0
    # Nothing left: everyone waits for the server's reset, foreground calls too.
    assert 30.0 <= b.try_take(T0, WALL, foreground=True) <= 38.0
    assert b.try_take(T0 + 31, WALL + 31, foreground=True) == 0


def test_a_window_nothing_has_left_yet_is_spread_until_its_reset() -> None:
    # 100 left, and the oldest request leaves the window in 60 s: spend the 50 above the
    # reserve over those 60 s, not at once (nothing comes back before then).
    b = budget(250, 5000)
    top = b.rate(T0, WALL)
    seen(b, 100, reset=WALL + 60)
    assert b.rate(T0, WALL) == pytest.approx(50 / 60)
    assert b.rate(T0, WALL + 30) == pytest.approx(50 / 30)  # later, the same count lasts a shorter time
    # Reset passed: requests leave the window again; only the count's band slows the polls.
    assert b.rate(T0, WALL + 60) == pytest.approx(top * 50 / 75)


def test_the_others_rate_is_learnt_while_nothing_leaves_the_window() -> None:
    b = budget(250, 5000)
    top = b.rate(T0, WALL)
    seen(b, 220, reset=WALL + 60)
    for _ in range(5):
        b.take(T0 + 1, foreground=True)
    # 30 fewer 10 s later, 5 of them ours: the others sent 25 (2.5/s, smoothed over 5 s).
    seen(b, 190, now=T0 + 10, reset=WALL + 60, wall=WALL + 10)
    others = 2.5 * (1 - math.exp(-10 / RequestBudget.OTHERS_SMOOTHING))
    # What is left above the reserve, spread until the reset, after what the others send:
    assert b.rate(T0 + 10, WALL + 10) == pytest.approx((190 - 50) / 50 - others)
    # Once requests leave the window, the drop no longer tells who sent what: forgotten.
    seen(b, 150, now=T0 + 70, reset=WALL + 60, wall=WALL + 70)
    assert b.rate(T0 + 70, WALL + 70) == pytest.approx(top)  # back to full speed


def test_answers_of_requests_sent_together_are_not_read_as_the_others_traffic() -> None:
    """
    Catches in-flight requests counted as another user's: twenty polls sent at once are answered
    one by one, each count one lower; none of that drop is the others', and the rate stays full.
    """
    b = budget(250, 5000)
    top = b.rate(T0, WALL)
    for _ in range(20):
        b.take(T0, foreground=True)
    for answered in range(1, 21):
        now = T0 + answered * 0.001
        seen(b, 250 - answered, now=now, reset=WALL + 60, wall=WALL + answered * 0.001)
    assert b.rate(T0 + 0.02, WALL + 0.02) == pytest.approx(min(top, (230 - 50) / 60), rel=0.01)


def test_a_count_of_another_window_is_not_read_as_traffic() -> None:
    # The count switches from the hour's (plenty left) to the minute's: not 9,800 requests in 1 s.
    b = budget(250, 100_000)
    top = b.rate(T0, WALL)
    seen(b, 10_000, reset=WALL + 3600)
    seen(b, 200, now=T0 + 1, reset=WALL + 60, wall=WALL + 1)
    assert b.rate(T0 + 1, WALL + 1) == pytest.approx(min(top, (200 - 50) / 59))


def test_others_and_this_process_together_keep_within_the_minute_budget() -> None:
    b = budget(250, 100_000)  # 225/min for this process: 3.75/s
    top = b.rate(T0, WALL)
    seen(b, 90_000, reset=WALL + 3600)  # an hourly count: plenty left, its window young
    seen(b, 89_940, now=T0 + 20, reset=WALL + 3600, wall=WALL + 20)  # others: 3/s
    others = 3.0 * (1 - math.exp(-20 / RequestBudget.OTHERS_SMOOTHING))
    assert b.rate(T0 + 20, WALL + 20) == pytest.approx(225 / 60 - others)
    assert b.rate(T0 + 20, WALL + 20) < top


def test_the_burst_shrinks_with_the_room_left() -> None:
    b = budget(250, 5000)  # a burst of 22 when the token has room
    sent = 0
    while b.try_take(T0, WALL) == 0:
        sent += 1
    assert sent == 22
    # Idle for a while: the bucket refills; but with the token at its reserve, one probe only.
    later = T0 + 30
    seen(b, 50, now=later)
    assert b.try_take(later, WALL + 30) == 0
    assert b.try_take(later, WALL + 30) > 1.0


def test_an_exhausted_token_waits_for_the_reset_then_probes() -> None:
    b = budget(250, 5000)
    seen(b, 0, reset=WALL + 42)
    assert 42.0 <= b.try_take(T0, WALL, foreground=True) <= 47.0
    assert b.try_take(T0 + 42, WALL + 42, foreground=True) == 0  # the server's oldest request has left
    # A reset far away (it may describe the hour while the minute window is full): a short
    # window at most, then a request probes again; its answer says whether to keep waiting.
    seen(b, 0, reset=WALL + 3000)
    assert 60.0 <= b.try_take(T0, WALL, foreground=True) <= 65.0
    assert b.try_take(T0 + 60, WALL + 60, foreground=True) == 0


def test_a_429_holds_every_caller_and_halves_the_background_rate() -> None:
    b = budget(250, 5000)
    top = b.rate(T0)
    b.observe({"retry-after": "12"}, 429, now=T0)
    b.observe({"retry-after": "12"}, 429, now=T0 + 0.01)  # the other requests that were in flight
    assert b.limited == 2
    assert b.rate(T0) == pytest.approx(top / 2)  # one cut for the episode, not one per 429
    for foreground in (True, False):
        assert 12.0 <= b.try_take(T0, WALL, foreground=foreground) <= 16.0
    # The rate climbs back over a minute.
    assert b.rate(T0 + 30) == pytest.approx(top * 0.75)
    assert b.rate(T0 + 60) == pytest.approx(top)
    # A 429 after the hold is a new episode: another cut.
    b.observe({"retry-after": "1"}, 429, now=T0 + 20)
    assert b.rate(T0 + 20) == pytest.approx(top * (0.5 + 0.5 * 20 / 60) / 2)


@pytest.mark.parametrize(
    "headers",
    [
        {"ratelimit-remaining": "many"},
        {"ratelimit-reset": "soon"},
        {"ratelimit-remaining": "nan"},
        {"ratelimit-remaining": "inf"},
        {},
    ],
)
def test_unusable_headers_are_ignored(headers: dict[str, str]) -> None:
    b = budget()
    b.observe(headers, now=T0)
    assert b.remaining(T0) is None
    assert b.try_take(T0, WALL) == 0


def test_acquire_lets_background_callers_go_in_order_without_bursts() -> None:
    """
    On a virtual-time loop (the budget reads that loop's clock): a burst of 6, then 54 per second,
    first come first served. (Letting the queue go unordered, or without pacing, turns this red.)
    """
    loop, _ = virtual_time_loop()
    b = RequestBudget(60, 10**6, headroom=1.0, burst=0.1, minute_window=1.0, clock=loop.time)
    sent: list[tuple[int, float]] = []

    async def caller(index: int) -> None:
        await b.acquire()
        sent.append((index, loop.time()))

    async def everyone() -> None:
        await asyncio.gather(*(caller(i) for i in range(60)))

    try:
        loop.run_until_complete(everyone())
    finally:
        loop.close()
    assert [index for index, _ in sent] == list(range(60))  # first come, first served
    times = [at for _, at in sent]
    assert times[:6] == [0.0] * 6  # the burst
    assert times[-1] == pytest.approx(1.0, abs=0.02)  # then 54 in the next second
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[6:])]
    assert min(gaps) == pytest.approx(1 / 54, rel=0.05), gaps
    assert b.waited == pytest.approx(times[-1], abs=0.05)  # the head of the queue waited, the others queued


async def test_a_foreground_call_does_not_queue_behind_background_polls() -> None:
    b = RequestBudget(60, 10**6, headroom=1.0, burst=0.02, minute_window=1.0)
    polls = [asyncio.ensure_future(b.acquire()) for _ in range(30)]  # half a second of polls
    await asyncio.sleep(0)
    await b.acquire(foreground=True)
    # It went while the polls queued in front of it were still waiting for their turns.
    assert sum(not poll.done() for poll in polls) >= 20
    await asyncio.gather(*polls)


def test_acquire_sync_waits_for_the_server_then_takes(no_sleep: list[float]) -> None:
    b = sync_budget_for("token-key-sync", 250, 5000)
    assert sync_budget_for("token-key-sync", 250, 5000) is b
    b.observe_now({"ratelimit-remaining": "0", "ratelimit-reset": str(time.time() + 20)})
    b.acquire_sync()
    assert len(no_sleep) == 1
    assert 19.0 <= no_sleep[0] <= 26.0
    assert b.waited == pytest.approx(no_sleep[0])


def test_a_wait_longer_than_the_callers_budget_is_left_to_the_server(no_sleep: list[float]) -> None:
    # A call with 5 s of retry budget left does not sleep 20 s for the reset: it goes, and the
    # server's answer (a 429 that ends the call, or a success) decides.
    b = sync_budget_for("token-key-short", 250, 5000)
    b.observe_now({"ratelimit-remaining": "0", "ratelimit-reset": str(time.time() + 20)})
    b.acquire_sync(max_wait=5.0)
    assert no_sleep == []
    assert b.remaining(_budget.time.monotonic()) == -1  # the slot was taken all the same


def test_a_free_slot_is_taken_once_also_with_no_patience_left() -> None:
    b = sync_budget_for("token-key-once", 250, 5000)
    b.observe_now({"ratelimit-remaining": "100"})
    b.acquire_sync(max_wait=-1.0)  # the caller's retry budget has run out: still one request
    assert b.remaining(time.monotonic()) == 99


def test_acquire_gives_up_waiting_after_max_wait_too() -> None:
    """The reset is 600 s away and the caller has 1 s: it goes at once (virtual time does not move)."""
    loop, _ = virtual_time_loop()
    b = RequestBudget(250, 5000, clock=loop.time)
    b.observe_now({"ratelimit-remaining": "0", "ratelimit-reset": str(time.time() + 600)})
    try:
        loop.run_until_complete(b.acquire(max_wait=1.0))
        assert loop.time() == 0.0  # not the 600 s until the reset
    finally:
        loop.close()
    assert b.waited == 0
    assert b.remaining(0.0) == -1  # the slot was taken all the same


def test_sync_budgets_are_shared_across_threads() -> None:
    found: list[RequestBudget] = []
    threads = [threading.Thread(target=lambda: found.append(sync_budget_for("k", 250, 5000))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(b) for b in found}) == 1
    assert sync_budget_for("k", 100, 5000) is not found[0]  # other declared limits: another budget


async def test_budget_for_is_shared_per_token_and_loop() -> None:
    a = budget_for("token-key-a", 250, 5000)
    assert budget_for("token-key-a", 250, 5000) is a
    assert budget_for("token-key-b", 250, 5000) is not a
    assert budget_for("token-key-a", 100, 5000) is not a


def test_budget_for_differs_per_loop() -> None:
    async def get() -> RequestBudget:
        return budget_for("token-key-loop", 250, 5000)

    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert loop_a.run_until_complete(get()) is not loop_b.run_until_complete(get())
    finally:
        loop_a.close()
        loop_b.close()


def test_a_new_loop_never_inherits_a_dead_loops_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Budgets are per loop object. CPython often gives a new loop the id() of one just freed;
    # make every id() in the module collide to show that two loops never share a budget (and
    # a later loop never inherits a "wait 600 s for the reset" that an earlier one heard).
    monkeypatch.setattr(_budget, "id", lambda obj: 42, raising=False)

    async def exhaust() -> None:
        budget_for("token-key-dead", 250, 5000).observe_now(
            {"ratelimit-remaining": "0", "ratelimit-reset": str(time.time() + 600)}
        )

    async def delay() -> float:
        return budget_for("token-key-dead", 250, 5000).try_take(time.monotonic(), time.time())

    loop = asyncio.new_event_loop()
    loop.run_until_complete(exhaust())
    assert loop.run_until_complete(delay()) > 50  # (a far reset is waited for one short window at a time)
    assert asyncio.run(delay()) == 0
    loop.close()

    # A dead loop's budgets do not keep it alive.
    dead = weakref.ref(loop)
    del loop
    gc.collect()
    assert dead() is None


async def test_hook_feeds_the_budget_from_response_headers(make_conn: Any) -> None:
    reset = time.time() + 30

    async def handler(request: web.Request) -> web.Response:
        headers = {"ratelimit-limit": "250", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
        return web.json_response({"job": {"uuid": JOB}}, headers=headers)

    app = web.Application()
    app.router.add_get(f"/v2/gen-ai/indexing_jobs/{JOB}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    conn = make_conn("gradient_budget", host=f"http://127.0.0.1:{server.port}", password="dop_v1_budget_token")
    hook = GradientHook(conn.conn_id)
    try:
        await hook.aget_indexing_job(JOB)
        settings = await hook.asettings()
        b = budget_for(settings.token_key, settings.requests_per_minute, settings.requests_per_hour)
        assert 25.0 < b.try_take(time.monotonic(), time.time()) <= 38.0  # the next poll waits for the server's reset
        assert "dop_v1_budget_token" not in repr([list(b) for b in _budget.BUDGETS.values()])
    finally:
        await hook.aclose()
        await server.close()
