"""``knowledge_base_name`` on the start and cancel operators, the sensor and the event trigger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from task_support import first_event

from airflow_provider_gradient.exceptions import GradientConfigError
from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger
from airflow_provider_gradient.triggers.knowledge_base_event import GradientKnowledgeBaseEventTrigger

U1 = "123e4567-e89b-12d3-a456-426614174000"
LIST = ("GET", "genai_list_knowledge_bases")
POST = ("POST", "genai_create_indexing_job")

CLASSES: list[Callable[..., Any]] = [
    lambda **kw: GradientStartIndexingJobOperator(task_id="t", **kw),
    lambda **kw: GradientCancelIndexingJobOperator(task_id="t", **kw),
    lambda **kw: GradientIndexingJobSensor(task_id="t", **kw),
    lambda **kw: GradientKnowledgeBaseEventTrigger(**kw),
]


@pytest.mark.parametrize("make", CLASSES)
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"knowledge_base_uuid": U1, "knowledge_base_name": "docs"}, "not both"),
        ({"knowledge_base_name": ""}, "knowledge_base_name must be a knowledge base's name"),
        ({"knowledge_base_name": 42}, "knowledge_base_name must be a knowledge base's name"),
    ],
)
def test_exactly_one_of_uuid_or_name_before_any_request(
    make: Callable[..., Any], kwargs: dict[str, Any], match: str, emu: GradientEmulator, conn: str
) -> None:
    with pytest.raises(GradientConfigError, match=match):
        make(**kwargs)
    assert emu.requests == []


def test_a_templated_name_passes_construction_and_is_rendered() -> None:
    op = GradientStartIndexingJobOperator(task_id="t", knowledge_base_name="{{ params.kb }}")
    assert "knowledge_base_name" in op.template_fields
    for cls in (GradientCancelIndexingJobOperator, GradientIndexingJobSensor):
        assert "knowledge_base_name" in cls.template_fields


def test_start_by_name_looks_it_up_once(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    emu.create_knowledge_base(name="faq")
    kb = emu.create_knowledge_base(name="docs", data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", duration=0.6, pending=0.1)
    op = GradientStartIndexingJobOperator(
        task_id="t", knowledge_base_name="{{ params.kb }}", deferrable=False, poll_interval=0.2
    )
    context = make_context(params={"kb": "docs"})
    op.render_template_fields(context)
    summary = op.execute(context)
    assert summary["knowledge_base_uuid"] == kb.uuid
    assert summary["outcome"] == "succeeded"
    assert [job["uuid"] for job in emu.jobs(kb.uuid)] == [summary["indexing_job_uuid"]]
    assert emu.count(*LIST) == 1
    assert emu.count(*POST) == 1


def test_start_by_name_fails_before_starting_when_the_name_is_ambiguous(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    emu.create_knowledge_base(name="docs")
    emu.create_knowledge_base(name="docs")
    op = GradientStartIndexingJobOperator(task_id="t", knowledge_base_name="docs", deferrable=False)
    with pytest.raises(GradientConfigError, match="knowledge_base_name='docs' matches 2 knowledge bases"):
        op.execute(make_context())
    assert emu.count(*POST) == 0


def test_start_by_name_deferred_waiting_for_a_running_job_resumes_without_a_second_lookup(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base(name="docs")
    emu.script_jobs(kb.uuid, "COMPLETED", duration=600, pending=0)
    running = emu.start_job_server_side(kb.uuid)
    op = GradientStartIndexingJobOperator(task_id="t", knowledge_base_name="docs", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, GradientIndexingJobTrigger)
    assert trigger.serialize()[1]["knowledge_base_uuid"] == kb.uuid
    emu.clock.advance(700)
    assert emu.job(running)["phase"] != "BATCH_JOB_PHASE_RUNNING"
    event = asyncio.run(first_event(trigger))
    # A new instance, as after a deferral: the event's uuid spares a second lookup.
    again = GradientStartIndexingJobOperator(
        task_id="t", knowledge_base_name="docs", deferrable=False, poll_interval=0.2
    )
    emu.script_jobs(kb.uuid, "COMPLETED", duration=0.6, pending=0.1)
    summary = again.execute_after_running_job(make_context(), event=event, deadline=None)
    assert summary["knowledge_base_uuid"] == kb.uuid
    assert emu.count(*LIST) == 1


def test_cancel_by_name(emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]) -> None:
    kb = emu.create_knowledge_base(name="docs")
    emu.script_jobs(kb.uuid, duration=600, pending=0)
    job = emu.start_job_server_side(kb.uuid)
    summary = GradientCancelIndexingJobOperator(task_id="c", knowledge_base_name="docs").execute(make_context())
    assert summary["indexing_job_uuid"] == job
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count(*LIST) == 1


def test_cancel_with_a_job_uuid_does_not_look_the_name_up(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base(name="docs")
    emu.script_jobs(kb.uuid, duration=600, pending=0)
    job = emu.start_job_server_side(kb.uuid)
    op = GradientCancelIndexingJobOperator(task_id="c", indexing_job_uuid=job, knowledge_base_name="docs")
    op.execute(make_context())
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert emu.count(*LIST) == 0


def test_sensor_by_name_looks_it_up_once_across_pokes(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    kb = emu.create_knowledge_base(name="docs")
    emu.script_jobs(kb.uuid, "COMPLETED", duration=20, pending=1)
    emu.start_job_server_side(kb.uuid)
    sensor = GradientIndexingJobSensor(task_id="s", knowledge_base_name="docs", poke_interval=1)
    context = make_context()
    assert sensor.poke(context).is_done is False
    assert sensor.poke(context).is_done is False
    emu.clock.advance(120)
    result = sensor.poke(context)
    assert result.is_done is True
    assert result.xcom_value["knowledge_base_uuid"] == kb.uuid
    assert emu.count(*LIST) == 1


def test_sensor_name_with_no_match_fails(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    emu.create_knowledge_base(name="docs")
    sensor = GradientIndexingJobSensor(task_id="s", knowledge_base_name="Docs", poke_interval=1)
    with pytest.raises(GradientConfigError, match="Did you mean 'docs'"):
        sensor.poke(make_context())


async def test_event_trigger_by_name_looks_it_up_in_the_triggerer(emu: GradientEmulator, conn: str) -> None:
    kb = emu.create_knowledge_base(name="docs")
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_name="docs", poll_interval=0.05)
    _, kwargs = trigger.serialize()
    assert kwargs["knowledge_base_uuids"] == []
    assert kwargs["knowledge_base_name"] == "docs"
    events: list[dict[str, Any]] = []

    async def watch() -> None:
        async for event in trigger.run():
            events.append(dict(event.payload))

    task = asyncio.create_task(watch())
    try:
        jobs_listed = ("GET", "genai_list_indexing_jobs_by_knowledge_base")
        await _until(lambda: emu.count(*jobs_listed) >= 2)
        emu.script_jobs(kb.uuid, "COMPLETED", duration=20, pending=1)
        job = emu.start_job_server_side(kb.uuid)
        emu.clock.advance(120)
        await _until(lambda: len(events) >= 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.cleanup()
    assert [event["indexing_job_uuid"] for event in events] == [job]
    assert events[0]["knowledge_base_uuid"] == kb.uuid
    assert emu.count(*LIST) == 1
    assert trigger.serialize()[1] == kwargs  # the lookup does not change the trigger's identity


async def test_event_trigger_keeps_looking_while_the_name_matches_nothing(emu: GradientEmulator, conn: str) -> None:
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_name="docs", poll_interval=0.05)
    assert [event async for event in trigger.poll()] == []
    assert emu.count(*LIST) == 1
    kb = emu.create_knowledge_base(name="docs")
    assert [event async for event in trigger.poll()] == []
    await trigger.cleanup()
    assert emu.count(*LIST) == 2
    assert emu.count("GET", "genai_list_indexing_jobs_by_knowledge_base") == 1
    assert trigger._named == [kb.uuid]


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not predicate():
        assert loop.time() < give_up, "condition not reached in time"
        await asyncio.sleep(0.02)
