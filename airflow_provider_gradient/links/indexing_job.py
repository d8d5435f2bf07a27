"""The "View indexing job" extra link."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

__all__ = ["XCOM_JOB_URL", "XCOM_JOB_UUID", "GradientIndexingJobLink"]

#: XCom key of the job uuid, pushed before the task waits.
XCOM_JOB_UUID = "indexing_job_uuid"
#: XCom key of the job's console URL, pushed before the task waits.
XCOM_JOB_URL = "indexing_job_url"


class GradientIndexingJobLink(BaseOperatorLink):
    """Link to the indexing job's page in the DigitalOcean console (from the XCom ``indexing_job_url``)."""

    name = "View indexing job"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The console URL the start task pushed, or ``""`` before it started a job."""
        # Imported here: on Airflow 3.0 the XCom module pulls Starlette into every DAG parse.
        from airflow.providers.common.compat.sdk import XCom

        return str(XCom.get_value(key=XCOM_JOB_URL, ti_key=ti_key) or "")
