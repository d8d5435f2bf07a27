"""
Scenario 3: the worker is killed (SIGKILL: the LocalExecutor worker process that supervises the
task, and the task process) right after the job was started. The scheduler notices the missing
heartbeat, the retry runs, and it must reattach to the running job: exactly one job exists.

Two moments of the kill, both deterministic:

* ``in_flight``: the job exists on the server but the worker has not read the answer yet (the
  emulator holds the answer to the start back for a few seconds): the worker never learns the
  job's uuid;
* ``recorded``: once the task has published the job uuid (XCom), i.e. after it recorded the job
  for its retries.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from system_clients import AirflowAPI, Emulator, StateWatcher
from system_deployment import EMULATOR_SPEED, Deployment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DAG_ID = "gradient_reindex_sync_retry"
#: Long enough for heartbeat-timeout detection (30 s) plus the retry to find the job still running.
JOB_SECONDS = 60.0
#: Seconds the emulator holds back its answer to the start in the ``in_flight`` variant.
HOLD_ANSWER = 8.0


def _worker_pids(deployment: Deployment, ti_id: str) -> list[int]:
    """The task process (``airflow worker -- <ti id>``) and its parent, the supervising worker."""
    processes = deployment.our_processes()
    task = [pid for pid, line in processes.items() if line == f"airflow worker -- {ti_id}"]
    if not task:
        return []
    with open(f"/proc/{task[0]}/stat", "rb") as handle:
        parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
    assert processes.get(parent, "").startswith("airflow worker -- LocalExecutor"), processes.get(parent)
    return [parent, task[0]]


@pytest.mark.parametrize("moment", ["in_flight", "recorded"])
def test_killed_worker_retry_reattaches_to_the_job(
    deployment: Deployment,
    airflow_api: AirflowAPI,
    emulator: Emulator,
    gradient_dags: tuple[str, ...],
    moment: str,
) -> None:
    kb = emulator.scripted_kb(f"worker-killed-{moment}", running=JOB_SECONDS, pending=1, speed=EMULATOR_SPEED)
    run_id = airflow_api.trigger(DAG_ID, {"kb": kb})
    watcher = StateWatcher(airflow_api, DAG_ID, run_id, "reindex")
    if moment == "in_flight":
        # The next start creates its job at once but answers only after HOLD_ANSWER seconds.
        emulator.add_fault("genai_create_indexing_job", "create_then_fail", seconds=HOLD_ANSWER, times=1)
    ti_id = watcher.wait_for({"running"}, timeout=120, interval=0.2)["id"]
    pids = wait_until(lambda: _worker_pids(deployment, ti_id), 60, 0.1, "the worker processes")

    if moment == "in_flight":
        wait_until(lambda: emulator.jobs(kb), 90, 0.02, "the job to exist on the server")
    else:
        wait_until(lambda: airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid"), 90, 0.2, "the XCom")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    first_job = emulator.jobs(kb)[0]["uuid"]

    watcher.wait_for({"success", "failed"}, timeout=200)
    recovered = time.monotonic() - killed_at
    tries = sorted(airflow_api.tries(DAG_ID, run_id, "reindex"), key=lambda t: t["try_number"])
    assert [t["state"] for t in tries] == ["failed", "success"], [(t["try_number"], t["state"]) for t in tries]

    # Exactly one job: the retry followed the first attempt's job instead of starting another.
    jobs = emulator.jobs(kb)
    assert [job["uuid"] for job in jobs] == [first_job], f"{len(jobs)} jobs: {jobs}"
    assert jobs[0]["status"].endswith("COMPLETED"), jobs[0]
    assert len(emulator.starts_for(kb)) == 1, emulator.starts_for(kb)
    assert airflow_api.xcom(DAG_ID, run_id, "reindex", "indexing_job_uuid") == first_job
    print(f"worker killed ({moment}); the retry finished {recovered:.0f}s later on the same job")
