"""The "View indexing job" extra link (its XCom in a real run: tests/dag_runs)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gradient.get_provider_info import get_provider_info
from airflow_provider_gradient.links.indexing_job import XCOM_JOB_URL, GradientIndexingJobLink
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator

U1 = "123e4567-e89b-12d3-a456-426614174000"


def test_registered_in_provider_info() -> None:
    path = "airflow_provider_gradient.links.indexing_job.GradientIndexingJobLink"
    assert path in get_provider_info()["extra-links"]
    module, _, name = path.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is GradientIndexingJobLink


def test_on_the_start_operator() -> None:
    op = GradientStartIndexingJobOperator(task_id="t", knowledge_base_uuid=U1)
    [link] = op.operator_extra_links
    assert isinstance(link, GradientIndexingJobLink)
    assert link.name == "View indexing job"


@pytest.mark.parametrize(("stored", "expected"), [("https://console/kb/1", "https://console/kb/1"), (None, "")])
def test_get_link_reads_the_url_xcom(monkeypatch: pytest.MonkeyPatch, stored: Any, expected: str) -> None:
    """Airflow's XCom lookup is replaced here (no task runner); the real lookup runs in tests/dag_runs."""
    from airflow.providers.common.compat.sdk import XCom

    asked: list[dict[str, Any]] = []

    def get_value(**kwargs: Any) -> Any:
        asked.append(kwargs)
        return stored

    monkeypatch.setattr(XCom, "get_value", staticmethod(get_value))
    op = GradientStartIndexingJobOperator(task_id="t", knowledge_base_uuid=U1)
    assert GradientIndexingJobLink().get_link(op, ti_key="key-1") == expected  # type: ignore[arg-type]
    assert asked == [{"key": XCOM_JOB_URL, "ti_key": "key-1"}]
