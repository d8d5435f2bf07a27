"""The provider info Airflow reads: valid against Airflow's schema, consistent with the code."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from airflow_provider_gradient import __version__
from airflow_provider_gradient._conn_fields import EXTRA_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_gradient.get_provider_info import get_provider_info


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return get_provider_info()


@pytest.fixture(scope="module")
def connection_type(info: dict[str, Any]) -> dict[str, Any]:
    types = [t for t in info["connection-types"] if t["connection-type"] == "gradient"]
    assert len(types) == 1
    return dict(types[0])


def test_validates_against_airflows_provider_info_schema(info: dict[str, Any]) -> None:
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    assert schema_path.is_file(), "airflow-core ships provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(info, schema)


def test_schema_check_is_not_vacuous(info: dict[str, Any]) -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    broken = {**info, "connection-types": [{"hook-class-name": "x"}]}  # no connection-type
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_package_and_version(info: dict[str, Any]) -> None:
    assert info["package-name"] == "airflow-provider-gradient"
    assert info["versions"][0] == __version__


def test_connection_type(connection_type: dict[str, Any]) -> None:
    from airflow_provider_gradient.hooks.gradient import GradientHook

    assert connection_type["hook-class-name"] == "airflow_provider_gradient.hooks.gradient.GradientHook"
    assert connection_type["hook-name"] == GradientHook.hook_name == "DigitalOcean Gradient"
    module, _, name = connection_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is GradientHook
    assert GradientHook.conn_type == connection_type["connection-type"]


def test_conn_fields_come_from_the_extras_table(connection_type: dict[str, Any]) -> None:
    fields = connection_type["conn-fields"]
    assert list(fields) == list(EXTRA_FIELDS)
    for name, (kind, default, description) in EXTRA_FIELDS.items():
        field = fields[name]
        assert field["description"] == description
        assert kind in field["schema"]["type"]
        assert field["schema"].get("default") == default
        assert field["label"][0].isupper()
    assert fields["console_url_template"]["label"] == "Console URL template"
    assert fields["allow_insecure_http"]["label"] == "Allow insecure HTTP"


def test_conn_field_defaults_are_what_the_settings_use() -> None:
    from airflow_provider_gradient._settings import ClientSettings

    settings = ClientSettings.from_connection(conn_id="c", host=None, password="tok", extra={})
    assert settings.read_timeout == EXTRA_FIELDS["timeout"][1]
    assert settings.connect_timeout == EXTRA_FIELDS["connect_timeout"][1]
    assert settings.retry.max_retries == EXTRA_FIELDS["max_retries"][1]
    assert settings.retry.budget == EXTRA_FIELDS["retry_budget"][1]
    assert settings.requests_per_minute == EXTRA_FIELDS["requests_per_minute"][1]
    assert settings.requests_per_hour == EXTRA_FIELDS["requests_per_hour"][1]
    assert settings.console_url_template == EXTRA_FIELDS["console_url_template"][1]


def test_every_extra_is_read_by_the_settings() -> None:
    # Each extra of the form must change something: no field the settings silently ignore.
    from airflow_provider_gradient._settings import ClientSettings

    base = ClientSettings.from_connection(
        conn_id="c", host="http://api.test", password="tok", extra={"allow_insecure_http": True}
    )
    changed = {
        "timeout": 1,
        "connect_timeout": 1,
        "max_retries": 1,
        "retry_budget": 1,
        "proxy": "http://proxy.test:1",
        "console_url_template": "https://c.test/{indexing_job_uuid}",
        "requests_per_minute": 1,
        "requests_per_hour": 1,
    }
    assert set(changed) | {"allow_insecure_http"} == set(EXTRA_FIELDS)
    for name, value in changed.items():
        other = ClientSettings.from_connection(
            conn_id="c", host="http://api.test", password="tok", extra={"allow_insecure_http": True, name: value}
        )
        assert other != base, name


def test_ui_field_behaviour(connection_type: dict[str, Any]) -> None:
    from airflow_provider_gradient.hooks.gradient import GradientHook

    behaviour = connection_type["ui-field-behaviour"]
    assert behaviour["hidden-fields"] == UI_FIELD_BEHAVIOUR["hidden_fields"]
    assert behaviour["relabeling"] == {"host": "API base URL", "password": "API token"}
    assert "genai:read" in behaviour["placeholders"]["password"]
    assert GradientHook.get_ui_field_behaviour() == UI_FIELD_BEHAVIOUR


def test_hook_modules_importable(info: dict[str, Any]) -> None:
    for entry in info["hooks"]:
        for module in entry["python-modules"]:
            importlib.import_module(module)


def test_get_provider_info_imports_no_airflow() -> None:
    # The providers manager and the API server read it early: it must stay import-light.
    import subprocess
    import sys

    code = (
        "import sys; import airflow_provider_gradient.get_provider_info as m; m.get_provider_info(); "
        "print(sorted(n for n in sys.modules if n == 'airflow' or n.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
