"""The installed distribution: entry point, and Airflow's providers manager knows the connection type."""

from __future__ import annotations

from importlib.metadata import distribution, entry_points
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_gradient import __version__
from airflow_provider_gradient.get_provider_info import get_provider_info


def test_distribution_is_installed_with_its_version() -> None:
    assert distribution("airflow-provider-gradient").version == __version__


def test_entry_point_resolves_to_get_provider_info() -> None:
    matches = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.dist and ep.dist.name == "airflow-provider-gradient"
    ]
    assert len(matches) == 1
    assert matches[0].value == "airflow_provider_gradient.get_provider_info:get_provider_info"
    assert matches[0].load() is get_provider_info


def test_py_typed_is_shipped() -> None:
    import airflow_provider_gradient

    assert (Path(airflow_provider_gradient.__file__).parent / "py.typed").is_file()


@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_providers_manager_lists_the_provider(providers_manager: Any) -> None:
    provider = providers_manager.providers["airflow-provider-gradient"]
    assert provider.version == __version__


@pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS,
    reason="Airflow 3.0's ProvidersManager registers field behaviours and form widgets only with flask_appbuilder",
)
def test_providers_manager_knows_the_connection_type(providers_manager: Any) -> None:
    behaviour = providers_manager.field_behaviours["gradient"]
    assert behaviour["relabeling"]["password"] == "API token"
    widgets = {key for key in providers_manager.connection_form_widgets if key.startswith("extra__gradient__")}
    assert "extra__gradient__timeout" in widgets
    assert "extra__gradient__allow_insecure_http" in widgets


def test_task_runtime_providers_manager_finds_the_hook() -> None:
    runtime = pytest.importorskip("airflow.sdk.providers_manager_runtime")
    hooks = runtime.ProvidersManagerTaskRuntime().hooks
    hook = hooks["gradient"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_gradient.hooks.gradient.GradientHook"
    assert hook.connection_id_attribute_name == "gradient_conn_id"
    assert hook.hook_name == "DigitalOcean Gradient"
