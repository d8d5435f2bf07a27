"""
Parse-time cost: the operators and the sensor must not drag the runtime machinery into DAG parsing.

A structural check, not a timed one. A fresh interpreter imports ``airflow.sdk`` first (what any
DAG file pays), then records (1) the modules our imports add to ``sys.modules`` and (2) every
``import`` statement executed by a module of this package, so a heavy module that Airflow happens
to have loaded already (tenacity is, in Airflow 3.3) is still caught when our code asks for it.
The timed comparison lives in ``benchmarks/bench_parse.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

#: Heavy modules not needed to parse a DAG (prefix match: ``aiohttp`` covers ``aiohttp.client``).
FORBIDDEN = (
    "aiohttp",
    "tenacity",
    "requests",
    "urllib3",
    "httpx",
    "starlette",
    "uvicorn",
    "airflow.triggers.base",
    "airflow_provider_gradient.triggers",
    "airflow_provider_gradient.hooks",
    "airflow_provider_gradient.testing",
    "airflow_provider_gradient._api",
    "airflow_provider_gradient.models",
)

_PROBE = textwrap.dedent(
    """
    import builtins, importlib.util, json, sys

    import airflow.sdk  # what every DAG file pays anyway
    from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator  # noqa: F401

    before = set(sys.modules)
    asked = set()
    real_import = builtins.__import__

    def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__") or ""
        if importer.startswith("airflow_provider_gradient"):
            package = (globals or {}).get("__package__") or importer
            full = importlib.util.resolve_name("." * level + name, package) if level else name
            asked.add(full)
            for item in fromlist or ():
                asked.add(f"{full}.{item}")
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = recording_import
    try:
        TARGETS
    finally:
        builtins.__import__ = real_import
    print(json.dumps({"added": sorted(set(sys.modules) - before), "asked": sorted(asked)}))
    """
)

_IMPORT_ONLY = """
import airflow_provider_gradient.operators.indexing_job
import airflow_provider_gradient.sensors.indexing_job
"""

# Building the tasks of a DAG runs the parse-time argument checks too.
_BUILD_DAG = """
from airflow.sdk import DAG
from airflow_provider_gradient.operators.indexing_job import (
    GradientCancelIndexingJobOperator,
    GradientStartIndexingJobOperator,
)
from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor

kb = "123e4567-e89b-12d3-a456-426614174000"
with DAG("parse_cost", schedule=None):
    GradientStartIndexingJobOperator(task_id="start", knowledge_base_uuid=kb, data_source_uuids=[kb])
    GradientCancelIndexingJobOperator(task_id="cancel", knowledge_base_uuid=kb)
    GradientIndexingJobSensor(task_id="wait", knowledge_base_uuid=kb, indexed_after="2026-01-01T00:00:00Z")
"""


def _probe(targets: str) -> dict[str, Any]:
    script = _PROBE.replace("    TARGETS", textwrap.indent(textwrap.dedent(targets).strip(), "        "))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _heavy(names: list[str]) -> list[str]:
    return [name for name in names if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)]


@pytest.fixture(scope="module", params=["import", "build_dag"])
def probe(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _probe(_IMPORT_ONLY if request.param == "import" else _BUILD_DAG)


def test_the_probe_sees_our_imports(probe: dict[str, Any]) -> None:
    # Guards the test itself: if recording broke, the checks below would pass vacuously.
    assert "airflow_provider_gradient.operators.indexing_job" in probe["added"]
    assert "airflow_provider_gradient._validation" in probe["asked"]
    assert any(name.startswith("airflow.providers.common.compat.sdk") for name in probe["asked"])


def test_parsing_loads_no_heavy_module(probe: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["probe"] == "build_dag" and not AIRFLOW_V_3_1_PLUS:
        pytest.skip("on Airflow 3.0 building any operator (Airflow's own BaseOperator) imports aiohttp and starlette")
    assert _heavy(probe["added"]) == []


def test_our_code_asks_for_no_heavy_module(probe: dict[str, Any]) -> None:
    assert _heavy(probe["asked"]) == []


def test_the_check_catches_a_heavy_import() -> None:
    # The same probe around an import that does pull the async machinery must flag it.
    probe = _probe("import airflow_provider_gradient.triggers.indexing_job")
    flagged = _heavy(probe["asked"])
    assert "tenacity" in flagged
    assert "airflow.triggers.base" in flagged
    assert "airflow_provider_gradient.hooks.gradient" in _heavy(probe["added"])
