"""Scenario 2: the triggerer running the trigger is SIGKILLed mid-wait; the other one takes over."""

from __future__ import annotations

import signal
import time

import pytest
from system_clients import AirflowAPI, Emulator, StateWatcher
from system_deployment import EMULATOR_SPEED, TRIGGERER_HEALTH_THRESHOLD, Deployment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_reindex"


def test_killed_triggerer_hands_the_trigger_over(
    deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, gradient_dags: tuple[str, ...]
) -> None:
    deployment.wait_healthy(120)  # both triggerers up
    kb = emulator.scripted_kb("triggerer-killed", running=40, pending=1, speed=EMULATOR_SPEED)
    run_id = airflow_api.trigger(DAG_ID, {"kb": kb})
    watcher = StateWatcher(airflow_api, DAG_ID, run_id, "reindex")
    watcher.wait_for({"deferred"}, timeout=120)
    first = wait_until(
        lambda: (ti := watcher.poll()).get("triggerer_job") and ti, 60, 0.3, "a triggerer to take the trigger"
    )
    first_job_id = first["triggerer_job"]["id"]
    victim = deployment.triggerer_named(first["triggerer_job"]["hostname"])
    survivor = next(name for name in deployment.TRIGGERERS if name != victim)
    job_uuid = airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid")
    assert job_uuid

    # Mid-wait: the trigger has polled the job at least once from the victim.
    def polled() -> bool:
        return any(r["method"] == "GET" and r["path"].endswith(job_uuid) for r in emulator.requests())

    wait_until(polled, 30, 0.3, "the trigger's first poll")
    job_before = emulator.jobs(kb)[0]
    assert not job_before["status"].endswith(("COMPLETED", "FAILED", "CANCELLED")), job_before
    deployment.processes[victim].kill(signal.SIGKILL)
    killed_at = time.monotonic()

    # The survivor takes the trigger once the victim's heartbeat is older than the health threshold.
    moved = wait_until(
        lambda: (
            (ti := watcher.poll()).get("triggerer_job")
            and ti["triggerer_job"]["id"] != first_job_id
            and ti["state"] == "deferred"
            and ti
        ),
        TRIGGERER_HEALTH_THRESHOLD + 60,
        0.5,
        "another triggerer to take the trigger over",
    )
    handover = time.monotonic() - killed_at
    assert deployment.triggerer_named(moved["triggerer_job"]["hostname"]) == survivor
    assert moved["trigger"]["id"] == first["trigger"]["id"]  # the same trigger row, re-created from its kwargs

    watcher.wait_for({"success"}, timeout=120)
    run = airflow_api.wait_for_run(DAG_ID, run_id, timeout=60)
    assert run["state"] == "success"
    assert watcher.last["try_number"] == 1  # no retry: the wait simply resumed

    # Exactly one job, started once, never cancelled, and it completed.
    jobs = emulator.jobs(kb)
    assert len(jobs) == 1, jobs
    assert jobs[0]["uuid"] == job_uuid
    assert jobs[0]["status"].endswith("COMPLETED"), jobs[0]
    assert len(emulator.starts_for(kb)) == 1
    assert emulator.cancels_for(job_uuid) == []

    # Both triggerers wrote a log for this trigger: the victim's incarnation and the survivor's.
    logs = deployment.trigger_logs(DAG_ID, run_id, "reindex")
    assert set(logs) == {first_job_id, moved["triggerer_job"]["id"]}, logs.keys()
    assert "Trigger fired event" in logs[moved["triggerer_job"]["id"]]
    print(f"trigger handed over {handover:.1f}s after the SIGKILL")

    # Bring the victim back for the scenarios that need two triggerers.
    deployment.start_triggerer(victim)
