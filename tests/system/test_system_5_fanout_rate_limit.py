"""
Scenario 5: fifty deferred tasks (dynamic task mapping) poll through one token, across both
triggerers, against a per-minute limit that naive polling would blow through. No 429 may reach a
task as a failure, and the rate at which the processes ask (refused requests included) stays under
the limit.

It runs twice, once for each reading of the rate-limit headers the emulator can give (each run on
a token of its own, so the second starts with empty windows):

* ``binding``: ``ratelimit-remaining`` counts whichever window has fewer left.
* ``hourly``: the letter of DigitalOcean's documentation, ``remaining`` counts the hour and the
  minute limit shows only when it is hit. On a token quiet for the past hour the count still drops
  by one per request from anyone, which tells every process how fast the others send.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

import pytest
from system_clients import API_PREFIX, TERMINAL_RUN_STATES, AirflowAPI, Emulator, busiest_minute
from system_deployment import EMULATOR_SPEED, RATE_LIMIT_PER_HOUR, RATE_LIMIT_PER_MINUTE, Deployment

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

DAG_ID = "gradient_fanout"
TASKS = 50
POLL_INTERVAL = 5.0  # the DAG's poll_interval
JOB_SECONDS = 20.0
#: Longest silence (no request from any trigger) tolerated while tasks are deferred.
STALL_SECONDS = 60.0
#: Per header reading: the connection (token) it runs on, the most attempts (refused ones
#: included) in any rolling minute as a multiple of the limit, and the largest share answered 429.
READINGS = {
    "binding": ("gradient_default", 1.0, 0.01),
    "hourly": ("gradient_second", 1.05, 0.02),
}


def epoch(value: str) -> float:
    """Epoch seconds of an RFC 3339 / ISO 8601 time (the emulator's and Airflow's)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def spread(values: list[float]) -> str:
    """p50 / p95 / max of some seconds, for the report."""
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered):.1f}s, p95 {p95:.1f}s, max {ordered[-1]:.1f}s"


def economy(
    emulator: Emulator, tis: list[dict[str, Any]], kbs: list[str], traffic: list[dict[str, Any]]
) -> tuple[str, int]:
    """
    Requests per job and how late the jobs were seen ended, from the emulator's records: each job's
    end (its ``finished_at``, emulated time turned into wall time), the first read answered after
    it that could show it (a GET of the job, or a page of the job list), and its task's end.
    Returns the report line and how many jobs it measured.
    """
    clock = emulator.clock()
    now, speed = time.time(), float(clock["speed"]) or 1.0
    waiting = [r for r in traffic if r["method"] == "GET" and r["path"].startswith(f"{API_PREFIX}/indexing_jobs")]
    answered = sorted((r for r in waiting if r["status"] == 200), key=lambda r: r["time"])
    task_end = {ti["map_index"]: epoch(ti["end_date"]) for ti in tis if ti.get("end_date")}
    first_read: list[float] = []
    task_saw: list[float] = []
    for index, kb in enumerate(kbs):
        jobs = [job for job in emulator.jobs(kb) if job.get("finished_at")]
        if not jobs or index not in task_end:
            continue
        job = jobs[0]
        ended = now - (float(clock["now"]) - epoch(job["finished_at"])) / speed  # wall time of the end
        reads = (
            r["time"]
            for r in answered
            if r["time"] >= ended
            and r["path"] in (f"{API_PREFIX}/indexing_jobs", f"{API_PREFIX}/indexing_jobs/{job['uuid']}")
        )
        seen = next(reads, None)
        if seen is not None:
            first_read.append(seen - ended)
        task_saw.append(task_end[index] - ended)
    lists = sum(1 for r in waiting if r["path"] == f"{API_PREFIX}/indexing_jobs")
    line = (
        f"{len(traffic) / len(kbs):.2f} requests per job ({len(waiting) / len(kbs):.2f} reading jobs, {lists} of them "
        f"list pages); seen ended after the job's end: first read {spread(first_read)}; task ended {spread(task_saw)}"
    )
    return line, len(task_saw)


@pytest.mark.parametrize("reading", list(READINGS))
def test_fifty_deferred_tasks_share_one_token(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...], reading: str
) -> None:
    conn_id, most_attempts, most_refused = READINGS[reading]
    # Naive polling (every trigger every poll_interval) would need this many requests per minute:
    assert TASKS * 60 / POLL_INTERVAL > 2 * RATE_LIMIT_PER_MINUTE
    kbs = [
        emulator.scripted_kb(f"fanout-{reading}-{index:02d}", running=JOB_SECONDS, pending=1, speed=EMULATOR_SPEED)
        for index in range(TASKS)
    ]
    deployment.wait_healthy(180)  # both triggerers heartbeating
    emulator.set_rate_limits(RATE_LIMIT_PER_MINUTE, RATE_LIMIT_PER_HOUR, headers=reading)
    try:
        fan_out(deployment, airflow_api, emulator, reading, kbs, conn_id, most_attempts, most_refused)
    finally:
        emulator.set_rate_limits(RATE_LIMIT_PER_MINUTE, RATE_LIMIT_PER_HOUR, headers="binding")


def fan_out(
    deployment: Deployment,
    airflow_api: AirflowAPI,
    emulator: Emulator,
    reading: str,
    kbs: list[str],
    conn_id: str,
    most_attempts: float,
    most_refused: float,
) -> None:
    began = time.time()
    run_id = airflow_api.trigger(DAG_ID, {"kbs": kbs, "conn_id": conn_id})

    hosts: set[str] = set()
    most_deferred = 0
    deadline = time.monotonic() + 480
    while True:
        run = airflow_api.run(DAG_ID, run_id)
        tis = [ti for ti in airflow_api.task_instances(DAG_ID, run_id) if ti["task_id"] == "reindex"]
        deferred = [ti for ti in tis if ti["state"] == "deferred"]
        most_deferred = max(most_deferred, len(deferred))
        hosts |= {ti["triggerer_job"]["hostname"] for ti in deferred if ti.get("triggerer_job")}
        if run["state"] in TERMINAL_RUN_STATES:
            break
        assert time.monotonic() < deadline, {ti["map_index"]: ti["state"] for ti in tis}
        if deferred:
            # Deferred tasks must keep polling: a silent token means the triggers stalled.
            last = max((r["time"] for r in emulator.requests() if r["path"].startswith("/v2/")), default=began)
            assert time.time() - last < STALL_SECONDS, (
                f"{len(deferred)} tasks deferred but no request reached the API for {time.time() - last:.0f}s: "
                "the triggers stopped polling (a rate budget waiting for a far ratelimit-reset?)"
            )
        time.sleep(1.0)
    elapsed = time.time() - began

    failed: dict[int, Any] = {ti["map_index"]: ti["state"] for ti in tis if ti["state"] != "success"}
    assert not failed, failed
    assert run["state"] == "success"
    assert len(tis) == TASKS
    assert all(ti["try_number"] == 1 for ti in tis), [ti["try_number"] for ti in tis]
    # The tasks waited in the triggerers, and both triggerers ran some of the triggers.
    assert most_deferred >= TASKS // 2, most_deferred
    assert hosts == set(deployment.TRIGGERER_HOSTNAMES.values()), hosts

    # One completed job per knowledge base, each started once.
    for kb in kbs:
        jobs = emulator.jobs(kb)
        assert len(jobs) == 1, (kb, jobs)
        assert jobs[0]["status"].endswith("COMPLETED"), (kb, jobs)
        # A start answered 429 created nothing (and is the one start that may be re-sent).
        assert len([r for r in emulator.starts_for(kb) if r["status"] != 429]) == 1, kb

    # The token's traffic while the fan-out ran.
    traffic = [r for r in emulator.requests() if r["time"] >= began and r["path"].startswith("/v2/")]
    limited = [r for r in traffic if r["status"] == 429]
    accepted = [r["time"] for r in traffic if r["status"] != 429]
    attempted_peak = busiest_minute([r["time"] for r in traffic])
    accepted_peak = busiest_minute(accepted)
    summary = (
        f"fan-out of {TASKS} ({reading} headers): {elapsed:.0f}s, {len(traffic)} requests, {len(limited)} "
        f"answered 429, peak {accepted_peak} accepted / {attempted_peak} attempted per rolling minute "
        f"(limit {RATE_LIMIT_PER_MINUTE}), most deferred at once {most_deferred}, triggerers {sorted(hosts)}"
    )
    print(summary)
    report, measured = economy(emulator, tis, kbs, traffic)
    print(f"fan-out of {TASKS} ({reading} headers): {report}")
    assert measured == TASKS, report  # every job's end and its task's end are on record
    assert accepted_peak <= RATE_LIMIT_PER_MINUTE, summary
    # The processes pace each other through the headers: the rate they ask for stays at the limit.
    assert attempted_peak <= RATE_LIMIT_PER_MINUTE * most_attempts, summary
    assert len(limited) <= most_refused * len(traffic), summary
