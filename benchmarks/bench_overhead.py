"""Where our trigger's CPU goes beyond the bare aiohttp floor: its per-poll and per-trigger steps.

Each step of a poll that the floor client does not do is timed alone, in-process, many times
(best of 5 rounds of process CPU time), with no network: building the operation, the retry loop
(tenacity), the budget, parsing the job with pydantic, a progress log line; and the per-trigger
steps: creating the trigger and reading the connection (``GradientHook.asettings``, here from an
``AIRFLOW_CONN_`` variable). Writes ``results/overhead.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import conn_env, table, write_result

JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"
BODY = json.dumps(
    {
        "job": {
            "uuid": JOB,
            "knowledge_base_uuid": JOB,
            "phase": "BATCH_JOB_PHASE_RUNNING",
            "status": "INDEX_JOB_STATUS_IN_PROGRESS",
            "created_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:01Z",
            "updated_at": "2026-01-01T00:00:02Z",
            "total_datasources": 1,
            "completed_datasources": 0,
            "data_source_jobs": [
                {
                    "data_source_uuid": JOB,
                    "status": "DATA_SOURCE_STATUS_RUNNING",
                    "indexed_item_count": "5",
                    "total_file_count": "10",
                }
            ],
        }
    }
).encode()


def best(fn: Callable[[], Any], n: int = 2000, rounds: int = 5) -> float:
    """Best per-call process CPU time in µs."""
    out = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            fn()
        out.append((time.process_time() - started) / n * 1e6)
    return min(out)


async def abest(fn: Callable[[], Awaitable[Any]], n: int = 2000, rounds: int = 5) -> float:
    out = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            await fn()
        out.append((time.process_time() - started) / n * 1e6)
    return min(out)


async def measure() -> list[tuple[str, str, float]]:
    import tenacity

    from airflow_provider_gradient import _api
    from airflow_provider_gradient.hooks import gradient
    from airflow_provider_gradient.hooks._budget import budget_for
    from airflow_provider_gradient.hooks.gradient import GradientHook
    from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

    hook = GradientHook()
    settings = await hook.asettings()
    op = _api.get_indexing_job(JOB)
    raw = _api.RawResponse(200, {"content-type": "application/json"}, BODY)

    async def retry_loop() -> int:
        async for attempt in tenacity.AsyncRetrying(**_api.retry_kwargs(op, settings.retry, hook.log)):
            with attempt:
                return 1
        return 0

    async def first_attempt() -> int:
        # What GradientHook.arun wraps around a first attempt: a closure and a try (no tenacity).
        async def send() -> int:
            return 1

        try:
            return await send()
        except Exception as error:  # never raised here
            if not _api.is_retryable(op, error):
                raise
        return 0

    budget = budget_for(settings.token_key, settings.requests_per_minute, settings.requests_per_hour)

    async def read_settings() -> None:
        gradient._LOOP_SETTINGS.clear()  # measure a real read, not the loop's shared one
        await GradientHook().asettings()

    async def reuse_settings() -> None:
        await GradientHook().asettings()

    trigger = GradientIndexingJobTrigger(indexing_job_uuid=JOB)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):  # noqa: ASYNC230
        log_line = best(lambda: trigger.log.info("job %s", JOB), 300)
    return [
        ("poll", "build the operation (uuid check, path)", best(lambda: _api.get_indexing_job(JOB))),
        ("poll", "retry policy around a first attempt (tenacity only after a failure)", await abest(first_attempt)),
        ("retried call", "retry loop (tenacity AsyncRetrying)", await abest(retry_loop)),
        ("poll", "per-token budget acquire", await abest(budget.acquire)),
        ("poll", "parse the job (pydantic) and map errors", best(lambda: _api.parse_response(op, raw))),
        ("poll", "json.loads of the same body (what the floor does)", best(lambda: json.loads(BODY))),
        ("poll, on progress", "one log line (Airflow's structlog, to /dev/null)", log_line),
        ("trigger", "create the trigger", best(lambda: GradientIndexingJobTrigger(indexing_job_uuid=JOB), 500)),
        ("connection, loop", "read the connection (GradientHook.asettings)", await abest(read_settings, 200)),
        ("trigger", "share the loop's read of the connection (for 5 s)", await abest(reuse_settings, 200)),
    ]


def main() -> int:
    os.environ.update(conn_env("http://127.0.0.1:9", requests_per_minute=10**8, requests_per_hour=10**9))
    rows = asyncio.run(measure())
    print("Per-step CPU of our trigger beyond the floor (best of 5 rounds)")
    print(table(["per", "step", "us CPU"], rows))
    path = write_result(
        "overhead",
        {"benchmark": "trigger_overhead", "rows": [{"per": p, "step": s, "us": us} for p, s, us in rows]},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
