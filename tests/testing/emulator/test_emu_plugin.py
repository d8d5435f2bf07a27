"""The pytest plugin fixtures and the connection helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
import requests

from airflow_provider_gradient.hooks import _budget
from airflow_provider_gradient.testing.emulator import GradientEmulator


def test_fixture_gives_a_clean_running_emulator(gradient_emulator: GradientEmulator) -> None:
    assert gradient_emulator.running
    assert gradient_emulator.jobs() == []
    assert gradient_emulator.requests == []
    assert gradient_emulator.clock.speed == 1.0
    # leave some state behind for the next test to not see
    kb = gradient_emulator.create_knowledge_base("left-over")
    gradient_emulator.start_job_server_side(kb.uuid)
    gradient_emulator.faults.add(kind="status", times=None)
    gradient_emulator.clock.speed = 50


def test_state_does_not_leak_between_tests(gradient_emulator: GradientEmulator) -> None:
    assert gradient_emulator.jobs() == []
    assert gradient_emulator.faults.list() == []
    assert gradient_emulator.clock.speed == 1.0
    response = requests.get(
        f"{gradient_emulator.base_url}/v2/gen-ai/knowledge_bases",
        headers={"Authorization": f"Bearer {gradient_emulator.token}"},
        timeout=5,
    )
    assert response.json()["knowledge_bases"] == []


def test_fixture_forgets_what_the_emulator_told_sync_callers(request: pytest.FixtureRequest) -> None:
    # A budget that heard "nothing left" from an earlier test's emulator must not hold this one back.
    _budget.sync_budget_for("token-key", 250, 5000).observe_now({"ratelimit-remaining": "0"})
    request.getfixturevalue("gradient_emulator")
    assert _budget.SYNC_BUDGETS == {}


def test_gradient_conn_sets_the_environment(gradient_conn: str, gradient_emulator: GradientEmulator) -> None:
    assert os.environ["AIRFLOW_CONN_GRADIENT_DEFAULT"] == gradient_conn
    assert json.loads(gradient_conn) == {
        "conn_type": "gradient",
        "host": gradient_emulator.base_url,
        "password": gradient_emulator.token,
    }


def test_conn_uri_round_trips_through_airflow(gradient_emulator: GradientEmulator) -> None:
    from airflow.models.connection import Connection

    conn = Connection(conn_id="gradient_default", uri=gradient_emulator.conn_uri)
    assert conn.conn_type == "gradient"
    assert conn.host == gradient_emulator.base_url
    assert conn.password == gradient_emulator.token
    from_json = Connection.from_json(gradient_emulator.airflow_conn_json(), conn_id="gradient_default")
    assert from_json.host == gradient_emulator.base_url
    assert from_json.password == gradient_emulator.token


def test_factory_and_context_manager(gradient_emulator_factory: Callable[..., GradientEmulator]) -> None:
    emu = gradient_emulator_factory(token="other", speed=600.0)
    assert emu.token == "other"
    assert emu.clock.speed == 600.0
    with GradientEmulator(port=0) as standalone:
        assert standalone.running
        assert standalone.base_url.startswith("http://127.0.0.1:")
    assert not standalone.running
