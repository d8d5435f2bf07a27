"""Every operation's success and error answers validate against the shared OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from _emu_helpers import API, SPEC_PATH, Api, assert_error, validate
from openapi_core import OpenAPI
from openapi_core.validation.response.exceptions import InvalidData

from airflow_provider_gradient.testing.emulator import GradientEmulator


@dataclass
class World:
    kb: str
    sources: list[str]
    job: str


@pytest.fixture
def world(emu: GradientEmulator, api: Api) -> World:
    kb = emu.create_knowledge_base("contract", data_sources=3)
    emu.script_jobs(kb.uuid, "PARTIAL", duration=90.0, pending=1.0)
    job = api.start_job(kb.uuid).json()["job"]["uuid"]
    emu.clock.advance(3600)
    emu.set_schedule(kb.uuid, days=[1, 3, 5], time="03:30")
    emu.reset_requests()
    return World(kb.uuid, kb.data_source_uuids, job)


def _operations(world: World) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    return [
        ("genai_list_indexing_jobs", "GET", f"{API}/indexing_jobs", None),
        ("genai_create_indexing_job", "POST", f"{API}/indexing_jobs", {"knowledge_base_uuid": world.kb}),
        ("genai_get_indexing_job", "GET", f"{API}/indexing_jobs/{world.job}", None),
        ("genai_cancel_indexing_job", "PUT", f"{API}/indexing_jobs/{world.job}/cancel", {"uuid": world.job}),
        ("genai_list_indexing_job_data_sources", "GET", f"{API}/indexing_jobs/{world.job}/data_sources", None),
        (
            "genai_get_indexing_job_details_signed_url",
            "GET",
            f"{API}/indexing_jobs/{world.job}/details_signed_url",
            None,
        ),
        ("genai_list_knowledge_bases", "GET", f"{API}/knowledge_bases", None),
        ("genai_get_knowledge_base", "GET", f"{API}/knowledge_bases/{world.kb}", None),
        (
            "genai_list_knowledge_base_data_sources",
            "GET",
            f"{API}/knowledge_bases/{world.kb}/data_sources",
            None,
        ),
        (
            "genai_list_indexing_jobs_by_knowledge_base",
            "GET",
            f"{API}/knowledge_bases/{world.kb}/indexing_jobs",
            None,
        ),
        ("genai_get_scheduled_indexing", "GET", f"{API}/scheduled-indexing/knowledge-base/{world.kb}", None),
    ]


OPERATION_IDS = [
    "genai_list_indexing_jobs",
    "genai_create_indexing_job",
    "genai_get_indexing_job",
    "genai_cancel_indexing_job",
    "genai_list_indexing_job_data_sources",
    "genai_get_indexing_job_details_signed_url",
    "genai_list_knowledge_bases",
    "genai_get_knowledge_base",
    "genai_list_knowledge_base_data_sources",
    "genai_list_indexing_jobs_by_knowledge_base",
    "genai_get_scheduled_indexing",
]


def _op(world: World, operation_id: str) -> tuple[str, str, dict[str, Any] | None]:
    for op_id, method, path, body in _operations(world):
        if op_id == operation_id:
            return method, path, body
    raise AssertionError(operation_id)


def test_all_spec_operations_are_covered(openapi: OpenAPI) -> None:
    spec = yaml.safe_load(SPEC_PATH.read_text())
    in_spec = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert in_spec == set(OPERATION_IDS)


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_success_conforms(api: Api, emu: GradientEmulator, world: World, operation_id: str) -> None:
    method, path, body = _op(world, operation_id)
    response = api.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert emu.count(operation=operation_id, status=200) == 1
    for header in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert response.headers[header].isdigit()


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_unauthorized_conforms(api: Api, world: World, operation_id: str) -> None:
    method, path, body = _op(world, operation_id)
    assert_error(api.request(method, path, json=body, bearer=None), 401, "unauthorized")
    assert_error(api.request(method, path, json=body, bearer="dop_v1_unknown"), 401, "unauthorized")


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_forbidden_conforms(api: Api, emu: GradientEmulator, world: World, operation_id: str) -> None:
    method, path, body = _op(world, operation_id)
    emu.add_token("no_scopes", scopes=[])
    assert_error(api.request(method, path, json=body, bearer="no_scopes"), 403, "forbidden")


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_rate_limited_conforms(api: Api, emu: GradientEmulator, world: World, operation_id: str) -> None:
    method, path, body = _op(world, operation_id)
    emu.set_rate_limits(per_minute=0, per_hour=None)
    response = api.request(method, path, json=body)
    assert_error(response, 429, "too_many_requests")
    assert response.json()["message"] == "API rate limit exceeded."


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_server_error_conforms(api: Api, emu: GradientEmulator, world: World, operation_id: str, status: int) -> None:
    method, path, body = _op(world, operation_id)
    emu.faults.add(operation=operation_id, kind="status", status=status)
    assert_error(
        api.request(method, path, json=body), status, "server_error" if status == 500 else "service_unavailable"
    )


NOT_FOUND_PATHS = [
    f"{API}/indexing_jobs/00000000-0000-4000-8000-000000000000",
    f"{API}/indexing_jobs/not-a-uuid",
    f"{API}/indexing_jobs/00000000-0000-4000-8000-000000000000/data_sources",
    f"{API}/indexing_jobs/00000000-0000-4000-8000-000000000000/details_signed_url",
    f"{API}/knowledge_bases/00000000-0000-4000-8000-000000000000",
    f"{API}/knowledge_bases/00000000-0000-4000-8000-000000000000/data_sources",
    f"{API}/knowledge_bases/00000000-0000-4000-8000-000000000000/indexing_jobs",
    f"{API}/scheduled-indexing/knowledge-base/00000000-0000-4000-8000-000000000000",
]


@pytest.mark.parametrize("path", NOT_FOUND_PATHS)
def test_not_found_conforms(api: Api, path: str) -> None:
    assert_error(api.get(path), 404, "not_found")


def test_not_found_for_writes(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(api.start_job(missing), 404, "not_found")
    assert_error(api.put(f"{API}/indexing_jobs/{missing}/cancel", json={"uuid": missing}), 404, "not_found")


def test_client_errors_conform(api: Api, emu: GradientEmulator, world: World) -> None:
    assert_error(api.post(f"{API}/indexing_jobs", json={}), 400, "bad_request")
    assert_error(api.post(f"{API}/indexing_jobs", json=["x"]), 400, "bad_request")
    assert_error(
        api.post(f"{API}/indexing_jobs", data=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "bad_request",
    )
    assert_error(api.get(f"{API}/indexing_jobs", params={"page": "two"}), 400, "bad_request")


def test_validator_catches_a_broken_answer(api: Api, emu: GradientEmulator, world: World, openapi: OpenAPI) -> None:
    """The contract check can fail: a job with an out-of-enum phase does not validate."""
    emu.faults.add(operation="genai_get_indexing_job", kind="unknown_enum")
    response = api.get(f"{API}/indexing_jobs/{world.job}", validate=False)
    with pytest.raises(InvalidData):
        validate(openapi, response)
