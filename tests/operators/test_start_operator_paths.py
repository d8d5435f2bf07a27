"""
GradientStartIndexingJobOperator: the start's refusals, giving up, the worker-side waits' bounds and
the ambiguous start after a quick earlier job, all against the emulator through ``execute``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from task_support import ExecuteInThread

from airflow_provider_gradient.exceptions import (
    GradientAmbiguousStartError,
    GradientError,
    GradientJobCancelledError,
    GradientJobTimeoutError,
)
from airflow_provider_gradient.operators import indexing_job as operators_module
from airflow_provider_gradient.operators.indexing_job import MAX_START_ATTEMPTS, GradientStartIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator

POST = ("POST", "genai_create_indexing_job")
CONFLICT = "Knowledge base already has an indexing job running"
DB_NOT_READY = "rpc error: code = Internal desc = Failed to get DB creds"


def start_op(kb: str, **kwargs: Any) -> GradientStartIndexingJobOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 0.2)
    return GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=kb, **kwargs)


def quick_kb(emu: GradientEmulator, **script: Any) -> str:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", **{"duration": 0.6, "pending": 0.1, **script})
    return kb.uuid


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Wait until ``condition()`` (an event seen in the emulator), failing after a generous bound."""
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, f"{what}: not seen within {seconds}s"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("status", "message"), [(409, CONFLICT), (400, DB_NOT_READY)], ids=["conflict", "db-not-ready"]
)
def test_a_refused_start_is_tried_again(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]], status: int, message: str
) -> None:
    """
    The POST is refused for sure (busy, or the database not ready although reported ONLINE): no
    job exists, so the operator reads the knowledge base again and starts once more. (Treating the
    refusal as final, or as ambiguous, turns this red.)
    """
    kb = quick_kb(emu)
    emu.faults.add("genai_create_indexing_job", status=status, message=message, times=1)
    context = make_context()
    summary = start_op(kb).execute(context)
    assert summary["outcome"] == "succeeded"
    assert emu.count(*POST) == 2
    assert [job["uuid"] for job in emu.jobs(kb)] == [summary["indexing_job_uuid"]]
    assert emu.count("GET", "genai_get_knowledge_base") == 2  # read again before the second start
    assert context["task_state_store"].data == {}


def test_a_start_refused_every_time_gives_up_after_the_attempts(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """
    After ``MAX_START_ATTEMPTS`` refusals the task fails, having created nothing (an unbounded
    loop turns this red).
    """
    kb = quick_kb(emu)
    emu.faults.add("genai_create_indexing_job", status=409, message=CONFLICT, times=None)
    with pytest.raises(GradientError, match=f"after {MAX_START_ATTEMPTS} attempts"):
        start_op(kb).execute(make_context())
    assert emu.count(*POST) == MAX_START_ATTEMPTS
    assert emu.jobs(kb) == []


def test_an_ambiguous_start_never_takes_the_previous_job_for_its_own(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]], no_sleep: list[float]
) -> None:
    """
    The knowledge base's last job ended a moment ago (well inside the clock-skew window); the
    start's answer is lost and it created nothing. The task fails as an ambiguous start instead
    of reporting that earlier job as its own success (not passing the job it read before the
    start to the reconciliation turns this red).
    """
    kb = quick_kb(emu)
    previous = emu.start_job_server_side(kb)
    emu.clock.advance(5.0)  # it has ended
    assert emu.job(previous)["status"] == "INDEX_JOB_STATUS_COMPLETED"
    emu.faults.add("genai_create_indexing_job", status=502, times=1)
    with pytest.raises(GradientAmbiguousStartError):
        start_op(kb).execute(make_context())
    assert emu.count(*POST) == 1  # never re-sent
    assert [job["uuid"] for job in emu.jobs(kb)] == [previous]


def test_an_ambiguous_start_adopts_the_job_it_created_after_a_previous_one(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """The counterpart: the start did create a job; it is adopted, not the previous one."""
    kb = quick_kb(emu)
    previous = emu.start_job_server_side(kb)
    emu.clock.advance(5.0)
    emu.faults.add("genai_create_indexing_job", "create_then_fail", status=502, times=1)
    summary = start_op(kb).execute(make_context())
    assert summary["indexing_job_uuid"] != previous
    assert [job["uuid"] for job in emu.jobs(kb)] == [summary["indexing_job_uuid"], previous]


def test_waiting_for_a_running_job_in_the_worker_is_bounded_by_the_timeout(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    """
    ``if_job_running='wait'`` in the worker: the other job runs past the task's ``timeout``, so
    the task fails without starting a job, and the other job is left running (cancelling it, or
    starting ours after the timeout, turns this red).
    """
    kb = quick_kb(emu, duration=600)
    theirs = emu.start_job_server_side(kb)
    started = time.monotonic()
    with pytest.raises(GradientJobTimeoutError, match="no job was started"):
        start_op(kb, timeout=1.0).execute(make_context())
    took = time.monotonic() - started
    assert took < 30, f"the 1 s wait took {took:.1f}s"
    assert emu.count(*POST) == 0
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    assert emu.job(theirs)["phase"] == "BATCH_JOB_PHASE_RUNNING"


def test_on_kill_gives_up_on_a_cancel_that_does_not_answer(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The cancel hangs: ``on_kill`` returns after its bound instead of with the answer, the job
    still running at that moment; the cancel lands later. (An unbounded cancel, or one that waits
    for the answer, turns this red: ``on_kill`` would return only after the job was cancelled.)
    """
    monkeypatch.setattr(operators_module, "ON_KILL_TIMEOUT", 0.5)
    kb = quick_kb(emu, duration=600)
    emu.faults.add("genai_cancel_indexing_job", "delay", seconds=4.0, times=1)
    op = start_op(kb)
    worker = ExecuteInThread(op, make_context())
    wait_for(lambda: emu.count("GET", "genai_get_indexing_job") >= 1, "the first poll")
    job = emu.jobs(kb)[0]["uuid"]
    op.on_kill()
    assert emu.job(job)["phase"] != "BATCH_JOB_PHASE_CANCELLED"  # on_kill did not wait for the answer
    wait_for(lambda: emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED", "the late cancel")
    assert isinstance(worker.join(30), GradientJobCancelledError)
