"""
Scenario 1: the example ``gradient_scheduled_reindex`` DAG (example_dags/) gets a real scheduled
run, which completes through deferral in a triggerer process.
"""

from __future__ import annotations

import json

import pytest
from system_clients import AirflowAPI, Emulator, StateWatcher
from system_deployment import EMULATOR_SPEED, EMULATOR_TOKEN, Deployment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_scheduled_reindex"


def test_scheduled_reindex_defers_and_succeeds(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    kb = emulator.scripted_kb("scheduled", running=12, pending=1, speed=EMULATOR_SPEED)
    # The example reads the names of its knowledge bases from this Variable (a JSON list).
    airflow_api.request(
        "POST",
        "/variables",
        json={"key": "gradient_knowledge_base_names", "value": json.dumps(["scheduled"])},
        expect=(200, 201),
    )
    airflow_api.set_paused(DAG_ID, False)  # catchup=False: the latest interval gets one scheduled run
    try:
        run = wait_until(lambda: (airflow_api.runs(DAG_ID) or [None])[0], 60, 0.5, "the scheduled run")
        run_id = run["dag_run_id"]
        assert run["run_type"] == "scheduled", run

        watcher = StateWatcher(airflow_api, DAG_ID, run_id, "reindex", map_index=0)
        watcher.wait_for({"deferred"}, timeout=120)
        deferred = wait_until(
            lambda: (ti := watcher.poll()).get("triggerer_job") and ti, 30, 0.3, "a triggerer to take the trigger"
        )
        triggerer_job_id = deferred["triggerer_job"]["id"]
        assert triggerer_job_id in deployment.alive_triggerer_job_ids()
        running_in = deployment.triggerer_named(deferred["triggerer_job"]["hostname"])
        assert deployment.processes[running_in].alive
        trigger = deferred["trigger"]
        assert trigger["classpath"].endswith("GradientIndexingJobTrigger"), trigger
        assert EMULATOR_TOKEN not in json.dumps(trigger)  # the token never travels in trigger kwargs

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

    # XComs, the returned summary and the extra link.
    job_uuid = airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid", map_index=0)
    job_url = airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_url", map_index=0)
    summary = airflow_api.xcom(DAG_ID, run_id, "reindex", "return_value", map_index=0)
    assert job_uuid == job["uuid"]
    assert kb in job_url
    assert isinstance(summary, dict), summary
    assert summary.get("indexing_job_uuid") == job["uuid"], summary
    links = airflow_api.links(DAG_ID, run_id, "reindex", map_index=0)
    assert links.get("View indexing job") == job_url, links

    # The trigger ran and fired in that triggerer: its log file carries the triggerer's job id.
    trigger_logs = deployment.trigger_logs(DAG_ID, run_id, "reindex", map_index=0)
    assert list(trigger_logs) == [triggerer_job_id], trigger_logs.keys()
    assert f"(ID {trigger['id']}) starting" in trigger_logs[triggerer_job_id]
    assert "Trigger fired event" in trigger_logs[triggerer_job_id]
    # ...and it polled the job (the worker only started it).
    polls = [
        r
        for r in emulator.requests()
        if r["method"] == "GET" and r["path"].endswith(f"/indexing_jobs/{job['uuid']}") and r["status"] == 200
    ]
    assert polls, "the trigger never polled the job"
