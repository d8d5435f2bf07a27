"""
The event-driven example DAG: it parses, its asset carries the watcher, and a reindex started
outside Airflow runs it for real.

The real run (``test_a_reindex_started_outside_airflow_runs_the_dag``) uses Airflow's own code
for every step, in a separate process with its own ``AIRFLOW_HOME`` and SQLite metadata DB:

1. dag processor: ``sync_bag_to_db`` stores the DAG, its asset and the watcher's trigger row;
2. triggerer: the trigger is re-created from that row's kwargs and run against the emulator;
   its event goes through ``Trigger.submit_event`` (asset event + DAG-run queue);
3. scheduler: ``SchedulerJobRunner._create_dag_runs_asset_triggered`` creates the run;
4. tasks: run like ``dag.test()`` runs them (in-process execution API), so
   ``triggering_asset_events`` comes from the metadata DB.

What it does not use is a triggerer *process*: the asset state store is then a file-backed
stand-in with Airflow's ``aget``/``aset`` interface (the real one talks to a triggerer
supervisor). The system tests (``tests/system``) run whole Airflow processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gradient.assets import knowledge_base_uri

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "example_dags"
DAG_FILE = DAGS_FOLDER / "example_gradient_event_driven.py"
DAG_ID = "example_gradient_event_driven"
TRIGGER_CLASSPATH = "airflow_provider_gradient.triggers.knowledge_base_event.GradientKnowledgeBaseEventTrigger"
KB_ENV = "GRADIENT_EXAMPLE_KB_UUID"


# -------------------------------------------------------------------------------------------
# In the pytest process: parsing and the trigger taken from the DAG's asset
# -------------------------------------------------------------------------------------------


def parse_example(monkeypatch: pytest.MonkeyPatch, kb_uuid: str | None) -> Any:
    """Parse the example file with a DagBag (as the dag processor does); return the DAG."""
    from airflow.dag_processing.dagbag import DagBag

    if kb_uuid is None:
        monkeypatch.delenv(KB_ENV, raising=False)
    else:
        monkeypatch.setenv(KB_ENV, kb_uuid)
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    assert list(bag.dags) == [DAG_ID]
    return bag.dags[DAG_ID]


def watched_asset(dag: Any) -> Any:
    from airflow.sdk import Asset

    assets = list(dag.timetable.asset_condition.objects)
    assert len(assets) == 1
    asset = assets[0]
    assert isinstance(asset, Asset)
    return asset


def test_the_dag_parses_without_network_and_is_scheduled_on_the_watched_asset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_gradient.triggers.knowledge_base_event import GradientKnowledgeBaseEventTrigger

    monkeypatch.delenv("AIRFLOW_CONN_GRADIENT_DEFAULT", raising=False)  # no connection needed to parse
    dag = parse_example(monkeypatch, None)
    asset = watched_asset(dag)
    assert asset.name == asset.uri == knowledge_base_uri("00000000-0000-4000-8000-000000000000")
    assert [watcher.name for watcher in asset.watchers] == ["gradient_knowledge_base_reindex_watcher"]
    trigger = asset.watchers[0].trigger
    assert isinstance(trigger, GradientKnowledgeBaseEventTrigger)
    assert trigger.knowledge_base_uuids == ["00000000-0000-4000-8000-000000000000"]
    assert trigger.only_changed is True
    assert trigger.poll_interval == 60.0
    assert set(dag.task_dict) == {"describe_reindexes", "evaluate_agent"}


def test_the_knowledge_base_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    kb = "9d9e1d1c-3f3e-4c1b-9a52-0b8f6f1f2a10"
    asset = watched_asset(parse_example(monkeypatch, kb))
    assert asset.watchers[0].trigger.knowledge_base_uuids == [kb]
    assert asset.uri == knowledge_base_uri(kb)


async def test_the_trigger_of_the_dags_asset_reports_a_reindex(
    gradient_emulator: Any, gradient_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher exactly as the DAG defines it, rebuilt from its kwargs, against the emulator."""
    from airflow.sdk.module_loading import import_string

    kb = gradient_emulator.create_knowledge_base(data_sources=2)
    trigger = watched_asset(parse_example(monkeypatch, kb.uuid)).watchers[0].trigger
    classpath, kwargs = trigger.serialize()
    assert classpath == TRIGGER_CLASSPATH
    store = MemoryStore()
    first = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    first.asset_state_store = store
    assert await first_event(first) is None  # baseline: nothing has ended yet

    gradient_emulator.script_jobs(kb.uuid, "COMPLETED", duration=20, pending=1)
    job = gradient_emulator.start_job_server_side(kb.uuid)
    gradient_emulator.clock.advance(120)

    again = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    again.asset_state_store = store
    payload = await first_event(again)
    assert payload is not None
    assert payload["indexing_job_uuid"] == job
    assert payload["knowledge_base_uuid"] == kb.uuid
    assert payload["outcome"] == "succeeded"


# -------------------------------------------------------------------------------------------
# A real Airflow run, in its own process and AIRFLOW_HOME
# -------------------------------------------------------------------------------------------


def _airflow_env(home: Path, conn_json: str, kb_uuid: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW_CONN_GRADIENT_DEFAULT": conn_json,
            KB_ENV: kb_uuid,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _run(argv: list[str], env: dict[str, str], home: Path, name: str, timeout: float) -> str:
    result = subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, timeout=timeout, check=False)
    (home / f"{name}.log").write_text(result.stdout + "\n---- stderr ----\n" + result.stderr)
    assert result.returncode == 0, (
        f"{name} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _driver(phase: str, env: dict[str, str], home: Path, timeout: float) -> dict[str, Any]:
    out = _run([sys.executable, __file__, phase, str(home)], env, home, f"driver-{phase}", timeout)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the {phase} driver printed no result:\n{out[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


@pytest.mark.integration
@pytest.mark.timeout(480)
def test_a_reindex_started_outside_airflow_runs_the_dag(gradient_emulator: Any, tmp_path: Path) -> None:
    emu = gradient_emulator
    emu.set_rate_limits(None, None)
    kb = emu.create_knowledge_base(data_sources=2)
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = _airflow_env(home, emu.airflow_conn_json(), kb.uuid)
    _run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env, home, "db-migrate", 300)

    # The DAG is parsed and stored; the watcher's trigger starts and takes what has ended as history.
    first = _driver("watch", env, home, 180)
    assert first["trigger_classpath"] == TRIGGER_CLASSPATH
    assert first["trigger_kwargs"]["knowledge_base_uuids"] == [kb.uuid]
    assert first["events"] == []
    assert first["dag_runs"] == []

    # Someone reindexes the knowledge base outside Airflow.
    emu.script_jobs(kb.uuid, "COMPLETED", duration=20, pending=1)
    job = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(120)
    expected = emu.job(job)

    # The trigger (re-created from its row, with its stored watermark) reports it; the scheduler
    # creates an asset-triggered run and the tasks see the event.
    second = _driver("react", env, home, 360)
    assert [event["indexing_job_uuid"] for event in second["events"]] == [job]
    assert len(second["asset_events"]) == 1
    asset_event = second["asset_events"][0]
    assert asset_event["extra"]["from_trigger"] is True
    assert asset_event["extra"]["payload"]["indexing_job_uuid"] == job
    assert [(run["run_type"], run["state"]) for run in second["dag_runs"]] == [("asset_triggered", "success")]
    assert second["task_states"] == {"describe_reindexes": "success", "evaluate_agent": "success"}
    assert second["xcom"]["describe_reindexes"] == [
        {
            "indexing_job_uuid": job,
            "knowledge_base_uuid": kb.uuid,
            "outcome": "succeeded",
            "is_success": True,
            "tokens": int(expected["total_tokens"]),
        }
    ]
    assert second["xcom"]["evaluate_agent"] == {"evaluated_after": job, "failed_reindexes": []}
    for log in home.glob("driver-*.log"):
        assert emu.token not in log.read_text()


# -------------------------------------------------------------------------------------------
# Helpers shared by both processes
# -------------------------------------------------------------------------------------------


class MemoryStore:
    """Airflow's asset-state-store interface (``aget``/``aset``) over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.data.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))


class FileStore(MemoryStore):
    """The same, kept in a JSON file so that it outlives the process (like the metadata DB)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            self.data = json.loads(path.read_text())

    async def aset(self, key: str, value: Any) -> None:
        await super().aset(key, value)
        self.path.write_text(json.dumps(self.data))


async def first_event(trigger: Any, timeout: float = 60.0) -> dict[str, Any] | None:
    """One poll round of a watcher (``poll()``, what ``run()`` repeats): its first event or ``None``."""

    async def one_round() -> dict[str, Any] | None:
        async for event in trigger.poll():
            return dict(event.payload)
        return None

    try:
        return await asyncio.wait_for(one_round(), timeout)
    finally:
        await trigger.cleanup()


# -------------------------------------------------------------------------------------------
# The driver (``python test_event_driven.py watch|react AIRFLOW_HOME``)
# -------------------------------------------------------------------------------------------


def _sync_dags() -> Any:
    """The dag processor's work: parse the bundle and store DAGs, assets and watcher triggers."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        ours = {path: error for path, error in bag.import_errors.items() if path.endswith(DAG_FILE.name)}
        assert not ours, ours
        if DAG_ID in bag.dags:
            sync_bag_to_db(bag, bundle.name, bundle.version)
            return bag.dags[DAG_ID]
    raise AssertionError(f"{DAG_ID} not found in any bundle")


def _watcher_trigger_row(session: Any) -> Any:
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    name = knowledge_base_uri(os.environ[KB_ENV])  # the knowledge base's one Asset, named by its URI
    asset = session.scalar(select(AssetModel).where(AssetModel.name == name))
    assert asset is not None, "the asset was not registered"
    assert len(asset.triggers) == 1, asset.triggers
    return asset.triggers[0]


def _run_dag_run(sdk_dag: Any, session: Any) -> None:
    """Run the asset-triggered run's tasks the way ``dag.test()`` does (in-process execution API)."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID))
    dag_run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(sdk_dag))
    dag_run.state = DagRunState.RUNNING
    session.commit()
    for _ in range(20):
        if dag_run.state != DagRunState.RUNNING:
            return
        session.expire_all()
        schedulable, _callback = dag_run.update_state(session=session)
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in dag_run.get_task_instances(session=session):
            if ti.state == TaskInstanceState.SCHEDULED:
                _run_task(ti=ti, task=sdk_dag.task_dict[ti.task_id])
    raise AssertionError("the DAG run did not finish")


def _report(session: Any) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    runs = session.scalars(select(DagRun).where(DagRun.dag_id == DAG_ID)).all()
    tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == DAG_ID)).all()
    xcoms = session.scalars(select(XComModel).where(XComModel.dag_id == DAG_ID, XComModel.key == "return_value")).all()
    events = session.scalars(select(AssetEvent)).all()
    return {
        "dag_runs": [{"run_type": str(run.run_type), "state": str(run.state)} for run in runs],
        "task_states": {ti.task_id: str(ti.state) for ti in tis},
        "xcom": {xcom.task_id: XComModel.deserialize_value(xcom) for xcom in xcoms},
        "asset_events": [{"extra": event.extra, "source": event.source_dag_id} for event in events],
    }


def _drive(phase: str, home: Path) -> dict[str, Any]:
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.trigger import Trigger
    from airflow.sdk.module_loading import import_string
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session

    sdk_dag = _sync_dags()
    with create_session() as session:
        row = _watcher_trigger_row(session)
        trigger_id, classpath, kwargs = row.id, row.classpath, row.kwargs
    # The triggerer's work: re-create the trigger from its row, inject the state store, run it.
    trigger = import_string(classpath)(**kwargs)
    trigger.asset_state_store = FileStore(home / "asset_state_store.json")
    payload = asyncio.run(first_event(trigger))
    result: dict[str, Any] = {
        "trigger_classpath": classpath,
        "trigger_kwargs": kwargs,
        "events": [payload] if payload else [],
    }
    if payload is not None:
        Trigger.submit_event(trigger_id=trigger_id, event=TriggerEvent(payload))
        # The scheduler's work: asset-triggered DAG runs from the queue.
        with create_session() as session:
            query, triggered = DagModel.dags_needing_dagruns(session)
            due = [model for model in query.all() if model.dag_id in triggered]
            assert [model.dag_id for model in due] == [DAG_ID], due
            SchedulerJobRunner(job=Job())._create_dag_runs_asset_triggered(dag_models=due, session=session)
            session.commit()
        with create_session() as session:
            _run_dag_run(sdk_dag, session)
    with create_session() as session:
        result.update(_report(session))
    return result


if __name__ == "__main__":
    outcome = _drive(sys.argv[1], Path(sys.argv[2]))
    print("RESULT " + json.dumps(outcome, default=str))
