"""Helpers for the emulator tests: an HTTP client over real sockets and the OpenAPI validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from airflow_provider_gradient.testing.emulator import GradientEmulator

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "indexing-jobs.openapi.yaml"
SPEC_HOST = "https://api.digitalocean.com"
API = "/v2/gen-ai"


class _SpecHostRequest(RequestsOpenAPIRequest):
    """Present the request as sent to the spec's server so paths match."""

    @property
    def host_url(self) -> str:
        return SPEC_HOST


def validate(openapi: OpenAPI, response: requests.Response) -> None:
    """Raise if ``response`` does not conform to the spec for its request's operation."""
    openapi.validate_response(_SpecHostRequest(response.request), RequestsOpenAPIResponse(response))


class Api:
    """A tiny client: real HTTP to the emulator, every answer validated against the spec."""

    def __init__(self, emu: GradientEmulator, openapi: OpenAPI) -> None:
        self.emu = emu
        self.openapi = openapi
        self.session = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None = "default",
        validate: bool = True,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if bearer == "default":
            bearer = self.emu.token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        url = path if path.startswith("http") else self.emu.base_url + path
        response = self.session.request(method, url, headers=headers, timeout=timeout, **kwargs)
        assert response.headers.get("x-request-id"), "every response carries x-request-id"
        if validate:
            validate_fn(self.openapi, response)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def start_job(self, kb_uuid: str, **kwargs: Any) -> requests.Response:
        return self.post(f"{API}/indexing_jobs", json={"knowledge_base_uuid": kb_uuid}, **kwargs)

    def job(self, job_uuid: str) -> dict[str, Any]:
        response = self.get(f"{API}/indexing_jobs/{job_uuid}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()["job"]
        return job


validate_fn = validate


def assert_error(response: requests.Response, status: int, error_id: str) -> dict[str, Any]:
    """Check a DigitalOcean error answer and return its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["id"] == error_id
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body
