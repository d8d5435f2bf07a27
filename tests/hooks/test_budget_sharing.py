"""
Many processes on one token: triggerers and the workers' task processes, each with its own budget,
coordinating only through the server's headers (a deterministic simulation, see budget_simulation).
"""

from __future__ import annotations

import pytest
from budget_simulation import describe, simulate

#: The hook gives up on a call rate limited for this long (the connection's default retry_budget).
RETRY_BUDGET = 300.0
SEEDS = range(5)


def assert_nothing_failed(result: object) -> None:
    """Every job was seen ending, and no call waited out its 429s for longer than the retry budget."""
    assert all(value is not None for value in result.noticed_after), describe(result)  # type: ignore[attr-defined]
    assert max(result.call_seconds) < RETRY_BUDGET, describe(result)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("task_spread", [15.0, 90.0], ids=["quick-starts", "slow-starts"])
def test_fifty_tasks_two_triggerers_stay_under_the_limit(seed: int, task_spread: float) -> None:
    # System scenario 5: naive polling would need 600 requests a minute; the limit is 200.
    result = simulate(seed=seed, task_spread=task_spread)
    assert_nothing_failed(result)
    assert result.peak() <= 200, describe(result)  # every attempt, refused ones included
    assert result.limited == 0, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_polls_keep_going_while_the_token_is_busy(seed: int) -> None:
    result = simulate(seed=seed, task_spread=90.0)
    assert result.longest_silence() < 15.0, describe(result)
    # The start requests come first: no task waits a whole window for its start.
    assert max(result.call_seconds) < 60.0, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("task_spread", [15.0, 90.0], ids=["quick-starts", "slow-starts"])
def test_a_burst_limit_the_headers_do_not_show(seed: int, task_spread: float) -> None:
    # As DigitalOcean documents its headers: remaining counts the hour, and the minute limit shows
    # only as a 429. The 429 itself then paces everyone: few of them, and no failure.
    result = simulate(seed=seed, task_spread=task_spread, headers="hourly")
    assert_nothing_failed(result)
    assert result.peak(accepted_only=True) <= 200
    assert result.limited_share <= 0.05, describe(result)
    assert result.peak() <= 200 * 1.15, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
def test_four_triggerers(seed: int) -> None:
    result = simulate(seed=seed, triggerers=4, task_spread=60.0)
    assert_nothing_failed(result)
    assert result.limited_share <= 0.15, describe(result)
    assert result.peak() <= 200 * 1.25, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
def test_one_triggerer_alone_never_meets_the_limit(seed: int) -> None:
    result = simulate(seed=seed, triggerers=1, tasks=200, task_spread=0.0, worker_calls=0, poll_interval=2.0)
    assert result.limited == 0, describe(result)
    assert result.peak() <= 200 * 0.9, describe(result)  # its own headroom
    assert_nothing_failed(result)


def test_more_starts_than_the_token_allows_wait_instead_of_failing() -> None:
    # 200 tasks starting within two minutes need 400 foreground calls on a 200/min token: the
    # limit itself makes them wait, but none waits past the retry budget, and every job is seen.
    result = simulate(tasks=200, task_spread=120.0, poll_interval=30.0)
    assert_nothing_failed(result)
    assert result.peak(accepted_only=True) <= 200
