"""Command line: run the Gradient API emulator in the foreground.

``python -m airflow_provider_gradient.testing.emulator --port 8765 --speed 60 --kb docs:2``
prints the base URL, the uuids of the pre-created knowledge bases and a ready
``export AIRFLOW_CONN_GRADIENT_DEFAULT=...`` line, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_gradient.testing.emulator.gradient_emulator import DEFAULT_TOKEN, GradientEmulator
from airflow_provider_gradient.testing.emulator.jobs import OUTCOMES
from airflow_provider_gradient.testing.emulator.ratelimit import HEADER_MODES
from airflow_provider_gradient.testing.emulator.state import LIST_ORDERS

__all__ = ["main", "parse_kb_spec"]


def parse_kb_spec(spec: str) -> tuple[str, int]:
    """Parse ``NAME[:N_SOURCES]`` (default 1 data source).

    :param spec: the ``--kb`` value.
    """
    name, _, count = spec.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"invalid --kb {spec!r}: expected NAME[:N_SOURCES]")
    try:
        sources = int(count) if count else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --kb {spec!r}: N_SOURCES must be an integer") from None
    if sources < 0:
        raise argparse.ArgumentTypeError(f"invalid --kb {spec!r}: N_SOURCES must be >= 0")
    return name, sources


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_gradient.testing.emulator",
        description="Local emulator of the DigitalOcean Gradient indexing-job API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default 0)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="token accepted with all genai scopes")
    parser.add_argument("--seed", type=int, default=0, help="seed for generated uuids (default 0)")
    parser.add_argument("--speed", type=float, default=1.0, help="emulated seconds per wall second")
    parser.add_argument(
        "--kb",
        action="append",
        type=parse_kb_spec,
        default=[],
        metavar="NAME[:N_SOURCES]",
        help="pre-create a knowledge base (repeatable)",
    )
    parser.add_argument(
        "--db-not-ready", action="store_true", help="pre-created KBs start with database_status CREATING"
    )
    parser.add_argument("--auto-index", action="store_true", help="pre-created KBs start a job at once")
    parser.add_argument("--outcome", choices=OUTCOMES, help="scripted outcome of every job of those KBs")
    parser.add_argument("--job-duration", type=float, help="emulated RUNNING seconds of those jobs")
    parser.add_argument("--rate-limit-per-minute", type=int, default=250)
    parser.add_argument("--rate-limit-per-hour", type=int, default=5000)
    parser.add_argument(
        "--rate-limit-headers",
        choices=HEADER_MODES,
        default="binding",
        help="what ratelimit-remaining/-reset describe: the window with fewer requests left (binding, "
        "default) or only the hourly one, as DigitalOcean documents it (hourly)",
    )
    parser.add_argument(
        "--list-order",
        choices=LIST_ORDERS,
        default="newest",
        help="the order GET /v2/gen-ai/indexing_jobs lists jobs in, which the API does not document: "
        "newest first (default), oldest first, or none (unrelated to creation)",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="disable rate limiting (benchmarks)")
    parser.add_argument("--no-request-log", action="store_true", help="do not keep the request log")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM.

    :param argv: command line arguments (default ``sys.argv[1:]``).
    """
    args = _parser().parse_args(argv)
    emulator = GradientEmulator(
        token=args.token,
        seed=args.seed,
        speed=args.speed,
        rate_limit_per_minute=None if args.no_rate_limit else args.rate_limit_per_minute,
        rate_limit_per_hour=None if args.no_rate_limit else args.rate_limit_per_hour,
        rate_limit_headers=args.rate_limit_headers,
        host=args.host,
        port=args.port,
        record_requests=not args.no_request_log,
        list_order=args.list_order,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    emulator.start()
    try:
        print(
            f"Gradient emulator listening on {emulator.base_url} (seed {args.seed}, speed {args.speed:g}x, "
            f"jobs listed {args.list_order} first)"
            if args.list_order != "none"
            else f"Gradient emulator listening on {emulator.base_url} (seed {args.seed}, speed {args.speed:g}x, "
            "jobs listed in no order)"
        )
        for name, sources in args.kb:
            kb = emulator.create_knowledge_base(name, sources, database_ready=not args.db_not_ready, auto_index=False)
            if args.outcome or args.job_duration is not None:
                emulator.script_jobs(kb.uuid, args.outcome or "COMPLETED", duration=args.job_duration)
            if args.auto_index:
                emulator.start_job_server_side(kb.uuid)
            print(f"knowledge base {kb.name}: {kb.uuid} data sources: {' '.join(kb.data_source_uuids) or '-'}")
        print(f"control API: {emulator.base_url}/_emulator/health")
        print(f"export AIRFLOW_CONN_GRADIENT_DEFAULT={shlex.quote(emulator.airflow_conn_json())}")
        print("Press Ctrl+C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("Gradient emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
