"""Trigger fleet: N concurrent indexing-job waits in ONE event loop, as the triggerer runs them.

For each N (100, 1,000, 2,000) and each way of waiting (see ``_fleet_clients.py``: ``ours``,
``per_job_get``, ``floor``, ``per_poll_session``, ``httpx``), a fresh emulator process gets N knowledge bases with a
job each, its clock frozen; a fresh client process (one event loop, like the triggerer) then starts
the N waits spread over one poll interval (deferred tasks arrive over time) and unfreezes the clock.
Every job ends after a fixed number of polls on the adaptive schedule. Measured in the client:

* CPU per poll: process CPU time of the client during the run / GETs the emulator answered;
* CPU per watched job per minute: process CPU time / (N x the job's duration in minutes): the
  same jobs for every client, so this compares what each client spends to see them end;
* event-loop lag p50 / p99: how late a 50 ms ticker coroutine wakes up;
* resident memory per wait: (peak RSS during the run - RSS before creating the waits) / N;
* polls per job, shared aiohttp sessions open (``ours``: must be 1), failures.

Rate limits are off in the emulator and set very high in the connection: this measures CPU, not
the limiter (``bench_ratelimit.py`` does that). Writes ``results/fleet.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    TOKEN,
    EmulatorProcess,
    conn_env,
    percentile,
    rss_bytes,
    table,
    use_per_job_get,
    watcher_available,
    write_result,
)

MODES = ("ours", "per_job_get", "floor", "per_poll_session", "httpx")
#: N -> poll_interval (s). Larger fleets poll less often, as a user would set (and so the
#: emulator, sharing the 2 cores, is not the bottleneck: ~150 GETs/s at most).
POLL_INTERVAL = {100: 5.0, 1000: 10.0, 2000: 20.0}
POLLS_PER_JOB = 6
TICK = 0.05
HEADERS = [
    "N",
    "mode",
    "us CPU/poll",
    "us user/poll",
    "us/job-min",
    "x per-job GET",
    "x floor",
    "lag p50 ms",
    "lag p99 ms",
    "own p99 ms",
    "KiB/wait",
    "polls/job",
    "sessions",
    "fail",
]
JOB_PATH = "/v2/gen-ai/indexing_jobs/"


def _schedule(poll_interval: float, polls: int) -> tuple[float, float]:
    """(job duration, time of the last poll) so that a job is seen ended at exactly its ``polls``-th poll."""
    from airflow_provider_gradient._polling import FIRST_POLL_FRACTION, GROWTH, MIN_POLL

    times = [0.0]  # the first poll is immediate
    for k in range(polls - 1):
        times.append(times[-1] + min(poll_interval, max(MIN_POLL, poll_interval * FIRST_POLL_FRACTION) * GROWTH**k))
    return (times[-2] + times[-1]) / 2, times[-1]


# ----------------------------------------------------------------------------------------------
# client process
# ----------------------------------------------------------------------------------------------


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    mode, base_url, poll_interval = spec["mode"], spec["base_url"], spec["poll_interval"]
    jobs, starts = spec["jobs"], spec["starts"]
    loop = asyncio.get_running_loop()
    if os.environ.get("BENCH_DEBUG"):  # diagnosis: log every callback that blocks the loop > 50 ms
        loop.set_debug(True)
        loop.slow_callback_duration = 0.05
    url = f"{base_url}{JOB_PATH}"
    failures: list[str] = []

    from airflow_provider_gradient.hooks import _transport

    # -- the waits ---------------------------------------------------------------------------
    shared: Any = None
    if mode in ("ours", "per_job_get"):
        from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

        if mode == "per_job_get":
            use_per_job_get()  # the shipped trigger polling as before the watcher: a GET of its job

        def make(job: str) -> Any:
            return GradientIndexingJobTrigger(indexing_job_uuid=job, poll_interval=poll_interval)

        async def wait(item: Any) -> None:
            try:
                async for event in item.run():
                    if event.payload["status"] != "success":
                        failures.append(event.payload["status"])
                    break
            finally:
                await item.cleanup()

    elif mode == "per_poll_session":
        from _fleet_clients import PerPollSessionTrigger

        def make(job: str) -> Any:
            return PerPollSessionTrigger(base_url, TOKEN, job, poll_interval)

        async def wait(item: Any) -> None:
            async for _event in item.run():
                break

    elif mode == "floor":
        import aiohttp
        from _fleet_clients import floor_wait

        def make(job: str) -> Any:
            return url + job

        async def wait(item: Any) -> None:
            await floor_wait(shared, item, poll_interval)

    else:
        import httpx
        from _fleet_clients import httpx_wait

        def make(job: str) -> Any:
            return url + job

        async def wait(item: Any) -> None:
            await httpx_wait(shared, item, poll_interval)

    async def open_shared() -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        if mode == "floor":
            return aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=100))
        if mode == "httpx":
            # No pool timeout: a fleet queues for the 100 connections, as the aiohttp clients do.
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
            return httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30.0, pool=None), limits=limits)
        return None

    async def staggered(item: Any, start: float) -> None:
        await asyncio.sleep(start)
        try:
            await wait(item)
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}")

    # -- warm-up: imports, connection read, first session, pydantic, on an already ended job --
    shared = await open_shared()
    await staggered(make(spec["warmup"]), 0.0)
    failures.clear()
    gc.collect()

    # -- measurement ---------------------------------------------------------------------------
    lags: list[float] = []
    peak = {"rss": 0, "sessions": 0}
    running = True

    own_lags: list[float] = []

    async def ticker() -> None:
        while running:
            before, cpu = loop.time(), time.process_time()
            await asyncio.sleep(TICK)
            lag = loop.time() - before - TICK
            lags.append(lag)
            # The part of the lag this process spent on the CPU (the rest: the OS ran someone else).
            own_lags.append(min(lag, time.process_time() - cpu))
            if len(lags) % 10 == 0:  # every 0.5 s: keep the harness's own cost out of the numbers
                peak["rss"] = max(peak["rss"], rss_bytes())
                peak["sessions"] = max(peak["sessions"], _transport.SESSION_POOL.open_sessions())

    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info.get("generation") == 2:
            gc_pauses.append(time.perf_counter() - gc_started[0])

    if os.environ.get("BENCH_GC_FREEZE"):  # experiment: what full collections cost the loop
        gc.freeze()
    gc.callbacks.append(on_gc)
    rss_before = rss_bytes()
    measure_started = time.time()
    times_before = os.times()
    cpu_before = time.process_time()
    wall_before = time.monotonic()
    items = [make(job) for job in jobs]
    tick_task = asyncio.create_task(ticker())
    import aiohttp as _aiohttp

    unfreeze = f"{base_url}/_emulator/clock"
    async with _aiohttp.ClientSession() as control, control.post(unfreeze, json={"speed": 1.0}) as r:
        r.raise_for_status()
    profile = os.environ.get("BENCH_PROFILE")  # for tuning: a cProfile of the measured run, saved there
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    await asyncio.gather(*(staggered(item, start) for item, start in zip(items, starts, strict=True)))
    if profile:
        profiler.disable()
        profiler.dump_stats(f"{profile}-{mode}-{len(jobs)}.prof")
    cpu = time.process_time() - cpu_before
    times_after = os.times()
    wall = time.monotonic() - wall_before
    running = False
    gc.callbacks.remove(on_gc)
    await tick_task
    if shared is not None:
        await shared.aclose() if mode == "httpx" else await shared.close()
    return {
        "measure_started": measure_started,
        "cpu_seconds": cpu,
        "user_cpu_seconds": times_after.user - times_before.user,
        "system_cpu_seconds": times_after.system - times_before.system,
        "wall_seconds": wall,
        "lag_p50_ms": percentile(lags, 0.50) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000,
        "own_lag_p99_ms": percentile(own_lags, 0.99) * 1000,
        "rss_before_mib": rss_before / 2**20,
        "rss_delta_bytes": max(0, peak["rss"] - rss_before),
        "sessions_peak": peak["sessions"],
        "gc_full_collections": len(gc_pauses),
        "gc_full_max_ms": max(gc_pauses, default=0.0) * 1000,
        "gc_full_total_s": sum(gc_pauses),
        "failures": len(failures),
        "failure_examples": failures[:3],
    }


def client_main(spec_path: str, out_path: str, log_path: str) -> int:
    logging.basicConfig(filename=log_path, level=logging.INFO)  # the triggerer logs too
    spec = json.loads(Path(spec_path).read_text())
    result = asyncio.run(_client(spec))
    Path(out_path).write_text(json.dumps(result))
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
            async with session.post(
                f"/_emulator/knowledge_bases/{kb}/script", json={"duration": duration, "pending": 0}
            ) as r:
                r.raise_for_status()
            async with session.post(f"/_emulator/knowledge_bases/{kb}/jobs", json={}) as r:
                return str((await r.json())["job_uuid"])

    async with aiohttp.ClientSession(base_url) as session:
        return list(await asyncio.gather(*(one(session, i, d) for i, d in enumerate(durations))))


def client_spec(mode: str, base_url: str, poll_interval: float, jobs: list[str], starts: list[float]) -> dict[str, Any]:
    """What a client process is told: its way of waiting, the jobs (the first one is the warm-up's) and their starts."""
    return {
        "mode": mode,
        "base_url": base_url,
        "poll_interval": poll_interval,
        "warmup": jobs[0],
        "jobs": jobs[1:],
        "starts": starts,
    }


def run_one(n: int, mode: str, workdir: Path, watch_seconds: float | None = None) -> dict[str, Any]:
    poll_interval = POLL_INTERVAL.get(n, max(5.0, n / 70))
    duration, _last_poll = _schedule(poll_interval, POLLS_PER_JOB)
    if watch_seconds is not None:  # the long workload: jobs that run for minutes
        duration = watch_seconds
    rng = random.Random(n)  # the same arrival times for every mode
    starts = [rng.uniform(0, poll_interval) for _ in range(n)]
    with EmulatorProcess(speed=0.0) as emulator:
        jobs = asyncio.run(_create_jobs(emulator.base_url, [0.0] + [s + duration for s in starts]))
        spec = client_spec(mode, emulator.base_url, poll_interval, jobs, starts)
        tag = f"{mode}-{n}" + ("" if watch_seconds is None else "-long")
        spec_path, out_path = workdir / f"spec-{tag}.json", workdir / f"out-{tag}.json"
        spec_path.write_text(json.dumps(spec))
        emulator.control("DELETE", "/requests")
        emu_cpu_before = emulator.cpu_seconds()
        env = {**os.environ, **conn_env(emulator.base_url, requests_per_minute=10**8, requests_per_hour=10**9)}
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--client",
                str(spec_path),
                str(out_path),
                str(workdir / f"client-{tag}.log"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        (workdir / f"client-{tag}.out").write_text(done.stdout + done.stderr)  # structlog writes there
        if done.returncode != 0:
            raise RuntimeError(f"client {mode} N={n} failed:\n{done.stderr[-4000:]}")
        emu_cpu = emulator.cpu_seconds() - emu_cpu_before
        log = emulator.requests_log()
    result = json.loads(out_path.read_text())
    # Requests that observed jobs: a job's GET, or a page of the job list (the watcher's sweep).
    # The warm-up's requests came before the measurement started.
    measured = [r for r in log if r["method"] == "GET" and r["time"] >= result["measure_started"]]
    polls = sum(1 for r in measured if r["path"].startswith(JOB_PATH.rstrip("/")))
    lists = sum(1 for r in measured if r["path"] == JOB_PATH.rstrip("/"))
    statuses: dict[str, int] = {}
    for r in log:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    return {
        "n": n,
        "mode": mode,
        "workload": "short" if watch_seconds is None else "long",
        "poll_interval": poll_interval,
        "job_seconds": round(duration, 2),
        "polls": polls,
        "polls_per_job": polls / n,
        "list_requests": lists,
        "watcher": mode == "ours" and watcher_available(),
        "cpu_us_per_poll": result["cpu_seconds"] / polls * 1e6,
        "cpu_us_per_job_minute": result["cpu_seconds"] / (n * duration / 60) * 1e6,
        "user_cpu_us_per_poll": result["user_cpu_seconds"] / polls * 1e6,
        "rss_kib_per_wait": result["rss_delta_bytes"] / n / 1024,
        "polls_per_second": polls / max(result["wall_seconds"] - 0.0, 1e-9),
        "emulator_cpu_share": emu_cpu / result["wall_seconds"],
        "statuses": statuses,
        **result,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--watch-minutes",
        type=float,
        default=2.0,
        help="the long workload: jobs running this long, watched by ours and per_job_get (0: skip it)",
    )
    parser.add_argument("--watch-size", type=int, default=2000, help="N of the long workload")
    parser.add_argument(
        "--watch-runs",
        type=int,
        default=3,
        help="runs of the long workload per client, the clients alternating; each client's median run is reported",
    )
    parser.add_argument("--client", nargs=3, metavar=("SPEC", "OUT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(*args.client)

    modes = list(args.modes)
    if not watcher_available() and "per_job_get" in modes and "ours" in modes:
        modes.remove("per_job_get")  # without the watcher the shipped trigger is the per-job-GET one
        print("no watcher in this checkout: 'ours' is the per-job-GET trigger", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir=os.environ.get("BENCH_KEEP")) as tmp:
        for n in args.sizes:
            for mode in modes:
                began = time.monotonic()
                row = run_one(n, mode, Path(tmp))
                rows.append(row)
                print(
                    f"N={n:>5} {mode:>16}: {row['cpu_us_per_poll']:7.0f} us/poll, "
                    f"{row['cpu_us_per_job_minute']:7.0f} us/job-minute, lag p99 {row['lag_p99_ms']:6.1f} ms, "
                    f"{row['rss_kib_per_wait']:5.1f} KiB/wait, {row['polls_per_job']:.2f} polls/job, "
                    f"{row['failures']} failures ({time.monotonic() - began:.0f} s)",
                    flush=True,
                )
        if args.watch_minutes > 0:
            long_modes = [m for m in modes if m in ("ours", "per_job_get")]
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in long_modes}
            for _ in range(args.watch_runs):
                for mode in long_modes:  # alternating: a slow spell of the machine hits both clients
                    began = time.monotonic()
                    row = run_one(args.watch_size, mode, Path(tmp), args.watch_minutes * 60)
                    runs[mode].append(row)
                    print(
                        f"N={args.watch_size:>5} {mode:>16} (jobs of {args.watch_minutes:g} min): "
                        f"{row['cpu_us_per_job_minute']:7.0f} us/job-minute, {row['polls_per_job']:.2f} "
                        f"requests/job, lag p99 {row['lag_p99_ms']:6.1f} ms, {row['gc_full_collections']} full GCs, "
                        f"{row['failures']} failures ({time.monotonic() - began:.0f} s)",
                        flush=True,
                    )
            rows.extend(median_run(mode_runs) for mode_runs in runs.values())

    short = [row for row in rows if row["workload"] == "short"]
    floor = {row["n"]: row["cpu_us_per_poll"] for row in short if row["mode"] == "floor"}
    baseline = {row["n"]: row["cpu_us_per_poll"] for row in short if row["mode"] == "per_poll_session"}
    per_job = {(row["n"], row["workload"]): row["cpu_us_per_job_minute"] for row in rows if _is_per_job_trigger(row)}
    for row in rows:
        # Per poll only where a poll is one job's GET (the watcher's requests are pages of the list).
        per_get = not row["watcher"] and row["workload"] == "short"
        row["x_floor"] = row["cpu_us_per_poll"] / floor[row["n"]] if per_get and row["n"] in floor else None
        row["x_per_poll_session"] = (
            row["cpu_us_per_poll"] / baseline[row["n"]] if per_get and row["n"] in baseline else None
        )
        key = (row["n"], row["workload"])
        row["x_per_job_get"] = row["cpu_us_per_job_minute"] / per_job[key] if key in per_job else None
    targets = _targets(rows)
    print()
    print("Trigger fleet (one event loop; emulator in its own process)")
    print(
        table(
            HEADERS,
            [
                [
                    r["n"],
                    r["mode"] + (" (long)" if r["workload"] == "long" else ""),
                    r["cpu_us_per_poll"],
                    r["user_cpu_us_per_poll"],
                    r["cpu_us_per_job_minute"],
                    r["x_per_job_get"] if r["x_per_job_get"] is not None else "-",
                    r["x_floor"] if r["x_floor"] is not None else "-",
                    r["lag_p50_ms"],
                    r["lag_p99_ms"],
                    r["own_lag_p99_ms"],
                    r["rss_kib_per_wait"],
                    r["polls_per_job"],
                    r["sessions_peak"] if r["mode"] in ("ours", "per_job_get") else "-",
                    r["failures"],
                ]
                for r in rows
            ],
        )
    )
    for name, target in targets.items():
        print(f"{'MET ' if target['met'] else 'MISSED'} {name}: {target['detail']}")
    path = write_result(
        "fleet",
        {
            "benchmark": "trigger_fleet",
            "polls_per_job_target": POLLS_PER_JOB,
            "poll_interval": POLL_INTERVAL,
            "tick_seconds": TICK,
            "watcher": watcher_available(),
            "command": "python benchmarks/bench_fleet.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
            "watch_minutes": args.watch_minutes,
            "rows": rows,
            "targets": targets,
        },
    )
    print(f"wrote {path}")
    return 0


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """
    The run with the median CPU per watched job per minute (the lower middle one of an even
    count), with every run's figure in ``cpu_us_per_job_minute_runs``: the process's CPU time
    moves by up to about two fifths from run to run on a shared VM.
    """
    ranked = sorted(runs, key=lambda run: run["cpu_us_per_job_minute"])
    return {
        **ranked[(len(ranked) - 1) // 2],
        "cpu_us_per_job_minute_runs": [run["cpu_us_per_job_minute"] for run in runs],
    }


def _is_per_job_trigger(row: dict[str, Any]) -> bool:
    """The shipped trigger polling its job with a GET per poll (today's trigger)."""
    return row["mode"] == "per_job_get" or (row["mode"] == "ours" and not row["watcher"])


def _targets(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ours = [r for r in rows if r["mode"] == "ours"]
    if not ours:
        return {}
    short = [r for r in ours if r["workload"] == "short"] or ours
    out: dict[str, dict[str, Any]] = {}
    watched = [r for r in ours if r["watcher"] and r["x_per_job_get"] is not None]
    if watched:
        # Jobs that run for minutes if measured (the steady cost of watching), else the largest N.
        at = max(watched, key=lambda r: (r["workload"] == "long", r["n"]))
        out["cpu_per_watched_job_minute_vs_per_job_get<=0.2"] = {
            "met": at["x_per_job_get"] <= 0.2,
            "detail": f"{at['x_per_job_get']:.3f}x today's per-job-GET trigger at N={at['n']}, jobs of "
            f"{at['job_seconds'] / 60:.2g} min ({at['cpu_us_per_job_minute']:,.0f} against "
            f"{at['cpu_us_per_job_minute'] / at['x_per_job_get']:,.0f} us CPU per watched job per minute)",
        }
    # CPU per poll: the per-job-GET trigger against the other ways of making the same GETs.
    per_get = [r for r in rows if _is_per_job_trigger(r) and r["workload"] == "short"]
    worst_floor = max((r["x_floor"] for r in per_get if r["x_floor"] is not None), default=None)
    if worst_floor is not None:
        out["cpu_per_poll_vs_floor<=1.5"] = {"met": worst_floor <= 1.5, "detail": f"worst {worst_floor:.2f}x floor"}
    worst_base = max((r["x_per_poll_session"] for r in per_get if r["x_per_poll_session"] is not None), default=None)
    if worst_base is not None:
        out["cpu_per_poll_vs_per_poll_session<=0.5"] = {
            "met": worst_base <= 0.5,
            "detail": f"worst {worst_base:.2f}x the per-poll-session baseline",
        }
    biggest = max(short, key=lambda r: r["n"])
    out["loop_lag_p99<=100ms"] = {
        "met": biggest["lag_p99_ms"] <= 100,
        "detail": f"{biggest['lag_p99_ms']:.1f} ms at N={biggest['n']}",
    }
    big = [r["rss_kib_per_wait"] for r in ours if r["n"] >= 1000]
    worst_rss = max(big) if big else None
    if worst_rss is not None:
        out["rss_per_trigger<=64KiB"] = {"met": worst_rss <= 64, "detail": f"worst {worst_rss:.1f} KiB (N >= 1000)"}
    out["one_shared_session"] = {
        "met": all(r["sessions_peak"] == 1 for r in ours),
        "detail": f"peak open sessions {sorted({r['sessions_peak'] for r in ours})}",
    }
    out["no_failures"] = {"met": all(r["failures"] == 0 for r in ours), "detail": f"{sum(r['failures'] for r in ours)}"}
    return out


if __name__ == "__main__":
    sys.exit(main())
