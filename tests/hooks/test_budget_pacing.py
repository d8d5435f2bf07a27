"""Pacing of the per-token request budget: FIFO send times that keep every rolling window in budget."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time

import pytest

from airflow_provider_gradient.hooks._budget import RequestBudget

T0 = 1000.0


def _most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` (sorted) inside any half-open window ``(t - window, t]``."""
    return max(bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window) for t in times)


def test_default_schedule_bursts_then_spaces_evenly() -> None:
    budget = RequestBudget()  # 250/min and 5,000/h: 225 and 4,500 with the headroom
    slots = [budget.reserve_slot(T0) for _ in range(1200)]
    assert slots[:45] == pytest.approx([T0] * 45)  # the burst goes at once
    assert slots[45] > T0 + 0.3
    gaps = [b - a for a, b in itertools.pairwise(slots[45:])]
    assert all(gap == pytest.approx(60 / 180) for gap in gaps[:500])  # 180/min while the hourly burst lasts
    assert slots == sorted(slots)  # first come, first served


def test_schedule_alone_respects_both_windows_under_overload() -> None:
    # 10,000 callers all due at once: no window may ever hold more than the budget,
    # so nobody ever has to wait at a window's edge.
    budget = RequestBudget(250, 5000)
    slots = [budget.reserve_slot(T0) for _ in range(10_000)]
    assert _most_in_any_window(slots, 60.0) <= budget.per_minute
    assert _most_in_any_window(slots, 3600.0) <= budget.per_hour
    # ...and it is not over-cautious: the sustained rate settles at one per second (3,600/h).
    assert slots[-1] - slots[-2] == pytest.approx(1.0)
    assert slots[-1] - T0 < 10_000 * 1.0


def test_late_callers_are_not_delayed_by_an_idle_past() -> None:
    budget = RequestBudget(250, 5000)
    for _ in range(100):
        budget.reserve_slot(T0)
    # An hour later the schedule has caught up: the next request may go at once.
    assert budget.reserve_slot(T0 + 3600) == T0 + 3600


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_tiny_limits_still_pace(limit: int) -> None:
    budget = RequestBudget(limit, 10_000, headroom=1.0)
    slots = [budget.reserve_slot(T0) for _ in range(5 * limit)]
    assert _most_in_any_window(slots, 60.0) <= max(limit, 2)  # the window check catches any excess
    assert slots[-1] > T0


async def test_concurrent_acquires_go_in_order_without_bursts() -> None:
    # Time-compressed windows (1 s "minute") so the test runs in about a second.
    budget = RequestBudget(60, 10**6, headroom=1.0, burst=0.1, minute_window=1.0)
    sent: list[tuple[int, float]] = []

    async def caller(index: int) -> None:
        await budget.acquire()
        sent.append((index, time.monotonic()))

    started = time.monotonic()
    await asyncio.gather(*(caller(i) for i in range(100)))
    order = [index for index, _ in sent]
    times = [at for _, at in sent]
    assert order == list(range(100))  # FIFO
    assert _most_in_any_window(times, 1.0) <= 60 + 2  # + scheduling slack of the event loop
    # After the burst of 6, spread evenly (54/s), not a burst then a stall at the window's edge.
    assert _most_in_any_window(times[6:], 0.1) <= 6 + 2
    assert 1.5 <= time.monotonic() - started < 5.0  # (100 - 6) / 54 per second
    assert budget.waited > 0


def test_a_far_server_reset_stalls_one_short_window_at_most() -> None:
    # The server's "remaining" may count its short window while "reset" names the hourly one:
    # wait a short window, then probe again instead of stalling for an hour.
    budget = RequestBudget(250, 5000, minute_window=60.0)
    wall = 1_700_000_000.0
    budget.observe({"ratelimit-remaining": "2", "ratelimit-reset": str(wall + 3000)})
    assert budget.delay(now=T0, wall=wall) == pytest.approx(60.0)
    assert budget.delay(now=T0 + 30, wall=wall + 30) == pytest.approx(30.0)
    assert budget.delay(now=T0 + 60, wall=wall + 60) == 0  # probe
    budget.observe({"ratelimit-remaining": "0", "ratelimit-reset": str(wall + 3000)})
    assert budget.delay(now=T0 + 61, wall=wall + 61) == pytest.approx(60.0)  # still exhausted: wait again
    budget.observe({"ratelimit-remaining": "100", "ratelimit-reset": str(wall + 3000)})
    assert budget.delay(now=T0 + 62, wall=wall + 62) == 0
