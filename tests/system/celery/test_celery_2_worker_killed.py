"""
A Celery worker is SIGKILLed (the worker, its pool and the task processes it supervises) while
its tasks are starting their jobs: each start has created its job on the server, but the
emulator holds the answers back, so no task has learnt its job's uuid. The scheduler notices the
missing heartbeats, the retries run on the other worker, and each adopts the job its first
attempt's start created (the start marker in the task state store): exactly one job per task.
"""

from __future__ import annotations

import time

import pytest
from system_deployment import wait_until
from system_fleet import Fleet

pytestmark = [pytest.mark.system_celery, pytest.mark.timeout(600)]

DAG_ID = "gradient_fleet_retry"
#: As many tasks as both workers have slots, so both hold some when the starts are in flight.
TASKS = 12
#: Seconds the emulator holds back each start's answer (the job exists at once).
HOLD_ANSWER = 60.0
#: About as long as heartbeat-timeout detection (30 s) plus the retry: the retry finds it running or just ended.
JOB_SECONDS = 60.0


def test_killed_worker_retries_adopt_the_started_jobs(fleet: Fleet) -> None:
    deployment, emulator = fleet.deployment, fleet.emulator
    kbs = fleet.knowledge_bases("worker-killed", TASKS, JOB_SECONDS)
    targets = fleet.targets(kbs)
    emulator.add_fault("genai_create_indexing_job", "create_then_fail", seconds=HOLD_ANSWER, times=TASKS)
    run_id = fleet.trigger(DAG_ID, targets)

    # Every task is running and its start created the job; the answers are still held back.
    started = time.monotonic()
    wait_until(lambda: all(emulator.jobs(kb) for kb in kbs), HOLD_ANSWER, 0.2, "every start to create its job")
    tis = fleet.tis(DAG_ID, run_id)
    assert time.monotonic() - started < HOLD_ANSWER - 5, "too slow: the answers may have been released"
    running = {ti["map_index"]: ti["hostname"] for ti in tis if ti["state"] == "running"}
    victim_host = max(set(running.values()), key=list(running.values()).count)
    victim = next(name for name, host in deployment.WORKER_HOSTNAMES.items() if host == victim_host)
    survivor_host = next(host for host in deployment.WORKER_HOSTNAMES.values() if host != victim_host)
    victims = sorted(index for index, host in running.items() if host == victim_host)
    jobs_at_kill = {index: emulator.jobs(kbs[index])[0]["uuid"] for index in victims}

    deployment.processes[victim].kill_tree()
    killed_at = time.monotonic()

    run = fleet.wait_for_run(DAG_ID, run_id, timeout=400)
    recovered = time.monotonic() - killed_at
    tis = fleet.tis(DAG_ID, run_id)
    assert run["state"] == "success", {ti["map_index"]: ti["state"] for ti in tis}
    for ti in tis:
        if ti["map_index"] in victims:
            # The retry ran on the other worker and followed the job its first attempt started.
            assert (ti["try_number"], ti["hostname"]) == (2, survivor_host), ti
            assert fleet.job_uuid(DAG_ID, run_id, ti["map_index"]) == jobs_at_kill[ti["map_index"]]
        else:
            assert ti["try_number"] == 1, ti
    fleet.assert_one_job_per_task(DAG_ID, [run_id], targets)
    print(
        f"worker {victim} killed holding {len(victims)} of {TASKS} starts in flight; "
        f"the retries ended on {survivor_host} {recovered:.0f}s later, one job per task"
    )
