"""Every request the hook sends validates against the shared OpenAPI document (openapi-core)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock as requests_mock_lib
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.validation.request.exceptions import SecurityValidationError

from airflow_provider_gradient.hooks.gradient import GradientHook

SPEC_PATH = Path(__file__).parent / "openapi" / "indexing-jobs.openapi.yaml"
BASE = "https://api.digitalocean.com"  # the spec's server, so openapi-core can match paths
KB = "9758a232-b351-11ef-bf8f-4e013e2ddde4"
DS1 = "9a825ee0-bbb1-11ef-bf8f-4e013e2ddde4"
DS2 = "9a825ee0-bbb1-11ef-bf8f-4e013e2ddde5"
JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC_PATH.read_text()))


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


def operation_for(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec operation (template, definition) a concrete request path matches."""
    matches = []
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            matches.append((template, item[method.lower()]))
    assert len(matches) == 1, f"{method} {path} matches {[m[0] for m in matches]}"
    return matches[0]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


CALLS: list[tuple[str, Callable[[GradientHook], Any]]] = [
    ("start, all data sources", lambda h: h.start_indexing_job(KB)),
    ("start, some data sources", lambda h: h.start_indexing_job(KB, [DS1, DS2])),
    ("get job", lambda h: h.get_indexing_job(JOB)),
    ("list jobs", lambda h: h.list_indexing_jobs()),
    ("list jobs, paged", lambda h: h.list_indexing_jobs(page=2, per_page=25)),
    ("iterate jobs", lambda h: list(h.iter_indexing_jobs(per_page=1))),
    ("job data sources", lambda h: h.list_indexing_job_data_sources(JOB)),
    ("cancel", lambda h: h.cancel_indexing_job(JOB)),
    ("report url", lambda h: h.get_indexing_job_report_url(JOB)),
    ("get kb", lambda h: h.get_knowledge_base(KB)),
    ("list kbs", lambda h: h.list_knowledge_bases(page=1, per_page=200)),
    ("iterate kbs", lambda h: list(h.iter_knowledge_bases(per_page=1))),
    ("kb data sources", lambda h: h.list_knowledge_base_data_sources(KB, page=1, per_page=10)),
    ("iterate kb data sources", lambda h: list(h.iter_knowledge_base_data_sources(KB, per_page=1))),
    ("kb jobs", lambda h: h.list_knowledge_base_indexing_jobs(KB)),
    ("schedule", lambda h: h.get_indexing_schedule(KB)),
    ("test_connection", lambda h: h.test_connection()),
]


def fake_answer(request: Any, context: Any) -> dict[str, Any]:
    """A minimal valid answer for any endpoint, with a second page for list calls."""
    page = int(request.qs.get("page", ["1"])[0])
    more = (
        {"links": {"pages": {"next": f"{request.scheme}://{request.netloc}{request.path}?page=2"}}} if page == 1 else {}
    )
    return {
        "job": {"uuid": JOB, "knowledge_base_uuid": KB},
        "jobs": [{"uuid": JOB}],
        "indexed_data_sources": [],
        "knowledge_base": {"uuid": KB},
        "knowledge_bases": [{"uuid": KB}],
        "knowledge_base_data_sources": [{"uuid": DS1}],
        "indexing_info": {"knowledge_base_uuid": KB},
        "signed_url": "https://bucket.test/x",
        "meta": {"page": page, "pages": 2, "total": 2},
        **more,
    }


@pytest.fixture
def sent(make_conn: Any, requests_mock: Any) -> list[Any]:
    """Run every hook call against requests-mock and return every request it sent."""
    make_conn(host=BASE)
    requests_mock.register_uri(requests_mock_lib.ANY, re.compile(re.escape(BASE) + "/.*"), json=fake_answer)
    hook = GradientHook()
    for _, call in CALLS:
        call(hook)
    return list(requests_mock.request_history)


def test_every_operation_of_the_spec_is_exercised(spec: dict[str, Any], sent: list[Any]) -> None:
    exercised = {operation_for(spec, r.method, r.path)[1]["operationId"] for r in sent}
    declared = {op["operationId"] for item in spec["paths"].values() for op in item.values() if isinstance(op, dict)}
    assert exercised == declared


def test_every_request_validates(openapi: OpenAPI, sent: list[Any]) -> None:
    assert len(sent) >= len(CALLS)
    for request in sent:
        # Raises with the spec's complaint (path, method, parameters, body, security) if invalid.
        openapi.validate_request(RequestsOpenAPIRequest(request._request))


def test_no_undeclared_query_parameters_or_body_fields(spec: dict[str, Any], sent: list[Any]) -> None:
    # openapi-core accepts unknown query parameters and body properties; the contract does not.
    for request in sent:
        template, operation = operation_for(spec, request.method, request.path)
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert set(request.qs) <= declared, f"{request.method} {template}: {set(request.qs) - declared}"
        body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body_schema is None:
            assert not request.body, f"{request.method} {template} sends a body the spec does not declare"
            continue
        properties = set(resolve(spec, body_schema).get("properties", {}))
        body = request.json()
        assert set(body) <= properties, f"{request.method} {template}: {set(body) - properties}"
        assert request.headers["Content-Type"] == "application/json"


def test_path_parameters_are_bare_uuids(spec: dict[str, Any], sent: list[Any]) -> None:
    # The spec's examples carry literal quotes ('"123e..."'); the hook must never send them.
    for request in sent:
        assert "%22" not in request.path
        assert "'" not in request.path
        assert '"' not in request.path


def test_the_validator_catches_a_bad_request(openapi: OpenAPI) -> None:
    # A control: the validation above is not vacuous.
    bad = requests.Request(
        "GET", f"{BASE}/v2/gen-ai/indexing_jobs", params={"page": "first"}, headers={"Authorization": "Bearer t"}
    ).prepare()
    with pytest.raises(Exception, match=r"(?i)parameter|page|validat"):
        openapi.validate_request(RequestsOpenAPIRequest(bad))
    bad_body = requests.Request(
        "POST",
        f"{BASE}/v2/gen-ai/indexing_jobs",
        json={"knowledge_base_uuid": 42, "data_source_uuids": "not-a-list"},
        headers={"Authorization": "Bearer t"},
    ).prepare()
    with pytest.raises(Exception, match=r"(?i)body|schema|validat"):
        openapi.validate_request(RequestsOpenAPIRequest(bad_body))
    no_token = requests.Request("GET", f"{BASE}/v2/gen-ai/indexing_jobs/{JOB}").prepare()
    with pytest.raises(SecurityValidationError):
        openapi.validate_request(RequestsOpenAPIRequest(no_token))
    unknown = requests.Request("DELETE", f"{BASE}/v2/gen-ai/indexing_jobs/{JOB}").prepare()
    with pytest.raises(Exception, match=r"(?i)operation|not found|method"):
        openapi.validate_request(RequestsOpenAPIRequest(unknown))
