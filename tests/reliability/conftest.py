"""
Fixtures of the reliability suite: the session emulator without rate limits, a connection to it,
and the fault matrix's results (every cell run once per session, in parallel).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from reliability_support import UNPACED, env_name

from airflow_provider_gradient.testing.emulator import GradientEmulator


@pytest.fixture
def emu(gradient_emulator: GradientEmulator) -> GradientEmulator:
    """The session emulator, reset, without rate limits (tests poll fast)."""
    gradient_emulator.set_rate_limits(None, None)
    return gradient_emulator


@pytest.fixture
def connect(emu: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``connect(conn_id="gradient_default", token=None, **extra)`` points a connection at the emulator."""

    def _connect(conn_id: str = "gradient_default", token: str | None = None, **extra: Any) -> str:
        value = json.dumps(
            {
                "conn_type": "gradient",
                "host": emu.base_url,
                "password": token or emu.token,
                "extra": {**UNPACED, **extra},
            }
        )
        monkeypatch.setenv(env_name(conn_id), value)
        return conn_id

    return _connect


@pytest.fixture(scope="session")
def matrix_runs() -> dict[tuple[str, str], Any]:
    """Every fault-matrix cell, run once (in parallel threads, one emulator each)."""
    from reliability_catalogue import cells
    from reliability_cells import run_cells

    return run_cells((fault, step) for fault, step, _ in cells())
