"""
No duplicate jobs: an ambiguous start, a worker killed after starting, a triggerer restarted
mid-wait, and a job started outside Airflow each leave exactly the jobs they should.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize
from reliability_support import FileStore, MemoryStore, context
from task_support import first_event

from airflow_provider_gradient.exceptions import GradientError
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

pytestmark = pytest.mark.integration

POST = ("POST", "genai_create_indexing_job")
KEY = GradientStartIndexingJobOperator.STATE_KEY


def start_op(kb: str, **kwargs: Any) -> GradientStartIndexingJobOperator:
    kwargs.setdefault("poll_interval", 0.2)
    return GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=kb, deferrable=False, **kwargs)


def scripted_kb(emu: GradientEmulator, **script: Any) -> str:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", **{"duration": 0.8, "pending": 0.1, **script})
    return kb.uuid


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        pytest.param({"status": 502}, {}, id="502-after-create"),
        pytest.param({"seconds": 2.0}, {"timeout": 0.7}, id="timeout-after-create"),
    ],
)
def test_ambiguous_start_leaves_exactly_one_job(
    emu: GradientEmulator, connect: Callable[..., str], fault: dict[str, Any], extra: dict[str, Any]
) -> None:
    connect(max_retries=2, **extra)
    kb = scripted_kb(emu)
    injected = emu.faults.add("genai_create_indexing_job", "create_then_fail", **fault)
    store = MemoryStore()
    summary = start_op(kb).execute(context(store=store))
    time.sleep(fault.get("seconds", 0.0))  # the delayed answer is logged once it is sent
    assert injected.fired == 1
    assert emu.count(*POST) == 1  # never re-sent
    jobs = emu.jobs(kb)
    assert [job["uuid"] for job in jobs] == [summary["indexing_job_uuid"]]  # the one job, followed
    assert jobs[0]["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"
    assert summary["outcome"] == "succeeded"


def test_worker_killed_after_start_reattaches(
    emu: GradientEmulator, connect: Callable[..., str], tmp_path: Path
) -> None:
    """SIGKILL the worker process once it has started the job; running the task again reattaches."""
    connect(max_retries=2)
    kb = scripted_kb(emu, duration=3.0)
    store_file = tmp_path / "task_state_store.json"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("worker_child.py")), kb, str(store_file)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        give_up = time.monotonic() + 60
        # Started, remembered, and waiting: the POST was answered and the job is being polled.
        while emu.count(*POST) < 1 or emu.count("GET", "genai_get_indexing_job") < 1:
            assert child.poll() is None, "the worker exited before it was killed"
            assert time.monotonic() < give_up, "the worker never started the job"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    first = emu.jobs(kb)
    assert len(first) == 1
    assert first[0]["phase"] in ("BATCH_JOB_PHASE_PENDING", "BATCH_JOB_PHASE_RUNNING")  # left running
    store = FileStore(store_file)
    assert store.get(KEY) == first[0]["uuid"]  # written through before the kill

    summary = start_op(kb).execute(context(store=store, try_number=2))  # the retry, same store
    assert summary["indexing_job_uuid"] == first[0]["uuid"]
    assert summary["outcome"] == "succeeded"
    assert emu.count(*POST) == 1
    assert len(emu.jobs(kb)) == 1
    assert FileStore(store_file).get(KEY) is None  # forgotten once the job ended


async def test_triggerer_restart_mid_wait_resumes(emu: GradientEmulator, connect: Callable[..., str]) -> None:
    """The triggerer dies mid-wait (during a 503 burst); its successor re-creates the trigger via serde."""
    connect(max_retries=0)
    kb = scripted_kb(emu, duration=2.0)
    job = emu.start_job_server_side(kb)
    emu.faults.add("genai_get_indexing_job", "status", status=503, times=3, after=1)
    first = GradientIndexingJobTrigger(indexing_job_uuid=job, knowledge_base_uuid=kb, poll_interval=0.2)
    stored = serialize(first.serialize()[1])  # what the triggers table holds
    task = asyncio.ensure_future(first_event(first))
    give_up = time.monotonic() + 10
    while emu.count("GET", "genai_get_indexing_job", status=503) < 1:
        assert time.monotonic() < give_up
        await asyncio.sleep(0.01)
    task.cancel()  # the triggerer process went away: no event, no on_kill
    with pytest.raises(asyncio.CancelledError):
        await task

    again = import_string(first.serialize()[0])(**deserialize(stored))
    event = await asyncio.wait_for(first_event(again), 30)
    assert (event["status"], event["indexing_job_uuid"]) == ("success", job)
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    assert emu.count(*POST) == 0
    assert [item["uuid"] for item in emu.jobs(kb)] == [job]


@pytest.mark.parametrize("policy", ["wait", "adopt", "fail"])
def test_if_job_running_policies_with_an_outside_job(
    emu: GradientEmulator, connect: Callable[..., str], policy: str
) -> None:
    connect(max_retries=2)
    kb = scripted_kb(emu, duration=1.0)
    outside = emu.start_job_server_side(kb)  # the console, auto-indexing or a schedule started it
    op = start_op(kb, if_job_running=policy)
    if policy == "fail":
        with pytest.raises(GradientError, match=f"already has indexing job {outside} running"):
            op.execute(context(store=MemoryStore()))
        assert emu.count(*POST) == 0
        assert [job["uuid"] for job in emu.jobs(kb)] == [outside]
        return
    summary = op.execute(context(store=MemoryStore()))
    jobs = {job["uuid"]: job for job in emu.jobs(kb)}
    if policy == "adopt":
        assert summary["indexing_job_uuid"] == outside
        assert emu.count(*POST) == 0
        assert list(jobs) == [outside]
    else:  # wait: ours starts only after the outside job ended
        assert summary["indexing_job_uuid"] != outside
        assert emu.count(*POST) == 1
        assert set(jobs) == {outside, summary["indexing_job_uuid"]}
        assert jobs[summary["indexing_job_uuid"]]["created_at"] >= jobs[outside]["finished_at"]
    assert all(job["phase"] == "BATCH_JOB_PHASE_SUCCEEDED" for job in jobs.values())
