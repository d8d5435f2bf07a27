"""Fixtures of the trigger tests: the emulator, unthrottled, and a connection to it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from task_support import emu

from airflow_provider_gradient.testing.emulator import GradientEmulator


@pytest.fixture
def connect(emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``connect(**extra)`` points ``gradient_default`` at the emulator with these extras."""

    def _connect(conn_id: str = "gradient_default", **extra: object) -> str:
        extra = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000, **extra}
        value = json.dumps({"conn_type": "gradient", "host": emu.base_url, "password": emu.token, "extra": extra})
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return _connect


__all__ = ["conn", "connect", "emu"]


@pytest.fixture
def conn(connect: Callable[..., str]) -> str:
    """The default connection: no HTTP-level retries, so the trigger's own loop is what is tested."""
    return connect(max_retries=0)
