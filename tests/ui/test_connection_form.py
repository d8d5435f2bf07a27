"""
The ``gradient`` connection form as a real Airflow 3 API server serves it to the React UI.

The UI builds the "Add connection" form from ``GET /ui/connections/hook_meta`` and its "Test"
button posts the form to ``POST /api/v2/connections/test``; both are called here over HTTP on an
``airflow api-server`` subprocess, and the test reaches the project's Gradient API emulator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from _api_server import AirflowApiServer, free_port

from airflow_provider_gradient._conn_fields import EXTRA_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_gradient.testing.emulator import GradientEmulator

pytestmark = [pytest.mark.integration, pytest.mark.ui, pytest.mark.timeout(180)]

LIST_KBS = "/v2/gen-ai/knowledge_bases"


@pytest.fixture(scope="module")
def gradient_meta(airflow_api_server: AirflowApiServer) -> dict[str, Any]:
    answer = airflow_api_server.get("/ui/connections/hook_meta")
    assert answer.status_code == 200, answer.text
    found = [item for item in answer.json() if item["connection_type"] == "gradient"]
    assert len(found) == 1, [item["connection_type"] for item in answer.json()]
    meta: dict[str, Any] = found[0]
    return meta


def test_connection_type_is_offered(gradient_meta: dict[str, Any]) -> None:
    assert gradient_meta["hook_name"] == "DigitalOcean Gradient"
    assert gradient_meta["hook_class_name"] == "airflow_provider_gradient.hooks.gradient.GradientHook"


def test_standard_fields_are_relabelled_and_hidden(gradient_meta: dict[str, Any]) -> None:
    fields = gradient_meta["standard_fields"]
    assert fields["password"]["title"] == "API token"
    assert fields["host"]["title"] == "API base URL"
    assert not fields["password"]["hidden"]
    assert not fields["host"]["hidden"]
    assert fields["password"]["placeholder"].startswith("dop_v1_")
    assert "api.digitalocean.com" in fields["host"]["placeholder"]
    # The form calls the schema field "url_schema".
    hidden = {name for name, field in fields.items() if field and field["hidden"]}
    assert hidden == {"url_schema", "port", "login"}
    assert {"schema", "port", "login"} == set(UI_FIELD_BEHAVIOUR["hidden_fields"])


def test_extra_fields_come_from_conn_fields(gradient_meta: dict[str, Any]) -> None:
    extras = gradient_meta["extra_fields"]
    assert list(extras) == list(EXTRA_FIELDS)
    for name, (kind, default, description) in EXTRA_FIELDS.items():
        field = extras[name]
        assert field["schema"]["type"] == [kind, "null"], name
        assert field["schema"].get("default") == default, name
        assert field["value"] == default, name
        assert field["description"] == description, name
        assert field["schema"]["title"], name
    assert extras["allow_insecure_http"]["schema"]["title"] == "Allow insecure HTTP"
    assert extras["console_url_template"]["schema"]["title"] == "Console URL template"


def _test_connection(server: AirflowApiServer, **form: Any) -> dict[str, Any]:
    """Post the form as the UI's Test button does (``extra`` is a JSON string)."""
    body = {"connection_id": "gradient_form", "conn_type": "gradient", **form}
    if isinstance(body.get("extra"), dict):
        body["extra"] = json.dumps(body["extra"])
    answer = server.post("/api/v2/connections/test", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_test_connection_succeeds_against_the_emulator(
    airflow_api_server: AirflowApiServer, gradient_emulator: GradientEmulator
) -> None:
    gradient_emulator.create_knowledge_base("docs")
    gradient_emulator.create_knowledge_base("faq")
    result = _test_connection(
        airflow_api_server,
        host=gradient_emulator.base_url,
        password=gradient_emulator.token,
        extra={"timeout": 5, "max_retries": 1},
    )
    assert result == {
        "status": True,
        "message": f"Connected to {gradient_emulator.base_url}: the token can read 2 knowledge base(s).",
    }
    assert gradient_emulator.count("GET", path=LIST_KBS, status=200) == 1


def test_test_connection_with_a_bad_token_fails_clearly(
    airflow_api_server: AirflowApiServer, gradient_emulator: GradientEmulator
) -> None:
    bad_token = "dop_v1_not_a_real_token_0123456789"
    result = _test_connection(airflow_api_server, host=gradient_emulator.base_url, password=bad_token)
    assert result["status"] is False
    assert "rejected the token (HTTP 401)" in result["message"]
    assert "genai:read, genai:create and genai:update" in result["message"]
    assert bad_token not in result["message"]
    assert gradient_emulator.count("GET", path=LIST_KBS, status=401) == 1


def test_test_connection_to_nothing_says_so(airflow_api_server: AirflowApiServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = _test_connection(airflow_api_server, host=closed, password="dop_v1_x", extra={"max_retries": 0})
    assert result["status"] is False
    assert "127.0.0.1" in result["message"]
    assert "dop_v1_x" not in result["message"]


def test_tokens_never_reach_the_server_log(
    airflow_api_server: AirflowApiServer, gradient_emulator: GradientEmulator
) -> None:
    token = "dop_v1_logged_nowhere_5f3a9c"
    gradient_emulator.add_token(token)
    host = gradient_emulator.base_url
    assert _test_connection(airflow_api_server, host=host, password=token)["status"] is True
    assert _test_connection(airflow_api_server, host=host, password=token + "x")["status"] is False
    log = airflow_api_server.log_text()
    assert "/api/v2/connections/test" in log  # the log is the server's access log: the check can see requests
    assert token not in log
    assert gradient_emulator.token not in log
