"""Scenario 4: a user marks the deferred task failed (REST API); the trigger's on_kill cancels the job."""

from __future__ import annotations

import time

import pytest
from system_clients import AirflowAPI, Emulator, StateWatcher
from system_deployment import EMULATOR_SPEED, Deployment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_reindex"
#: ``[triggerer] on_kill_timeout`` of the deployment: the window the cancel must land in.
ON_KILL_WINDOW = 30.0


def test_marking_the_deferred_task_failed_cancels_the_job(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    kb = emulator.scripted_kb("marked-failed", running=120, pending=1, speed=EMULATOR_SPEED)
    run_id = airflow_api.trigger(DAG_ID, {"kb": kb})
    watcher = StateWatcher(airflow_api, DAG_ID, run_id, "reindex")
    watcher.wait_for({"deferred"}, timeout=120)
    wait_until(lambda: watcher.poll().get("triggerer_job"), 60, 0.3, "a triggerer to take the trigger")
    job_uuid = airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid")
    # The trigger is really running (it has polled the job) before the user steps in.
    wait_until(
        lambda: any(r["method"] == "GET" and r["path"].endswith(job_uuid) for r in emulator.requests()),
        30,
        0.3,
        "the trigger's first poll",
    )

    marked_at = time.time()
    airflow_api.set_task_state(DAG_ID, run_id, "reindex", "failed")

    cancels = wait_until(lambda: emulator.cancels_for(job_uuid), ON_KILL_WINDOW, 0.3, "the cancel request")
    assert cancels[0]["status"] == 200, cancels
    assert cancels[0]["time"] - marked_at <= ON_KILL_WINDOW
    job = next(j for j in emulator.jobs(kb) if j["uuid"] == job_uuid)
    assert job["status"].endswith("CANCELLED"), job
    assert len(emulator.jobs(kb)) == 1

    assert watcher.poll()["state"] == "failed"
    run = airflow_api.wait_for_run(DAG_ID, run_id, timeout=60)
    assert run["state"] == "failed"
    print(f"job cancelled {cancels[0]['time'] - marked_at:.1f}s after the task was marked failed")
