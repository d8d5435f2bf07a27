"""
The trigger's cancel on kill is bounded: a cancel that the API keeps failing (and the hook keeps
retrying), or that never answers, is given up at ``CANCEL_TIMEOUT``, without raising.
The bound is lowered for the test; each test reaches it (the cancel was still going on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from airflow_provider_gradient import _wait_drivers
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

BOUND = 1.0


@pytest.fixture
def running_job(emu: GradientEmulator) -> str:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=600, pending=0)
    return emu.start_job_server_side(kb.uuid)


@pytest.fixture(autouse=True)
def _low_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_wait_drivers, "CANCEL_TIMEOUT", BOUND)


async def _kill(trigger: GradientIndexingJobTrigger) -> float:
    started = time.monotonic()
    await asyncio.wait_for(trigger.on_kill(), 60)  # never raises
    took = time.monotonic() - started
    await trigger.cleanup()
    return took


async def test_a_cancel_retried_past_the_bound_is_given_up(
    emu: GradientEmulator, connect: Callable[..., str], running_job: str
) -> None:
    """
    The cancel answers 503 every time; the hook retries it (1 s, 2 s, ... apart) for longer than
    the bound. ``on_kill`` gives up at the bound: it took at least the bound (the retries were
    still going on) and ended with the job running. (An unbounded cancel runs into the hook's
    whole retry budget and turns this red.)
    """
    connect(max_retries=5)
    emu.faults.add("genai_cancel_indexing_job", "status", status=503, times=None)
    took = await _kill(GradientIndexingJobTrigger(indexing_job_uuid=running_job, poll_interval=0.2))
    assert took >= BOUND, f"gave up after {took:.2f}s, before the bound"
    assert took < BOUND + 20, f"on_kill took {took:.1f}s for a {BOUND}s bound"
    # Given up part way: the hook would have sent 6 (the first and 5 retries) without the bound.
    assert 1 <= emu.count("PUT", "genai_cancel_indexing_job") < 6
    assert emu.job(running_job)["phase"] == "BATCH_JOB_PHASE_RUNNING"


async def test_a_cancel_that_never_answers_is_given_up(
    emu: GradientEmulator, connect: Callable[..., str], running_job: str
) -> None:
    """The cancel hangs (the emulator holds it): ``on_kill`` returns at the bound, before the answer."""
    connect(max_retries=0)
    emu.faults.add("genai_cancel_indexing_job", "delay", seconds=10.0, times=1)
    took = await _kill(GradientIndexingJobTrigger(indexing_job_uuid=running_job, poll_interval=0.2))
    assert took >= BOUND, f"gave up after {took:.2f}s, before the bound"
    assert took < BOUND + 20, f"on_kill took {took:.1f}s for a {BOUND}s bound"
    assert emu.job(running_job)["phase"] == "BATCH_JOB_PHASE_RUNNING"  # the held cancel has not landed
