"""
Nothing left running: a user stopping a deferred task, the maximum wait, and a worker SIGTERM
during a sync wait each cancel the remote job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize
from reliability_support import MemoryStore, context, env_name
from task_support import first_event

from airflow_provider_gradient.exceptions import GradientJobTimeoutError
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator

pytestmark = pytest.mark.integration

PUT = ("PUT", "genai_cancel_indexing_job")
RUNNING = ("BATCH_JOB_PHASE_PENDING", "BATCH_JOB_PHASE_RUNNING")


def long_job(emu: GradientEmulator) -> str:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", duration=3600.0, pending=0.1)
    return kb.uuid


async def test_trigger_on_kill_cancels_the_job(emu: GradientEmulator, connect: Callable[..., str]) -> None:
    """Mark failed / mark success / clear while deferred: Airflow 3.3 calls the trigger's on_kill."""
    connect(max_retries=1)
    kb = long_job(emu)
    op = GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=kb, deferrable=True, poll_interval=0.2)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(store=MemoryStore()))
    classpath, kwargs = deferred.value.trigger.serialize()
    held = import_string(classpath)(**deserialize(serialize(kwargs)))  # what the triggerer runs
    task = asyncio.ensure_future(first_event(held))
    give_up = time.monotonic() + 10
    while emu.count("GET", "genai_get_indexing_job") < 1:
        assert time.monotonic() < give_up
        await asyncio.sleep(0.01)
    await held.on_kill()  # the triggerer's reaction to the user's action
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = emu.jobs(kb)[0]
    assert job["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count(*PUT) == 1


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_maximum_wait_cancels_the_job(emu: GradientEmulator, connect: Callable[..., str], deferrable: bool) -> None:
    connect(max_retries=1)
    kb = long_job(emu)
    op = GradientStartIndexingJobOperator(
        task_id="reindex", knowledge_base_uuid=kb, deferrable=deferrable, poll_interval=0.2, timeout=1.5
    )
    ctx = context(store=MemoryStore())
    events: list[dict[str, Any]] = []

    def run() -> None:
        try:
            op.execute(ctx)
        except TaskDeferred as deferred:
            events.append(asyncio.run(first_event(deferred.trigger)))
            op.execute_complete(ctx, events[0])

    with pytest.raises(GradientJobTimeoutError, match="did not finish within") as info:
        run()
    assert [event["cancelled"] for event in events] == ([True] if deferrable else [])
    assert emu.job(info.value.indexing_job_uuid)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count(*PUT) == 1
    assert ctx["task_state_store"].data == {}  # given up on: a later clear starts anew


DAG_FILE = """
import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

with DAG("gradient_sigterm", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid=os.environ["GRADIENT_KB_UUID"],
        deferrable=False,
        poll_interval=0.2,
    )
"""


@pytest.mark.airflow_db
@pytest.mark.timeout(240)
def test_worker_sigterm_during_a_sync_wait_cancels_the_job(emu: GradientEmulator, tmp_path: Path) -> None:
    """A real task process (``dag.test()``) gets SIGTERM mid-wait: Airflow's handler calls on_kill."""
    kb = long_job(emu)
    home, dags = tmp_path / "home", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    dag_file = dags / "gradient_sigterm.py"
    dag_file.write_text(textwrap.dedent(DAG_FILE))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_")) and key != "AIRFLOW_HOME"
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            env_name("gradient_default"): (
                f'{{"conn_type": "gradient", "host": "{emu.base_url}", "password": "{emu.token}",'
                ' "extra": {"requests_per_minute": 100000, "requests_per_hour": 1000000}}'
            ),
            "GRADIENT_KB_UUID": kb,
        }
    )
    log = tmp_path / "child.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("sigterm_child.py")), str(dag_file)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            give_up = time.monotonic() + 180
            while emu.count("GET", "genai_get_indexing_job") < 1:  # the job is started and being waited for
                assert child.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < give_up, "the task never started waiting"
                time.sleep(0.05)
            assert emu.jobs(kb)[0]["phase"] in RUNNING
            child.send_signal(signal.SIGTERM)
            child.wait(60)
        finally:
            if child.poll() is None:
                child.kill()
    text = log.read_text()
    jobs = emu.jobs(kb)
    assert len(jobs) == 1
    assert jobs[0]["phase"] == "BATCH_JOB_PHASE_CANCELLED", text[-4000:]
    assert emu.count(*PUT) == 1
    assert "the task was killed" in text  # cancelled by on_kill, called by Airflow's SIGTERM handler
    assert emu.token not in text
