"""
System tests: a real multi-process Airflow deployment (PostgreSQL, scheduler with LocalExecutor,
dag-processor, API server, two triggerers) plus the Gradient API emulator, driven through the
public REST API. Run them with ``make system-test``.

They are skipped unless selected explicitly: ``-m system`` (what ``make system-test`` passes) or
``GRADIENT_SYSTEM_TEST=1``. A plain ``pytest`` / ``make unit`` therefore reports them as skipped
and starts nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from system_clients import AirflowAPI, Emulator
from system_deployment import HERE, Deployment

_STATE: dict[str, Deployment] = {}
#: How many earlier runs' log directories to keep in tests/system/.logs.
KEEP_LOG_DIRS = 5


def _enabled(config: pytest.Config) -> bool:
    if os.environ.get("GRADIENT_SYSTEM_TEST") == "1":
        return True
    expression = str(config.getoption("markexpr", "") or "")
    return "system" in expression and "not system" not in expression


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _enabled(config):
        return
    skip = pytest.mark.skip(
        reason="system test: run with `make system-test` / `make system-test-celery` "
        "(or -m system / -m system_celery / GRADIENT_SYSTEM_TEST=1)"
    )
    for item in items:
        if item.get_closest_marker("system") is not None or item.get_closest_marker("system_celery") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def deployment_options() -> dict[str, Any]:
    """Keyword arguments of :class:`Deployment`: LocalExecutor, two triggerers (tests/system/celery overrides it)."""
    return {}


@pytest.fixture(scope="session")
def deployment(deployment_options: dict[str, Any]) -> Iterator[Deployment]:
    """The running deployment; stopped at the end of the session, also when anything failed."""
    logs = HERE / ".logs"
    for old in sorted(logs.glob("2*"))[:-KEEP_LOG_DIRS]:  # keep the most recent runs only
        shutil.rmtree(old, ignore_errors=True)
    suffix = "-celery" if deployment_options.get("executor") == "CeleryExecutor" else ""
    log_dir = logs / (time.strftime("%Y%m%d-%H%M%S") + suffix)
    deployment = Deployment(log_dir, **deployment_options)
    _STATE["deployment"] = deployment
    try:
        deployment.start()
    except BaseException:
        deployment.stop()
        raise
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="session")
def airflow_api(deployment: Deployment) -> AirflowAPI:
    return AirflowAPI(deployment.api_url)


@pytest.fixture(scope="session")
def emulator(deployment: Deployment) -> Emulator:
    return Emulator(deployment.emulator_url)


#: DAGs in tests/system/dags that the scenarios trigger by hand (unpaused once parsed).
MANUAL_DAGS = (
    "gradient_reindex",
    "gradient_reindex_sync_retry",
    "gradient_fanout",
    # example_dags/gradient_cancel_on_failure.py
    "gradient_cancel_teardown",
    "gradient_cancel_one_failed",
)


@pytest.fixture(scope="session")
def gradient_dags(airflow_api: AirflowAPI) -> tuple[str, ...]:
    """The provider's DAGs, parsed by the dag processor and unpaused (not the scheduled example)."""
    for dag_id in (*MANUAL_DAGS, "gradient_scheduled_reindex"):
        airflow_api.wait_for_dag(dag_id, timeout=120)
    for dag_id in MANUAL_DAGS:
        airflow_api.set_paused(dag_id, False)
    return MANUAL_DAGS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    deployment = _STATE.get("deployment")
    if report.failed and deployment is not None:
        lines = [f"process logs: {deployment.log_dir}"]
        for name, tail in deployment.log_tails(15):
            lines.append(f"---- {name} (last lines) ----\n{tail}")
        report.sections.append(("system deployment", "\n".join(lines)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    deployment = _STATE.get("deployment")
    if deployment is None:
        return
    terminalreporter.write_sep("-", "system deployment")
    terminalreporter.write_line(f"logs kept in {deployment.log_dir}")
    terminalreporter.write_line(f"startup timings (s): {deployment.timings}")
