"""Cancel semantics, the "already running" conflict and the database-not-ready error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _emu_helpers import API, Api, assert_error
from openapi_core import OpenAPI

from airflow_provider_gradient.testing.emulator import ApiError, GradientEmulator


def test_cancel_running_job(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=2)
    emu.clock.speed = 0
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    emu.clock.advance(2 + 40)  # into the second data source
    response = api.put(f"{API}/indexing_jobs/{uuid}/cancel", json={"uuid": uuid})
    job = response.json()["job"]
    assert job["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert job["status"] == "INDEX_JOB_STATUS_CANCELLED"
    assert job["finished_at"].endswith("Z")
    assert job["is_report_available"] is False
    first, second = job["data_source_jobs"]
    assert first["status"] == "DATA_SOURCE_STATUS_UPDATED"
    assert second["status"] == "DATA_SOURCE_STATUS_CANCELLED"
    emu.clock.advance(3600)
    assert api.job(uuid) == job  # frozen after the cancel
    assert api.get(f"{API}/indexing_jobs/{uuid}/details_signed_url").status_code == 404
    # the KB is free again
    assert api.start_job(kb.uuid).status_code == 200


def test_cancel_pending_job_with_empty_body(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs")
    emu.clock.speed = 0
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    job = api.put(f"{API}/indexing_jobs/{uuid}/cancel").json()["job"]
    assert job["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert "started_at" not in job
    assert job["data_source_jobs"] == []


def test_cancel_finished_job_returns_it_unchanged(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs")
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    emu.clock.advance(600)
    before = api.job(uuid)
    response = api.put(f"{API}/indexing_jobs/{uuid}/cancel", json={"uuid": uuid})
    assert response.status_code == 200
    assert response.json()["job"] == before
    assert before["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"


def test_cancel_body_uuid_must_match(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs")
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    assert_error(api.put(f"{API}/indexing_jobs/{uuid}/cancel", json={"uuid": "other"}), 400, "bad_request")


def test_conflict_when_a_job_is_running(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs")
    running = emu.start_job_server_side(kb.uuid)
    body = assert_error(api.start_job(kb.uuid), 409, "conflict")
    assert "already has an indexing job running" in body["message"]
    assert len(emu.jobs(kb.uuid)) == 1
    with pytest.raises(ApiError, match="already has an indexing job running"):
        emu.start_job_server_side(kb.uuid)
    emu.clock.advance(600)
    assert emu.job(running)["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"
    assert api.start_job(kb.uuid).status_code == 200


def test_conflict_status_is_configurable(
    gradient_emulator_factory: Callable[..., GradientEmulator], openapi: OpenAPI
) -> None:
    emu = gradient_emulator_factory(conflict_status=400)
    api = Api(emu, openapi)
    kb = emu.create_knowledge_base("docs")
    emu.start_job_server_side(kb.uuid)
    assert_error(api.start_job(kb.uuid), 400, "bad_request")


def test_database_not_ready(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("fresh", data_sources=1, database_ready=False)
    assert api.get(f"{API}/knowledge_bases/{kb.uuid}").json()["database_status"] == "CREATING"
    body = assert_error(api.start_job(kb.uuid), 400, "bad_request")
    assert "failed to get db creds" in body["message"]
    assert emu.jobs() == []
    emu.set_database_ready(kb.uuid, True)
    assert api.get(f"{API}/knowledge_bases/{kb.uuid}").json()["database_status"] == "ONLINE"
    assert api.start_job(kb.uuid).status_code == 200


def test_database_turns_online_after_emulated_delay(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("fresh", database_ready=False, database_ready_after=120.0)
    assert api.start_job(kb.uuid).status_code == 400
    emu.clock.advance(121)
    assert api.get(f"{API}/knowledge_bases/{kb.uuid}").json()["database_status"] == "ONLINE"
    assert api.start_job(kb.uuid).status_code == 200
