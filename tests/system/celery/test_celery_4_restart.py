"""
The whole deployment is stopped (every Airflow process: API server, scheduler, dag processor,
both workers, the three triggerers) while fifty tasks wait, then started again; the metadata DB,
the broker and the API stay up, as they would across an Airflow upgrade. Every task completes on
its first try with the job it started before the stop: no second job, no cancellation.
"""

from __future__ import annotations

import time

import pytest
from system_clients import API_PREFIX
from system_fleet import Fleet

pytestmark = [pytest.mark.system_celery, pytest.mark.timeout(600)]

DAG_ID = "gradient_fleet"
TASKS = 50
JOB_SECONDS = 60.0


def test_whole_deployment_restarted_mid_wait(fleet: Fleet) -> None:
    deployment = fleet.deployment
    kbs = fleet.knowledge_bases("restart", TASKS, JOB_SECONDS)
    targets = fleet.targets(kbs)
    began = time.time()
    run_id = fleet.trigger(DAG_ID, targets)
    fleet.wait_tis(
        DAG_ID,
        run_id,
        TASKS,
        lambda ti: ti["state"] == "deferred" and bool(ti.get("triggerer_job")),
        timeout=300,
        message="every task to wait in a triggerer",
    )
    before = {index: fleet.job_uuid(DAG_ID, run_id, index) for index in range(TASKS)}

    stopped_at = time.monotonic()
    deployment.stop_airflow()
    deployment.start_airflow()
    downtime = time.monotonic() - stopped_at
    ended_while_down = len([kb for kb in kbs if fleet.emulator.jobs(kb)[0]["status"].endswith("COMPLETED")])

    run = fleet.wait_for_run(DAG_ID, run_id, timeout=400)
    tis = fleet.tis(DAG_ID, run_id)
    assert run["state"] == "success", {ti["map_index"]: ti["state"] for ti in tis}
    assert all(ti["try_number"] == 1 for ti in tis), [ti["map_index"] for ti in tis if ti["try_number"] != 1]
    fleet.assert_one_job_per_task(DAG_ID, [run_id], targets)
    after = {index: fleet.job_uuid(DAG_ID, run_id, index) for index in range(TASKS)}
    assert after == before
    cancels = [
        r for r in fleet.traffic(began) if r["method"] == "PUT" and r["path"].startswith(f"{API_PREFIX}/indexing_jobs/")
    ]
    assert cancels == [], cancels
    print(
        f"every Airflow process stopped for {downtime:.0f}s while {TASKS} tasks waited "
        f"({ended_while_down} jobs had ended by the restart); each completed with the job it started"
    )
