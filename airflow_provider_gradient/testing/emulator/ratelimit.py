"""Per-token rate limiting with rolling windows, like the DigitalOcean API.

Each counted request stays in a token's window for ``minute_window`` (burst limit) and
``hour_window`` seconds of *wall* time (not emulated time). Both windows are deques of timestamps,
so a check costs amortised O(1). Rejected requests are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one rate-limit check, with the header values to send.

    :param allowed: whether the request may proceed.
    :param limit: ``ratelimit-limit`` (the hourly limit).
    :param remaining: ``ratelimit-remaining`` (the smaller of both windows' remaining counts).
    :param reset: ``ratelimit-reset``, epoch seconds when the oldest counted request expires.
    :param retry_after: ``retry-after`` seconds, only when the burst (minute) limit was hit.
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        """The rate-limit response headers."""
        headers = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset),
        }
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        return headers


class _Windows:
    __slots__ = ("hour", "minute")

    def __init__(self) -> None:
        self.minute: deque[float] = deque()
        self.hour: deque[float] = deque()


class RateLimiter:
    """Rolling-window limiter keyed by token.

    :param per_minute: requests allowed per rolling ``minute_window``; ``None`` disables it.
    :param per_hour: requests allowed per rolling ``hour_window``; ``None`` disables it.
    :param minute_window: burst window length in seconds.
    :param hour_window: hourly window length in seconds.
    :param time_fn: monotonic time source (injectable for tests).
    """

    def __init__(
        self,
        per_minute: int | None = 250,
        per_hour: int | None = 5000,
        *,
        minute_window: float = 60.0,
        hour_window: float = 3600.0,
        time_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.minute_window = minute_window
        self.hour_window = hour_window
        self._time = time_fn
        self._epoch_offset = time.time() - time_fn()
        self._lock = threading.Lock()
        self._windows: dict[str, _Windows] = {}

    def configure(self, per_minute: int | None, per_hour: int | None) -> None:
        """Change the limits (counted requests are kept).

        :param per_minute: requests per rolling minute, ``None`` for unlimited.
        :param per_hour: requests per rolling hour, ``None`` for unlimited.
        """
        self.per_minute = per_minute
        self.per_hour = per_hour

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._windows.clear()

    @property
    def _hour_limit(self) -> int:
        return self.per_hour if self.per_hour is not None else 2**31 - 1

    def idle(self) -> RateDecision:
        """Header values for a request that is not attributed to any token (for example a 401)."""
        now = self._time()
        return RateDecision(True, self._hour_limit, self._hour_limit, int(now + self._epoch_offset))

    def check(self, token: str) -> RateDecision:
        """Count one request for ``token`` unless a window is full.

        :param token: the bearer token (used only as a dictionary key, never logged).
        """
        now = self._time()
        with self._lock:
            windows = self._windows.get(token)
            if windows is None:
                windows = self._windows[token] = _Windows()
            minute, hour = windows.minute, windows.hour
            minute_cutoff = now - self.minute_window
            while minute and minute[0] <= minute_cutoff:
                minute.popleft()
            hour_cutoff = now - self.hour_window
            while hour and hour[0] <= hour_cutoff:
                hour.popleft()
            limit = self._hour_limit
            if self.per_hour is not None and len(hour) >= self.per_hour:
                return RateDecision(False, limit, 0, self._reset(hour, now))
            if self.per_minute is not None and len(minute) >= self.per_minute:
                oldest = minute[0] if minute else now
                wait = max(1, math.ceil(oldest + self.minute_window - now))
                return RateDecision(False, limit, 0, self._reset(hour, now), retry_after=wait)
            minute.append(now)
            hour.append(now)
            remaining = limit - len(hour)
            if self.per_minute is not None:
                remaining = min(remaining, self.per_minute - len(minute))
            return RateDecision(True, limit, max(0, remaining), self._reset(hour, now))

    def _reset(self, hour: deque[float], now: float) -> int:
        oldest = hour[0] if hour else now
        return math.ceil(oldest + self.hour_window + self._epoch_offset)
