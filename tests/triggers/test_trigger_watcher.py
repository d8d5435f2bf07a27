"""Many GradientIndexingJobTriggers on one loop share the job watcher, in any list order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from task_support import sweeps_made

from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

pytestmark = pytest.mark.integration

OUTCOMES = {"COMPLETED": "success", "FAILED": "failed", "PARTIAL": "partial", "NO_CHANGES": "success"}


async def _event(trigger: GradientIndexingJobTrigger) -> dict[str, Any]:
    try:
        events = [dict(event.payload) async for event in trigger.run()]
    finally:
        await trigger.cleanup()
    assert len(events) == 1, events
    return events[0]


@pytest.mark.parametrize("gradient_list_order", ["newest", "oldest", "none"])
async def test_triggers_on_one_loop_are_served_by_sweeps(
    emu: GradientEmulator, conn: str, gradient_list_order: str
) -> None:
    history = emu.create_knowledge_base("history")
    emu.add_finished_jobs(history.uuid, 2000)
    expected = {}
    for index in range(24):
        kb = emu.create_knowledge_base(f"kb{index}", data_sources=2)
        outcome = list(OUTCOMES)[index % len(OUTCOMES)]
        emu.script_jobs(kb.uuid, outcome, duration=30.0, pending=1.0)
        expected[emu.start_job_server_side(kb.uuid)] = OUTCOMES[outcome]
    emu.reset_requests()
    emu.clock.speed = 10.0  # the jobs end together, 3 s from now
    ordered = gradient_list_order != "none"
    # Polling every 40 s, the sweeps come 10 s apart; a trigger sleeps on while they see its job
    # run, and the sweep that sees the end wakes it and answers its read: after its first read, no
    # trigger reads its job by GET. A list in no order cannot be swept for two dozen jobs: those
    # triggers poll every second.
    poll_interval = 40.0 if ordered else 1.0
    triggers = [GradientIndexingJobTrigger(indexing_job_uuid=uuid, poll_interval=poll_interval) for uuid in expected]
    events = await asyncio.wait_for(asyncio.gather(*(_event(trigger) for trigger in triggers)), 60)

    for uuid, event in zip(expected, events, strict=True):
        assert event["indexing_job_uuid"] == uuid
        assert event["status"] == expected[uuid], event
        assert event["job_status"] == emu.job(uuid)["status"]
        if event["status"] in ("failed", "partial"):
            assert event["errors"]  # the list item carried the data-source results
    gets = emu.count("GET", "genai_get_indexing_job")
    lists = emu.count("GET", "genai_list_indexing_jobs")
    assert emu.count("GET", "genai_list_indexing_job_data_sources") == 0
    if ordered:
        assert lists >= 1
        assert gets <= len(expected)  # the first reads at most: every end was seen by a sweep


async def test_knowledge_base_waits_sleep_on_their_latest_jobs_while_the_sweeps_see_them_run(
    emu: GradientEmulator, conn: str
) -> None:
    """
    Catches knowledge-base waits (the deferred sensor's mode) that read their knowledge base at
    every poll while its latest job runs: it cannot be fresh before that job ends, and the sweeps
    that see the job run wake the wait when it ends. Each wait reads its knowledge base twice: once
    to find the running job, once after the sweep saw it end.
    """
    expected = {}
    for index in range(6):
        kb = emu.create_knowledge_base(f"kb{index}", data_sources=1)
        outcome = list(OUTCOMES)[index % len(OUTCOMES)]
        emu.script_jobs(kb.uuid, outcome, duration=600.0, pending=1.0)
        emu.start_job_server_side(kb.uuid)
        expected[kb.uuid] = OUTCOMES[outcome]
    emu.reset_requests()
    # Polling every 4 s, sweeps come 1 s apart.
    triggers = [GradientIndexingJobTrigger(knowledge_base_uuid=uuid, poll_interval=4.0) for uuid in expected]
    waits = asyncio.gather(*(_event(trigger) for trigger in triggers))
    await asyncio.wait_for(_all_read(emu, len(expected)), 30)
    await asyncio.wait_for(sweeps_made(6), 60)  # at least 5 s: more than one poll interval
    emu.clock.advance(3600.0)  # every job ends
    events = await asyncio.wait_for(waits, 60)

    for uuid, event in zip(expected, events, strict=True):
        assert event["knowledge_base_uuid"] == uuid
        assert event["status"] == expected[uuid], event
    assert emu.count("GET", "genai_get_knowledge_base") == 2 * len(expected)
    assert emu.count("GET", "genai_get_indexing_job") == 0
    assert emu.count("GET", "genai_list_indexing_jobs") >= 6


async def _all_read(emu: GradientEmulator, count: int) -> None:
    """Wait until ``count`` knowledge bases were read (each wait's first read)."""
    while emu.count("GET", "genai_get_knowledge_base") < count:  # noqa: ASYNC110 - no event to wait on
        await asyncio.sleep(0.05)
