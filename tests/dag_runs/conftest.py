"""
Real Airflow runs of the DAGs in ``dags/`` against the Gradient emulator.

Airflow reads ``AIRFLOW_HOME`` and its configuration when it is first imported, and other test
modules of this session import it long before this directory is collected. So the runs happen in
one fresh process per session (``run_dags.py``): it gets a temporary ``AIRFLOW_HOME`` with a
SQLite metadata DB (migrated once), ``[core] dags_folder`` pointing at ``dags/``, runs every DAG
with ``dag.test()`` plus ``airflow dags test`` once, and reports what happened as JSON.

The process starts in the background as soon as collection selected one of these tests (they are
moved to the end of the run), so its start-up cost overlaps with the rest of the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
_RUN: dict[str, Any] = {}


def _launch() -> None:
    base = Path(tempfile.mkdtemp(prefix="gradient-dag-runs-"))
    home = base / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and key != "AIRFLOW_HOME"
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        }
    )
    log = (base / "run_dags.log").open("w")
    _RUN.update(
        base=base,
        out=base / "results.json",
        log=log,
        started=time.monotonic(),
        process=subprocess.Popen(
            [sys.executable, str(HERE / "run_dags.py"), str(base / "results.json")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in Path(str(item.path)).parents]
    if not mine or config.option.collectonly or "process" in _RUN:
        return
    items[:] = [item for item in items if item not in mine] + mine
    _launch()


@pytest.fixture(scope="session")
def dag_runs() -> Iterator[dict[str, Any]]:
    """What happened in the real runs, keyed by DAG id (see ``run_dags.py``)."""
    if "process" not in _RUN:
        _launch()
    process: subprocess.Popen[bytes] = _RUN["process"]
    try:
        process.wait(timeout=max(10.0, 300 - (time.monotonic() - _RUN["started"])))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _RUN["log"].close()
    log_path = _RUN["base"] / "run_dags.log"
    out: Path = _RUN["out"]
    if process.returncode != 0 or not out.exists():
        pytest.fail(f"run_dags.py failed (exit {process.returncode}); log tail:\n{log_path.read_text()[-6000:]}")
    results: dict[str, Any] = json.loads(out.read_text())
    results["log"] = str(log_path)
    yield results
    shutil.rmtree(_RUN["base"], ignore_errors=True)
