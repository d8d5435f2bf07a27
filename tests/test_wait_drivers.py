"""The sync and async drivers of the waits, against the emulator over real sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from task_support import connect, emu

from airflow_provider_gradient import _wait_drivers
from airflow_provider_gradient._wait import DEADLINE_MARGIN, JobWait, KnowledgeBaseWait
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.models import IndexingJob
from airflow_provider_gradient.testing.emulator import GradientEmulator

pytestmark = pytest.mark.integration

__all__ = ["connect", "emu"]

LOG = logging.getLogger("test_wait_drivers")
GET_JOB = ("GET", "genai_get_indexing_job")
GET_SOURCES = ("GET", "genai_list_indexing_job_data_sources")
CANCEL = ("PUT", "genai_cancel_indexing_job")


@pytest.fixture
def conn(connect: Callable[..., str]) -> str:
    """No HTTP-level retries: what the driver and the wait do with a failure is what is tested."""
    return connect(max_retries=0)


class Clock:
    """A clock the driver reads and moves on by sleeping: no real waiting in these tests."""

    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def run(mode: str, wait: JobWait | KnowledgeBaseWait, clock: Clock | None = None) -> dict[str, Any]:
    """Drive ``wait`` to its event with the sync or the async driver."""
    timing: dict[str, Any] = {} if clock is None else {"clock": clock}
    if mode == "sync":
        if clock is not None:
            timing["sleep"] = clock.sleep
        return _wait_drivers.wait_for_event(wait, GradientHook(), log=LOG, **timing)

    async def drive() -> dict[str, Any]:
        hook = GradientHook()
        if clock is not None:
            timing["sleep"] = clock.asleep
        try:
            return await _wait_drivers.await_event(wait, hook, log=LOG, **timing)
        finally:
            await hook.aclose()

    return asyncio.run(drive())


def ended_job(emu: GradientEmulator, outcome: str, **script: Any) -> tuple[Any, str]:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, outcome, duration=0, pending=0, **script)
    job = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(1)
    return kb, job


def running_job(emu: GradientEmulator) -> str:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, duration=600, pending=0)
    return emu.start_job_server_side(kb.uuid)


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_job_without_detail_is_read_once_more_for_it(mode: str, emu: GradientEmulator, conn: str) -> None:
    kb, job = ended_job(emu, "FAILED", error_msg="crawl_refused")
    emu.faults.add(GET_JOB[1], "missing_fields", fields=["data_source_jobs"], times=None)
    event = run(mode, JobWait(job, poll_interval=0.2))
    assert event["status"] == "failed"
    assert any(kb.data_source_uuids[-1] in line and "crawl_refused" in line for line in event["errors"])
    assert (emu.count(*GET_JOB), emu.count(*GET_SOURCES)) == (1, 1)


@pytest.mark.parametrize("mode", MODES)
def test_a_job_that_carries_its_detail_is_read_once(mode: str, emu: GradientEmulator, conn: str) -> None:
    _, job = ended_job(emu, "FAILED", error_msg="crawl_refused")
    event = run(mode, JobWait(job, poll_interval=0.2))
    assert event["status"] == "failed"
    assert (emu.count(*GET_JOB), emu.count(*GET_SOURCES)) == (1, 0)


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_detail_read_leaves_the_verdict(
    mode: str, emu: GradientEmulator, conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, job = ended_job(emu, "PARTIAL", failed_item_count=3)
    emu.faults.add(GET_JOB[1], "missing_fields", fields=["data_source_jobs"], times=None)
    emu.faults.add(GET_SOURCES[1], "status", status=500, times=None)
    caplog.set_level(logging.WARNING, LOG.name)
    event = run(mode, JobWait(job, poll_interval=0.2))
    assert event["status"] == "partial"
    assert emu.count(*GET_SOURCES) == 1
    assert "Could not read the job's data-source results" in caplog.text


@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_cancels_the_job(mode: str, emu: GradientEmulator, conn: str) -> None:
    job = running_job(emu)
    clock = Clock()
    event = run(mode, JobWait(job, poll_interval=30.0, end_time=clock.now + 100), clock)
    assert (event["status"], event["cancelled"]) == ("timeout", True)
    assert event["phase"] == "BATCH_JOB_PHASE_CANCELLED"  # as the cancel answered
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count(*CANCEL) == 1
    assert emu.count(*GET_JOB) == len(clock.slept) + 1 >= 3
    assert sum(clock.slept) == pytest.approx(100 + DEADLINE_MARGIN)  # the last sleep ends at the deadline


@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_without_cancel_leaves_the_job(mode: str, emu: GradientEmulator, conn: str) -> None:
    job = running_job(emu)
    clock = Clock()
    event = run(mode, JobWait(job, poll_interval=30.0, end_time=clock.now + 50, cancel_on_timeout=False), clock)
    assert (event["status"], event["cancelled"]) == ("timeout", False)
    assert emu.count(*CANCEL) == 0


@pytest.mark.parametrize("mode", MODES)
def test_transient_errors_end_the_wait_once_they_outlast_the_tolerance(
    mode: str, emu: GradientEmulator, conn: str
) -> None:
    job = running_job(emu)
    emu.faults.add(GET_JOB[1], "status", status=503, times=None, message="down for maintenance")
    clock = Clock()
    event = run(mode, JobWait(job, poll_interval=30.0, error_tolerance=120), clock)
    assert event["status"] == "error"
    assert "down for maintenance" in event["message"]
    assert sum(clock.slept[:-1]) < 120 <= sum(clock.slept)
    assert emu.count(*GET_JOB) == len(clock.slept) + 1 >= 3
    assert emu.count(*CANCEL) == 0


@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_also_bounds_a_run_of_errors(mode: str, emu: GradientEmulator, conn: str) -> None:
    job = running_job(emu)
    emu.faults.add(GET_JOB[1], "status", status=503, times=None)
    clock = Clock()
    event = run(mode, JobWait(job, poll_interval=30.0, end_time=clock.now + 60), clock)
    assert (event["status"], event["cancelled"]) == ("timeout", True)
    assert emu.count(*CANCEL) == 1


@pytest.mark.parametrize("mode", MODES)
def test_errors_count_until_a_good_answer(mode: str, emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base(data_sources=1)
    emu.script_jobs(kb.uuid, duration=0, pending=0)
    emu.faults.add(GET_JOB[1], "status", status=503, times=2)
    job = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(1)
    clock = Clock()
    event = run(mode, JobWait(job, poll_interval=30.0, error_tolerance=1), clock)
    # The first failure starts the count; the second comes a whole poll later, past the tolerance.
    assert event["status"] == "error"
    emu.faults.clear()
    emu.faults.add(GET_JOB[1], "status", status=503, times=1)
    assert run(mode, JobWait(job, poll_interval=30.0, error_tolerance=1), Clock())["status"] == "success"


@pytest.mark.parametrize("mode", MODES)
def test_knowledge_base_wait(mode: str, emu: GradientEmulator, conn: str) -> None:
    kb, job = ended_job(emu, "COMPLETED")
    event = run(mode, KnowledgeBaseWait(kb.uuid, poll_interval=0.2))
    assert (event["status"], event["indexing_job_uuid"], event["knowledge_base_uuid"]) == ("success", job, kb.uuid)
    assert emu.count("GET", "genai_get_knowledge_base") == 1
    assert emu.count(*GET_JOB) == 0


def test_step_is_one_poll(emu: GradientEmulator, conn: str) -> None:
    job = running_job(emu)
    wait = JobWait(job, poll_interval=30.0)
    assert _wait_drivers.step(wait, GradientHook(), log=LOG) is None
    assert emu.count(*GET_JOB) == 1
    assert wait.last_job is not None
    assert wait.last_job.uuid == job


async def test_the_async_driver_reads_jobs_through_read_job(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base(data_sources=1)
    emu.script_jobs(kb.uuid, duration=0.5, pending=0)
    job = emu.start_job_server_side(kb.uuid)
    hook = GradientHook()
    read: list[str] = []

    async def read_job(uuid: str) -> IndexingJob:
        read.append(uuid)
        return await hook.aget_indexing_job(uuid)

    try:
        event = await _wait_drivers.await_event(JobWait(job, poll_interval=0.2), hook, log=LOG, read_job=read_job)
    finally:
        await hook.aclose()
    assert event["status"] == "success"
    assert read == [job] * emu.count(*GET_JOB)
    assert len(read) >= 2


async def test_acancel_is_bounded_and_never_raises(emu: GradientEmulator, conn: str) -> None:
    job = running_job(emu)
    emu.faults.add(CANCEL[1], "status", status=500, times=None)
    hook = GradientHook()
    try:
        assert await _wait_drivers.acancel(hook, job, "a test", log=LOG, timeout=5) is None
    finally:
        await hook.aclose()
    assert emu.count(*CANCEL) >= 1
    assert _wait_drivers.cancel(GradientHook(), job, "a test", log=LOG, timeout=5) is None
