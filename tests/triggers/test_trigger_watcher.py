"""Many GradientIndexingJobTriggers on one loop share the job watcher, in any list order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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
