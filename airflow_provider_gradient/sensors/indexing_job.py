"""Sensor that waits for a Gradient indexing job to end, or for a knowledge base to be fresh."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_gradient import _outcome
from airflow_provider_gradient._validation import (
    is_template,
    knowledge_base_name,
    one_knowledge_base,
    optional_uuid,
    seconds,
)
from airflow_provider_gradient._wait import DEFAULT_ERROR_TOLERANCE, JobWait, KnowledgeBaseWait
from airflow_provider_gradient._wait_drivers import step
from airflow_provider_gradient.exceptions import GradientConfigError, GradientJobError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_gradient.hooks.gradient import GradientHook

__all__ = ["GradientIndexingJobSensor"]


class GradientIndexingJobSensor(BaseSensorOperator):
    """
    Wait until an indexing job ends, or until a knowledge base is fresh.

    * With ``indexing_job_uuid``: succeed when the job succeeds (COMPLETED, NO_CHANGES, or PARTIAL
      unless ``fail_on_partial``); fail when it fails or is cancelled.
    * With ``knowledge_base_uuid`` (the data-pipeline dependency): succeed when the knowledge base
      has no job running and its latest job succeeded, optionally finishing at or after
      ``indexed_after`` (e.g. ``"{{ data_interval_end }}"``); fail when that latest job failed.

    With ``outlets``, success emits an asset event with the job's details in its extra (as the
    start operator does). Poke, reschedule and deferrable modes follow the same rules.
    ``soft_fail`` turns a failed job or a timeout into a skip. The sensor never cancels anything.
    Returns (and pushes to XCom) the job's summary.

    :param indexing_job_uuid: The job to wait for. (templated)
    :param knowledge_base_uuid: The knowledge base to wait for. (templated)
    :param knowledge_base_name: Or its name, as the console shows it: looked up in the list of
        knowledge bases once per task try (in reschedule mode, once per poke); no match or several
        matches fail the task. (templated)
    :param indexed_after: Knowledge-base mode: ISO-8601 time the latest job must have finished at or
        after; older successes keep the sensor waiting. (templated)
    :param gradient_conn_id: The ``gradient`` connection. (templated)
    :param fail_on_partial: Count a PARTIAL job as a failure.
    :param deferrable: Wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    :param error_tolerance: How long transient API failures (connection errors, timeouts, 429, 5xx)
        may last without a good answer before the sensor fails with
        :class:`~airflow_provider_gradient.exceptions.GradientError` (seconds or timedelta). Until
        then a failed check counts as "not yet". Deferred, the trigger applies it; in poke mode it
        spans the pokes of one run; in reschedule mode each poke starts anew, so the sensor's
        ``timeout`` bounds the wait.
    """

    template_fields: Sequence[str] = (
        "indexing_job_uuid",
        "knowledge_base_uuid",
        "knowledge_base_name",
        "indexed_after",
        "gradient_conn_id",
    )
    ui_color = "#0069ff"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        indexing_job_uuid: str | None = None,
        knowledge_base_uuid: str | None = None,
        knowledge_base_name: str | None = None,
        indexed_after: str | None = None,
        gradient_conn_id: str = "gradient_default",
        fail_on_partial: bool = False,
        deferrable: bool | None = None,
        error_tolerance: float | timedelta = DEFAULT_ERROR_TOLERANCE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60.0)
        super().__init__(**kwargs)
        one_knowledge_base(type(self).__name__, knowledge_base_uuid, knowledge_base_name, required=False)
        if [indexing_job_uuid, knowledge_base_uuid, knowledge_base_name].count(None) != 2:
            raise GradientConfigError(
                "GradientIndexingJobSensor needs exactly one of indexing_job_uuid (wait for a job), "
                "knowledge_base_uuid or knowledge_base_name (wait until the knowledge base is fresh)."
            )
        if indexed_after is not None and indexing_job_uuid is not None:
            raise GradientConfigError("indexed_after only applies with knowledge_base_uuid or knowledge_base_name.")
        if self.poke_interval <= 0:
            raise GradientConfigError(f"poke_interval must be greater than 0, got {self.poke_interval!r}.")
        self.indexing_job_uuid = indexing_job_uuid
        self.knowledge_base_uuid = knowledge_base_uuid
        self.knowledge_base_name = knowledge_base_name
        self.indexed_after = indexed_after
        self.gradient_conn_id = gradient_conn_id
        self.fail_on_partial = fail_on_partial
        self.error_tolerance = seconds(error_tolerance, "error_tolerance")
        self._waiting: JobWait | KnowledgeBaseWait | None = None
        self.deferrable = (
            bool(conf.getboolean("operators", "default_deferrable", fallback=False))
            if deferrable is None
            else deferrable
        )
        for name in ("indexing_job_uuid", "knowledge_base_uuid"):
            value = getattr(self, name)
            if value is not None and not is_template(value):
                optional_uuid(value, name, required=True)
        if indexed_after is not None and not is_template(indexed_after):
            _outcome.parse_time(indexed_after)

    @cached_property
    def hook(self) -> GradientHook:
        """The hook of ``gradient_conn_id``, created at run time."""
        from airflow_provider_gradient.hooks.gradient import GradientHook

        return GradientHook(gradient_conn_id=self.gradient_conn_id)

    def _targets(self) -> tuple[str | None, str | None]:
        by_name = self.knowledge_base_name is not None and self.knowledge_base_uuid is None
        job = optional_uuid(
            self.indexing_job_uuid, "indexing_job_uuid", required=self.knowledge_base_uuid is None and not by_name
        )
        _outcome.parse_time(self.indexed_after)  # rendered: checked before any request
        if job:
            return job, None
        if by_name:
            # Looked up once: the uuid stays on this instance for the next pokes.
            name = knowledge_base_name(self.knowledge_base_name)
            self.knowledge_base_uuid = self.hook.knowledge_base_uuid_for(name)
        return None, optional_uuid(self.knowledge_base_uuid, "knowledge_base_uuid", required=True)

    def _wait(self) -> JobWait | KnowledgeBaseWait:
        """
        This instance's wait. In poke mode one instance makes every poke of a try, so the error
        tolerance spans them; in reschedule mode each poke is a new instance and starts anew.
        """
        if self._waiting is None:
            job_uuid, kb_uuid = self._targets()
            common: dict[str, Any] = {"poll_interval": self.poke_interval, "error_tolerance": self.error_tolerance}
            if job_uuid:
                self._waiting = JobWait(job_uuid, cancel_on_timeout=False, **common)
            else:
                assert kb_uuid is not None
                self._waiting = KnowledgeBaseWait(kb_uuid, indexed_after=self.indexed_after, **common)
        return self._waiting

    def _check(self) -> dict[str, Any] | None:
        """One poll: the event if the wait is over, else ``None``."""
        return step(self._wait(), self.hook, log=self.log)

    def _result(self, event: dict[str, Any], context: Context) -> dict[str, Any]:
        try:
            summary = _outcome.finish(event, fail_on_partial=self.fail_on_partial, log=self.log)
        except GradientJobError as err:
            if self.soft_fail:
                raise AirflowSkipException(f"{err} (skipped: soft_fail=True)") from err
            raise
        _outcome.annotate_outlets(context.get("outlet_events"), self.outlets, summary)
        return summary

    def poke(self, context: Context) -> PokeReturnValue:
        """
        Check once; done when the job or knowledge base reached a verdict.

        A transient API failure (connection, timeout, 429, 5xx) that outlasted the hook's retries
        counts as "not yet" until such failures have lasted ``error_tolerance``, as in the trigger
        (in poke mode, across the pokes of a try; in reschedule mode each poke starts anew, so the
        sensor's ``timeout`` bounds the wait).
        """
        event = self._check()
        if event is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(event, context))

    def execute(self, context: Context) -> Any:
        """Poke or reschedule as usual; in deferrable mode check once, then wait in the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        self._targets()  # validate rendered values before anything is sent
        event = self._check()
        if event is not None:
            return self._result(event, context)
        from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

        job_uuid, kb_uuid = self._targets()
        self.defer(
            trigger=GradientIndexingJobTrigger(
                indexing_job_uuid=job_uuid,
                knowledge_base_uuid=kb_uuid,
                gradient_conn_id=self.gradient_conn_id,
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
                cancel_on_kill=False,
                cancel_on_timeout=False,
                indexed_after=str(self.indexed_after) if self.indexed_after else None,
                error_tolerance=self.error_tolerance,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the deferred wait."""
        event = _outcome.validate_event(event)
        if event["status"] == "timeout":
            raise AirflowSensorTimeout(f"{event.get('message')} (sensor timeout {self.timeout}s)")
        return self._result(event, context)
