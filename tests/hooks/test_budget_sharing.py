"""
Many processes on one token: triggerers and the workers' task processes, each with its own budget,
coordinating only through the server's headers (a deterministic simulation, see budget_simulation).

The simulation sends through the shipped ``paced_call`` (the hook's async call) and the real
``RequestBudget.acquire``, on a virtual clock: letting background polls go unpaced (``acquire``
treating every caller as foreground), or the hook no longer telling the budget of an answer
(``observe_now`` dropped), turns most of these red.
"""

from __future__ import annotations

import pytest
from budget_simulation import Result, describe, simulate

#: The hook gives up on a call rate limited for this long (the connection's default retry_budget).
RETRY_BUDGET = 300.0
SEEDS = range(5)
#: Seconds over which the 50 task processes start: a quiet machine starts them within 15 s, a
#: loaded one takes a minute or more.
SPREADS = [15.0, 30.0, 60.0, 90.0]


def assert_nothing_failed(result: Result) -> None:
    """Every job was seen ending, and no call waited out its 429s for longer than the retry budget."""
    assert all(value is not None for value in result.noticed_after), describe(result)
    assert max(result.call_seconds) < RETRY_BUDGET, describe(result)
    assert result.peak(accepted_only=True) <= result.config.per_minute


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("task_spread", SPREADS)
@pytest.mark.parametrize("headers", ["binding", "hourly"])
def test_fifty_tasks_two_triggerers_never_meet_the_limit(seed: int, task_spread: float, headers: str) -> None:
    # System scenario 5: naive polling would need 600 requests a minute; the limit is 200. With
    # either reading of the headers (hourly: a young hour, whose count drops by one per request
    # from anyone) every process sees how fast the others spend, and nobody is ever refused.
    result = simulate(seed=seed, task_spread=task_spread, headers=headers)
    assert_nothing_failed(result)
    assert result.limited == 0, describe(result)
    assert result.peak() <= 200, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("triggerers", [1, 3, 4])
def test_any_number_of_triggerers(seed: int, triggerers: int) -> None:
    result = simulate(seed=seed, triggerers=triggerers, task_spread=60.0)
    assert_nothing_failed(result)
    assert result.limited == 0, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_polls_keep_going_and_the_starts_come_first(seed: int) -> None:
    result = simulate(seed=seed, task_spread=90.0)
    assert result.longest_silence() < 15.0, describe(result)
    assert max(result.call_seconds) < 30.0, describe(result)  # no start waits for a window to turn over
    assert max(value for value in result.noticed_after if value is not None) < 30.0, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("task_spread", [15.0, 60.0])
def test_a_burst_limit_nothing_shows(seed: int, task_spread: float) -> None:
    # Hourly headers on a token busy for the past hour: requests leave the hour all the time, so
    # its count says nothing about the minute, and the minute limit shows only as 429s. They hold
    # and slow the processes that meet them; the task processes retry theirs. Nothing fails.
    result = simulate(seed=seed, task_spread=task_spread, headers="hourly", prior_hour=2000)
    assert_nothing_failed(result)
    assert result.limited_share <= 0.25, describe(result)


@pytest.mark.parametrize("seed", SEEDS)
def test_one_triggerer_alone_stays_within_its_headroom(seed: int) -> None:
    result = simulate(seed=seed, triggerers=1, tasks=200, task_spread=0.0, worker_calls=0, poll_interval=2.0)
    assert result.limited == 0, describe(result)
    assert result.peak() <= 200 * 0.9, describe(result)
    assert_nothing_failed(result)


def test_more_starts_than_the_token_allows_wait_instead_of_failing() -> None:
    # 200 tasks starting within two minutes need 400 foreground calls on a 200/min token: the
    # limit itself makes them wait, but none waits past the retry budget, and every job is seen.
    result = simulate(tasks=200, task_spread=120.0, poll_interval=30.0)
    assert_nothing_failed(result)
