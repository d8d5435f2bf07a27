"""Per-token rate limiting with rolling windows, like the DigitalOcean API.

Each counted request stays in a token's window for ``minute_window`` (burst limit) and
``hour_window`` seconds of *wall* time (not emulated time). Both windows are deques of timestamps,
so a check costs amortised O(1). Rejected requests are not counted.

Two readings of the ``ratelimit-*`` headers (:data:`HEADER_MODES`):

``binding`` (default)
    ``ratelimit-remaining`` and ``ratelimit-reset`` describe whichever window has fewer requests
    left: its remaining count, and when its oldest counted request expires.
``hourly``
    The letter of DigitalOcean's documentation: both describe the hourly window; the burst limit
    shows only when it is hit (a 429 with ``ratelimit-remaining: 0`` and ``retry-after``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["HEADER_MODES", "HeaderMode", "RateDecision", "RateLimiter"]

HeaderMode = Literal["binding", "hourly"]
#: The readings of the rate-limit headers the limiter can give (see the module docstring).
HEADER_MODES: tuple[HeaderMode, ...] = ("binding", "hourly")


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one rate-limit check, with the header values to send.

    :param allowed: whether the request may proceed.
    :param limit: ``ratelimit-limit`` (the hourly limit).
    :param remaining: ``ratelimit-remaining`` (see the header modes in the module docstring).
    :param reset: ``ratelimit-reset``, epoch seconds when the oldest request counted in that window expires.
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
    :param headers: which window the ``ratelimit-remaining`` / ``ratelimit-reset`` headers
        describe: ``"binding"`` or ``"hourly"`` (see the module docstring).
    """

    def __init__(
        self,
        per_minute: int | None = 250,
        per_hour: int | None = 5000,
        *,
        minute_window: float = 60.0,
        hour_window: float = 3600.0,
        time_fn: Callable[[], float] = time.monotonic,
        headers: HeaderMode = "binding",
    ) -> None:
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.headers = _header_mode(headers)
        self.minute_window = minute_window
        self.hour_window = hour_window
        self._time = time_fn
        self._epoch_offset = time.time() - time_fn()
        self._lock = threading.Lock()
        self._windows: dict[str, _Windows] = {}
        self._token_limits: dict[str, tuple[int | None, int | None]] = {}

    def limit_token(self, token: str, per_minute: int | None, per_hour: int | None) -> None:
        """Give ``token`` limits of its own instead of the shared ones (like two accounts' tokens).

        :param token: the bearer token (used only as a dictionary key, never logged).
        :param per_minute: its requests per rolling minute, ``None`` for unlimited.
        :param per_hour: its requests per rolling hour, ``None`` for unlimited.
        """
        with self._lock:
            self._token_limits[token] = (per_minute, per_hour)

    def configure(self, per_minute: int | None, per_hour: int | None, headers: HeaderMode | None = None) -> None:
        """Change the limits (counted requests are kept).

        :param per_minute: requests per rolling minute, ``None`` for unlimited.
        :param per_hour: requests per rolling hour, ``None`` for unlimited.
        :param headers: the header reading, ``None`` to keep the current one.
        """
        self.per_minute = per_minute
        self.per_hour = per_hour
        if headers is not None:
            self.headers = _header_mode(headers)

    def reset(self) -> None:
        """Forget every counted request and every token's own limits."""
        with self._lock:
            self._windows.clear()
            self._token_limits.clear()

    @property
    def _hour_limit(self) -> int:
        return _hour_header(self.per_hour)

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
            per_minute, per_hour = self._token_limits.get(token, (self.per_minute, self.per_hour))
            limit = _hour_header(per_hour)
            if per_hour is not None and len(hour) >= per_hour:
                return RateDecision(False, limit, 0, self._reset(hour, now))
            if per_minute is not None and len(minute) >= per_minute:
                oldest = minute[0] if minute else now
                wait = max(1, math.ceil(oldest + self.minute_window - now))
                reset = self._reset(hour, now) if self.headers == "hourly" else self._reset(minute, now, short=True)
                return RateDecision(False, limit, 0, reset, retry_after=wait)
            minute.append(now)
            hour.append(now)
            remaining, reset = limit - len(hour), self._reset(hour, now)
            if self.headers == "binding" and per_minute is not None and per_minute - len(minute) < remaining:
                remaining, reset = per_minute - len(minute), self._reset(minute, now, short=True)
            return RateDecision(True, limit, max(0, remaining), reset)

    def _reset(self, window: deque[float], now: float, *, short: bool = False) -> int:
        """Epoch second at which the oldest request counted in ``window`` leaves it."""
        oldest = window[0] if window else now
        return math.ceil(oldest + (self.minute_window if short else self.hour_window) + self._epoch_offset)


def _hour_header(per_hour: int | None) -> int:
    """``ratelimit-limit`` for an hourly limit (``None``: unlimited)."""
    return per_hour if per_hour is not None else 2**31 - 1


def _header_mode(value: str) -> HeaderMode:
    if value not in HEADER_MODES:
        raise ValueError(f"headers must be one of {HEADER_MODES}, got {value!r}")
    return value
