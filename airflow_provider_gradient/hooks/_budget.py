"""
A per-token request budget shared by every async caller in one process (the triggerer).

DigitalOcean allows 250 requests per rolling minute and 5,000 per rolling hour per token, shared
by everything that uses the token. Thousands of triggers polling through one connection must stay
under that together, so every async request first takes a slot here. The budget also listens to
the server's ``ratelimit-remaining`` / ``ratelimit-reset`` headers: when other users of the token
(another triggerer, a script) have used it up, it waits for the reset instead of provoking 429s.

Requests are paced, not just counted: each caller reserves its own send time, first come first
served, so a thousand triggers due at once go out evenly spread instead of in a burst that
empties the window followed by everyone waking together at its edge.
"""

from __future__ import annotations

import asyncio
import math
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
    Smooth pacing within rolling-window limits, for one token.

    :meth:`acquire` first reserves a send time on a pacing schedule (GCRA "virtual scheduling",
    one per window): up to ``burst`` of a window's budget may go at once, after that requests are
    spaced evenly, in the order they asked. The spacing is chosen so that the schedule alone keeps
    every rolling window within the budget (a window of length ``W`` then holds at most
    ``W / interval + burst`` = the budget), so nobody waits at a window's edge. The windows and the
    server's headers are still checked before a slot is taken, as a safety net.

    With the defaults (250/min and 5,000/h, 90 % headroom, 20 % burst): 45 requests at once, then
    one every 1/3 s (180/min) while the hourly burst of 900 lasts, then one per second (3,600/h).

    :param per_minute: The token's per-minute limit.
    :param per_hour: The token's per-hour limit.
    :param headroom: Fraction of each limit this process may use (leaves room for others).
    :param reserve: When the server reports this many requests left or fewer, wait for its reset
        (default: a tenth of ``per_minute``, at least 5).
    :param burst: Fraction of each window's budget that may go without pacing.
    :param minute_window: Length of the short window in seconds (benchmarks compress time).
    :param hour_window: Length of the long window in seconds.
    """

    def __init__(
        self,
        per_minute: int = 250,
        per_hour: int = 5000,
        *,
        headroom: float = 0.9,
        reserve: int | None = None,
        burst: float = 0.2,
        minute_window: float = _MINUTE,
        hour_window: float = _HOUR,
    ):
        self.per_minute = max(1, int(per_minute * headroom))
        self.per_hour = max(1, int(per_hour * headroom))
        # By default keep a tenth of the token's minute limit for its other users (the workers'
        # starts, another triggerer, a script): stop when the server says only that much is left.
        self.reserve = max(5, per_minute // 10) if reserve is None else reserve
        self.minute_window = minute_window
        self.hour_window = hour_window
        self._minute: deque[float] = deque()
        self._hour: deque[float] = deque()
        self._pace_minute = _Pacer(self.per_minute, minute_window, burst)
        self._pace_hour = _Pacer(self.per_hour, hour_window, burst)
        self._server_remaining: int | None = None
        self._server_reset: float | None = None  # epoch seconds
        self._server_low_until: float | None = None  # monotonic end of the current wait for the server
        self.waited = 0.0  # total seconds callers spent waiting, for benchmarks

    def delay(self, now: float | None = None, wall: float | None = None) -> float:
        """Seconds until the next request may go (0 if it may go now). Does not take a slot."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        while self._minute and self._minute[0] <= now - self.minute_window:
            self._minute.popleft()
        while self._hour and self._hour[0] <= now - self.hour_window:
            self._hour.popleft()
        wait = 0.0
        if len(self._minute) >= self.per_minute:
            wait = self._minute[0] + self.minute_window - now
        if len(self._hour) >= self.per_hour:
            wait = max(wait, self._hour[0] + self.hour_window - now)
        if (
            self._server_remaining is not None
            and self._server_remaining <= self.reserve
            and self._server_reset is not None
        ):
            # Wait for the reset, but at most one short window at a time: the server's count may be
            # the short window's (the headers do not say which), and a whole hour is too long to
            # stall on a guess. Then a request probes again; its headers say whether to keep waiting.
            if self._server_low_until is None:
                self._server_low_until = now + self.minute_window
            until = min(self._server_reset - wall, self._server_low_until - now)
            if until > 0:
                wait = max(wait, until)
            else:
                self._server_remaining = None
                self._server_low_until = None
        return wait

    def take(self, now: float | None = None) -> None:
        """Record that a request is being sent now."""
        now = time.monotonic() if now is None else now
        self._minute.append(now)
        self._hour.append(now)
        if self._server_remaining is not None:
            self._server_remaining -= 1

    def reserve_slot(self, now: float | None = None) -> float:
        """Reserve the next send time on the pacing schedule (monotonic seconds, ``>= now``)."""
        now = time.monotonic() if now is None else now
        slot = max(now, self._pace_minute.earliest(), self._pace_hour.earliest())
        self._pace_minute.book(slot)
        self._pace_hour.book(slot)
        return slot

    async def acquire(self) -> None:
        """Wait for this caller's paced turn and for room in the windows, then take a slot."""
        now = time.monotonic()
        pace = self.reserve_slot(now) - now
        if pace > 0:
            self.waited += pace
            await asyncio.sleep(pace)
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
                if self._server_remaining > self.reserve:
                    self._server_low_until = None
            if reset is not None:
                self._server_reset = float(reset)
        except ValueError:
            return


class _Pacer:
    """
    GCRA for one window: ``burst`` requests at once, then one per ``interval``, such that any
    rolling window of ``window`` seconds holds at most ``limit`` of them.
    """

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, limit: int, window: float, burst: float) -> None:
        size = min(limit, max(1, int(limit * burst)))
        self.interval = window / max(1, limit - size)
        self.tolerance = (size - 1) * self.interval
        self.tat = -math.inf  # theoretical arrival time of the next request

    def earliest(self) -> float:
        return self.tat - self.tolerance

    def book(self, slot: float) -> None:
        self.tat = max(self.tat, slot) + self.interval


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
