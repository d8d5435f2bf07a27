"""
The CeleryExecutor deployment (``make system-test-celery``): Redis as the broker, PostgreSQL as
the metadata DB and result backend, two Celery workers (each with a hostname and an
``AIRFLOW_HOME`` of its own), scheduler, dag processor, API server, three triggerers and the
emulator, with two tokens that have limits of their own. The scenarios are marked
``system_celery``, so ``make system-test`` (``-m system``) leaves them out.
"""

from __future__ import annotations

from typing import Any

import pytest
from system_clients import AirflowAPI, Emulator
from system_deployment import Deployment
from system_fleet import FLEET_DAGS, SECOND_TOKEN_LIMITS, Fleet

#: Task slots of each Celery worker: 2 x 6 tasks at once fit a 2-core machine.
WORKER_CONCURRENCY = 6


@pytest.fixture(scope="session")
def deployment_options() -> dict[str, Any]:
    return {
        "executor": "CeleryExecutor",
        "workers": 2,
        "worker_concurrency": WORKER_CONCURRENCY,
        "triggerers": 3,
        "second_token_limits": SECOND_TOKEN_LIMITS,
    }


@pytest.fixture(scope="session")
def fleet_dags(airflow_api: AirflowAPI) -> tuple[str, ...]:
    """The fleet DAGs, parsed and unpaused."""
    for dag_id in FLEET_DAGS:
        airflow_api.wait_for_dag(dag_id, timeout=120)
        airflow_api.set_paused(dag_id, False)
    return FLEET_DAGS


@pytest.fixture
def fleet(deployment: Deployment, airflow_api: AirflowAPI, emulator: Emulator, fleet_dags: tuple[str, ...]) -> Fleet:
    # Every scenario starts with every worker and triggerer up: bring back what an earlier one killed.
    for name in deployment.WORKERS:
        if not deployment.processes[name].alive:
            deployment.start_worker(name)
    for name in deployment.TRIGGERERS:
        if not deployment.processes[name].alive:
            deployment.start_triggerer(name)
    deployment.wait_healthy(180)
    return Fleet(deployment, airflow_api, emulator)
