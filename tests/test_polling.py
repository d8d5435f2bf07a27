"""Adaptive poll delays."""

from __future__ import annotations

import random

import pytest

from airflow_provider_gradient._polling import FIRST_POLL_FRACTION, GROWTH, MIN_POLL, next_delay


def _no_jitter(poll_interval: float, polls: int) -> float:
    rng = random.Random(0)
    rng.uniform = lambda a, b: 0.0  # type: ignore[method-assign]
    return next_delay(poll_interval, polls, rng)


def test_starts_short_and_grows_to_the_interval() -> None:
    delays = [_no_jitter(300.0, polls) for polls in range(10)]
    assert delays[0] == pytest.approx(300.0 * FIRST_POLL_FRACTION)
    assert delays[1] == pytest.approx(delays[0] * GROWTH)
    assert delays == sorted(delays)
    assert delays[-1] == pytest.approx(300.0)
    assert max(delays) <= 300.0


def test_never_below_the_minimum_unless_the_interval_is_smaller() -> None:
    assert _no_jitter(10.0, 0) == pytest.approx(MIN_POLL)
    assert _no_jitter(0.2, 0) == pytest.approx(0.2)  # tests and impatient users: the interval wins
    assert _no_jitter(0.2, 50) == pytest.approx(0.2)


def test_negative_poll_count_is_treated_as_zero() -> None:
    assert _no_jitter(300.0, -3) == _no_jitter(300.0, 0)


def test_jitter_stays_within_ten_percent() -> None:
    rng = random.Random(42)
    delays = [next_delay(60.0, 20, rng) for _ in range(500)]
    assert min(delays) >= 54.0
    assert max(delays) <= 66.0
    assert len(set(delays)) > 400  # not in lock-step


def test_floor() -> None:
    rng = random.Random(1)
    assert all(next_delay(0.01, 0, rng) >= 0.1 for _ in range(50))
