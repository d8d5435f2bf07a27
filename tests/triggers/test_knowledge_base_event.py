"""GradientKnowledgeBaseEventTrigger against the emulator over real sockets (plus serialization)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS
from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger
from pydantic import JsonValue
from task_support import logged

from airflow_provider_gradient.exceptions import GradientConfigError
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.knowledge_base_event import (
    SEEN_LIMIT,
    STATE_KEY_PREFIX,
    GradientKnowledgeBaseEventTrigger,
)

try:  # newer Airflow (not in 3.0)
    from airflow.sdk.serde import deserialize, serialize
except ImportError:  # Airflow 3.0
    from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]

LIST_OP = "genai_list_indexing_jobs_by_knowledge_base"
KB_A = "123e4567-e89b-12d3-a456-426614174000"
KB_B = "223e4567-e89b-12d3-a456-426614174000"
FAST = {"poll_interval": 0.05}


class InMemoryAssetStateStore:
    """
    Stand-in for Airflow's ``AssetStateStoreAccessors`` (``trigger.asset_state_store``, 3.3+):
    the same ``aget(key, default)`` / ``aset(key, value)`` interface, values JSON round-tripped as
    the metadata DB would store them.
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, str] = {key: json.dumps(value) for key, value in (data or {}).items()}
        self.writes = 0

    async def aget(self, key: str, default: JsonValue = None) -> JsonValue:
        return json.loads(self.data[key]) if key in self.data else default

    async def aset(self, key: str, value: JsonValue) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.data[key] = json.dumps(value)
        self.writes += 1

    def value(self, kb_uuid: str) -> Any:
        return json.loads(self.data[STATE_KEY_PREFIX + kb_uuid])


class BrokenStore:
    """What a trigger watched by several assets gets: accessors that refuse unscoped use."""

    async def aget(self, key: str, default: JsonValue = None) -> JsonValue:
        raise ValueError("Task has 2 concrete inlets and outlets")

    async def aset(self, key: str, value: JsonValue) -> None:
        raise AssertionError("must not be called after aget failed")


class Watch:
    """Run a trigger in the background and collect its event payloads."""

    def __init__(self, trigger: GradientKnowledgeBaseEventTrigger, emu: GradientEmulator) -> None:
        self.trigger = trigger
        self.emu = emu
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        async for event in self.trigger.run():
            self.events.append(dict(event.payload))

    async def stop(self) -> None:
        """What the triggerer does on shutdown: cancel the task, then ``cleanup()``."""
        if self._task is not None:
            self._task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self._task
            self._task = None
            await self.trigger.cleanup()

    async def polls(self, count: int = 2, timeout: float = 10.0) -> None:
        """Wait until ``count`` more list requests were made (so the earlier ones were handled)."""
        self._check()
        target = self.emu.count(operation=LIST_OP) + count
        await wait_until(lambda: self.emu.count(operation=LIST_OP) >= target or self._failed(), timeout)
        self._check()

    async def events_at_least(self, count: int, timeout: float = 10.0) -> None:
        await wait_until(lambda: len(self.events) >= count or self._failed(), timeout)
        self._check()

    def _failed(self) -> bool:
        return self._task is not None and self._task.done()

    def _check(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # raises what killed the trigger
            raise AssertionError("the trigger's run() ended; an event trigger must run forever")


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def watch_emu(gradient_emulator: GradientEmulator) -> GradientEmulator:
    """The session emulator, reset and without rate limits (the tests poll fast)."""
    gradient_emulator.set_rate_limits(None, None)
    return gradient_emulator


@pytest.fixture
def watch_conn(watch_emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``gradient_default`` → the emulator, no HTTP-level retries (the trigger's loop is tested)."""
    extra = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000, "max_retries": 0}
    value = {"conn_type": "gradient", "host": watch_emu.base_url, "password": watch_emu.token, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps(value))
    return "gradient_default"


def run_job(emu: GradientEmulator, kb_uuid: str, outcome: str = "COMPLETED") -> str:
    """Start a job server-side (as the console or auto-indexing would) and let it end."""
    emu.script_jobs(kb_uuid, outcome, duration=20, pending=1)
    job = emu.start_job_server_side(kb_uuid)
    emu.clock.advance(120)
    assert emu.job(job)["phase"] != "BATCH_JOB_PHASE_RUNNING"
    return job


def start_job(emu: GradientEmulator, kb_uuid: str, outcome: str = "COMPLETED") -> str:
    """Start a job server-side that runs until the clock is advanced by 120 s."""
    emu.script_jobs(kb_uuid, outcome, duration=20, pending=1)
    return emu.start_job_server_side(kb_uuid)


def recreate(trigger: GradientKnowledgeBaseEventTrigger) -> GradientKnowledgeBaseEventTrigger:
    """What the triggerer does after a restart: rebuild the trigger from its stored kwargs."""
    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(serialize(kwargs)))
    again = import_string(classpath)(**deserialize(stored))
    assert isinstance(again, GradientKnowledgeBaseEventTrigger)
    return again


# -------------------------------------------------------------------------------------------
# Construction and serialization
# -------------------------------------------------------------------------------------------


def test_is_an_event_trigger_usable_in_an_asset_watcher() -> None:
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB_A)
    assert isinstance(trigger, BaseEventTrigger)
    asset = Asset(name="kb", uri="gradient://kb", watchers=[AssetWatcher(name="kb_watch", trigger=trigger)])
    assert asset.watchers[0].trigger is trigger


def test_serialize_is_json_primitives_without_secret(watch_emu: GradientEmulator, watch_conn: str) -> None:
    trigger = GradientKnowledgeBaseEventTrigger(
        knowledge_base_uuid=KB_A, knowledge_base_uuids=[KB_B, KB_A], poll_interval=90, only_changed=True
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_gradient.triggers.knowledge_base_event.GradientKnowledgeBaseEventTrigger"
    assert kwargs == {
        "knowledge_base_uuids": [KB_A, KB_B],
        "gradient_conn_id": "gradient_default",
        "poll_interval": 90.0,
        "only_successful": False,
        "only_changed": True,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    text = json.dumps(kwargs) + repr(trigger)
    assert watch_emu.token not in text
    assert "password" not in text


def test_serde_round_trip_recreates_an_equal_trigger() -> None:
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuids=[KB_A, KB_B], only_successful=True)
    again = recreate(trigger)
    assert again.serialize() == trigger.serialize()


def test_hash_is_stable_and_tells_configurations_apart() -> None:
    """``BaseEventTrigger.hash`` identifies a watcher's trigger across DAG parses."""

    def key(trigger: GradientKnowledgeBaseEventTrigger) -> int:
        return BaseEventTrigger.hash(*trigger.serialize())

    one = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB_A)
    assert key(one) == key(GradientKnowledgeBaseEventTrigger(knowledge_base_uuids=[KB_A]))
    assert key(one) == key(recreate(one))
    assert key(one) != key(GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB_B))
    assert key(one) != key(GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB_A, only_changed=True))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "knowledge_base_uuid, knowledge_base_uuids or knowledge_base_name"),
        ({"knowledge_base_uuids": []}, "knowledge_base_uuid, knowledge_base_uuids or knowledge_base_name"),
        ({"knowledge_base_uuid": "not-a-uuid"}, "knowledge_base_uuids"),
        ({"knowledge_base_uuids": KB_A}, "list of uuids"),
        ({"knowledge_base_uuid": KB_A, "poll_interval": 0}, "poll_interval"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(GradientConfigError, match=match):
        GradientKnowledgeBaseEventTrigger(**kwargs)


# -------------------------------------------------------------------------------------------
# Events against the emulator
# -------------------------------------------------------------------------------------------


async def test_a_job_started_outside_airflow_produces_exactly_one_event(
    watch_emu: GradientEmulator, watch_conn: str
) -> None:
    kb = watch_emu.create_knowledge_base(data_sources=2)
    store = InMemoryAssetStateStore()
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    trigger.asset_state_store = store  # type: ignore[assignment]
    async with Watch(trigger, watch_emu) as watch:
        await watch.polls(2)
        job = start_job(watch_emu, kb.uuid)
        await watch.polls(3)
        assert watch.events == [], "a running job is not news"
        watch_emu.clock.advance(120)
        await watch.events_at_least(1)
        await watch.polls(5)

    assert len(watch.events) == 1
    event = watch.events[0]
    expected = watch_emu.job(job)
    assert event["indexing_job_uuid"] == job
    assert event["knowledge_base_uuid"] == kb.uuid
    assert event["phase"] == expected["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"
    assert event["status"] == expected["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert event["outcome"] == "succeeded"
    assert event["is_success"] is True
    assert event["tokens"] == event["total_tokens"] == int(expected["total_tokens"]) > 0
    assert event["finished_at"] is not None
    assert event["finished_at"][:19] == expected["finished_at"][:19]
    assert event["data_source_uuids"] == kb.data_source_uuids
    assert json.loads(json.dumps(event)) == event
    assert store.value(kb.uuid)["seen"] == [job]
    assert store.value(kb.uuid)["last_job_uuid"] == job


async def test_scheduled_auto_indexing_is_reported(watch_emu: GradientEmulator, watch_conn: str) -> None:
    """DigitalOcean's own scheduled indexing starts the job: the watcher still sees it end."""
    kb = watch_emu.create_knowledge_base()
    watch_emu.script_jobs(kb.uuid, "NO_CHANGES", duration=20, pending=1)
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    async with Watch(trigger, watch_emu) as watch:
        await watch.polls(2)
        info = watch_emu.set_schedule(kb.uuid, time="00:00")
        due = time.mktime(time.strptime(info["next_run_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        watch_emu.clock.advance(max(0.0, due - watch_emu.clock.now()) + 120)
        await watch.events_at_least(1)
        watch_emu.clear_schedule(kb.uuid)
        await watch.polls(3)
    assert [event["outcome"] for event in watch.events] == ["no_changes"]
    assert [job["uuid"] for job in watch_emu.jobs(kb.uuid)] == [watch.events[0]["indexing_job_uuid"]]


async def test_jobs_that_ended_before_the_first_start_are_not_reported(
    watch_emu: GradientEmulator, watch_conn: str
) -> None:
    kb = watch_emu.create_knowledge_base()
    old = [run_job(watch_emu, kb.uuid), run_job(watch_emu, kb.uuid, "FAILED")]
    running = start_job(watch_emu, kb.uuid)
    store = InMemoryAssetStateStore()
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    trigger.asset_state_store = store  # type: ignore[assignment]
    async with Watch(trigger, watch_emu) as watch:
        await watch.polls(3)
        assert watch.events == []
        assert sorted(store.value(kb.uuid)["seen"]) == sorted(old)
        watch_emu.clock.advance(120)  # the job that was running when the watch began ends: news
        await watch.events_at_least(1)
        await watch.polls(3)
    assert [event["indexing_job_uuid"] for event in watch.events] == [running]


async def test_restart_with_stored_state_repeats_nothing_and_misses_nothing(
    watch_emu: GradientEmulator, watch_conn: str
) -> None:
    kb = watch_emu.create_knowledge_base()
    store = InMemoryAssetStateStore()
    first = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    first.asset_state_store = store  # type: ignore[assignment]
    async with Watch(first, watch_emu) as watch:
        await watch.polls(2)
        job_a = run_job(watch_emu, kb.uuid)
        await watch.events_at_least(1)
        await watch.polls(2)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job_a]

    # The triggerer is down: one job ends unseen, another starts.
    job_b = run_job(watch_emu, kb.uuid, "PARTIAL")
    job_c = start_job(watch_emu, kb.uuid)

    second = recreate(first)
    second.asset_state_store = store  # type: ignore[assignment]  # the triggerer injects it again
    async with Watch(second, watch_emu) as watch:
        await watch.events_at_least(1)
        await watch.polls(3)
        assert [event["indexing_job_uuid"] for event in watch.events] == [job_b]
        watch_emu.clock.advance(120)
        await watch.events_at_least(2)
        await watch.polls(3)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job_b, job_c]
    assert watch.events[0]["outcome"] == "partial"
    assert store.value(kb.uuid)["seen"] == [job_a, job_b, job_c]

    # A third incarnation has nothing to say until a new job ends.
    third = recreate(second)
    third.asset_state_store = store  # type: ignore[assignment]
    async with Watch(third, watch_emu) as watch:
        await watch.polls(4)
    assert watch.events == []


async def test_restart_without_a_state_store_skips_jobs_that_ended_while_down(
    watch_emu: GradientEmulator, watch_conn: str
) -> None:
    """Airflow < 3.3 (no asset state store): documented behaviour, no repeats, a gap while down."""
    kb = watch_emu.create_knowledge_base()
    first = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    async with Watch(first, watch_emu) as watch:
        await watch.polls(2)
        job_a = run_job(watch_emu, kb.uuid)
        await watch.events_at_least(1)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job_a]

    run_job(watch_emu, kb.uuid)  # ends while no trigger runs: not reported without a store
    job_c = start_job(watch_emu, kb.uuid)
    second = recreate(first)
    async with Watch(second, watch_emu) as watch:
        await watch.polls(3)
        watch_emu.clock.advance(120)
        await watch.events_at_least(1)
        await watch.polls(3)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job_c]


async def test_an_unusable_state_store_falls_back_to_memory(
    watch_emu: GradientEmulator,
    watch_conn: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    kb = watch_emu.create_knowledge_base()
    run_job(watch_emu, kb.uuid)
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    trigger.asset_state_store = BrokenStore()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING):
        async with Watch(trigger, watch_emu) as watch:
            await watch.polls(2)
            job = run_job(watch_emu, kb.uuid)
            await watch.events_at_least(1)
            await watch.polls(2)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job]
    assert "Cannot use the asset state store" in logged(caplog, capfd)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["succeeded", "no_changes", "failed", "partial", "cancelled"]),
        ({"only_successful": True}, ["succeeded", "no_changes", "partial"]),
        ({"only_changed": True}, ["succeeded", "failed", "partial", "cancelled"]),
        ({"only_successful": True, "only_changed": True}, ["succeeded", "partial"]),
    ],
)
async def test_filters(
    watch_emu: GradientEmulator, watch_conn: str, filters: dict[str, bool], expected: list[str]
) -> None:
    kb = watch_emu.create_knowledge_base()
    store = InMemoryAssetStateStore({STATE_KEY_PREFIX + kb.uuid: {"version": 1, "seen": []}})
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST, **filters)
    trigger.asset_state_store = store  # type: ignore[assignment]
    async with Watch(trigger, watch_emu) as watch:
        await watch.polls(2)
        jobs = [run_job(watch_emu, kb.uuid, outcome) for outcome in ("COMPLETED", "NO_CHANGES", "FAILED", "PARTIAL")]
        await watch.events_at_least(len(expected) - 1)
        cancelled = start_job(watch_emu, kb.uuid)
        watch_emu.clock.advance(5)
        hook = GradientHook()
        try:
            await hook.acancel_indexing_job(cancelled)
        finally:
            await hook.aclose()
        jobs.append(cancelled)
        await watch.polls(4)
    assert [event["outcome"] for event in watch.events] == expected
    by_outcome = dict(zip(["succeeded", "no_changes", "failed", "partial", "cancelled"], jobs, strict=True))
    assert [event["indexing_job_uuid"] for event in watch.events] == [by_outcome[name] for name in expected]
    # Filtered-out jobs count as handled too: a restart does not bring them back.
    assert sorted(store.value(kb.uuid)["seen"]) == sorted(jobs)


async def test_catches_up_oldest_first_from_a_stored_watermark(watch_emu: GradientEmulator, watch_conn: str) -> None:
    kb = watch_emu.create_knowledge_base()
    jobs = [run_job(watch_emu, kb.uuid) for _ in range(3)]
    store = InMemoryAssetStateStore({STATE_KEY_PREFIX + kb.uuid: {"version": 1, "seen": [jobs[0]]}})
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    trigger.asset_state_store = store  # type: ignore[assignment]
    async with Watch(trigger, watch_emu) as watch:
        await watch.events_at_least(2)
        await watch.polls(3)
    assert [event["indexing_job_uuid"] for event in watch.events] == jobs[1:]


async def test_watches_several_knowledge_bases(watch_emu: GradientEmulator, watch_conn: str) -> None:
    one, two = watch_emu.create_knowledge_base("one"), watch_emu.create_knowledge_base("two")
    store = InMemoryAssetStateStore()
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuids=[one.uuid, two.uuid], **FAST)
    trigger.asset_state_store = store  # type: ignore[assignment]
    async with Watch(trigger, watch_emu) as watch:
        await watch.polls(3)
        job_two = run_job(watch_emu, two.uuid)
        await watch.events_at_least(1)
        job_one = run_job(watch_emu, one.uuid, "FAILED")
        await watch.events_at_least(2)
        await watch.polls(4)
    assert [(event["knowledge_base_uuid"], event["indexing_job_uuid"]) for event in watch.events] == [
        (two.uuid, job_two),
        (one.uuid, job_one),
    ]
    assert store.value(one.uuid)["seen"] == [job_one]
    assert store.value(two.uuid)["seen"] == [job_two]


async def test_transient_errors_are_retried_in_place(
    watch_emu: GradientEmulator,
    watch_conn: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    kb = watch_emu.create_knowledge_base()
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    with caplog.at_level(logging.WARNING):
        async with Watch(trigger, watch_emu) as watch:
            await watch.polls(2)
            watch_emu.faults.add(operation=LIST_OP, kind="status", status=503, times=3)
            job = run_job(watch_emu, kb.uuid)
            await watch.events_at_least(1, timeout=15)
            await watch.polls(2)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job]
    assert watch_emu.count(operation=LIST_OP, status=503) == 3
    text = logged(caplog, capfd)
    assert "failed (" in text
    assert "retrying" in text
    assert watch_emu.token not in text


async def test_a_non_transient_error_does_not_end_the_watch(
    watch_emu: GradientEmulator,
    watch_conn: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A 401/404 is logged and retried slowly: an asset watcher must never end by itself."""
    kb = watch_emu.create_knowledge_base()
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=kb.uuid, **FAST)
    with caplog.at_level(logging.ERROR):
        async with Watch(trigger, watch_emu) as watch:
            await watch.polls(2)
            watch_emu.faults.add(operation=LIST_OP, kind="status", status=401, times=1)
            job = run_job(watch_emu, kb.uuid)
            await watch.events_at_least(1, timeout=15)
    assert [event["indexing_job_uuid"] for event in watch.events] == [job]
    assert watch_emu.count(operation=LIST_OP, status=401) == 1
    text = logged(caplog, capfd)
    assert "Retrying later" in text
    assert watch_emu.token not in text


def test_seen_memory_is_bounded() -> None:
    trigger = GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB_A)
    trigger._remember(KB_A, (f"job-{index}" for index in range(SEEN_LIMIT + 10)))
    assert len(trigger._seen[KB_A]) == SEEN_LIMIT
    assert trigger._seen[KB_A][-1] == f"job-{SEEN_LIMIT + 9}"
    assert SEEN_LIMIT > 15  # the API lists a knowledge base's latest 15 jobs


@pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS,
    reason="the asset state store (AssetStateStoreAccessors, trigger.asset_state_store) is new in Airflow 3.3",
)
def test_the_stand_in_store_has_airflows_interface() -> None:
    """The tests' store mirrors ``AssetStateStoreAccessors`` (what the 3.3 triggerer injects)."""
    import inspect

    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    for name in ("aget", "aset"):
        real = inspect.signature(getattr(AssetStateStoreAccessors, name))
        ours = inspect.signature(getattr(InMemoryAssetStateStore, name))
        assert list(real.parameters) == list(ours.parameters), name
        assert inspect.iscoroutinefunction(getattr(AssetStateStoreAccessors, name))
    assert "asset_state_store" in vars(GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB_A))
