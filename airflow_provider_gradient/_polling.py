"""
When to poll next: adaptive, jittered intervals shared by the trigger, the sync wait and the sensor.

A job is polled soon after it starts (short jobs are noticed quickly), then less often, growing
towards ``poll_interval`` (long jobs cost few requests). A jitter of ±10 % keeps thousands of
triggers started together from polling in lock-step bursts.
"""

from __future__ import annotations

import random

__all__ = ["FIRST_POLL_FRACTION", "GROWTH", "MIN_POLL", "next_delay"]

#: The first wait is this fraction of ``poll_interval``...
FIRST_POLL_FRACTION = 1 / 8
#: ...but never below this many seconds...
MIN_POLL = 2.0
#: ...and each following wait grows by this factor, up to ``poll_interval``.
GROWTH = 1.6


def next_delay(poll_interval: float, polls: int, rng: random.Random | None = None) -> float:
    """
    Seconds to wait before the next poll.

    :param poll_interval: The longest wait between polls (the user's setting).
    :param polls: How many polls were made so far (0 before the first wait).
    :param rng: A random source, for reproducible tests.
    """
    base = max(MIN_POLL, poll_interval * FIRST_POLL_FRACTION) * GROWTH ** max(polls, 0)
    delay = min(poll_interval, base)
    jitter = (rng or random).uniform(-0.1, 0.1) * delay
    return max(0.1, delay + jitter)
