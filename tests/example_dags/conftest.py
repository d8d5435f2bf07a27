"""
Fixtures running the example DAGs with ``dag.test()`` against the Gradient API emulator.

One pytest process runs every example: the metadata DB (sqlite, in the private AIRFLOW_HOME that
``tests/conftest.py`` sets up) is migrated once per session, and the first task of the process
pays Airflow's one-off cost of building the in-process execution API (~30 s); later runs are quick.

The emulator runs for the whole session at 60x speed (a one-minute job takes a second). The DAG
files read their knowledge bases from the environment when parsed, so the session fixture
creates the knowledge bases and sets ``GRADIENT_KB_NAMES`` / ``GRADIENT_KB_UUID`` (and a few-second
``GRADIENT_MAX_WAIT_SECONDS``) before the DAG folder is parsed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gradient.testing.emulator import GradientEmulator

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
#: Emulated seconds per wall second.
SPEED = 60.0
#: The maximum wait of ``gradient_reindex_max_wait`` in these tests (wall seconds).
MAX_WAIT_SECONDS = 4


@dataclass
class ExampleEnv:
    """What the example DAGs were parsed against."""

    emulator: GradientEmulator
    scheduled_kbs: list[str]
    scheduled_names: list[str]
    pipeline_kb: str
    dagbag: Any = None


@dataclass
class RunResult:
    """The outcome of one ``dag.test()`` run, read back from the metadata DB."""

    dag_id: str
    run_id: str
    state: str
    #: ``task_id`` (or ``task_id[map_index]`` for mapped tasks) → final state.
    task_states: dict[str, str] = field(default_factory=dict)
    #: Same keys → the ``return_value`` XCom, if any.
    returns: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the session's sqlite metadata DB (once)."""
    from airflow.utils import db

    db.upgradedb()


@pytest.fixture(scope="session")
def example_env(airflow_db: None) -> Iterator[ExampleEnv]:
    """Start the emulator, create the knowledge bases and point Airflow at them and at example_dags/."""
    from airflow import settings

    emulator = GradientEmulator(speed=SPEED).start()
    docs = emulator.create_knowledge_base("docs", data_sources=2)
    faq = emulator.create_knowledge_base("faq", data_sources=1)
    pipeline = emulator.create_knowledge_base("pipeline-docs", data_sources=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", emulator.airflow_conn_json())
        mp.setenv("GRADIENT_KB_NAMES", f"{docs.name},{faq.name}")
        mp.setenv("GRADIENT_KB_UUID", pipeline.uuid)
        mp.setenv("GRADIENT_MAX_WAIT_SECONDS", str(MAX_WAIT_SECONDS))
        mp.delenv("AIRFLOW_VAR_GRADIENT_KNOWLEDGE_BASE_NAMES", raising=False)
        # dag.test() syncs the "dags-folder" bundle, whose path is settings.DAGS_FOLDER.
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS))
        mp.setattr(settings, "DAGS_FOLDER", str(EXAMPLE_DAGS))
        try:
            yield ExampleEnv(
                emulator=emulator,
                scheduled_kbs=[docs.uuid, faq.uuid],
                scheduled_names=[docs.name, faq.name],
                pipeline_kb=pipeline.uuid,
            )
        finally:
            emulator.stop()


@pytest.fixture(scope="session")
def example_dagbag(example_env: ExampleEnv) -> Any:
    """The example folder parsed once, with the environment above."""
    from airflow.dag_processing.dagbag import DagBag

    example_env.emulator.reset_requests()
    dagbag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    example_env.dagbag = dagbag
    _register_and_unpause(sorted(dagbag.dags))
    return dagbag


def _register_and_unpause(dag_ids: list[str]) -> None:
    """
    What a deployment does before the DAGs run: the dag processor writes them to the metadata DB
    (as ``airflow dags reserialize`` does) and a user switches them on. Unpaused, a DAG scheduled
    on an Asset is queued when the asset gets an event.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        sync_bag_to_db(
            BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name),
            bundle.name,
            bundle.get_current_version(),
        )
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id.in_(dag_ids)).values(is_paused=False))


@pytest.fixture
def run_dag(example_dagbag: Any) -> Any:
    """``run_dag(dag_id, **conf) -> RunResult``: one real ``dag.test()`` run, read back from the DB."""

    def run(dag_id: str, **conf: Any) -> RunResult:
        # In-process, dag.test() leaves a run's conf in the DAG object's params: always pass every
        # param a test relies on.
        dag = example_dagbag.get_dag(dag_id)
        assert dag is not None, f"{dag_id} is not in example_dags/ (import errors: {example_dagbag.import_errors})"
        dag_run = dag.test(run_conf=conf or None)
        return _read_back(dag_id, dag_run.run_id)

    return run


def _read_back(dag_id: str, run_id: str) -> RunResult:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dag_run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
        result = RunResult(dag_id=dag_id, run_id=run_id, state=str(dag_run.state))
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        for ti in tis:
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            result.task_states[key] = str(ti.state)
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        ).all()
        for row in rows:
            key = row.task_id if row.map_index < 0 else f"{row.task_id}[{row.map_index}]"
            result.returns[key] = XComModel.deserialize_value(row)
    return result
