"""Scenario 6: the on-failure cancellation pattern: an upstream failure, the teardown cancels the job."""

from __future__ import annotations

import pytest
from system_clients import AirflowAPI, Emulator
from system_deployment import EMULATOR_SPEED, Deployment

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_cancel_on_failure"


def test_teardown_cancels_the_job_after_an_upstream_failure(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    kb = emulator.scripted_kb("cancel-on-failure", running=120, pending=1, speed=EMULATOR_SPEED)
    run_id = airflow_api.trigger(DAG_ID, {"kb": kb})
    run = airflow_api.wait_for_run(DAG_ID, run_id, timeout=180)
    assert run["state"] == "failed"

    states = {ti["task_id"]: ti["state"] for ti in airflow_api.task_instances(DAG_ID, run_id)}
    assert states == {
        "start": "success",
        "check_source_data": "failed",
        "wait": "upstream_failed",
        "cancel": "success",
    }, states

    jobs = emulator.jobs(kb)
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert airflow_api.xcom(DAG_ID, run_id, "start", "indexing_job_uuid") == job["uuid"]
    assert job["status"].endswith("CANCELLED"), job
    cancels = emulator.cancels_for(job["uuid"])
    assert len(cancels) == 1, cancels
    assert cancels[0]["status"] == 200, cancels
    summary = airflow_api.xcom(DAG_ID, run_id, "cancel", "return_value")
    assert isinstance(summary, dict), summary
    assert summary.get("indexing_job_uuid") == job["uuid"], summary
