"""
OpenLineage for the start operator: the knowledge base is the output, its data sources the inputs.

Optional: everything from OpenLineage is imported lazily, and without the
``apache-airflow-providers-openlineage`` package :func:`lineage_on_complete` returns ``None``, so
nothing changes. Dataset naming (documented in ``docs/events.md``):

* namespace ``gradient://<API host>`` (``gradient://api.digitalocean.com`` by default);
* knowledge base: ``knowledge-bases/<knowledge base uuid>``;
* data source: ``knowledge-bases/<knowledge base uuid>/data-sources/<data source uuid>``.

The indexing job itself (uuid, phase, status, outcome, tokens) is a run facet named
``gradientIndexingJob``: it describes this run, not the task's definition.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_gradient._conn_fields import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_gradient.models import IndexingJob

__all__ = [
    "RUN_FACET_NAME",
    "build_lineage",
    "data_source_name",
    "knowledge_base_name",
    "lineage_on_complete",
    "namespace",
    "openlineage_available",
]

#: Key of the run facet describing the indexing job.
RUN_FACET_NAME = "gradientIndexingJob"
#: Where the facet is described (the provider's docs; custom facets need a schema URL).
_FACET_SCHEMA_URL = (
    "https://github.com/airflow-provider-gradient/airflow-provider-gradient/blob/main/docs/events.md"
    "#the-gradientindexingjob-run-facet"
)


def namespace(base_url: str | None) -> str:
    """
    The OpenLineage namespace of a Gradient API: ``gradient://<host[:port]>``.

    :param base_url: The API base URL of the connection (``None``: the default API).
    """
    host = urlsplit(base_url or DEFAULT_BASE_URL).netloc or urlsplit(DEFAULT_BASE_URL).netloc
    return f"gradient://{host}"


def knowledge_base_name(knowledge_base_uuid: str) -> str:
    """The dataset name of a knowledge base."""
    return f"knowledge-bases/{knowledge_base_uuid}"


def data_source_name(knowledge_base_uuid: str, data_source_uuid: str) -> str:
    """The dataset name of one of a knowledge base's data sources."""
    return f"{knowledge_base_name(knowledge_base_uuid)}/data-sources/{data_source_uuid}"


def openlineage_available() -> bool:
    """Whether the OpenLineage provider can be imported."""
    try:
        import airflow.providers.openlineage.extractors  # noqa: F401
        from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
    except ImportError:
        return False
    return Dataset is not None and RunFacet is not None


@functools.cache
def _run_facet_class() -> Any:
    """``GradientIndexingJobRunFacet``, defined on first use (OpenLineage is optional)."""
    import attr
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @attr.define
    class GradientIndexingJobRunFacet(RunFacet):
        """The Gradient indexing job of this run (OpenLineage facets use camelCase fields)."""

        indexingJobUuid: str | None = None
        knowledgeBaseUuid: str | None = None
        phase: str | None = None
        status: str | None = None
        outcome: str | None = None
        totalTokens: int | None = None
        completedDatasources: int | None = None
        totalDatasources: int | None = None
        finishedAt: str | None = None

        _additional_skip_redact = ["indexingJobUuid", "knowledgeBaseUuid", "phase", "status", "outcome"]

        @staticmethod
        def _get_schema() -> str:
            return _FACET_SCHEMA_URL

    return GradientIndexingJobRunFacet


def build_lineage(
    *,
    base_url: str | None,
    knowledge_base_uuid: str,
    data_source_uuids: Iterable[str],
    summary: dict[str, Any] | None,
    indexing_job_uuid: str | None = None,
) -> OperatorLineage[Any, Any] | None:
    """
    The lineage of one indexing run, or ``None`` without the OpenLineage provider.

    :param base_url: The connection's API base URL (names the namespace).
    :param knowledge_base_uuid: The indexed knowledge base (the output).
    :param data_source_uuids: The data sources indexed (the inputs).
    :param summary: The job summary the operator returned (``IndexingJob.summary()``), if any.
    :param indexing_job_uuid: The job uuid when there is no summary (e.g. the task failed).
    """
    if not openlineage_available():
        return None
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    ns = namespace(base_url)
    summary = summary or {}
    facet = _run_facet_class()(
        indexingJobUuid=summary.get("indexing_job_uuid") or indexing_job_uuid,
        knowledgeBaseUuid=knowledge_base_uuid,
        phase=summary.get("phase"),
        status=summary.get("status"),
        outcome=summary.get("outcome"),
        totalTokens=summary.get("total_tokens"),
        completedDatasources=summary.get("completed_datasources"),
        totalDatasources=summary.get("total_datasources"),
        finishedAt=summary.get("finished_at"),
    )
    unique = list(dict.fromkeys(uuid for uuid in data_source_uuids if uuid))
    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=data_source_name(knowledge_base_uuid, uuid)) for uuid in unique],
        outputs=[Dataset(namespace=ns, name=knowledge_base_name(knowledge_base_uuid))],
        run_facets={RUN_FACET_NAME: facet},
    )


def _pull(task_instance: Any, key: str) -> Any:
    try:
        return task_instance.xcom_pull(task_ids=task_instance.task_id, key=key)
    except Exception:  # lineage must never fail the task
        return None


def _read_job(operator: Any, job_uuid: str) -> IndexingJob | None:
    try:
        job: IndexingJob = operator.hook.get_indexing_job(job_uuid)
    except Exception as err:  # lineage must never fail the task
        operator.log.warning("OpenLineage: could not read indexing job %s: %s", job_uuid, err)
        return None
    return job


def lineage_on_complete(operator: Any, task_instance: Any) -> OperatorLineage[Any, Any] | None:
    """
    The lineage of a finished ``GradientStartIndexingJobOperator`` task, or ``None`` without the
    OpenLineage provider (or when nothing is known about the job).

    The job is read from the API (one GET): Airflow's OpenLineage listener runs this in a forked
    process, where the task's own state is all that is safely at hand. XCom is only the fallback
    (for the job uuid after a deferral, and for the result when the API cannot be read).

    :param operator: The operator (``knowledge_base_uuid``, ``data_source_uuids`` rendered).
    :param task_instance: Its task instance.
    """
    if not openlineage_available():
        return None
    from airflow_provider_gradient.links.indexing_job import XCOM_JOB_UUID

    job_uuid = getattr(operator, "_job_uuid", None) or _pull(task_instance, XCOM_JOB_UUID)
    job = _read_job(operator, job_uuid) if isinstance(job_uuid, str) and job_uuid else None
    if job is not None:
        summary = job.summary()
        reported = list(job.data_source_uuids) or [ds.data_source_uuid or "" for ds in job.data_source_jobs]
    else:
        returned = _pull(task_instance, "return_value")
        summary = returned if isinstance(returned, dict) else {}
        reported = [str(item.get("data_source_uuid") or "") for item in summary.get("data_sources") or []]
    explicit = operator.data_source_uuids
    data_sources = [str(uuid) for uuid in explicit] if isinstance(explicit, (list, tuple)) and explicit else reported
    kb_uuid = summary.get("knowledge_base_uuid") or operator.knowledge_base_uuid
    if not isinstance(kb_uuid, str) or not kb_uuid:
        return None
    try:
        base_url: str | None = operator.hook.settings.base_url
    except Exception as err:  # lineage must never fail the task
        operator.log.warning("OpenLineage: could not read the connection's API URL: %s", err)
        base_url = None
    return build_lineage(
        base_url=base_url,
        knowledge_base_uuid=kb_uuid,
        data_source_uuids=data_sources,
        summary=summary,
        indexing_job_uuid=job_uuid if isinstance(job_uuid, str) else None,
    )
