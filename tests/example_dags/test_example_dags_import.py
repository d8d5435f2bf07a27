"""The example folder imports cleanly, without configuration and without calling the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"

pytestmark = [pytest.mark.airflow_db, pytest.mark.timeout(300)]

#: DAG ids ``test_example_dags.py`` runs (read from its ``run_dag("...")`` calls).
RUN_IN_TESTS = set(re.findall(r'run_dag\(\s*"(\w+)"', (Path(__file__).parent / "test_example_dags.py").read_text()))


def _owned_files() -> list[Path]:
    """This suite's example files (``*event*`` examples are tested with the event trigger)."""
    return sorted(path for path in EXAMPLE_DAGS.glob("*.py") if "event" not in path.name)


def test_dagbag_has_no_import_errors_and_makes_no_api_calls(example_env: Any) -> None:
    from airflow.dag_processing.dagbag import DagBag

    example_env.emulator.reset_requests()

    dagbag = DagBag(dag_folder=str(EXAMPLE_DAGS))

    assert dagbag.import_errors == {}
    owned = {dag_id for dag_id, dag in dagbag.dags.items() if Path(dag.fileloc) in _owned_files()}
    assert owned == {
        "gradient_scheduled_reindex",
        "gradient_data_pipeline",
        "gradient_knowledge_base_consumer",
        "gradient_cancel_teardown",
        "gradient_cancel_one_failed",
        "gradient_reindex_max_wait",
    }
    # Parsing must never call the API: the dag processor parses every file every few seconds.
    assert example_env.emulator.requests == []


def test_every_example_dag_is_run_in_the_tests(example_dagbag: Any) -> None:
    owned = {dag_id for dag_id, dag in example_dagbag.dags.items() if Path(dag.fileloc) in _owned_files()}
    assert owned, "no example DAGs found"
    assert owned - RUN_IN_TESTS == set(), "add a dag.test() run to tests/example_dags/test_example_dags.py"


def test_every_example_file_has_docs_snippets() -> None:
    # The docs include the examples by their [START name] / [END name] markers.
    for path in _owned_files():
        text = path.read_text()
        starts = re.findall(r"# \[START (\w+)\]", text)
        ends = re.findall(r"# \[END (\w+)\]", text)
        assert starts, f"{path.name} has no [START ...] marker"
        assert sorted(starts) == sorted(ends), f"{path.name}: unbalanced markers"


def test_airflow_cli_lists_no_import_errors(airflow_db: None) -> None:
    """The real CLI, in a fresh process, parsing the folder with no Gradient configuration at all."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GRADIENT_", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
    airflow = Path(sys.executable).with_name("airflow")

    done = subprocess.run(
        [str(airflow), "dags", "list-import-errors", "--local", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert lines, f"no JSON output: {done.stdout}{done.stderr}"
    assert json.loads(lines[-1]) == []
