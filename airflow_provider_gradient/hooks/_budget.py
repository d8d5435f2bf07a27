"""
A per-token request budget: how every process that uses a token stays under its limits together.

DigitalOcean allows each token 250 requests per rolling minute and 5,000 per rolling hour, shared by
everything that uses it: each triggerer, each worker's task process, any script. Those processes
may run on different hosts and share nothing but the API, so they coordinate through what the API
tells each of them: ``ratelimit-remaining`` / ``ratelimit-reset`` on every response, ``retry-after``
on a 429. Each process keeps one budget per token (per event loop for async callers, one per
process for sync callers) and passes every request through it.

A request has one of two priorities:

* **foreground**: a task's own calls (a worker reading the knowledge base and starting the job, a
  cancel). They go at once unless the server asked everyone to wait: a 429's ``retry-after``, or a
  remaining count that has reached zero (then until ``ratelimit-reset``).
* **background**: the polls of the waits (triggers). They are paced, and they make way as the token
  fills up, so that the foreground calls find room. A token bucket (``burst`` of the minute budget
  at once, then evenly spaced) runs at the smallest of these rates:

  - **The room left.** The rate falls in proportion as the server's remaining count drops from
    ``reserve + band`` to ``reserve``. Every process sees the same count, so all of them slow down
    together, however many there are, and the count settles above ``reserve``: that is left to
    foreground calls and to new processes, whose first request cannot know the count yet. At or
    below ``reserve`` only a slow probe goes, which keeps the count fresh.
  - **A young window.** While the oldest request counted is still in the window (the reset is
    ahead), nothing comes back before the reset, and every request anyone sends lowers the count
    by one: the drop, less this process's own requests, is the rate at which the others send. What
    is left above ``reserve`` is then spread until the reset, after the others' rate, instead of
    being spent at once.
  - **The minute budget.** Together with the others' rate, no more than ``headroom`` of the
    minute limit, also when the count describes the hour (as DigitalOcean documents it), which
    keeps a minute limit the headers do not show in sight.
  - **429s.** When a limit is met all the same, the top rate halves, then climbs back over a
    minute (additive increase, multiplicative decrease), and every caller waits ``retry-after``.

  The process's own traffic never exceeds ``headroom`` of the declared limits in any rolling
  window, and its hourly use is spread out (a GCRA schedule).

Between responses the remaining count is estimated: the last one seen, minus what this process
sent since, plus this process's requests that have left the minute window since.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["BUDGETS", "SYNC_BUDGETS", "RequestBudget", "budget_for", "sync_budget_for"]

_MINUTE = 60.0
_HOUR = 3600.0


class RequestBudget:
    """
    Pacing within rolling-window limits for one token, shared with other processes via the headers.

    The methods that decide (:meth:`try_take`, :meth:`observe`) take explicit clock readings
    (``now``: monotonic seconds, ``wall``: epoch seconds), so the algorithm can be driven
    deterministically; :meth:`acquire` and :meth:`acquire_sync` wrap them with the budget's
    ``clock`` and ``wall`` and with ``asyncio.sleep`` / ``time.sleep`` (a simulation runs
    :meth:`acquire` on an event loop whose time is virtual, with that loop's clock).

    :param per_minute: The token's per-minute limit.
    :param per_hour: The token's per-hour limit.
    :param headroom: Fraction of each limit this process may use at most (its own traffic).
    :param reserve: Background requests make way when the server reports this many requests left
        or fewer (default: a fifth of ``per_minute``).
    :param band: Background requests slow down gradually while the server's remaining count is
        within this many above ``reserve`` (default: three tenths of ``per_minute``).
    :param burst: Fraction of the minute budget that background requests may send at once.
    :param minute_window: Length of the short window in seconds (benchmarks compress time).
    :param hour_window: Length of the long window in seconds.
    :param rng: Random source for the jitter of waits (tests and simulations pass a seeded one).
    :param clock: Monotonic seconds (default :func:`time.monotonic`).
    :param wall: Epoch seconds (default :func:`time.time`).
    """

    #: The slowest background rate, as a fraction of the top rate: the probe that keeps the
    #: server's count fresh while the token is at its reserve.
    PROBE_FRACTION = 1 / 20
    #: Seconds over which the estimate of the other users' request rate is smoothed.
    OTHERS_SMOOTHING = 5.0

    def __init__(
        self,
        per_minute: int = 250,
        per_hour: int = 5000,
        *,
        headroom: float = 0.9,
        reserve: int | None = None,
        band: int | None = None,
        burst: float = 0.1,
        minute_window: float = _MINUTE,
        hour_window: float = _HOUR,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.clock = time.monotonic if clock is None else clock
        self.wall = time.time if wall is None else wall
        self.limit_per_minute = per_minute  # as declared, before the headroom
        self.per_minute = max(1, int(per_minute * headroom))
        self.per_hour = max(1, int(per_hour * headroom))
        self.reserve = max(2, round(per_minute * 0.2)) if reserve is None else reserve
        self.band = max(1, round(per_minute * 0.3)) if band is None else band
        self.minute_window = minute_window
        self.hour_window = hour_window
        self._rng = rng or random.Random()
        # This process's own sends (monotonic times) in each rolling window.
        self._minute: deque[float] = deque()
        self._hour: deque[float] = deque()
        # Background pacing: a token bucket at an adaptive rate, and the hourly schedule.
        self._bucket = _Bucket(max(1, int(self.per_minute * burst)))
        top = max(1, self.per_minute - self._bucket.capacity) / minute_window
        self._ceiling = _Ceiling(top, recovery=minute_window)
        self._pace_hour = _Pacer(self.per_hour, hour_window, 0.2)
        # The server's view: its remaining count when last seen, and this process's own count then.
        self._remaining: int | None = None
        self._seen_count = 0
        self._seen_at = -math.inf  # monotonic
        self._sent = 0  # requests this process sent, ever
        self._seen_sent = 0  # ... when the remaining count was last seen
        self._answered = 0  # responses this process observed, ever
        self._seen_answered = 0  # ... when the remaining count was last seen
        self._others = 0.0  # requests per second the token's other users send (smoothed)
        self._reset_at: float | None = None  # epoch seconds
        self._hold_until = -math.inf  # monotonic: a 429's retry-after
        self._turn: asyncio.Lock | None = None
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds callers spent waiting, for benchmarks
        self.limited = 0  # 429s seen

    # ----------------------------------------------------------------------------------------
    # The decision, on explicit clocks
    # ----------------------------------------------------------------------------------------

    def remaining(self, now: float) -> int | None:
        """The estimated server remaining count now, or ``None`` when unknown or stale."""
        self._expire(now)
        return self._left(now)

    def rate(self, now: float, wall: float | None = None) -> float:
        """Requests per second background callers may send now."""
        return self._pacing(now, self.wall() if wall is None else wall, self.remaining(now))[0]

    def try_take(self, now: float, wall: float, *, foreground: bool = False) -> float:
        """
        Take a slot for a request sent now and return 0, or return how many seconds to wait first.

        :param now: Monotonic seconds.
        :param wall: Epoch seconds (the server's ``ratelimit-reset`` is one).
        :param foreground: The caller's priority (see the module docstring).
        """
        self._expire(now)
        minute, hour = self._minute, self._hour
        until = self._hold_until
        if len(minute) >= self.per_minute:
            until = max(until, minute[0] + self.minute_window)
        if len(hour) >= self.per_hour:
            until = max(until, hour[0] + self.hour_window)
        left = self._left(now)
        if left is not None and left <= 0:
            until = max(until, self._next_free(now, wall))
        if until > now:
            # Spread the waiters out: without jitter they would all wake together and burst.
            return until - now + self._rng.uniform(0.0, min(5.0, 0.1 + (until - now) / 4))
        if not foreground:
            rate, share = self._pacing(now, wall, left)
            delay = max(self._pace_hour.earliest() - now, self._bucket.wait(now, rate, share))
            if delay > 0:
                return delay
            self._bucket.tokens -= 1.0
            self._pace_hour.book(now)
        minute.append(now)
        hour.append(now)
        self._sent += 1
        return 0.0

    def take(self, now: float, *, foreground: bool = False) -> None:
        """Record a request sent now whatever the budget says (a caller that cannot wait any longer)."""
        self._expire(now)
        self._minute.append(now)
        self._hour.append(now)
        self._sent += 1
        if not foreground:
            self._bucket.tokens -= 1.0  # borrowed: refilled from the next check on
            self._pace_hour.book(now)

    def _left(self, now: float) -> int | None:
        if self._remaining is None or now - self._seen_at >= self.minute_window:
            return None
        return self._remaining - (len(self._minute) - self._seen_count)

    def _pacing(self, now: float, wall: float, left: int | None) -> tuple[float, float]:
        """The background rate now, and the share of the top rate (and of the burst) it is."""
        top = self._ceiling.value(now)
        if left is None:
            return top, 1.0
        share = min(1.0, max(0.0, (left - self.reserve) / self.band))
        # Together with the others, stay within this process's minute budget (a minute limit the
        # headers may not show).
        share = min(share, (self.per_minute / self.minute_window - self._others) / top)
        until_reset = self._reset_at - wall if self._reset_at is not None else 0.0
        if until_reset > 1.0:
            # Nothing leaves the window before the reset: spread what is left over the time until
            # then, after what the others are sending, instead of spending it at once and leaving
            # none for the tasks' own calls.
            share = min(share, ((left - self.reserve) / until_reset - self._others) / top)
        share = max(self.PROBE_FRACTION, share)
        return top * share, share

    def observe(
        self, headers: Mapping[str, str], status: int = 200, now: float | None = None, wall: float | None = None
    ) -> None:
        """Learn from a response: its ``ratelimit-*`` headers and, for a 429, its ``retry-after``."""
        now = self.clock() if now is None else now
        wall = self.wall() if wall is None else wall
        self._expire(now)
        self._answered += 1
        remaining = _number(headers.get("ratelimit-remaining"))
        reset = _number(headers.get("ratelimit-reset"))
        if remaining is not None:
            self._learn_others(int(remaining), now, wall)
            self._remaining = int(remaining)
            self._seen_count = len(self._minute)
            self._seen_sent = self._sent
            self._seen_answered = self._answered
            self._seen_at = now
        if reset is not None:
            self._reset_at = reset
        if status == 429:
            self.limited += 1
            if now >= self._hold_until:  # one cut per episode: the 429s of requests in flight are one signal
                self._ceiling.cut(now)
            retry_after = _number(headers.get("retry-after"))
            if retry_after is not None:
                self._hold_until = max(self._hold_until, now + max(0.0, retry_after))

    def _learn_others(self, remaining: int, now: float, wall: float) -> None:
        """
        Update the estimate of what the token's other users send. While nothing leaves the window
        (its oldest request is still in it), every request anyone sends lowers the count by one:
        the drop since the last count, less this process's own requests, is the others' share.
        """
        elapsed = now - self._seen_at
        if self._remaining is None or elapsed >= self.minute_window:
            self._others = 0.0  # nothing recent to compare with
            return
        if self._reset_at is None or self._reset_at <= wall:
            self._others = 0.0  # requests leave the window: the drop no longer tells who sent what
            return
        if elapsed <= 0:
            return
        # Ours among the drop: every request sent since, and every one still unanswered then (the
        # server may have counted it after the last count seen, whatever order the answers came in).
        in_flight = max(0, self._seen_sent - self._seen_answered)
        others = (self._remaining - remaining) - (self._sent - self._seen_sent) - in_flight
        if others > self.limit_per_minute:
            return  # more than a minute's worth at once: the count now describes another window
        weight = 1.0 - math.exp(-elapsed / self.OTHERS_SMOOTHING)
        self._others += weight * (max(0, others) / elapsed - self._others)

    def _next_free(self, now: float, wall: float) -> float:
        """When the server surely has room again after reporting none (monotonic time)."""
        candidates = [self._seen_at + self.minute_window]  # the whole window has turned over: probe
        if self._minute:
            candidates.append(self._minute[0] + self.minute_window)  # our oldest request leaves it
        if self._reset_at is not None:
            candidates.append(now + (self._reset_at - wall))  # the server's oldest request leaves it
        return min(candidates)

    def _expire(self, now: float) -> None:
        while self._minute and self._minute[0] <= now - self.minute_window:
            self._minute.popleft()
        while self._hour and self._hour[0] <= now - self.hour_window:
            self._hour.popleft()

    # ----------------------------------------------------------------------------------------
    # Waiting for a turn, with real clocks
    # ----------------------------------------------------------------------------------------

    async def acquire(self, *, foreground: bool = False, max_wait: float = math.inf) -> None:
        """
        Wait (async) until a request may go, then take its slot. Background callers queue in order;
        foreground ones never queue.

        :param foreground: The caller's priority (see the module docstring).
        :param max_wait: Wait at most this long; then the request goes anyway and the server
            decides (a caller's retry budget is shorter than the wait for the token's reset).
        """
        if foreground:
            await self._acquire(True, max_wait)
            return
        turn = self._turn
        if turn is None:
            turn = self._turn = asyncio.Lock()
        async with turn:
            await self._acquire(False, max_wait)

    async def _acquire(self, foreground: bool, max_wait: float) -> None:
        for delay in self._waits(foreground, max_wait):
            await asyncio.sleep(delay)

    def acquire_sync(self, *, foreground: bool = True, max_wait: float = math.inf) -> None:
        """Wait (blocking) until a request may go, then take its slot; see :meth:`acquire`."""
        for delay in self._waits(foreground, max_wait):
            time.sleep(delay)

    def _waits(self, foreground: bool, max_wait: float) -> Iterator[float]:
        """The sleeps before a slot is taken (none when one is free now): one turn of the loop each."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                delay = self.try_take(now, self.wall(), foreground=foreground)
                if delay <= 0:
                    return  # the slot is taken
                if delay > max_wait - waited:
                    self.take(now, foreground=foreground)  # waited long enough: the server decides
                    return
            waited += delay
            self.waited += delay
            yield delay

    def observe_now(self, headers: Mapping[str, str], status: int = 200) -> None:
        """:meth:`observe` with the budget's clocks, safe from any thread."""
        with self._lock:
            self.observe(headers, status)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class _Bucket:
    """A token bucket whose refill rate, and the share of its capacity in use, may change between calls."""

    __slots__ = ("at", "capacity", "tokens")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.tokens = float(capacity)
        self.at = -math.inf

    def _refill(self, now: float, rate: float, share: float) -> None:
        # A lower share shrinks the burst too: a bucket filled while the token had room must not
        # be emptied at once when it has none.
        cap = max(1.0, self.capacity * share)
        if now > self.at:
            self.tokens = self.tokens + (now - self.at) * rate
            self.at = now
        self.tokens = min(cap, self.tokens)

    def wait(self, now: float, rate: float, share: float) -> float:
        self._refill(now, rate, share)
        return 0.0 if self.tokens >= 1.0 - 1e-9 else (1.0 - self.tokens) / rate  # (float rounding)


class _Ceiling:
    """The bucket's top rate: halved by a 429, recovering linearly (AIMD)."""

    __slots__ = ("base", "since", "slope", "top")

    def __init__(self, top: float, recovery: float) -> None:
        self.top = top
        self.slope = top / (2 * recovery)  # from half to full in ``recovery`` seconds
        self.base = top
        self.since = -math.inf

    def value(self, now: float) -> float:
        if self.base >= self.top:
            return self.top
        return min(self.top, self.base + self.slope * (now - self.since))

    def cut(self, now: float) -> None:
        self.base = max(self.top * RequestBudget.PROBE_FRACTION, self.value(now) / 2)
        self.since = now


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
#: One budget per token for the sync callers of this process (a worker's task process).
SYNC_BUDGETS: dict[tuple[Any, ...], RequestBudget] = {}
_SYNC_LOCK = threading.Lock()


def budget_for(token_key: str, per_minute: int, per_hour: int) -> RequestBudget:
    """The shared budget for a token on the running event loop."""
    budgets = BUDGETS.setdefault(asyncio.get_running_loop(), {})
    key = (token_key, per_minute, per_hour)
    budget = budgets.get(key)
    if budget is None:
        budget = budgets[key] = RequestBudget(per_minute, per_hour)
    return budget


def sync_budget_for(token_key: str, per_minute: int, per_hour: int) -> RequestBudget:
    """The budget for a token shared by this process's sync callers (any thread)."""
    key = (token_key, per_minute, per_hour)
    with _SYNC_LOCK:
        budget = SYNC_BUDGETS.get(key)
        if budget is None:
            budget = SYNC_BUDGETS[key] = RequestBudget(per_minute, per_hour)
        return budget
