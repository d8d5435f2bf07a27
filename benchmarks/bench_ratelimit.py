"""Rate-limit economy: 1,000 jobs on ONE token against an emulator enforcing 250/min and 5,000/h.

Time is compressed by ``--scale`` k (default 12) consistently everywhere, so an hour of limiter
time takes 5 minutes of wall time:

* the emulator's rate-limit windows are 60/k s and 3600/k s (limits unchanged: 250 and 5,000);
* the triggers' budget uses the same window lengths (limits from the connection: 250 and 5,000);
* the emulator's job clock runs k times faster (job durations are given in real seconds);
* poll intervals are divided by k.

Every ratio (requests per window, polls per job, waits) is therefore the one of a real-time run;
only ``MIN_POLL`` (2 s of wall time, 24 "real" seconds) is not scaled, and the schedule here never
reaches it. Modes, each with a fresh emulator and client process:

* ``adaptive``: the provider as shipped: adaptive polling (``poll_interval`` 600 s) + the shared
  per-token budget.
* ``fixed5``: what a plain client does (the SDK default): a GET every 5 seconds per job on a shared
  aiohttp session, no shared budget; a 429 is waited out per ``Retry-After`` and retried.
  Bounded to ``--fixed5-seconds`` of wall time.
* ``fixed5_budget``: our trigger with ``poll_interval=5`` (a fixed 5-second poll: the interval is
  below ``MIN_POLL``), through the shared budget: what the budget does for an aggressive setting.

Reported: failed waits, 429 responses, requests per job, and how late jobs were seen ended
(in real seconds). Writes ``results/ratelimit.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EmulatorProcess, conn_env, percentile, table, write_result

JOBS = 1000
PER_MINUTE, PER_HOUR = 250, 5000
PENDING = 10.0  # real seconds a job is PENDING
DURATIONS = (60.0, 600.0)  # real seconds a job RUNS: uniform between 1 and 10 minutes
ARRIVALS = 60.0  # real seconds over which the 1,000 deferred tasks arrive
MODES = {
    "adaptive": {"poll_interval": 600.0, "budget": True},
    "fixed5": {"poll_interval": 5.0, "budget": False},
    "fixed5_budget": {"poll_interval": 5.0, "budget": True},
}
RUNNING_PHASES = frozenset({"BATCH_JOB_PHASE_UNKNOWN", "BATCH_JOB_PHASE_PENDING", "BATCH_JOB_PHASE_RUNNING"})
JOB_PATH = "/v2/gen-ai/indexing_jobs/"


# ----------------------------------------------------------------------------------------------
# client process
# ----------------------------------------------------------------------------------------------


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_gradient.hooks import _budget
    from airflow_provider_gradient.hooks.gradient import GradientHook
    from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

    scale, base_url = spec["scale"], spec["base_url"]
    settings = await GradientHook().asettings()
    if spec["budget"]:
        # The shared budget of this loop and token, with the same compressed windows as the emulator.
        budget = _budget.RequestBudget(PER_MINUTE, PER_HOUR, minute_window=60 / scale, hour_window=3600 / scale)
        loop = asyncio.get_running_loop()
        _budget.BUDGETS.setdefault(loop, {})[(settings.token_key, PER_MINUTE, PER_HOUR)] = budget
        assert _budget.budget_for(settings.token_key, PER_MINUTE, PER_HOUR) is budget, "budget not installed"

    events: dict[int, tuple[str, float]] = {}
    import aiohttp

    naive = aiohttp.ClientSession(headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"})

    async def wait(index: int, job: str, start: float) -> None:
        await asyncio.sleep(start)
        if not spec["budget"]:
            await naive_wait(index, job)
            return
        trigger = GradientIndexingJobTrigger(indexing_job_uuid=job, poll_interval=spec["poll_interval"] / scale)
        try:
            async for event in trigger.run():
                events[index] = (event.payload["status"], time.time())
                break
        finally:
            await trigger.cleanup()

    async def naive_wait(index: int, job: str) -> None:
        while True:
            async with naive.get(f"{base_url}{JOB_PATH}{job}") as response:
                payload = await response.json()
                if response.status == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
            if payload["job"]["phase"] not in RUNNING_PHASES:
                events[index] = ("success", time.time())
                return
            await asyncio.sleep(spec["poll_interval"] / scale)

    unfreeze = f"{base_url}/_emulator/clock"
    async with aiohttp.ClientSession() as control, control.post(unfreeze, json={"speed": scale}) as r:
        r.raise_for_status()
    clock_started = time.time()
    tasks = [
        asyncio.create_task(wait(i, job, start / scale))
        for i, (job, start) in enumerate(zip(spec["jobs"], spec["starts"], strict=True))
    ]
    done, pending = await asyncio.wait(tasks, timeout=spec["max_seconds"])
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await naive.close()
    return {
        "clock_started": clock_started,
        "wall_seconds": time.time() - clock_started,
        "events": {str(i): list(e) for i, e in events.items()},
        "unfinished": len(pending),
        "crashed": [repr(t.exception())[:200] for t in done if t.exception() is not None][:3],
    }


def client_main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(asyncio.run(_client(spec))))
    return 0


# ----------------------------------------------------------------------------------------------
# orchestration
# ----------------------------------------------------------------------------------------------


async def _create_jobs(base_url: str, durations: list[float]) -> list[str]:
    import aiohttp

    semaphore = asyncio.Semaphore(16)

    async def one(session: aiohttp.ClientSession, index: int, duration: float) -> str:
        async with semaphore:
            async with session.post("/_emulator/knowledge_bases", json={"name": f"kb-{index}"}) as r:
                kb = (await r.json())["uuid"]
            script = {"duration": duration, "pending": PENDING}
            async with session.post(f"/_emulator/knowledge_bases/{kb}/script", json=script) as r:
                r.raise_for_status()
            async with session.post(f"/_emulator/knowledge_bases/{kb}/jobs", json={}) as r:
                return str((await r.json())["job_uuid"])

    async with aiohttp.ClientSession(base_url) as session:
        return list(await asyncio.gather(*(one(session, i, d) for i, d in enumerate(durations))))


def run_mode(mode: str, scale: float, max_seconds: float, workdir: Path) -> dict[str, Any]:
    config = MODES[mode]
    rng = random.Random(7)  # the same jobs and arrivals for every mode
    durations = [rng.uniform(*DURATIONS) for _ in range(JOBS)]
    # A job starts when its task defers (emulated time 0 = the first arrival) and runs PENDING + duration.
    starts = [rng.uniform(0, ARRIVALS) for _ in range(JOBS)]
    with EmulatorProcess(per_minute=PER_MINUTE, per_hour=PER_HOUR, window_scale=scale, speed=0.0) as emulator:
        # Each job's scripted run covers its task's arrival too, so it ends PENDING + duration after it.
        jobs = asyncio.run(_create_jobs(emulator.base_url, [s + d for s, d in zip(starts, durations, strict=True)]))
        spec = {
            "base_url": emulator.base_url,
            "scale": scale,
            "jobs": jobs,
            "starts": starts,
            "poll_interval": config["poll_interval"],
            "budget": config["budget"],
            "max_seconds": max_seconds,
        }
        spec_path, out_path = workdir / f"spec-{mode}.json", workdir / f"out-{mode}.json"
        spec_path.write_text(json.dumps(spec))
        emulator.control("DELETE", "/requests")
        extra: dict[str, Any] = {"requests_per_minute": PER_MINUTE, "requests_per_hour": PER_HOUR}
        if not config["budget"]:
            extra = {"requests_per_minute": 10**8, "requests_per_hour": 10**9}
        env = {**os.environ, **conn_env(emulator.base_url, **extra)}
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, __file__, "--client", str(spec_path), str(out_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=max_seconds + 300,
            check=False,
        )
        (workdir / f"client-{mode}.out").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"client {mode} failed:\n{done.stderr[-4000:]}")
        log = emulator.requests_log()
    result = json.loads(out_path.read_text())
    polls = [r for r in log if r["path"].startswith(JOB_PATH)]
    throttled = sum(1 for r in polls if r["status"] == 429)
    statuses = [status for status, _ in result["events"].values()]
    # How late each job was seen ended, in real seconds: event time - the job's scripted end.
    late = [
        (at - (result["clock_started"] + (starts[int(i)] + PENDING + durations[int(i)]) / scale)) * scale
        for i, (status, at) in result["events"].items()
        if status == "success"
    ]
    finished = len(result["events"])
    per_window = _busiest_windows(polls, scale)
    return {
        "mode": mode,
        "poll_interval": config["poll_interval"],
        "shared_budget": config["budget"],
        "jobs": JOBS,
        "finished": finished,
        "succeeded": statuses.count("success"),
        "failed": finished - statuses.count("success") + len(result["crashed"]),
        "unfinished": result["unfinished"],
        "requests": len(polls),
        "throttled_429": throttled,
        "requests_per_finished_job": len(polls) / finished if finished else None,
        "detection_late_p50_s": percentile(late, 0.5),
        "detection_late_p95_s": percentile(late, 0.95),
        "detection_late_max_s": max(late, default=float("nan")),
        "wall_seconds": result["wall_seconds"],
        "real_seconds": result["wall_seconds"] * scale,
        "bounded_at_wall_seconds": max_seconds,
        "busiest_minute": per_window["minute"],
        "busiest_hour": per_window["hour"],
        "crashed": result["crashed"],
        "run_seconds": time.monotonic() - began,
    }


def _busiest_windows(polls: list[dict[str, Any]], scale: float) -> dict[str, int]:
    """Most accepted requests in any rolling (scaled) minute and hour, as the server counted them."""
    import bisect

    times = sorted(r["time"] for r in polls if r["status"] != 429)
    out = {}
    for name, window in (("minute", 60 / scale), ("hour", 3600 / scale)):
        out[name] = max(
            (bisect.bisect_right(times, t) - bisect.bisect_left(times, t - window) for t in times), default=0
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=12.0, help="time compression factor k")
    parser.add_argument("--modes", nargs="+", default=["adaptive", "fixed5_budget", "fixed5"], choices=list(MODES))
    parser.add_argument("--max-seconds", type=float, default=600.0, help="wall bound of a budgeted run")
    parser.add_argument("--fixed5-seconds", type=float, default=60.0, help="wall bound of the unbudgeted run")
    parser.add_argument("--client", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(*args.client)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ratelimit-", dir=os.environ.get("BENCH_KEEP")) as tmp:
        for mode in args.modes:
            bound = args.fixed5_seconds if not MODES[mode]["budget"] else args.max_seconds
            row = run_mode(mode, args.scale, bound, Path(tmp))
            rows.append(row)
            print(
                f"{mode:>14}: {row['finished']}/{JOBS} finished, {row['failed']} failed, {row['throttled_429']} x 429, "
                f"{row['requests']} requests ({row['run_seconds']:.0f} s)",
                flush=True,
            )
    print()
    print(f"Rate-limit economy: {JOBS} jobs, one token, {PER_MINUTE}/min and {PER_HOUR}/h (time x{args.scale:g})")
    print(
        table(
            [
                "mode",
                "poll s",
                "budget",
                "finished",
                "failed",
                "429s",
                "requests",
                "req/job",
                "busiest min",
                "busiest hour",
                "late p50 s",
                "late p95 s",
                "real min",
            ],
            [
                [
                    r["mode"],
                    r["poll_interval"],
                    "shared" if r["shared_budget"] else "none",
                    r["finished"],
                    r["failed"],
                    r["throttled_429"],
                    r["requests"],
                    r["requests_per_finished_job"] or "-",
                    r["busiest_minute"],
                    r["busiest_hour"],
                    r["detection_late_p50_s"],
                    r["detection_late_p95_s"],
                    r["real_seconds"] / 60,
                ]
                for r in rows
            ],
        )
    )
    ours = next((r for r in rows if r["mode"] == "adaptive"), None)
    targets = {}
    if ours is not None:
        targets = {
            "zero_failed": {
                "met": ours["failed"] == 0 and ours["unfinished"] == 0,
                "detail": f"{ours['failed']} failed, {ours['unfinished']} unfinished",
            },
            "zero_429": {"met": ours["throttled_429"] == 0, "detail": f"{ours['throttled_429']} responses 429"},
        }
        for name, target in targets.items():
            print(f"{'MET ' if target['met'] else 'MISSED'} {name}: {target['detail']}")
    path = write_result(
        "ratelimit",
        {
            "benchmark": "rate_limit_economy",
            "scale": args.scale,
            "jobs": JOBS,
            "limits": {"per_minute": PER_MINUTE, "per_hour": PER_HOUR},
            "job_seconds_real": {"pending": PENDING, "running_uniform": DURATIONS, "arrivals_over": ARRIVALS},
            "rows": rows,
            "targets": targets,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
