"""
Every way of waiting that the benchmarks compare still works: a few jobs each, end to end.

The full benchmark runs (``make bench``) are the only other thing that runs these clients, and
they take most of an hour; a client that crashed there would only show up as failures in a table.
Here each client of ``benchmarks/bench_fleet.py`` (every mode in ``MODES``) and of
``benchmarks/bench_ratelimit.py`` (every way of waiting in ``WAITS``) waits for a handful of jobs
on the benchmark's own emulator process (``_common.EmulatorProcess``, real sockets), through the
benchmark's own client coroutine (its ``_client``), with its patches (``use_per_job_get``, the
rate-limit benchmark's time compression) applied as in the benchmark; every job must be seen ended,
successfully, with no failure and no crash. A patch of ``use_per_job_get`` that no longer fits the
hook's method it replaces (``plain_sleep`` without ``timeout``, ``own_get`` without ``max_wait``)
turns the ``per_job_get`` and ``per_job`` cases red, and so does a client that raises
(``httpx_wait`` calling ``get`` with an argument httpx does not take). The client of
``bench_emulator.py`` sends a few requests to the emulator it starts, and every step
``bench_overhead.py`` times runs a few times. (``bench_parse.py`` has no client: it times fresh
interpreters importing the operators, which ``tests/test_import_cost.py`` checks structurally.)

The benchmarks run each client in a process of its own; here the client runs in the test process
(an Airflow import per client would cost seconds), so the package is put back as it was after each
test (:func:`package_restored`).
"""

from __future__ import annotations

import asyncio
import inspect
import random
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

# What the benchmark clients import and patch, imported now so that package_restored saves it.
import airflow_provider_gradient._polling
import airflow_provider_gradient._sweep
import airflow_provider_gradient.hooks._watcher
import airflow_provider_gradient.triggers.indexing_job

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_emulator  # noqa: E402
import bench_fleet  # noqa: E402
import bench_overhead  # noqa: E402
import bench_ratelimit  # noqa: E402
from _common import EmulatorProcess, conn_env  # noqa: E402

pytestmark = pytest.mark.integration

#: Jobs per client: more than the watcher needs before it sweeps the job list (_sweep.MIN_WATCHED).
JOBS = 5


@pytest.fixture
def package_restored() -> Iterator[None]:
    """
    Put back every module-level name and class attribute of the package that the test replaced:
    the benchmarks' clients re-point parts of it (``use_per_job_get``, the rate-limit benchmark's
    time compression) for the process they run in, which here is the test session's. (Names added
    meanwhile stay: a submodule imported during the test is one.)
    """
    owners: list[Any] = []
    for name, module in list(sys.modules.items()):
        if name == "airflow_provider_gradient" or name.startswith("airflow_provider_gradient."):
            owners.append(module)
            owners.extend(
                value for value in vars(module).values() if isinstance(value, type) and value.__module__ == name
            )
    saved = [(owner, dict(vars(owner))) for owner in owners]
    yield
    for owner, before in saved:
        now = vars(owner)
        for attribute, value in before.items():
            if now.get(attribute) is not value:
                setattr(owner, attribute, value)


# ----------------------------------------------------------------------------------------------
# bench_fleet.py
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", bench_fleet.MODES)
def test_fleet_client_sees_every_job_end(mode: str, package_restored: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """One mode of the fleet benchmark waits for its jobs, as ``run_one`` sets it up, only smaller and faster."""
    # Jobs running longer than the arrivals take: all of them are watched at once for a while.
    poll_interval, job_seconds = 0.5, 1.0
    # The polling floor, as the rate-limit benchmark compresses it, so that a poll interval of 0.5 s applies.
    monkeypatch.setattr(airflow_provider_gradient._polling, "MIN_POLL", 0.05)
    rng = random.Random(JOBS)
    starts = [rng.uniform(0, poll_interval) for _ in range(JOBS)]
    with EmulatorProcess(speed=0.0) as emulator:
        jobs = asyncio.run(bench_fleet._create_jobs(emulator.base_url, [0.0] + [s + job_seconds for s in starts]))
        for name, value in conn_env(emulator.base_url, requests_per_minute=10**8, requests_per_hour=10**9).items():
            monkeypatch.setenv(name, value)
        spec = bench_fleet.client_spec(mode, emulator.base_url, poll_interval, jobs, starts)
        emulator.control("DELETE", "/requests")
        result = asyncio.run(bench_fleet._client(spec))
        log = emulator.requests_log()
        phases = {
            job["uuid"]: job["phase"] for job in emulator.control("GET", "/jobs")["jobs"] if job["uuid"] in jobs[1:]
        }

    assert result["failures"] == 0, result["failure_examples"]
    assert set(phases.values()) == {"BATCH_JOB_PHASE_SUCCEEDED"}, phases
    measured = [r for r in log if r["method"] == "GET" and r["time"] >= result["measure_started"]]
    reads = {r["path"].rsplit("/", 1)[1] for r in measured if r["path"].startswith(bench_fleet.JOB_PATH)}
    lists = [r for r in measured if r["path"] == bench_fleet.JOB_PATH.rstrip("/")]
    if mode == "ours" and bench_fleet.watcher_available():
        assert lists, "the trigger's watcher never swept the job list"
    else:
        # Every job read by its own GET (the job was still running at the first one), never through the list.
        assert reads == set(jobs[1:]), reads
        assert not lists, f"{mode}: {len(lists)} job list requests"
    assert all(r["status"] == 200 for r in log), [r for r in log if r["status"] != 200][:3]


# ----------------------------------------------------------------------------------------------
# bench_ratelimit.py
# ----------------------------------------------------------------------------------------------

#: Time compression: a scaled minute is 0.5 s; the jobs (running 120 to 180 real seconds, arriving
#: within 60) run 1 to 1.5 s, all of them at once for a while.
SCALE = 120.0
#: The wall bound of a run: a wait still running then counts as unfinished.
MAX_SECONDS = 60.0


@pytest.mark.parametrize("run", [f"1k:{wait}:newest" for wait in bench_ratelimit.WAITS] + ["busy:watcher:newest"])
def test_ratelimit_client_sees_every_job_end(run: str, package_restored: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    One way of waiting of the rate-limit benchmark, as ``run_one`` sets it up, with fewer and
    shorter jobs; ``busy`` adds the token's other user, the hour already used and the hourly headers.
    """
    scenario_name, wait, order = run.split(":")
    scenario = replace(bench_ratelimit.SCENARIOS[scenario_name], jobs=JOBS, running=(120.0, 180.0))
    config = bench_ratelimit.WAITS[wait]
    poll_interval = config["poll_interval"]
    if poll_interval is None:  # the trigger's default
        trigger = airflow_provider_gradient.triggers.indexing_job.GradientIndexingJobTrigger
        poll_interval = inspect.signature(trigger).parameters["poll_interval"].default
    rng = random.Random(7)
    running = [rng.uniform(*scenario.running) for _ in range(scenario.jobs)]
    starts = [rng.uniform(0, scenario.arrivals) for _ in range(scenario.jobs)]
    emulator_options: dict[str, Any] = {
        "per_minute": bench_ratelimit.PER_MINUTE,
        "per_hour": bench_ratelimit.PER_HOUR,
        "window_scale": SCALE,
        "speed": 0.0,
        "headers": scenario.headers,
        "prior_hour": scenario.prior_hour,
        "list_order": order,
    }
    with EmulatorProcess(**emulator_options) as emulator:
        kbs = asyncio.run(bench_ratelimit._prepare_account(emulator.base_url, running, bench_ratelimit.OLDER_JOBS))
        limits = {"requests_per_minute": bench_ratelimit.PER_MINUTE, "requests_per_hour": bench_ratelimit.PER_HOUR}
        if not config["budget"]:
            limits = {"requests_per_minute": 10**8, "requests_per_hour": 10**9}
        for name, value in conn_env(emulator.base_url, **limits).items():
            monkeypatch.setenv(name, value)
        spec = {
            "base_url": emulator.base_url,
            "scale": SCALE,
            "wait": wait,
            "indices": list(range(scenario.jobs)),
            "kbs": kbs,
            "starts": starts,
            "poll_interval": poll_interval,
            "budget": config["budget"],
            "others_per_minute": scenario.others_per_minute,
            "max_seconds": MAX_SECONDS,
        }
        emulator.control("DELETE", "/requests")
        result = asyncio.run(bench_ratelimit._client(spec))
        log = emulator.requests_log()
        watched = {
            job["uuid"]: job for job in emulator.control("GET", "/jobs")["jobs"] if job["knowledge_base_uuid"] in kbs
        }

    assert result["crashed"] == []
    assert result["unfinished"] == 0
    assert sorted(result["events"]) == [str(i) for i in range(scenario.jobs)]
    assert {status for status, _ in result["events"].values()} == {"success"}, result["events"]
    assert len(watched) == scenario.jobs
    assert {job["phase"] for job in watched.values()} == {"BATCH_JOB_PHASE_SUCCEEDED"}
    jobs_path = bench_ratelimit.JOBS_PATH
    reads = {r["path"].rsplit("/", 1)[1] for r in log if r["method"] == "GET" and r["path"].startswith(jobs_path + "/")}
    lists = [r for r in log if r["method"] == "GET" and r["path"] == jobs_path]
    if wait == "watcher":
        assert lists, "the trigger's watcher never swept the job list"
    else:
        assert reads == set(watched), reads
        assert not lists, f"{wait}: {len(lists)} job list requests"
    if scenario.others_per_minute:
        assert any(r["path"].startswith(bench_ratelimit.OTHERS_PATH) for r in log), "the other user sent nothing"


# ----------------------------------------------------------------------------------------------
# bench_emulator.py, bench_overhead.py
# ----------------------------------------------------------------------------------------------


def test_emulator_benchmark_client_gets_its_answers() -> None:
    """The emulator benchmark's client, on the emulator as the benchmark starts it (its CLI), a few requests."""
    process, base_url, kb = bench_emulator._start_emulator()
    try:
        answer = requests.post(f"{base_url}/_emulator/knowledge_bases/{kb}/jobs", json={}, timeout=10)
        answer.raise_for_status()
        url = f"{base_url}/v2/gen-ai/indexing_jobs/{answer.json()['job_uuid']}"
        row = asyncio.run(bench_emulator._run(url, 20, 4))
    finally:
        process.terminate()
        process.communicate(timeout=15)
    assert (row["requests"], row["errors"], row["concurrency"]) == (20, 0, 4), row


def test_overhead_benchmark_times_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step the overhead benchmark times runs (each a few times instead of thousands)."""
    best, abest = bench_overhead.best, bench_overhead.abest
    monkeypatch.setattr(bench_overhead, "best", lambda fn, n=0, rounds=0: best(fn, 3, 1))
    monkeypatch.setattr(bench_overhead, "abest", lambda fn, n=0, rounds=0: abest(fn, 3, 1))
    for name, value in conn_env("http://127.0.0.1:9", requests_per_minute=10**8, requests_per_hour=10**9).items():
        monkeypatch.setenv(name, value)
    rows = asyncio.run(bench_overhead.measure())
    assert rows
    assert all(isinstance(us, float) and us >= 0 for _, _, us in rows), rows
