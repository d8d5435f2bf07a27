"""The request budget's edges that the pacing tests leave open (found by ``make mutation``)."""

from __future__ import annotations

import random
import time

import pytest

from airflow_provider_gradient.hooks._budget import RequestBudget, sync_budget_for

T0 = 1000.0
WALL = 1_700_000_000.0


def test_sync_budgets_keep_the_declared_limits() -> None:
    b = sync_budget_for("token-key-limits", 100, 2000)
    assert (b.limit_per_minute, b.per_minute, b.per_hour) == (100, 90, 1800)


def test_sync_calls_go_first_by_default(no_sleep: list[float]) -> None:
    """``acquire_sync`` is foreground unless told: 40 calls in a row never wait for the polls' pacing."""
    b = RequestBudget(100, 10**6, rng=random.Random(0))
    for _ in range(40):
        b.acquire_sync()
    assert no_sleep == []
    for _ in range(40):
        b.acquire_sync(foreground=False)  # background callers are paced after their burst
    assert len(no_sleep) >= 30


def test_a_background_request_taken_anyway_borrows_from_the_bucket() -> None:
    """
    ``take`` of a background request borrows one bucket token: after the bucket's one token went,
    the next request waits two intervals instead of one. A foreground ``take`` leaves the bucket.
    """
    waits = []
    for foreground in (False, True):
        b = RequestBudget(20, 10**6, burst=0.1, rng=random.Random(0))  # a bucket of one
        assert b.try_take(T0, WALL) == 0
        if foreground:
            b.take(T0, foreground=True)
        else:
            b.take(T0)  # background unless told
        waits.append(b.try_take(T0, WALL) * b.rate(T0, WALL))
    assert waits == [pytest.approx(2.0), pytest.approx(1.0)]


def test_rate_reads_the_wall_clock_itself() -> None:
    b = RequestBudget(250, 5000, rng=random.Random(0))
    b.observe({"ratelimit-remaining": "200", "ratelimit-reset": str(time.time() + 30)})
    assert b.rate(time.monotonic()) > 0
