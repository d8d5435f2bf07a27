"""Scenario 1: a scheduled reindex run completes through deferral in a triggerer process."""

from __future__ import annotations

import time

import pytest
from system_clients import AirflowAPI, Emulator, StateWatcher
from system_deployment import EMULATOR_SPEED, Deployment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_scheduled_reindex"


def test_scheduled_reindex_defers_and_succeeds(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    kb = emulator.scripted_kb("scheduled", running=12, pending=1, speed=EMULATOR_SPEED)
    airflow_api.request("POST", "/variables", json={"key": "gradient_system_kb", "value": kb}, expect=(200, 201))
    airflow_api.set_paused(DAG_ID, False)
    try:
        run = wait_until(lambda: (airflow_api.runs(DAG_ID) or [None])[0], 60, 0.5, "the scheduled run")
        run_id = run["dag_run_id"]
        assert run["run_type"] == "scheduled", run

        watcher = StateWatcher(airflow_api, DAG_ID, run_id, "reindex")
        deferred = watcher.wait_for({"deferred"}, timeout=90)
        # The trigger is picked up by one of the two triggerer processes.
        deferred = wait_until(
            lambda: (ti := watcher.poll()).get("triggerer_job") and ti, 30, 0.3, "a triggerer to take the trigger"
        )
        triggerer_job_id = deferred["triggerer_job"]["id"]
        assert triggerer_job_id in deployment.alive_triggerer_job_ids()
        trigger_id = deferred["trigger"]["id"]
        assert deferred["trigger"]["classpath"].endswith("GradientIndexingJobTrigger"), deferred["trigger"]
        running_in = deployment.triggerer_named(deferred["triggerer_job"]["hostname"])
        assert deployment.processes[running_in].alive

        done = watcher.wait_for({"success"}, timeout=120)
        assert "deferred" in watcher.seen, watcher.seen
        assert done["try_number"] == 1
    finally:
        airflow_api.set_paused(DAG_ID, True)

    run = airflow_api.wait_for_run(DAG_ID, run_id, timeout=60)
    assert run["state"] == "success"

    # Exactly one job, started once, and it completed.
    jobs = emulator.jobs(kb)
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert job["status"].endswith("COMPLETED"), job
    assert len(emulator.starts_for(kb)) == 1

    # XComs and the extra link.
    job_uuid = airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid")
    job_url = airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_url")
    summary = airflow_api.xcom(DAG_ID, run_id, "reindex", "return_value")
    assert job_uuid == job["uuid"]
    assert kb in job_url
    assert isinstance(summary, dict), summary
    assert summary.get("indexing_job_uuid") == job["uuid"], summary
    links = airflow_api.links(DAG_ID, run_id, "reindex")
    assert links.get("View indexing job") == job_url, links

    # The trigger ran (and fired) in that triggerer: its log file carries the triggerer's job id.
    trigger_logs = deployment.trigger_logs(DAG_ID, run_id, "reindex")
    assert list(trigger_logs) == [triggerer_job_id], trigger_logs.keys()
    assert f"(ID {trigger_id}) starting" in trigger_logs[triggerer_job_id]
    assert "Trigger fired event" in trigger_logs[triggerer_job_id]

    # The job was polled while the task was deferred: GETs of the job after the task deferred.
    polls = [
        r
        for r in emulator.requests()
        if r["method"] == "GET" and r["path"].endswith(f"/indexing_jobs/{job['uuid']}") and r["status"] == 200
    ]
    assert polls, "the trigger never polled the job"
    assert time.time() - polls[-1]["time"] < 300
