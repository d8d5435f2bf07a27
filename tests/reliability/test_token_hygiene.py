"""
Token hygiene: after runs that fail in every way we can provoke, the token appears nowhere; and the
token is never sent over plain HTTP to a host that is not loopback unless explicitly allowed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import socket
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk.serde import serialize
from reliability_support import MemoryStore, context
from task_support import first_event

from airflow_provider_gradient.exceptions import GradientAuthError, GradientConfigError, GradientError
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

pytestmark = pytest.mark.integration

SECRET = "dop_v1_reliability_9f3c2b7e41d0a6c58e2f"
WRONG = "dop_v1_wrong_token_5be01c77aa93d2f4"
CANARY = "canary-0c1f6a2e"


def _scripted(emu: GradientEmulator, outcome: str = "COMPLETED", **script: Any) -> str:
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, outcome, **{"duration": 0.6, "pending": 0.1, **script})
    return kb.uuid


def test_token_appears_nowhere_after_failing_runs(
    emu: GradientEmulator,
    connect: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    emu.add_token(SECRET)
    connect(token=SECRET, max_retries=2)
    connect("wrong_token", token=WRONG, max_retries=0)
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    values: list[Any] = []
    xcoms: list[dict[str, Any]] = []
    trigger_kwargs: list[str] = []

    def run(action: Callable[[], Any]) -> None:
        try:
            values.append(action())
        except Exception as err:
            errors.append(err)

    # 1. A failing job, with 503s and resets on the way (sync wait).
    kb = _scripted(emu, "FAILED", error_msg="crawl_refused")
    emu.faults.add("genai_get_indexing_job", "status", status=503, times=2)
    emu.faults.add("genai_get_indexing_job", "reset", times=1, after=3)
    ctx = context(store=MemoryStore())
    op = GradientStartIndexingJobOperator(task_id="a", knowledge_base_uuid=kb, deferrable=False, poll_interval=0.2)
    run(lambda: op.execute(ctx))
    xcoms.append(ctx["ti"].xcom)
    emu.faults.clear()

    # 2. The maximum wait runs out: the job is cancelled.
    kb = _scripted(emu, duration=600)
    ctx = context(store=MemoryStore())
    op = GradientStartIndexingJobOperator(
        task_id="b", knowledge_base_uuid=kb, deferrable=False, poll_interval=0.2, timeout=1.0
    )
    run(lambda: op.execute(ctx))
    xcoms.append(ctx["ti"].xcom)

    # 3. Deferred: the trigger's kwargs (what the triggers table stores), a malformed answer and a
    #    partial job, then the event back in the operator.
    kb = _scripted(emu, "PARTIAL")
    ctx = context(store=MemoryStore())
    op = GradientStartIndexingJobOperator(
        task_id="c", knowledge_base_uuid=kb, deferrable=True, poll_interval=0.2, fail_on_partial=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    trigger = deferred.value.trigger
    assert isinstance(trigger, GradientIndexingJobTrigger)
    classpath, kwargs = trigger.serialize()
    trigger_kwargs.append(json.dumps([classpath, serialize(kwargs)], default=str))
    emu.faults.add("genai_get_indexing_job", "malformed_json", times=1)
    event = asyncio.run(first_event(trigger))
    values.append(event)
    run(lambda: op.execute_complete(ctx, event))
    xcoms.append(ctx["ti"].xcom)
    values += [repr(trigger), repr(op), repr(op.hook), repr(op.hook.settings)]

    # 4. A sensor on a job cancelled server-side; a cancel that hits the hourly limit.
    kb = _scripted(emu, duration=600)
    job = emu.start_job_server_side(kb)
    GradientHook().cancel_indexing_job(job)
    sensor = GradientIndexingJobSensor(task_id="d", indexing_job_uuid=job, mode="poke", poke_interval=0.2, timeout=5)
    run(lambda: sensor.execute(context()))
    kb = _scripted(emu, duration=600)
    job = emu.start_job_server_side(kb)
    emu.faults.add("genai_cancel_indexing_job", "status", status=429, times=None, headers={"ratelimit-remaining": "0"})
    run(lambda: GradientCancelIndexingJobOperator(task_id="e", indexing_job_uuid=job).execute(context()))
    emu.faults.clear()

    # 5. A rejected token (401) and an API error on the async path.
    run(lambda: GradientHook("wrong_token").get_indexing_job(job))
    event = asyncio.run(first_event(GradientIndexingJobTrigger(indexing_job_uuid=job, gradient_conn_id="wrong_token")))
    values.append(event)

    # What the emulator recorded, printed as a test would (its Authorization header is redacted).
    print(json.dumps([{"path": r.path, "headers": r.headers, "status": r.status} for r in emu.requests]))
    logging.getLogger("airflow.task").info("%s", CANARY)  # the capture itself works

    kinds = {type(err).__name__ for err in errors}
    assert {"GradientJobError", "GradientJobTimeoutError", "GradientJobCancelledError"} <= kinds, kinds
    assert {"GradientRateLimitError", "GradientAuthError"} <= kinds, kinds
    assert event["status"] == "error"
    assert "401" in event["message"]
    assert any(isinstance(err, GradientAuthError) for err in errors)
    assert emu.count(status=401) >= 2
    assert emu.count(status=503) >= 1

    out, err = capfd.readouterr()
    logs = caplog.text + "\n".join(record.getMessage() for record in caplog.records) + out + err
    assert CANARY in logs
    assert "Bearer ***" in out  # the recorded headers were printed
    blobs = {
        "logs": logs,
        "xcom": json.dumps(xcoms, default=str),
        "trigger kwargs": "\n".join(trigger_kwargs),
        "values": json.dumps(values, default=str),
        "exceptions": "\n".join(f"{err!s}\n{err!r}\n{err.args!r}" for err in errors),
        "pickles": "\n".join(pickle.dumps(err).decode("latin-1") for err in errors),
        "recorded headers": json.dumps([r.headers for r in emu.requests]),
    }
    for token in (SECRET, WRONG):
        leaks = [name for name, blob in blobs.items() if token in blob]
        assert leaks == [], f"token found in {leaks}"


def _non_loopback_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))  # no packet is sent for a UDP connect
        address: str = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_plain_http_to_a_non_loopback_host_sends_nothing(
    gradient_emulator_factory: Callable[..., GradientEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    emu = gradient_emulator_factory(host="0.0.0.0", rate_limit_per_minute=None, rate_limit_per_hour=None)  # noqa: S104
    emu.add_token(SECRET)
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=0.2, pending=0.05)
    url = f"http://{address}:{emu.port}"

    def conn(**extra: Any) -> None:
        value = {"conn_type": "gradient", "host": url, "password": SECRET, "extra": {"max_retries": 0, **extra}}
        monkeypatch.setenv("AIRFLOW_CONN_PLAIN", json.dumps(value))

    def start() -> Any:
        return GradientStartIndexingJobOperator(
            task_id="plain", knowledge_base_uuid=kb.uuid, gradient_conn_id="plain", deferrable=False, poll_interval=0.2
        ).execute(context())

    conn()
    with pytest.raises(GradientConfigError, match="refusing to send the API token over plain http://") as info:
        start()
    assert "allow_insecure_http" in str(info.value)
    assert SECRET not in str(info.value)
    trigger = GradientIndexingJobTrigger(indexing_job_uuid=kb.uuid, gradient_conn_id="plain", poll_interval=0.2)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "error"
    assert "plain http://" in event["message"]
    assert emu.count() == 0  # nothing reached the listener on that address

    # The listener is reachable: with the explicit opt-in the very same task gets through.
    conn(allow_insecure_http=True)
    assert start()["outcome"] == "succeeded"
    assert emu.count("POST", "genai_create_indexing_job") == 1
    with pytest.raises(GradientError):
        GradientHook("plain").get_indexing_job("not-a-uuid")
