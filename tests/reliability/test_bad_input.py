"""
Bad input gets a clear error, and nothing is sent.

Every case raises an error naming the parameter and saying what to do, at construction or before
the first request, while every connection involved points at the emulator: its request log proves
that nothing went out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from reliability_support import context, env_name
from task_support import first_event

from airflow_provider_gradient.exceptions import GradientError
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

pytestmark = pytest.mark.integration

U1 = "123e4567-e89b-12d3-a456-426614174000"


def start(kb: str, **kwargs: Any) -> Any:
    """Construct the start operator, then (if construction passed) run it."""
    op = GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=kb, deferrable=False, **kwargs)
    return op.execute(context())


def start_rendered(kb: str, **params: Any) -> Any:
    """A templated start operator: the values are checked after rendering, before any request."""
    op = GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid="{{ params.kb }}",
        data_source_uuids="{{ params.ds }}",
        deferrable=False,
    )
    ctx = context(params={"kb": kb, **params})
    op.render_template_fields(ctx)
    return op.execute(ctx)


def cancel(**kwargs: Any) -> Any:
    return GradientCancelIndexingJobOperator(task_id="cancel", **kwargs).execute(context())


def sense(**kwargs: Any) -> Any:
    kwargs.setdefault("timeout", 5)
    return GradientIndexingJobSensor(task_id="sense", mode="poke", deferrable=False, **kwargs).execute(context())


def trigger_event(**kwargs: Any) -> Any:
    """Build a trigger and run it to its event; an ``error`` event is raised as the error it carries."""
    kwargs.setdefault("poll_interval", 0.2)
    event = asyncio.run(first_event(GradientIndexingJobTrigger(**kwargs)))
    if event["status"] == "error":
        raise GradientError(event["message"])
    return event


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> str:
    monkeypatch.setenv(env_name(conn_id), json.dumps(fields))
    return conn_id


Case = Callable[[GradientEmulator, str, pytest.MonkeyPatch], Any]

#: id -> (what to do, the words the error must contain: the parameter, then the fix).
CASES: dict[str, tuple[Case, tuple[str, ...]]] = {
    # -- uuids
    "kb-not-a-uuid": (lambda emu, kb, mp: start("my-docs"), ("knowledge_base_uuid", "UUID such as")),
    "kb-missing": (
        lambda emu, kb, mp: start(None),
        ("needs knowledge_base_uuid or knowledge_base_name", "name in the"),
    ),
    "kb-uuid-and-name": (
        lambda emu, kb, mp: start(kb, knowledge_base_name="docs"),
        ("knowledge_base_uuid or knowledge_base_name, not both", "Keep one"),
    ),
    "kb-name-empty": (lambda emu, kb, mp: start(None, knowledge_base_name=" "), ("knowledge_base_name", "console")),
    "kb-empty": (lambda emu, kb, mp: start(""), ("knowledge_base_uuid is required", "uuid of the knowledge base")),
    "ds-not-a-uuid": (
        lambda emu, kb, mp: start(kb, data_source_uuids=[U1, "x"]),
        ("data_source_uuids[1]", "UUID such"),
    ),
    "ds-a-string": (lambda emu, kb, mp: start(kb, data_source_uuids=U1), ("data_source_uuids", "Wrap a single uuid")),
    "ds-empty-list": (lambda emu, kb, mp: start(kb, data_source_uuids=[]), ("data_source_uuids", "Pass None")),
    "ds-rendered-string": (lambda emu, kb, mp: start_rendered(kb, ds=U1), ("data_source_uuids", "Wrap a single uuid")),
    "kb-rendered-bad": (lambda emu, kb, mp: start_rendered("docs", ds=None), ("knowledge_base_uuid", "UUID such as")),
    "cancel-not-a-uuid": (lambda emu, kb, mp: cancel(indexing_job_uuid="job-1"), ("indexing_job_uuid", "UUID such")),
    "cancel-nothing": (
        lambda emu, kb, mp: cancel(),
        ("indexing_job_uuid", "knowledge_base_uuid or knowledge_base_name"),
    ),
    "sensor-not-a-uuid": (lambda emu, kb, mp: sense(indexing_job_uuid="job-1"), ("indexing_job_uuid", "UUID such")),
    "sensor-both": (
        lambda emu, kb, mp: sense(indexing_job_uuid=U1, knowledge_base_uuid=kb),
        ("exactly one of indexing_job_uuid", "knowledge_base_uuid"),
    ),
    "hook-start-not-a-uuid": (lambda emu, kb, mp: GradientHook().start_indexing_job("docs"), ("knowledge_base_uuid",)),
    "hook-start-ds-string": (
        lambda emu, kb, mp: GradientHook().start_indexing_job(kb, U1),  # type: ignore[arg-type]
        ("data_source_uuids", "Wrap a single uuid"),
    ),
    "hook-cancel-empty": (lambda emu, kb, mp: GradientHook().cancel_indexing_job(""), ("indexing_job_uuid",)),
    "trigger-nothing": (lambda emu, kb, mp: trigger_event(), ("indexing_job_uuid or knowledge_base_uuid",)),
    # -- intervals and timeouts
    "poll-interval-zero": (lambda emu, kb, mp: start(kb, poll_interval=0), ("poll_interval", "greater than 0")),
    "poll-interval-negative": (lambda emu, kb, mp: start(kb, poll_interval=-30), ("poll_interval", "greater than 0")),
    "poll-interval-text": (lambda emu, kb, mp: start(kb, poll_interval="30"), ("poll_interval", "a number > 0")),
    "timeout-zero": (lambda emu, kb, mp: start(kb, timeout=0), ("timeout", "greater than 0")),
    "timeout-negative": (lambda emu, kb, mp: start(kb, timeout=-1), ("timeout", "greater than 0")),
    "db-timeout-negative": (
        lambda emu, kb, mp: start(kb, database_ready_timeout=-1),
        ("database_ready_timeout", "greater than 0"),
    ),
    "cancel-timeout-zero": (
        lambda emu, kb, mp: cancel(indexing_job_uuid=U1, cancellation_timeout=0),
        ("cancellation_timeout", "greater than 0"),
    ),
    "cancel-poll-negative": (
        lambda emu, kb, mp: cancel(indexing_job_uuid=U1, poll_interval=-5),
        ("poll_interval", "greater than 0"),
    ),
    "poke-interval-zero": (
        lambda emu, kb, mp: sense(indexing_job_uuid=U1, poke_interval=0),
        ("poke_interval", "greater than 0"),
    ),
    "trigger-poll-zero": (
        lambda emu, kb, mp: trigger_event(indexing_job_uuid=U1, poll_interval=0),
        ("poll_interval", "greater than 0"),
    ),
    "trigger-tolerance-negative": (
        lambda emu, kb, mp: trigger_event(indexing_job_uuid=U1, error_tolerance=-1),
        ("error_tolerance", "greater than 0"),
    ),
    # -- policies
    "if-job-running-unknown": (
        lambda emu, kb, mp: start(kb, if_job_running="sometimes"),
        ("if_job_running", "one of ('wait', 'adopt', 'fail')"),
    ),
    # -- connections
    "conn-missing": (
        lambda emu, kb, mp: start(kb, gradient_conn_id="no_such_conn"),
        ("no_such_conn", "AIRFLOW_CONN_NO_SUCH_CONN"),
    ),
    "conn-missing-trigger": (
        lambda emu, kb, mp: trigger_event(indexing_job_uuid=U1, gradient_conn_id="no_such_conn"),
        ("no_such_conn", "Create a connection of type 'gradient'"),
    ),
    "conn-wrong-type": (
        lambda emu, kb, mp: start(
            kb, gradient_conn_id=set_conn(mp, "http_conn", conn_type="http", host=emu.base_url, password=emu.token)
        ),
        ("http_conn", "Change its type to 'gradient'"),
    ),
    "conn-no-token": (
        lambda emu, kb, mp: start(
            kb, gradient_conn_id=set_conn(mp, "no_token", conn_type="gradient", host=emu.base_url)
        ),
        ("no_token", "password field"),
    ),
    "conn-timeout-negative": (
        lambda emu, kb, mp: start(
            kb,
            gradient_conn_id=set_conn(
                mp, "neg", conn_type="gradient", host=emu.base_url, password=emu.token, extra={"timeout": -1}
            ),
        ),
        ("'timeout'", "a number > 0"),
    ),
    "conn-insecure-flag-garbage": (
        lambda emu, kb, mp: start(
            kb,
            gradient_conn_id=set_conn(
                mp,
                "flag",
                conn_type="gradient",
                host=emu.base_url,
                password=emu.token,
                extra={"allow_insecure_http": "maybe"},
            ),
        ),
        ("allow_insecure_http", "true or false"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_any_request(
    case: str, emu: GradientEmulator, connect: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    connect()  # gradient_default points at the emulator: anything sent would be recorded
    kb = emu.create_knowledge_base().uuid
    action, words = CASES[case]
    with pytest.raises(GradientError) as info:
        action(emu, kb, monkeypatch)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert emu.count() == 0, [(r.method, r.path) for r in emu.requests]
    assert emu.jobs(kb) == []


def test_the_same_inputs_when_valid_do_reach_the_api(emu: GradientEmulator, connect: Callable[..., str]) -> None:
    """The harness can see a request: a valid start with the same set-up sends one."""
    connect()
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=0.2, pending=0.05)
    summary = start(kb.uuid, data_source_uuids=kb.data_source_uuids, poll_interval=0.2)
    assert summary["outcome"] == "succeeded"
    assert emu.count("POST", "genai_create_indexing_job") == 1
