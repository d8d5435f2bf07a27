"""
Fixtures shared by the operator and sensor tests (imported by their conftests): the emulator
(unthrottled), a connection to it, and a minimal task context; and the helpers that run a trigger
to its first event and an operator's ``execute`` in a worker thread.

The context stands in for Airflow's own objects only (a task instance that records ``xcom_push``,
an in-memory ``task_state_store``); the real ones are exercised by ``tests/dag_runs``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_gradient.testing.emulator import GradientEmulator


class RecordingTI:
    """Records ``xcom_push`` calls (with what the emulator had seen at that moment)."""

    def __init__(self, emu: GradientEmulator | None = None, try_number: int = 1) -> None:
        self.emu = emu
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}
        self.pushes: list[tuple[str, Any, int]] = []

    def get_first_reschedule_date(self, context: Any) -> None:
        """Reschedule mode asks when the first poke was; the duration is not what is tested here."""
        return None

    def xcom_push(self, key: str, value: Any) -> None:
        polls = self.emu.count("GET", "genai_get_indexing_job") if self.emu else -1
        self.pushes.append((key, value, polls))
        self.xcom[key] = value


class MemoryStore:
    """The task state store's get/set/delete, in memory, with a history of writes."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.history: list[tuple[str, str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        assert value is not None
        self.history.append(("set", key, value))
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.history.append(("delete", key, None))
        self.data.pop(key, None)


@pytest.fixture
def emu(gradient_emulator: GradientEmulator) -> GradientEmulator:
    """The session emulator, reset, without rate limits (tests poll fast)."""
    gradient_emulator.set_rate_limits(None, None)
    return gradient_emulator


@pytest.fixture
def connect(emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``connect(conn_id, **extra)`` points a connection at the emulator."""

    def _connect(conn_id: str = "gradient_default", **extra: object) -> str:
        extra = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000, "max_retries": 1, **extra}
        value = json.dumps({"conn_type": "gradient", "host": emu.base_url, "password": emu.token, "extra": extra})
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return _connect


@pytest.fixture
def conn(connect: Callable[..., str]) -> str:
    return connect()


@pytest.fixture
def make_context(emu: GradientEmulator) -> Callable[..., dict[str, Any]]:
    """
    ``make_context(state=None, try_number=1, store=True)``: a context with a recording ``ti`` and
    (unless ``store=False``) a :class:`MemoryStore` holding ``state``.
    """

    def _make(
        state: dict[str, Any] | None = None, try_number: int = 1, *, store: bool = True, **extra: Any
    ) -> dict[str, Any]:
        context: dict[str, Any] = {"ti": RecordingTI(emu, try_number), **extra}
        if store:
            context["task_state_store"] = MemoryStore(state)
        return context

    return _make


def logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Everything logged: Airflow's loggers may go through structlog to stdout or stderr instead of caplog."""
    return caplog.text + "".join(capfd.readouterr())


async def sweeps_made(count: int) -> None:
    """Wait until the job watcher of this loop has made ``count`` more sweeps."""
    from airflow_provider_gradient.hooks import _watcher

    (watcher,) = _watcher.WATCHERS[asyncio.get_running_loop()].values()
    until = watcher.sweeps + count
    while watcher.sweeps < until:  # noqa: ASYNC110 - the watcher has no event per sweep to wait on
        await asyncio.sleep(0.05)


async def first_event(trigger: Any) -> dict[str, Any]:
    """Run ``trigger`` until its first event and return the event's payload (the trigger cleaned up)."""
    try:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")
    finally:
        await trigger.cleanup()


class ExecuteInThread:
    """
    Runs ``op.execute(context)`` in a daemon worker thread, started at once, so that the test can act
    meanwhile (``op.on_kill()``); keeps the error ``execute`` raised.
    """

    def __init__(self, op: Any, context: dict[str, Any]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(op, context), daemon=True)
        self._thread.start()

    def _run(self, op: Any, context: dict[str, Any]) -> None:
        try:
            op.execute(context)
        except BaseException as err:
            self.error = err

    def join(self, timeout: float) -> BaseException | None:
        """Wait up to ``timeout`` seconds for ``execute`` to end; the error it raised, if any (so far)."""
        self._thread.join(timeout)
        return self.error
