"""Scenario 3: the worker is killed right after it started the job; the retry reattaches to it."""

from __future__ import annotations

import os
import signal
import time

import pytest
from system_clients import AirflowAPI, Emulator, StateWatcher
from system_deployment import EMULATOR_SPEED, Deployment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_reindex_sync_retry"


def test_killed_worker_retry_reattaches_to_the_job(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    kb = emulator.scripted_kb("worker-killed", running=30, pending=1, speed=EMULATOR_SPEED)
    run_id = airflow_api.trigger(DAG_ID, {"kb": kb})
    watcher = StateWatcher(airflow_api, DAG_ID, run_id, "reindex")
    ti = watcher.wait_for({"running"}, timeout=120, interval=0.2)
    ti_id = ti["id"]

    # The task process ("airflow worker -- <ti id>", a child of the LocalExecutor supervisor).
    def task_process() -> int | None:
        for pid, cmdline in deployment.our_processes().items():
            if cmdline.startswith("airflow worker --") and ti_id in cmdline:
                return pid
        return None

    pid = wait_until(task_process, 60, 0.1, "the task process")

    # Kill it the moment the emulator has answered the start.
    deadline = time.monotonic() + 90
    while not emulator.starts_for(kb):
        assert time.monotonic() < deadline, "the task never started a job"
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    started = emulator.starts_for(kb)
    assert len(started) == 1, started
    assert started[0]["status"] == 200, started

    watcher.wait_for({"success"}, timeout=180)
    assert "up_for_retry" in watcher.seen or watcher.last["try_number"] == 2, watcher.seen
    assert watcher.last["try_number"] == 2, watcher.last
    tries = airflow_api.tries(DAG_ID, run_id, "reindex")
    assert [t["state"] for t in sorted(tries, key=lambda t: t["try_number"])] == ["failed", "success"], tries

    # Exactly one job: the retry followed the first attempt's job instead of starting another.
    jobs = emulator.jobs(kb)
    assert len(jobs) == 1, jobs
    assert jobs[0]["status"].endswith("COMPLETED"), jobs[0]
    assert len(emulator.starts_for(kb)) == 1
    assert airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid") == jobs[0]["uuid"]
    retry_log = airflow_api.task_log(DAG_ID, run_id, "reindex", 2)
    assert "Reattaching" in retry_log or jobs[0]["uuid"] in retry_log, retry_log[-3000:]
