"""
A per-token request budget shared by every async caller in one process (the triggerer).

DigitalOcean allows 250 requests per rolling minute and 5,000 per rolling hour per token, shared
by everything that uses the token. Thousands of triggers polling through one connection must stay
under that together, so every async request first takes a slot here. The budget also listens to
the server's ``ratelimit-remaining`` / ``ratelimit-reset`` headers: when other users of the token
(another triggerer, a script) have used it up, it waits for the reset instead of provoking 429s.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["BUDGETS", "RequestBudget", "budget_for"]

_MINUTE = 60.0
_HOUR = 3600.0


class RequestBudget:
    """
    Rolling-window pacing for one token.

    :param per_minute: The token's per-minute limit.
    :param per_hour: The token's per-hour limit.
    :param headroom: Fraction of each limit this process may use (leaves room for others).
    :param reserve: When the server reports this many requests left or fewer, wait for its reset.
    """

    def __init__(self, per_minute: int = 250, per_hour: int = 5000, *, headroom: float = 0.9, reserve: int = 5):
        self.per_minute = max(1, int(per_minute * headroom))
        self.per_hour = max(1, int(per_hour * headroom))
        self.reserve = reserve
        self._minute: deque[float] = deque()
        self._hour: deque[float] = deque()
        self._server_remaining: int | None = None
        self._server_reset: float | None = None  # epoch seconds
        self.waited = 0.0  # total seconds callers spent waiting, for benchmarks

    def delay(self, now: float | None = None, wall: float | None = None) -> float:
        """Seconds until the next request may go (0 if it may go now). Does not take a slot."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        while self._minute and self._minute[0] <= now - _MINUTE:
            self._minute.popleft()
        while self._hour and self._hour[0] <= now - _HOUR:
            self._hour.popleft()
        wait = 0.0
        if len(self._minute) >= self.per_minute:
            wait = self._minute[0] + _MINUTE - now
        if len(self._hour) >= self.per_hour:
            wait = max(wait, self._hour[0] + _HOUR - now)
        if (
            self._server_remaining is not None
            and self._server_remaining <= self.reserve
            and self._server_reset is not None
        ):
            if self._server_reset > wall:
                wait = max(wait, self._server_reset - wall)
            else:
                self._server_remaining = None
        return wait

    def take(self, now: float | None = None) -> None:
        """Record that a request is being sent now."""
        now = time.monotonic() if now is None else now
        self._minute.append(now)
        self._hour.append(now)
        if self._server_remaining is not None:
            self._server_remaining -= 1

    async def acquire(self) -> None:
        """Wait until a request may be sent within the budget, then take a slot."""
        while True:
            wait = self.delay()
            if wait <= 0:
                self.take()
                return
            # Spread the waiters: without jitter they would all wake together and burst.
            wait += random.uniform(0, min(5.0, 0.1 + wait / 4))
            self.waited += wait
            await asyncio.sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's ``ratelimit-remaining`` and ``ratelimit-reset`` headers."""
        remaining = headers.get("ratelimit-remaining")
        reset = headers.get("ratelimit-reset")
        try:
            if remaining is not None:
                self._server_remaining = int(float(remaining))
            if reset is not None:
                self._server_reset = float(reset)
        except ValueError:
            return


#: One budget per event loop and token; the key never contains the token itself. Keyed by the
#: loop object (weakly), not ``id(loop)``: a later loop reusing a dead loop's id must not inherit
#: its budget (and its "wait for the server's reset"), and dead loops' budgets are dropped.
BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], RequestBudget]] = (
    weakref.WeakKeyDictionary()
)


def budget_for(token_key: str, per_minute: int, per_hour: int) -> RequestBudget:
    """The shared budget for a token on the running event loop."""
    budgets = BUDGETS.setdefault(asyncio.get_running_loop(), {})
    key = (token_key, per_minute, per_hour)
    budget = budgets.get(key)
    if budget is None:
        budget = budgets[key] = RequestBudget(per_minute, per_hour)
    return budget
