"""GradientHook against the project's emulator over real sockets: every endpoint, sync and async."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_gradient.exceptions import GradientConflictError, GradientNotFoundError
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.models import JobOutcome

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(gradient_conn: str) -> GradientHook:
    return GradientHook()


def test_every_sync_endpoint(gradient_emulator, hook: GradientHook) -> None:
    kb = gradient_emulator.create_knowledge_base(name="docs", data_sources=2)
    gradient_emulator.set_schedule(kb.uuid, days=(1, 3), time="02:00")

    details = hook.get_knowledge_base(kb.uuid)
    assert details.knowledge_base.uuid == kb.uuid
    assert details.database_ready
    assert [k.uuid for k in hook.iter_knowledge_bases(per_page=1)] == [kb.uuid]
    assert hook.list_knowledge_bases(per_page=1).meta.total == 1
    sources = hook.list_knowledge_base_data_sources(kb.uuid)
    assert {s.uuid for s in sources.knowledge_base_data_sources} == set(kb.data_source_uuids)
    assert {s.uuid for s in hook.iter_knowledge_base_data_sources(kb.uuid, per_page=1)} == set(kb.data_source_uuids)
    schedule = hook.get_indexing_schedule(kb.uuid)
    assert schedule.knowledge_base_uuid == kb.uuid
    assert schedule.days == [1, 3]

    job = hook.start_indexing_job(kb.uuid, [kb.data_source_uuids[0]])
    assert job.uuid
    assert job.knowledge_base_uuid == kb.uuid
    assert not job.is_terminal
    assert job.data_source_uuids == [kb.data_source_uuids[0]]
    assert hook.get_indexing_job(job.uuid).uuid == job.uuid
    assert [j.uuid for j in hook.list_knowledge_base_indexing_jobs(kb.uuid)] == [job.uuid]
    assert job.uuid in {j.uuid for j in hook.list_indexing_jobs(per_page=200).jobs}
    assert job.uuid in {j.uuid for j in hook.iter_indexing_jobs(per_page=1)}
    with pytest.raises(GradientConflictError):
        hook.start_indexing_job(kb.uuid)

    gradient_emulator.clock.advance(3600)
    done = hook.get_indexing_job(job.uuid)
    assert done.outcome is JobOutcome.SUCCEEDED
    assert done.is_report_available
    assert [d.data_source_uuid for d in hook.list_indexing_job_data_sources(job.uuid)] == [kb.data_source_uuids[0]]
    assert (hook.get_indexing_job_report_url(job.uuid) or "").startswith("http")
    assert gradient_emulator.count(method="POST") == 2  # the conflicting start was refused, not retried


def test_start_poll_finish_and_start_cancel_cycles(gradient_emulator, hook: GradientHook) -> None:
    kb = gradient_emulator.create_knowledge_base(data_sources=1)
    gradient_emulator.script_jobs(kb.uuid, outcome="NO_CHANGES", duration=30.0, pending=1.0)
    job = hook.start_indexing_job(kb.uuid)
    seen = []
    while not (current := hook.get_indexing_job(job.uuid)).is_terminal:
        seen.append(current.phase)
        gradient_emulator.clock.advance(5)
    assert current.outcome is JobOutcome.NO_CHANGES
    assert "BATCH_JOB_PHASE_RUNNING" in seen

    second = hook.start_indexing_job(kb.uuid)
    cancelled = hook.cancel_indexing_job(second.uuid)
    assert cancelled.outcome is JobOutcome.CANCELLED
    assert hook.get_indexing_job(second.uuid).outcome is JobOutcome.CANCELLED
    cancel_bodies = [json.loads(r.body) for r in gradient_emulator.requests if r.method == "PUT"]
    assert cancel_bodies == [{"uuid": second.uuid}]


def test_async_endpoints_share_one_session(gradient_emulator, gradient_conn: str) -> None:
    from airflow_provider_gradient.hooks._transport import SESSION_POOL

    kb = gradient_emulator.create_knowledge_base(data_sources=2)
    job_uuid = gradient_emulator.start_job_server_side(kb.uuid)

    async def scenario() -> None:
        first, second = GradientHook(), GradientHook()
        job, details = await asyncio.gather(first.aget_indexing_job(job_uuid), second.aget_knowledge_base(kb.uuid))
        assert job.uuid == job_uuid
        assert details.knowledge_base.last_indexing_job.uuid == job_uuid
        assert SESSION_POOL.open_sessions() == 1
        assert [j.uuid for j in await first.alist_knowledge_base_indexing_jobs(kb.uuid)] == [job_uuid]
        gradient_emulator.clock.advance(3600)
        sources = await second.alist_indexing_job_data_sources(job_uuid)
        assert len(sources) == 2
        cancelled = await first.acancel_indexing_job(job_uuid)  # finished: answered unchanged
        assert cancelled.outcome is JobOutcome.SUCCEEDED
        with pytest.raises(GradientNotFoundError):
            await first.aget_indexing_job("00000000-0000-4000-8000-000000000000")
        await first.aclose()
        assert SESSION_POOL.open_sessions() == 1
        await second.aclose()
        assert SESSION_POOL.open_sessions() == 0

    asyncio.run(scenario())
