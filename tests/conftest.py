"""
Shared, generic fixtures of the unit tests.

Names avoid the emulator plugin's fixtures (``gradient_emulator``, ``gradient_conn``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

# Airflow reads AIRFLOW_HOME (its config and the sqlite metadata DB of dag.test runs) once, when it
# is first imported: give the test session a private home before any test module imports airflow,
# so tests never touch ~/airflow or a developer's own deployment.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="gradient-tests-airflow-home-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

TEST_TOKEN = "dop_v1_test_token_never_logged"
TEST_BASE_URL = "https://api.example.test"


@dataclass(frozen=True)
class FakeConn:
    """What a test needs to know about the connection it configured."""

    conn_id: str
    base_url: str
    token: str


@pytest.fixture
def make_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeConn]:
    """
    Define a ``gradient`` connection through an ``AIRFLOW_CONN_*`` variable (JSON form).

    ``make_conn(conn_id="gradient_default", host=..., password=..., extra={...}, **fields)``.
    """

    def _make(
        conn_id: str = "gradient_default",
        *,
        host: str | None = TEST_BASE_URL,
        password: str | None = TEST_TOKEN,
        extra: dict[str, Any] | None = None,
        **fields: Any,
    ) -> FakeConn:
        conn: dict[str, Any] = {"conn_type": "gradient", **fields}
        if host is not None:
            conn["host"] = host
        if password is not None:
            conn["password"] = password
        if extra:
            conn["extra"] = extra
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return FakeConn(conn_id, host or "https://api.digitalocean.com", password or "")

    return _make


@pytest.fixture
def mock_conn(make_conn: Callable[..., FakeConn]) -> FakeConn:
    """The default ``gradient_default`` connection to ``https://api.example.test``."""
    return make_conn()


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """
    Make ``time.sleep`` (tenacity's sync waits, the start reconciliation) instant; return the
    list of the seconds that were asked for, so tests can check the waits.
    """
    from types import SimpleNamespace

    from airflow_provider_gradient.hooks import _budget

    slept: list[float] = []
    skipped = [0.0]  # seconds "slept": the request budget's clocks move on by as much

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        skipped[0] += max(0.0, seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    real_monotonic, real_time = time.monotonic, time.time
    clock = SimpleNamespace(
        monotonic=lambda: real_monotonic() + skipped[0], time=lambda: real_time() + skipped[0], sleep=sleep
    )
    monkeypatch.setattr(_budget, "time", clock)
    return slept


@pytest.fixture(autouse=True)
def _fresh_sync_budgets() -> Any:
    """Each test starts with no memory of another test's rate-limit headers (sync budgets are per process)."""
    from airflow_provider_gradient.hooks import _budget

    _budget.SYNC_BUDGETS.clear()
    yield
    _budget.SYNC_BUDGETS.clear()
