"""Run the Gradient API emulator for a benchmark, in its own process (own GIL, own event loop).

Like ``python -m airflow_provider_gradient.testing.emulator``, plus two benchmark settings:

* ``--window-scale``: the rate limiter's rolling windows shrink by that factor (a 60 s minute
  becomes 60/k s, the hour 3600/k s) so a rate-limit run that would take an hour of wall time takes
  1/k of it, with every limit and every ratio between them unchanged;
* ``--prior-hour``: the token starts with that many requests counted, spread evenly over the
  past (scaled) hour, as on a token busy for the past hour: they leave the hourly window all the
  time during the run.

Prints ``listening on URL`` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any, cast

from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.testing.emulator.ratelimit import HEADER_MODES, HeaderMode

TOKEN = "dop_v1_bench"


def count_prior_hour(emulator: GradientEmulator, requests: int) -> None:
    """Count ``requests`` for the token, spread evenly over the hour window that ends now."""
    limiter = emulator.rate_limiter
    real_clock = limiter._time  # the limiter's injectable clock: the past requests go through check()
    now, window = real_clock(), limiter.hour_window
    try:
        for index in range(requests):
            limiter._time = lambda at=now - window + (index + 0.5) * window / requests: at
            limiter.check(TOKEN)
    finally:
        limiter._time = real_clock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-minute", type=int, default=0, help="rate limit per window-minute (0 = off)")
    parser.add_argument("--per-hour", type=int, default=0, help="rate limit per window-hour (0 = off)")
    parser.add_argument("--window-scale", type=float, default=1.0, help="shrink both windows by this factor")
    parser.add_argument("--speed", type=float, default=1.0, help="emulated seconds per wall second")
    parser.add_argument("--headers", default="binding", choices=HEADER_MODES, help="rate-limit header reading")
    parser.add_argument("--list-order", default=None, help="order of the job list: newest, oldest or none")
    parser.add_argument("--prior-hour", type=int, default=0, help="requests counted over the past hour")
    args = parser.parse_args()
    options: dict[str, Any] = {}
    if args.list_order is not None:
        options["list_order"] = args.list_order
    emulator = GradientEmulator(
        token=TOKEN,
        speed=args.speed,
        rate_limit_per_minute=args.per_minute or None,
        rate_limit_per_hour=args.per_hour or None,
        rate_limit_headers=cast(HeaderMode, args.headers),
        record_requests=True,  # the benchmarks count polls and 429s from the request log
        **options,
    )
    emulator.rate_limiter.minute_window /= args.window_scale
    emulator.rate_limiter.hour_window /= args.window_scale
    if args.prior_hour:
        count_prior_hour(emulator, args.prior_hour)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    emulator.start()
    try:
        print(f"listening on {emulator.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
