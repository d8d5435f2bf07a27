"""Pytest plugin (entry point ``gradient_emulator``): fixtures running the Gradient API emulator.

Fixtures:

``gradient_emulator``
    a :class:`~airflow_provider_gradient.testing.emulator.GradientEmulator` in a clean state. One
    server runs per test session; it is reset (KBs, jobs, faults, request log, extra tokens, rate
    limit counts, clock) before every test, and this process's sync request budgets with it.
``gradient_list_order``
    the order ``gradient_emulator`` lists jobs in (``"newest"``; override it to run a test against
    another: ``@pytest.mark.parametrize("gradient_list_order", ["newest", "oldest", "none"])``).
``gradient_conn``
    sets ``AIRFLOW_CONN_GRADIENT_DEFAULT`` to point at ``gradient_emulator`` and returns the value.
``gradient_emulator_factory``
    a callable creating extra, independently configured emulators, stopped after the test.

The emulator is imported lazily so that merely having the plugin installed costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_gradient.testing.emulator import GradientEmulator

__all__ = [
    "gradient_conn",
    "gradient_emulator",
    "gradient_emulator_factory",
    "gradient_emulator_session",
    "gradient_list_order",
]


@pytest.fixture(scope="session")
def gradient_emulator_session() -> Iterator[GradientEmulator]:
    """The session-wide emulator behind ``gradient_emulator`` (not reset between tests)."""
    from airflow_provider_gradient.testing.emulator import GradientEmulator

    emulator = GradientEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gradient_list_order() -> str:
    """The job list's order for ``gradient_emulator``: ``"newest"``; parametrize it to change it."""
    return "newest"


@pytest.fixture
def gradient_emulator(gradient_emulator_session: GradientEmulator, gradient_list_order: str) -> GradientEmulator:
    """
    A running emulator in a fresh state (default token, seed 0, speed 1, 250/min, 5000/h, jobs
    listed in the order ``gradient_list_order`` says).
    """
    from airflow_provider_gradient.hooks._budget import SYNC_BUDGETS

    gradient_emulator_session.reset()
    gradient_emulator_session.set_list_order(gradient_list_order)  # type: ignore[arg-type]
    # The emulator forgot its rate-limit counts: this process's sync callers must forget what it said.
    SYNC_BUDGETS.clear()
    return gradient_emulator_session


@pytest.fixture
def gradient_conn(gradient_emulator: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``AIRFLOW_CONN_GRADIENT_DEFAULT`` at the emulator; returns the JSON value."""
    value = gradient_emulator.airflow_conn_json()
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", value)
    return value


@pytest.fixture
def gradient_emulator_factory() -> Iterator[Callable[..., GradientEmulator]]:
    """Create and start emulators with custom settings: ``factory(speed=600, seed=1)``."""
    from airflow_provider_gradient.testing.emulator import GradientEmulator

    started: list[GradientEmulator] = []

    def factory(**kwargs: Any) -> GradientEmulator:
        emulator = GradientEmulator(**kwargs).start()
        started.append(emulator)
        return emulator

    try:
        yield factory
    finally:
        for emulator in started:
            emulator.stop()
