"""
OpenLineage of the start operator: the knowledge base as output, its data sources as inputs, the
indexing job as a run facet. Checked with the OpenLineage provider installed (the ``test`` extra),
down to the events Airflow's OpenLineage listener emits in a real ``dag.test()`` run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gradient import _openlineage
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator

KB = "123e4567-e89b-12d3-a456-426614174000"
DS_1 = "223e4567-e89b-12d3-a456-426614174001"
DS_2 = "223e4567-e89b-12d3-a456-426614174002"
JOB = "323e4567-e89b-12d3-a456-426614174009"


class XComOnly:
    """The part of Airflow's task instance the lineage reads: ``task_id`` and ``xcom_pull``."""

    def __init__(self, task_id: str, xcoms: dict[str, Any]) -> None:
        self.task_id = task_id
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert task_ids == self.task_id
        return self.xcoms.get(key)


def facet_dict(lineage: Any) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    return dict(Serde.to_dict(lineage.run_facets[_openlineage.RUN_FACET_NAME]))


# -------------------------------------------------------------------------------------------
# Naming
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, "gradient://api.digitalocean.com"),
        ("https://api.digitalocean.com", "gradient://api.digitalocean.com"),
        ("http://127.0.0.1:8123", "gradient://127.0.0.1:8123"),
        ("https://proxy.example.test/gradient/", "gradient://proxy.example.test"),
    ],
)
def test_namespace_names_the_api_host(base_url: str | None, expected: str) -> None:
    assert _openlineage.namespace(base_url) == expected


def test_dataset_names() -> None:
    assert _openlineage.knowledge_base_name(KB) == f"knowledge-bases/{KB}"
    assert _openlineage.data_source_name(KB, DS_1) == f"knowledge-bases/{KB}/data-sources/{DS_1}"


# -------------------------------------------------------------------------------------------
# Building the lineage
# -------------------------------------------------------------------------------------------


def test_build_lineage_with_the_provider_installed() -> None:
    from airflow.providers.common.compat.openlineage.facet import RunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    assert _openlineage.openlineage_available()
    summary = {
        "indexing_job_uuid": "job-1",
        "knowledge_base_uuid": KB,
        "phase": "BATCH_JOB_PHASE_SUCCEEDED",
        "status": "INDEX_JOB_STATUS_COMPLETED",
        "outcome": "succeeded",
        "total_tokens": 1234,
        "completed_datasources": 2,
        "total_datasources": 2,
        "finished_at": "2026-01-31T12:00:00+00:00",
    }
    lineage = _openlineage.build_lineage(
        base_url="http://127.0.0.1:9000", knowledge_base_uuid=KB, data_source_uuids=[DS_1, DS_2, DS_1], summary=summary
    )
    assert isinstance(lineage, OperatorLineage)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("gradient://127.0.0.1:9000", f"knowledge-bases/{KB}/data-sources/{DS_1}"),
        ("gradient://127.0.0.1:9000", f"knowledge-bases/{KB}/data-sources/{DS_2}"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("gradient://127.0.0.1:9000", f"knowledge-bases/{KB}")]
    assert isinstance(lineage.run_facets[_openlineage.RUN_FACET_NAME], RunFacet)
    facet = facet_dict(lineage)
    assert facet["indexingJobUuid"] == "job-1"
    assert facet["knowledgeBaseUuid"] == KB
    assert facet["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert facet["outcome"] == "succeeded"
    assert facet["totalTokens"] == 1234
    assert facet["finishedAt"] == "2026-01-31T12:00:00+00:00"
    assert facet["_schemaURL"].endswith("docs/events.md#the-gradientindexingjob-run-facet")
    assert lineage.job_facets == {}


def test_without_the_provider_nothing_changes(monkeypatch: pytest.MonkeyPatch, make_conn: Any) -> None:
    make_conn()
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)  # "not installed"
    assert not _openlineage.openlineage_available()
    operator = GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=KB)
    ti = XComOnly("reindex", {"return_value": {"indexing_job_uuid": "job-1", "knowledge_base_uuid": KB}})
    assert operator.get_openlineage_facets_on_complete(ti) is None
    assert _openlineage.build_lineage(base_url=None, knowledge_base_uuid=KB, data_source_uuids=[], summary={}) is None


def test_the_operator_module_does_not_import_openlineage() -> None:
    # Airflow's providers manager may read the OpenLineage provider's metadata; the client library,
    # the extractors and our lineage module must stay unimported until lineage is asked for.
    code = (
        "import sys, airflow_provider_gradient.operators.indexing_job\n"
        "watched = ('openlineage.', 'airflow.providers.openlineage.extractors',"
        " 'airflow_provider_gradient._openlineage')\n"
        "print(sorted(m for m in sys.modules if m.startswith(watched)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_explicit_data_sources_are_the_inputs(make_conn: Any) -> None:
    conn = make_conn()
    operator = GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=KB, data_source_uuids=[DS_2])
    summary = {"indexing_job_uuid": "job-1", "knowledge_base_uuid": KB, "status": "INDEX_JOB_STATUS_COMPLETED"}
    lineage = operator.get_openlineage_facets_on_complete(XComOnly("reindex", {"return_value": summary}))
    assert [d.name for d in lineage.inputs] == [f"knowledge-bases/{KB}/data-sources/{DS_2}"]
    assert lineage.outputs[0].namespace == "gradient://api.example.test"
    assert conn.token not in repr(lineage)


def test_the_job_is_read_from_the_api(gradient_emulator: GradientEmulator, gradient_conn: str) -> None:
    """No XCom needed but the job uuid: phase, status, tokens and data sources come from the API."""
    kb = gradient_emulator.create_knowledge_base(data_sources=3)
    gradient_emulator.script_jobs(kb.uuid, "PARTIAL", duration=10, pending=1)
    job = gradient_emulator.start_job_server_side(kb.uuid)
    gradient_emulator.clock.advance(60)
    operator = GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=kb.uuid)
    stale = {"indexing_job_uuid": job, "knowledge_base_uuid": kb.uuid, "status": "INDEX_JOB_STATUS_IN_PROGRESS"}
    ti = XComOnly("reindex", {"indexing_job_uuid": job, "return_value": stale})
    lineage = operator.get_openlineage_facets_on_complete(ti)
    ns = f"gradient://{gradient_emulator.base_url.removeprefix('http://')}"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (ns, f"knowledge-bases/{kb.uuid}/data-sources/{ds}") for ds in kb.data_source_uuids
    ]
    expected = gradient_emulator.job(job)
    facet = facet_dict(lineage)
    assert facet["indexingJobUuid"] == job
    assert facet["status"] == expected["status"] == "INDEX_JOB_STATUS_PARTIAL"
    assert facet["outcome"] == "partial"
    assert facet["totalTokens"] == int(expected["total_tokens"])
    assert gradient_emulator.count(operation="genai_get_indexing_job") == 1


def test_the_task_result_is_the_fallback_when_the_api_cannot_be_read(
    gradient_emulator: GradientEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lineage never fails the task: with a rejected token the XCom result stands in."""
    value = {"conn_type": "gradient", "host": gradient_emulator.base_url, "password": "dop_v1_wrong", "extra": {}}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps(value))
    operator = GradientStartIndexingJobOperator(task_id="reindex", knowledge_base_uuid=KB)
    summary = {
        "indexing_job_uuid": JOB,
        "knowledge_base_uuid": KB,
        "status": "INDEX_JOB_STATUS_COMPLETED",
        "data_sources": [{"data_source_uuid": DS_1}],
    }
    lineage = operator.get_openlineage_facets_on_complete(
        XComOnly("reindex", {"indexing_job_uuid": JOB, "return_value": summary})
    )
    assert [d.name for d in lineage.inputs] == [f"knowledge-bases/{KB}/data-sources/{DS_1}"]
    assert [d.name for d in lineage.outputs] == [f"knowledge-bases/{KB}"]
    assert facet_dict(lineage)["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert gradient_emulator.count(operation="genai_get_indexing_job", status=401) == 1

    nothing = operator.get_openlineage_facets_on_complete(XComOnly("reindex", {"indexing_job_uuid": JOB}))
    assert nothing.inputs == []
    assert [d.name for d in nothing.outputs] == [f"knowledge-bases/{KB}"]


# -------------------------------------------------------------------------------------------
# The events Airflow's OpenLineage listener emits in a real run
# -------------------------------------------------------------------------------------------

DAG_SOURCE = """
import os

from airflow.sdk import DAG

from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

with DAG(dag_id="gradient_lineage", schedule=None, catchup=False) as dag:
    GradientStartIndexingJobOperator(
        task_id="reindex",
        knowledge_base_uuid=os.environ["LINEAGE_KB_UUID"],
        poll_interval=2,
        deferrable=False,
    )

if __name__ == "__main__":
    run = dag.test()
    print("RUN_STATE", run.state)
"""


@pytest.mark.integration
@pytest.mark.timeout(420)
def test_the_openlineage_listener_reports_the_reindex(gradient_emulator: GradientEmulator, tmp_path: Path) -> None:
    emu = gradient_emulator
    emu.set_rate_limits(None, None)
    kb = emu.create_knowledge_base(data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", duration=3, pending=0.5)
    home, dags = tmp_path / "home", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    dag_file = dags / "gradient_lineage.py"
    dag_file.write_text(textwrap.dedent(DAG_SOURCE))
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "_AIRFLOW", "OPENLINEAGE"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "gradient-tests",
            "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": "60",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events_file), "append": True}
            ),
            "AIRFLOW_CONN_GRADIENT_DEFAULT": emu.airflow_conn_json(),
            "LINEAGE_KB_UUID": kb.uuid,
            "PYTHONUNBUFFERED": "1",
        }
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    for name, argv in (("db-migrate", [airflow, "db", "migrate"]), ("dag-test", [sys.executable, str(dag_file)])):
        result = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        (tmp_path / f"{name}.log").write_text(result.stdout + "\n---- stderr ----\n" + result.stderr)
        assert result.returncode == 0, f"{name}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "RUN_STATE success" in result.stdout, result.stdout[-3000:]

    [job] = emu.jobs(kb.uuid)
    assert events_file.exists(), "the OpenLineage listener emitted nothing"
    text = events_file.read_text()
    assert emu.token not in text
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    complete = [
        event
        for event in events
        if event.get("eventType") == "COMPLETE" and event.get("job", {}).get("name") == "gradient_lineage.reindex"
    ]
    assert len(complete) == 1, [(e.get("eventType"), e.get("job", {}).get("name")) for e in events]
    event = complete[0]
    ns = f"gradient://{emu.base_url.removeprefix('http://')}"
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [(ns, f"knowledge-bases/{kb.uuid}")]
    assert sorted((d["namespace"], d["name"]) for d in event["inputs"]) == sorted(
        (ns, f"knowledge-bases/{kb.uuid}/data-sources/{ds}") for ds in kb.data_source_uuids
    )
    facet = event["run"]["facets"][_openlineage.RUN_FACET_NAME]
    assert facet["indexingJobUuid"] == job["uuid"]
    assert facet["status"] == job["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert facet["outcome"] == "succeeded"
    assert facet["totalTokens"] == int(job["total_tokens"]) > 0
