"""
Scenario 6: the on-failure cancellation examples (example_dags/gradient_cancel_on_failure.py).
A check fails while the job runs; the teardown (``gradient_cancel_teardown``) or the
``one_failed`` task (``gradient_cancel_one_failed``) cancels the job.
"""

from __future__ import annotations

import pytest
from system_clients import AirflowAPI, Emulator
from system_deployment import EMULATOR_SPEED, Deployment

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

EXPECTED = {
    "gradient_cancel_teardown": (
        "cancel_indexing",
        {
            "start_indexing": "success",
            "build_evaluation_set": "failed",
            "wait_for_index": "upstream_failed",
            "evaluate": "upstream_failed",
            "cancel_indexing": "success",
        },
    ),
    "gradient_cancel_one_failed": (
        "cancel_on_failure",
        {
            "start_indexing": "success",
            "check_row_counts": "failed",
            "check_embedding_budget": "success",
            "wait_for_index": "upstream_failed",
            "cancel_on_failure": "success",
        },
    ),
}


def test_upstream_failure_cancels_the_job(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    runs = {}
    for dag_id in EXPECTED:  # both examples run side by side
        kb = emulator.scripted_kb(dag_id, running=120, pending=1, speed=EMULATOR_SPEED)
        conf = {"knowledge_base_name": dag_id, "simulate_failure": True}
        runs[dag_id] = (kb, airflow_api.trigger(dag_id, conf))

    for dag_id, (kb, run_id) in runs.items():
        cancel_task, expected_states = EXPECTED[dag_id]
        run = airflow_api.wait_for_run(dag_id, run_id, timeout=180)
        assert run["state"] == "failed", (dag_id, run)
        states = {ti["task_id"]: ti["state"] for ti in airflow_api.task_instances(dag_id, run_id)}
        assert states == expected_states, (dag_id, states)

        jobs = emulator.jobs(kb)
        assert len(jobs) == 1, (dag_id, jobs)
        job = jobs[0]
        assert airflow_api.xcom(dag_id, run_id, "start_indexing", "indexing_job_uuid") == job["uuid"]
        assert job["status"].endswith("CANCELLED"), (dag_id, job)
        cancels = emulator.cancels_for(job["uuid"])
        assert len(cancels) == 1, (dag_id, cancels)
        assert cancels[0]["status"] == 200, (dag_id, cancels)
        summary = airflow_api.xcom(dag_id, run_id, cancel_task, "return_value")
        assert isinstance(summary, dict), (dag_id, summary)
        assert summary.get("indexing_job_uuid") == job["uuid"], (dag_id, summary)
