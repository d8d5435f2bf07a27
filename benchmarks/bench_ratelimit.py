"""Rate-limit economy: 1,000 and 4,000 concurrent jobs on ONE token, 250/min and 5,000/h.

Each run puts one scenario's jobs on one token and waits for all of them in one client process
per triggerer (one event loop each, like a triggerer), in one of these ways:

* ``per_job``: today's trigger: the shipped ``GradientIndexingJobTrigger`` polling its own job
  with a GET (``poll_interval`` 600 s, adaptive) through the shared per-token budget. With the
  watcher in the package, its observation is pointed back at the hook's per-job GET
  (``GradientHook.aget_indexing_job``), which is what the trigger did before it.
* ``watcher``: the shipped trigger as it is: its polls observe the job through the event loop's
  watcher (``GradientHook.aobserve_indexing_job``), which sweeps the account's job list.
* ``fixed5``: what a plain client does: a GET every 5 seconds per job on a shared aiohttp session,
  no budget; a 429 is waited out per ``Retry-After`` and retried.

Scenarios (``SCENARIOS``): ``1k``, 1,000 deferred tasks arriving within a minute, each job PENDING
10 s then RUNNING 1 to 10 minutes; ``4k``, 4,000 tasks arriving within 10 minutes, jobs running 10
to 20 minutes (all 4,000 running at once at the tenth minute); ``busy``, the ``1k`` jobs on a
token busy for the past hour (2,000 requests counted, leaving the hour all the time) that
another user keeps using (30 requests a minute), with DigitalOcean's documented headers
(``ratelimit-remaining`` counts the hour; the minute limit shows only when it is hit), its jobs
waited for by two triggerers (two client processes, each with its own budget). Every
account also holds 2,000 older, ended jobs, so the job list is longer than the watched jobs, and
the emulator lists jobs in the run's order: ``newest`` first, ``oldest`` first or in ``none``.

A job is created (through the emulator's control API, which the limiter does not count) when its
task arrives, and the task's trigger starts right then. Time is compressed by ``--scale`` k
(default 12) consistently everywhere: the emulator's rate-limit windows are 60/k s and 3600/k s
(limits unchanged), the triggers' budget uses the same windows, the emulator's job clock runs k
times faster, and poll intervals and the polling floor (``_polling.MIN_POLL``) are divided by k.
Every ratio (requests per window, polls per job, waits) is therefore the one of a real-time run.

Reported per run: jobs seen ended, failed waits, requests of the waits per job, 429 answers (ours
and the token's), how late each job was seen ended after its end (real seconds, p50/p95/max), the
busiest rolling minute and hour. Writes ``results/ratelimit.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    TOKEN,
    EmulatorProcess,
    conn_env,
    percentile,
    table,
    use_per_job_get,
    watcher_available,
    write_result,
)

PER_MINUTE, PER_HOUR = 250, 5000
PENDING = 10.0  # real seconds a job is PENDING
OLDER_JOBS = 2000  # ended jobs in the account before the run
RUNNING_PHASES = frozenset({"BATCH_JOB_PHASE_UNKNOWN", "BATCH_JOB_PHASE_PENDING", "BATCH_JOB_PHASE_RUNNING"})
API = "/v2/gen-ai"
JOBS_PATH = f"{API}/indexing_jobs"  # the list; a job is JOBS_PATH/{uuid}
OTHERS_PATH = f"{API}/knowledge_bases/"  # what the token's other user reads


@dataclass(frozen=True)
class Scenario:
    """Jobs on one token. Times in real (uncompressed) seconds."""

    jobs: int
    arrivals: float  # the tasks arrive uniformly within this many seconds
    running: tuple[float, float]  # each job RUNS uniformly between these many seconds
    headers: str = "binding"  # the emulator's reading of the rate-limit headers
    prior_hour: int = 0  # requests the token made in the hour before the run
    others_per_minute: float = 0.0  # requests a minute another user of the token sends
    triggerers: int = 1  # client processes (each one event loop with its own budget) sharing the jobs


SCENARIOS = {
    "1k": Scenario(jobs=1000, arrivals=60.0, running=(60.0, 600.0)),
    "4k": Scenario(jobs=4000, arrivals=600.0, running=(600.0, 1200.0)),
    "busy": Scenario(
        jobs=1000,
        arrivals=60.0,
        running=(60.0, 600.0),
        headers="hourly",
        prior_hour=2000,
        others_per_minute=30.0,
        triggerers=2,
    ),
}
#: How each way of waiting polls: poll_interval (real s; ``None``: the trigger's default) and
#: whether it goes through the budget.
WAITS = {
    "per_job": {"poll_interval": 600.0, "budget": True},
    "watcher": {"poll_interval": None, "budget": True},  # the trigger's default
    "fixed5": {"poll_interval": 5.0, "budget": False},
}
ORDERS = ("newest", "oldest", "none")
#: What ``make bench`` runs: scenario, way of waiting, list order.
DEFAULT_RUNS = (
    "1k:per_job:newest",
    "1k:watcher:newest",
    "1k:watcher:oldest",
    "1k:watcher:none",
    "4k:watcher:newest",
    "4k:watcher:oldest",
    "4k:watcher:none",
    "busy:per_job:newest",
    "busy:watcher:newest",
)


# ----------------------------------------------------------------------------------------------
# client process
# ----------------------------------------------------------------------------------------------


def _compress_time(scale: float) -> None:
    """Run the package's own clocks ``scale`` times faster, as the windows and the job clock are.

    The polling floor, a wait's longest sleep while sweeps see its job, and the watcher's idle and
    pause times are divided by ``scale``; the sweep gap (whose rules are in real seconds, against a
    60-second minute) is asked in real seconds and answered in compressed ones.
    """
    from airflow_provider_gradient import _polling, _wait

    _polling.MIN_POLL /= scale
    if hasattr(_wait, "LONGEST_SWEPT_SLEEP"):
        _wait.LONGEST_SWEPT_SLEEP /= scale
    if not watcher_available():
        return
    from airflow_provider_gradient import _sweep
    from airflow_provider_gradient.hooks import _watcher

    _watcher.IDLE /= scale
    _watcher.FORGET_AFTER /= scale
    _sweep.FAILURE_PAUSE /= scale  # a failed sweep's pause (none is expected here)
    _sweep.MAX_FAILURE_PAUSE /= scale
    sweep_gap = _sweep.sweep_gap

    def compressed_gap(
        poll_gap: float | None, pages: int, per_minute: int, watched: int = 0, per_hour: int | None = None
    ) -> float:
        real_poll_gap = None if poll_gap is None else poll_gap * scale
        return sweep_gap(real_poll_gap, pages, per_minute, watched, per_hour) / scale

    _sweep.sweep_gap = compressed_gap


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    from airflow_provider_gradient.hooks import _budget
    from airflow_provider_gradient.hooks.gradient import GradientHook
    from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

    scale, base_url, wait_kind = spec["scale"], spec["base_url"], spec["wait"]
    _compress_time(scale)
    if wait_kind == "per_job":
        use_per_job_get()  # today's trigger: every poll a GET of its own job
    if wait_kind == "watcher" and not watcher_available():
        raise SystemExit("this checkout has no watcher (GradientHook.aobserve_indexing_job)")
    settings = await GradientHook().asettings()
    if spec["budget"]:
        # The shared budget of this loop and token, with the same compressed windows as the emulator.
        budget = _budget.RequestBudget(PER_MINUTE, PER_HOUR, minute_window=60 / scale, hour_window=3600 / scale)
        loop = asyncio.get_running_loop()
        _budget.BUDGETS.setdefault(loop, {})[(settings.token_key, PER_MINUTE, PER_HOUR)] = budget
        assert _budget.budget_for(settings.token_key, PER_MINUTE, PER_HOUR) is budget, "budget not installed"

    events: dict[int, tuple[str, float]] = {}
    created: dict[int, float] = {}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    naive = aiohttp.ClientSession(headers=auth)
    # A new connection per control request: a kept-alive one that the emulator closes as a job is
    # being created fails that job's wait, which the benchmark would count as the trigger's failure.
    control = aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(force_close=True))

    async def wait(index: int, kb: str, start: float) -> None:
        await asyncio.sleep(start)
        before = time.time()
        async with control.post(f"/_emulator/knowledge_bases/{kb}/jobs", json={}) as r:
            r.raise_for_status()
            job = str((await r.json())["job_uuid"])
        created[index] = (before + time.time()) / 2
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
            async with naive.get(f"{base_url}{JOBS_PATH}/{job}") as response:
                payload = await response.json()
                if response.status == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
            if payload["job"]["phase"] not in RUNNING_PHASES:
                events[index] = ("success", time.time())
                return
            await asyncio.sleep(spec["poll_interval"] / scale)

    async def other_user(url: str, per_minute: float) -> None:
        """Another user of the token: a steady stream of reads, whatever the answers."""
        interval = 60 / per_minute / scale
        next_at = time.monotonic()
        while True:
            async with naive.get(url) as response:
                await response.read()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async with control.post("/_emulator/clock", json={"speed": scale}) as r:
        r.raise_for_status()
    clock_started = time.time()
    others = None
    if spec["others_per_minute"]:
        url = f"{base_url}{OTHERS_PATH}{spec['kbs'][0]}"
        others = asyncio.create_task(other_user(url, spec["others_per_minute"]))
    cpu_before = time.process_time()
    tasks = [
        asyncio.create_task(wait(i, kb, start / scale))
        for i, kb, start in zip(spec["indices"], spec["kbs"], spec["starts"], strict=True)
    ]
    done, pending = await asyncio.wait(tasks, timeout=spec["max_seconds"])
    cpu = time.process_time() - cpu_before
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if others is not None:
        others.cancel()
        await asyncio.gather(others, return_exceptions=True)
    await naive.close()
    await control.close()
    return {
        "clock_started": clock_started,
        "wall_seconds": time.time() - clock_started,
        "client_cpu_seconds": cpu,
        "events": {str(i): list(e) for i, e in events.items()},
        "created": {str(i): at for i, at in created.items()},
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


async def _prepare_account(base_url: str, running: list[float], older: int) -> list[str]:
    """``older`` ended jobs, then one scripted knowledge base per watched job (its job not started yet)."""
    import aiohttp

    semaphore = asyncio.Semaphore(16)

    async def knowledge_base(session: aiohttp.ClientSession, name: str, script: dict[str, float]) -> str:
        async with session.post("/_emulator/knowledge_bases", json={"name": name}) as r:
            r.raise_for_status()
            kb = str((await r.json())["uuid"])
        async with session.post(f"/_emulator/knowledge_bases/{kb}/script", json=script) as r:
            r.raise_for_status()
        return kb

    async def watched(session: aiohttp.ClientSession, index: int, seconds: float) -> str:
        async with semaphore:
            return await knowledge_base(session, f"kb-{index}", {"duration": seconds, "pending": PENDING})

    async with aiohttp.ClientSession(base_url) as session:
        history = await knowledge_base(session, "history", {"duration": 0.0, "pending": 0.0})
        # Ended jobs created a second apart, the newest of them an hour before the run.
        body = {"count": older, "before": 3600.0, "spacing": 1.0}
        async with session.post(f"/_emulator/knowledge_bases/{history}/finished_jobs", json=body) as r:
            r.raise_for_status()
        return list(await asyncio.gather(*(watched(session, i, d) for i, d in enumerate(running))))


def run_one(run: str, scale: float, max_seconds: float, workdir: Path, jobs: int | None = None) -> dict[str, Any]:
    scenario_name, wait_kind, order = run.split(":")
    scenario, config = SCENARIOS[scenario_name], WAITS[wait_kind]
    if jobs is not None:
        scenario = replace(scenario, jobs=jobs)
    rng = random.Random(7)  # the same jobs and arrivals for every way of waiting
    running = [rng.uniform(*scenario.running) for _ in range(scenario.jobs)]
    starts = [rng.uniform(0, scenario.arrivals) for _ in range(scenario.jobs)]
    emulator_options: dict[str, Any] = {
        "per_minute": PER_MINUTE,
        "per_hour": PER_HOUR,
        "window_scale": scale,
        "speed": 0.0,
        "headers": scenario.headers,
        "prior_hour": scenario.prior_hour,
    }
    emulator_options["list_order"] = order
    poll_interval = config["poll_interval"]
    if poll_interval is None:
        import inspect

        from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

        poll_interval = inspect.signature(GradientIndexingJobTrigger).parameters["poll_interval"].default
    config = {**config, "poll_interval": poll_interval}
    with EmulatorProcess(**emulator_options) as emulator:
        kbs = asyncio.run(_prepare_account(emulator.base_url, running, OLDER_JOBS))
        name = run.replace(":", "-")
        clients = []
        for k in range(scenario.triggerers):  # the jobs dealt out to the triggerers in turn
            indices = list(range(k, scenario.jobs, scenario.triggerers))
            spec = {
                "base_url": emulator.base_url,
                "scale": scale,
                "wait": wait_kind,
                "indices": indices,
                "kbs": [kbs[i] for i in indices],
                "starts": [starts[i] for i in indices],
                "poll_interval": config["poll_interval"],
                "budget": config["budget"],
                "others_per_minute": scenario.others_per_minute if k == 0 else 0.0,
                "max_seconds": max_seconds,
            }
            spec_path, out_path = workdir / f"spec-{name}-{k}.json", workdir / f"out-{name}-{k}.json"
            spec_path.write_text(json.dumps(spec))
            clients.append((spec_path, out_path))
        emulator.control("DELETE", "/requests")
        extra: dict[str, Any] = {"requests_per_minute": PER_MINUTE, "requests_per_hour": PER_HOUR}
        if not config["budget"]:
            extra = {"requests_per_minute": 10**8, "requests_per_hour": 10**9}
        env = {**os.environ, **conn_env(emulator.base_url, **extra)}
        began = time.monotonic()
        commands = [[sys.executable, __file__, "--client", str(spec), str(out)] for spec, out in clients]
        outputs = [workdir / f"client-{name}-{k}.out" for k in range(len(clients))]
        codes = run_clients(commands, outputs, env, max_seconds + 300)
        for k, (code, output) in enumerate(zip(codes, outputs, strict=True)):
            if code != 0:
                raise RuntimeError(f"client {k} of {run} failed:\n{output.read_text()[-4000:]}")
        log = emulator.requests_log()
        emulator_started = emulator.started_at
    parts = [json.loads(out_path.read_text()) for _, out_path in clients]
    result = {
        "wall_seconds": max(p["wall_seconds"] for p in parts),
        "client_cpu_seconds": sum(p["client_cpu_seconds"] for p in parts),
        "events": {i: e for p in parts for i, e in p["events"].items()},
        "created": {i: at for p in parts for i, at in p["created"].items()},
        "unfinished": sum(p["unfinished"] for p in parts),
        "crashed": [c for p in parts for c in p["crashed"]],
        "emulator_started": emulator_started,
    }
    return _summarise(run, scenario, config, scale, max_seconds, running, log, result) | {
        "run_seconds": time.monotonic() - began
    }


def run_clients(commands: list[list[str]], outputs: list[Path], env: dict[str, str], timeout: float) -> list[int]:
    """
    Run the client processes side by side, each one's output (stdout and stderr) written to its
    file, and return their exit codes. Files, not pipes: a pipe nobody reads while another client
    is waited for fills up, and its client then stalls on its next log line.
    """
    processes = []
    for command, output in zip(commands, outputs, strict=True):
        with output.open("w") as sink:  # the child keeps its own copy of the descriptor
            processes.append(subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout
    return [process.wait(timeout=max(0.0, deadline - time.monotonic())) for process in processes]


def _summarise(
    run: str,
    scenario: Scenario,
    config: dict[str, Any],
    scale: float,
    max_seconds: float,
    running: list[float],
    log: list[dict[str, Any]],
    result: dict[str, Any],
) -> dict[str, Any]:
    scenario_name, wait_kind, order = run.split(":")
    ours = [r for r in log if r["path"].startswith(JOBS_PATH)]
    lists = [r for r in ours if r["path"] == JOBS_PATH and r["method"] == "GET"]
    gets = [r for r in ours if r["path"].startswith(JOBS_PATH + "/") and r["path"].count("/") == 4]
    others = [r for r in log if r["path"].startswith(OTHERS_PATH)]
    # When each job was first read by its own GET: the first reads queue in the budget like any poll.
    first_get: dict[str, float] = {}
    for r in gets:
        first_get.setdefault(r["path"], r["time"])
    first_created = min(result["created"].values(), default=0.0)
    everything = [r for r in log if r["path"].startswith(API)]
    statuses = [status for status, _ in result["events"].values()]
    # A job ends PENDING + its running time after it was created (emulated seconds, k per wall second).
    ends = {i: at + (PENDING + running[int(i)]) / scale for i, at in result["created"].items()}
    late = [(at - ends[i]) * scale for i, (status, at) in result["events"].items() if status == "success"]
    seen = {i: at for i, (_, at) in result["events"].items()}
    finished = len(result["events"])
    throttled = sum(1 for r in ours if r["status"] == 429)
    throttled_all = sum(1 for r in everything if r["status"] == 429)
    per_window = _busiest_windows(everything, scale)
    minute_429, hour_429 = _which_limit(everything, scale, scenario.prior_hour, result["emulator_started"])
    return {
        "run": run,
        "scenario": scenario_name,
        "wait": wait_kind,
        "list_order": order,
        "mode": f"{wait_kind} ({order})" if wait_kind == "watcher" else wait_kind,
        "poll_interval": config["poll_interval"],
        "shared_budget": config["budget"],
        "headers": scenario.headers,
        "prior_hour": scenario.prior_hour,
        "others_per_minute": scenario.others_per_minute,
        "triggerers": scenario.triggerers,
        "jobs": scenario.jobs,
        "most_running_at_once": _most_at_once(result["created"], seen),
        "finished": finished,
        "succeeded": statuses.count("success"),
        "failed": finished - statuses.count("success") + len(result["crashed"]),
        "unfinished": result["unfinished"],
        "requests": len(ours),
        "list_requests": len(lists),
        "job_gets": len(gets),
        "throttled_429": throttled,
        "other_requests": len(others),
        "token_requests": len(everything),
        "token_throttled_429": throttled_all,
        "token_throttled_share": throttled_all / len(everything) if everything else 0.0,
        "token_throttled_minute": minute_429,
        "token_throttled_hour": hour_429,
        "requests_per_finished_job": len(ours) / finished if finished else None,
        "last_first_get_real_s": (max(first_get.values(), default=first_created) - first_created) * scale,
        "detection_late_p50_s": percentile(late, 0.5),
        "detection_late_p95_s": percentile(late, 0.95),
        "detection_late_max_s": max(late, default=float("nan")),
        "client_cpu_seconds": result["client_cpu_seconds"],
        "wall_seconds": result["wall_seconds"],
        "real_seconds": result["wall_seconds"] * scale,
        "bounded_at_wall_seconds": max_seconds,
        "busiest_minute": per_window["minute"],
        "busiest_hour": per_window["hour"],
        "crashed": result["crashed"],
    }


def _busiest_windows(requests: list[dict[str, Any]], scale: float) -> dict[str, int]:
    """Most accepted requests in any rolling (scaled) minute and hour, as the server counted them."""
    times = sorted(r["time"] for r in requests if r["status"] != 429)
    out = {}
    for name, window in (("minute", 60 / scale), ("hour", 3600 / scale)):
        out[name] = max(
            (bisect.bisect_right(times, t) - bisect.bisect_left(times, t - window) for t in times), default=0
        )
    return out


def _which_limit(requests: list[dict[str, Any]], scale: float, prior: int, started: float) -> tuple[int, int]:
    """
    The token's 429s split by the limit they met: the hour when the accepted requests in the hour
    before (the prior hour's still in it included) had filled it, else the minute.
    """
    window = 3600 / scale
    times = sorted(r["time"] for r in requests if r["status"] != 429)

    def in_hour(at: float) -> float:
        counted = bisect.bisect_left(times, at) - bisect.bisect_right(times, at - window)
        return counted + prior * max(0.0, 1 - (at - started) / window)

    refused = [r["time"] for r in requests if r["status"] == 429]
    hour = sum(1 for at in refused if in_hour(at) >= PER_HOUR - 1)
    return len(refused) - hour, hour


def _most_at_once(created: dict[str, float], seen: dict[str, float]) -> int:
    """The most waits running at once (from their job's creation to the event)."""
    edges = sorted([(at, 1) for at in created.values()] + [(seen[i], -1) for i in created if i in seen])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def targets(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The verdicts of the rate-limit targets, for the rows this run made."""
    by = {r["run"]: r for r in rows}
    out: dict[str, dict[str, Any]] = {}

    def clean(r: dict[str, Any]) -> bool:
        return r["throttled_429"] == 0 and r["failed"] == 0 and r["unfinished"] == 0

    def facts(r: dict[str, Any]) -> str:
        return (
            f"{r['run']}: {r['throttled_429']} x 429, {r['failed']} failed, {r['unfinished']} unfinished, "
            f"{_f(r['requests_per_finished_job'])} requests/job, seen late p50 {_f(r['detection_late_p50_s'])} s, "
            f"p95 {_f(r['detection_late_p95_s'])} s"
        )

    for order in ("newest", "oldest"):
        r = by.get(f"1k:watcher:{order}")
        if r is not None:
            out[f"1k_{order}_first"] = {
                "met": clean(r)
                and (r["requests_per_finished_job"] or 99) <= 1.2
                and r["detection_late_p50_s"] <= 10
                and r["detection_late_p95_s"] <= 20,
                "detail": facts(r) + " (target: 0, 0, <= 1.2, <= 10 s, <= 20 s)",
            }
    for order in ORDERS:
        r = by.get(f"4k:watcher:{order}")
        if r is not None:
            out[f"4k_{order}"] = {
                "met": clean(r) and r["detection_late_p95_s"] <= 60,
                "detail": facts(r) + " (target: 0 x 429, 0 failed, p95 <= 60 s)",
            }
    none, today = by.get("1k:watcher:none"), by.get("1k:per_job:newest")
    if none is not None and today is not None:
        ratio = none["requests"] / today["requests"]
        out["1k_no_order"] = {
            "met": none["failed"] == 0
            and none["unfinished"] == 0
            and none["succeeded"] == none["jobs"]
            and ratio <= 1.2,
            "detail": f"{none['succeeded']}/{none['jobs']} right, {none['requests']:,} requests = {ratio:.2f}x "
            f"today's per-job polling ({today['requests']:,}) (target: all right, <= 1.2x)",
        }
    busy = by.get("busy:watcher:newest")
    if busy is not None:
        today_busy = by.get("busy:per_job:newest")
        before = f"; today's per-job polling {today_busy['token_throttled_share']:.1%}" if today_busy else ""
        out["busy_hourly_429<=1%"] = {
            "met": busy["token_throttled_share"] <= 0.01 and busy["failed"] == 0 and busy["unfinished"] == 0,
            "detail": f"{busy['token_throttled_share']:.2%} of the token's {busy['token_requests']:,} requests "
            f"answered 429{before}",
        }
    return out


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=12.0, help="time compression factor k")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=list(DEFAULT_RUNS),
        help=f"SCENARIO:WAIT:ORDER, of {list(SCENARIOS)} x {list(WAITS)} x {list(ORDERS)}",
    )
    parser.add_argument("--max-seconds", type=float, default=600.0, help="wall bound of a budgeted run")
    parser.add_argument("--fixed5-seconds", type=float, default=60.0, help="wall bound of the unbudgeted run")
    parser.add_argument("--jobs", type=int, default=None, help="fewer jobs than the scenario's (a quick check)")
    parser.add_argument("--client", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(*args.client)
    for run in args.runs:
        scenario, wait_kind, order = [*run.split(":"), "", "", ""][:3]
        if scenario not in SCENARIOS or wait_kind not in WAITS or order not in ORDERS:
            parser.error(f"--runs: {run!r} is not SCENARIO:WAIT:ORDER with {list(SCENARIOS)}, {list(WAITS)}, {ORDERS}")
    runs = list(args.runs)
    skipped = []
    if not watcher_available():
        skipped = [run for run in runs if ":watcher:" in run]
        runs = [run for run in runs if run not in skipped]
        if skipped:
            print(f"no watcher in this checkout: skipping {skipped}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ratelimit-", dir=os.environ.get("BENCH_KEEP")) as tmp:
        for run in runs:
            bound = args.fixed5_seconds if not WAITS[run.split(":")[1]]["budget"] else args.max_seconds
            row = run_one(run, args.scale, bound, Path(tmp), args.jobs)
            rows.append(row)
            print(
                f"{run:>22}: {row['finished']}/{row['jobs']} seen ended, {row['failed']} failed, "
                f"{row['throttled_429']} x 429, {row['requests']} requests, late p50 "
                f"{_f(row['detection_late_p50_s'])} s p95 {_f(row['detection_late_p95_s'])} s "
                f"({row['run_seconds']:.0f} s) {row['crashed'] or ''}",
                flush=True,
            )
    print()
    print(f"Rate-limit economy: one token, {PER_MINUTE}/min and {PER_HOUR}/h (time x{args.scale:g})")
    print(
        table(
            ["run", "seen", "failed", "429s", "token 429 %", "requests", "lists", "req/job", "late p50", "late p95"],
            [
                [
                    r["run"],
                    r["finished"],
                    r["failed"],
                    r["throttled_429"],
                    100 * r["token_throttled_share"],
                    r["requests"],
                    r["list_requests"],
                    r["requests_per_finished_job"] or "-",
                    r["detection_late_p50_s"],
                    r["detection_late_p95_s"],
                ]
                for r in rows
            ],
        )
    )
    verdicts = targets(rows)
    for name, target in verdicts.items():
        print(f"{'MET ' if target['met'] else 'MISSED'} {name}: {target['detail']}")
    if args.jobs is not None:
        print("fewer jobs than the scenarios': results not written")
        return 0
    path = write_result(
        "ratelimit",
        {
            "benchmark": "rate_limit_economy",
            "command": "python benchmarks/bench_ratelimit.py"
            + (f" --runs {' '.join(args.runs)}" if args.runs != list(DEFAULT_RUNS) else ""),
            "scale": args.scale,
            "limits": {"per_minute": PER_MINUTE, "per_hour": PER_HOUR},
            "pending_seconds": PENDING,
            "older_jobs": OLDER_JOBS,
            "scenarios": {name: asdict(s) for name, s in SCENARIOS.items()},
            "skipped": skipped,
            "rows": rows,
            "targets": verdicts,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
