"""Emulated time: a clock that tests can step or speed up.

Jobs never run in the background; their state is computed from the emulated time whenever it is
read. :class:`EmulatedClock` maps wall time onto emulated time with a speed factor and an offset
that :meth:`EmulatedClock.advance` moves forward.
"""

from __future__ import annotations

import functools
import threading
import time
from datetime import datetime, timezone

__all__ = ["EmulatedClock", "rfc3339"]


def rfc3339(epoch: float) -> str:
    """Render epoch seconds as an RFC 3339 UTC timestamp with a ``Z`` suffix (whole seconds).

    :param epoch: seconds since the Unix epoch.
    """
    return _rfc3339_seconds(int(epoch))


@functools.lru_cache(maxsize=8192)
def _rfc3339_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EmulatedClock:
    """A thread-safe clock whose time runs ``speed`` times faster than wall time.

    :param speed: emulated seconds per wall-clock second (``0`` freezes the clock).
    :param start: emulated epoch seconds at creation; defaults to the current wall time.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._base_emulated = time.time() if start is None else float(start)
        self._base_wall = time.monotonic()

    def now(self) -> float:
        """Return the current emulated time in epoch seconds."""
        with self._lock:
            return self._base_emulated + (time.monotonic() - self._base_wall) * self._speed

    def advance(self, seconds: float) -> float:
        """Move emulated time forward.

        :param seconds: emulated seconds to add (must not be negative).
        :returns: the new emulated time.
        """
        if seconds < 0:
            raise ValueError("the emulated clock cannot go backwards")
        with self._lock:
            self._base_emulated += seconds
            return self._base_emulated + (time.monotonic() - self._base_wall) * self._speed

    @property
    def speed(self) -> float:
        """Emulated seconds per wall-clock second."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            wall = time.monotonic()
            self._base_emulated += (wall - self._base_wall) * self._speed
            self._base_wall = wall
            self._speed = float(value)

    def reset(self, speed: float = 1.0, start: float | None = None) -> None:
        """Restart the clock at ``start`` (default: wall time now) with the given speed.

        :param speed: emulated seconds per wall-clock second.
        :param start: emulated epoch seconds to restart at.
        """
        with self._lock:
            self._speed = float(speed)
            self._base_emulated = time.time() if start is None else float(start)
            self._base_wall = time.monotonic()
