"""The harness itself: a plain task runs on a LocalExecutor worker, a deferral runs in a triggerer."""

from __future__ import annotations

import pytest
from system_clients import AirflowAPI, StateWatcher
from system_deployment import Deployment

pytestmark = [pytest.mark.system, pytest.mark.timeout(400)]


def test_smoke_dag_defers_and_succeeds(deployment: Deployment, airflow_api: AirflowAPI) -> None:
    airflow_api.wait_for_dag("system_smoke")
    airflow_api.set_paused("system_smoke", False)
    run_id = airflow_api.trigger("system_smoke")
    watcher = StateWatcher(airflow_api, "system_smoke", run_id, "defer")
    watcher.wait_for({"success"}, timeout=120)
    assert "deferred" in watcher.seen, watcher.seen
    run = airflow_api.wait_for_run("system_smoke", run_id, timeout=30)
    assert run["state"] == "success"
    assert airflow_api.xcom("system_smoke", run_id, "defer", "return_value") == "resumed"
    assert len(deployment.alive_triggerer_job_ids()) == 2
