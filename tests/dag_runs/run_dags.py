"""
Run the DAGs of ``dags/`` for real against the Gradient emulator and write what happened as JSON.

Started by ``conftest.py`` in a fresh process (Airflow reads ``AIRFLOW_HOME`` and its config when
first imported, so it must not be imported before the environment is set): it migrates the
metadata DB, starts the emulator, runs every scenario with ``dag.test()`` (deferred tasks run
their trigger inline), runs ``airflow dags test`` once in a subprocess, and dumps the results.

Usage: ``python run_dags.py RESULTS.json``
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DAG_FILE = HERE / "dags" / "gradient_dag_runs.py"
CLI_DAG = "gradient_start_sense_cancel"


def migrate() -> None:
    from airflow.utils.db import upgradedb

    upgradedb()


def load_dags() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("gradient_dag_runs", DAG_FILE)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    return {value.dag_id: value for value in vars(module).values() if isinstance(value, DAG)}


def collect(dag_id: str, dr: Any, emu: Any, kb: str) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dr.run_id)
        )
        tasks = {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in tis}
        xcoms: dict[str, dict[str, Any]] = {}
        for row in session.scalars(select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == dr.run_id)):
            xcoms.setdefault(row.task_id, {})[row.key] = XComModel.deserialize_value(row)
        stored = [
            {"task_id": row.task_id, "key": row.key, "value": row.value}
            for row in session.scalars(
                select(TaskStateStoreModel).where(
                    TaskStateStoreModel.dag_id == dag_id, TaskStateStoreModel.run_id == dr.run_id
                )
            )
        ]
        events = [
            {"uri": event.asset.uri, "extra": event.extra}
            for event in session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dr.run_id))
        ]
    return {
        "dag_run_state": str(dr.state),
        "tasks": tasks,
        "xcoms": xcoms,
        "task_state_store": stored,
        "asset_events": events,
        "jobs": [{"uuid": job["uuid"], "phase": job["phase"], "status": job["status"]} for job in emu.jobs(kb)],
        "posts": emu.count("POST", "genai_create_indexing_job"),
        "cancels": emu.count("PUT", "genai_cancel_indexing_job"),
        "token_in_xcom": emu.token in json.dumps(xcoms, default=str),
    }


def start_cli(emu: Any, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``airflow dags test`` on a copy of the metadata DB."""
    kb = emu.create_knowledge_base(name="cli", data_sources=2)
    emu.script_jobs(kb.uuid, duration=1.0, pending=0.2)
    home = Path(env["AIRFLOW_HOME"])
    cli_home = home.parent / "cli_home"
    cli_home.mkdir(exist_ok=True)
    # The SQLite backup API sees what is still in the write-ahead log; a file copy would not.
    with sqlite3.connect(home / "airflow.db") as source, sqlite3.connect(cli_home / "airflow.db") as target:
        source.backup(target)
    cli_env = {
        **env,
        "AIRFLOW_HOME": str(cli_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{cli_home / 'airflow.db'}",
    }
    airflow = Path(sys.executable).parent / "airflow"
    process = subprocess.Popen(
        [str(airflow), "dags", "test", CLI_DAG, "--conf", json.dumps({"kb": kb.uuid})],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, kb.uuid


def main(out: str) -> None:
    from airflow_provider_gradient.testing.emulator import GradientEmulator

    emu = GradientEmulator(rate_limit_per_minute=None, rate_limit_per_hour=None).start()
    extra = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000, "max_retries": 1}
    os.environ["AIRFLOW_CONN_GRADIENT_DEFAULT"] = json.dumps(
        {"conn_type": "gradient", "host": emu.base_url, "password": emu.token, "extra": extra}
    )
    started = time.monotonic()
    migrate()
    results: dict[str, Any] = {"timings": {"migrate": time.monotonic() - started}}
    dags = load_dags()
    results["parse_requests"] = emu.count()  # parsing the DAG file sent nothing

    def scenario(
        dag_id: str, outcome: str = "COMPLETED", faults: tuple[dict[str, Any], ...] = (), **script: Any
    ) -> None:
        kb = emu.create_knowledge_base(name=dag_id, data_sources=2)
        emu.script_jobs(kb.uuid, outcome, **{"duration": 0.6, "pending": 0.1, **script})
        emu.reset_requests()
        emu.faults.clear()
        for fault in faults:
            emu.faults.add(**fault)
        begin = time.monotonic()
        dr = dags[dag_id].test(run_conf={"kb": kb.uuid})
        results[dag_id] = collect(dag_id, dr, emu, kb.uuid)
        results[dag_id]["kb"] = kb.uuid
        results[dag_id]["faults_fired"] = [fault.fired for fault in emu.faults.list()]
        results["timings"][dag_id] = time.monotonic() - begin
        emu.faults.clear()

    scenario("gradient_start_sense_cancel")
    scenario("gradient_failing_job", "FAILED", error_msg="crawl_refused")
    scenario("gradient_failing_start", "FAILED", error_msg="crawl_refused")
    scenario("gradient_upstream_failure", duration=600)
    scenario(
        "gradient_retry_reattach",
        duration=3,
        faults=({"operation": "genai_get_indexing_job", "kind": "status", "status": 403, "times": 1},),
    )
    scenario("gradient_sync_start")

    # Sequential: in parallel both runs compete for the CPU and each takes far longer.
    begin = time.monotonic()
    cli, cli_kb = start_cli(emu, dict(os.environ))
    try:
        output, _ = cli.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        cli.kill()
        output, _ = cli.communicate()
    results["cli"] = {
        "returncode": cli.returncode,
        "output_tail": output[-4000:],
        "token_in_output": emu.token in output,
        "jobs": [{"uuid": job["uuid"], "status": job["status"]} for job in emu.jobs(cli_kb)],
    }
    results["timings"]["cli"] = time.monotonic() - begin
    emu.stop()
    Path(out).write_text(json.dumps(results, default=str, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
