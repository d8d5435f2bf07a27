"""Operators that start and cancel Gradient knowledge-base indexing jobs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_gradient import _outcome
from airflow_provider_gradient._polling import next_delay
from airflow_provider_gradient._validation import (
    is_template,
    knowledge_base_name,
    one_knowledge_base,
    optional_seconds,
    optional_uuid,
    seconds,
    uuid_list_or_none,
)
from airflow_provider_gradient._wait import DEFAULT_ERROR_TOLERANCE, JobWait
from airflow_provider_gradient._wait_drivers import CANCEL_TIMEOUT, cancel, wait_for_event
from airflow_provider_gradient.exceptions import (
    GradientConfigError,
    GradientConflictError,
    GradientDatabaseNotReadyError,
    GradientError,
    GradientJobTimeoutError,
    GradientNotFoundError,
)
from airflow_provider_gradient.links.indexing_job import XCOM_JOB_URL, XCOM_JOB_UUID, GradientIndexingJobLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_gradient.hooks.gradient import GradientHook
    from airflow_provider_gradient.models import IndexingJob, KnowledgeBaseDetails
    from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

__all__ = ["GradientCancelIndexingJobOperator", "GradientStartIndexingJobOperator"]

IfJobRunning = Literal["wait", "adopt", "fail"]
IF_JOB_RUNNING_CHOICES = ("wait", "adopt", "fail")
#: Seconds ``on_kill`` may spend cancelling the job before the worker gives up on it.
ON_KILL_TIMEOUT = CANCEL_TIMEOUT
#: How many times a start is attempted when the knowledge base turns out busy or not ready.
MAX_START_ATTEMPTS = 5


def _default_deferrable() -> bool:
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


class _GradientOperatorMixin:
    """What both operators share: the connection and a best-effort, bounded cancel."""

    gradient_conn_id: str
    knowledge_base_uuid: str | None
    knowledge_base_name: str | None
    log: Any

    @cached_property
    def hook(self) -> GradientHook:
        """The hook of ``gradient_conn_id`` (created at run time, never at DAG parse)."""
        from airflow_provider_gradient.hooks.gradient import GradientHook

        return GradientHook(gradient_conn_id=self.gradient_conn_id)

    def _resolve_knowledge_base(self, known: str | None = None) -> None:
        """
        With ``knowledge_base_name``: its uuid becomes ``knowledge_base_uuid``, read from the list of
        knowledge bases once per task try (``known``, a uuid this try already has, spares the read).
        """
        if self.knowledge_base_name is None or self.knowledge_base_uuid is not None:
            return
        name = knowledge_base_name(self.knowledge_base_name)
        self.knowledge_base_uuid = known or self.hook.knowledge_base_uuid_for(name)

    def _cancel_bounded(self, indexing_job_uuid: str, reason: str, timeout: float | None = None) -> bool:
        """Cancel a job without ever raising or blocking longer than ``timeout`` (:data:`ON_KILL_TIMEOUT`)."""
        timeout = ON_KILL_TIMEOUT if timeout is None else timeout
        return cancel(self.hook, indexing_job_uuid, reason, log=self.log, timeout=timeout) is not None


class GradientStartIndexingJobOperator(_GradientOperatorMixin, BaseOperator):
    """
    Start a knowledge-base indexing job and (by default) wait until it ends, in a worker or deferred.

    The job uuid and its console URL are pushed to XCom (``indexing_job_uuid``,
    ``indexing_job_url``) as soon as the job exists, so the "View indexing job" link works while the
    task waits and after it fails. The task returns a small JSON summary of the job.

    It never starts two jobs for one task: the job uuid is kept in the task state store (Airflow
    3.3+), so a retry or a worker crash reattaches to the running job; an ambiguous start request is
    reconciled rather than re-sent. The stored uuid is removed once the job ends, so clearing the
    task later starts a fresh job.

    Outcomes: COMPLETED and NO_CHANGES succeed; PARTIAL succeeds with a warning (fails with
    ``fail_on_partial``); FAILED fails (and retries as configured); CANCELLED fails without retry;
    running past ``timeout`` cancels the job and fails.

    With ``outlets`` (e.g. ``[knowledge_base_asset(knowledge_base_uuid)]``, the knowledge base's Asset
    from :mod:`airflow_provider_gradient.assets`) a successful task emits an asset event whose extra holds
    ``indexing_job_uuid``, ``knowledge_base_uuid``, ``status``, ``outcome`` and ``total_tokens``.

    .. seealso:: ``docs/operators/start.md`` and ``example_dags/``.

    :param knowledge_base_uuid: The knowledge base to index. (templated)
    :param knowledge_base_name: Or its name, as the console shows it (exactly one of the two): looked
        up in the list of knowledge bases once per task try; no match or several matches fail the
        task before anything starts. (templated)
    :param data_source_uuids: Only these data sources (a list); ``None`` indexes all. (templated)
    :param gradient_conn_id: The ``gradient`` connection. (templated)
    :param wait_for_completion: Wait for the job to end; ``False`` returns once it is started.
    :param deferrable: Wait in the triggerer, freeing the worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: The longest wait between status polls (seconds or timedelta). Polls start
        sooner and back off towards it.
    :param timeout: The maximum wait for the job (seconds or timedelta; ``None`` waits forever).
        When it runs out the job is cancelled and the task fails. ``execution_timeout`` also caps it.
    :param fail_on_partial: Fail when the job ends PARTIAL (some items failed to index).
    :param cancel_on_kill: Cancel the job when the task is killed: worker SIGTERM (sync wait) or,
        on Airflow 3.3+, a user marking the deferred task failed/success or clearing it.
    :param if_job_running: What to do when the knowledge base already has a job running (started by
        someone else, or automatically): ``"wait"`` for it to end, then start a new one (default;
        the index is guaranteed to see data changed before the task started); ``"adopt"`` it as this
        task's job; ``"fail"``.
    :param database_ready_timeout: How long to wait for a new knowledge base's database to come
        online before starting (seconds or timedelta).
    :param error_tolerance: While waiting (in the worker or deferred): how long transient API failures
        (connection errors, timeouts, 429, 5xx) may last without a good answer before the task fails
        with :class:`~airflow_provider_gradient.exceptions.GradientError` (seconds or timedelta).
        A retry reattaches to the job.
    """

    template_fields: Sequence[str] = (
        "knowledge_base_uuid",
        "knowledge_base_name",
        "data_source_uuids",
        "gradient_conn_id",
    )
    template_fields_renderers = {"data_source_uuids": "json"}
    ui_color = "#0069ff"
    ui_fgcolor = "#ffffff"
    operator_extra_links = (GradientIndexingJobLink(),)

    #: The task-state-store key holding the job uuid across retries. Do not rename.
    STATE_KEY = "gradient_indexing_job_uuid"
    #: The task-state-store key holding when a start request was sent whose answer is not stored yet.
    PENDING_KEY = "gradient_indexing_job_start_sent_at"

    def __init__(
        self,
        *,
        knowledge_base_uuid: str | None = None,
        knowledge_base_name: str | None = None,
        data_source_uuids: list[str] | None = None,
        gradient_conn_id: str = "gradient_default",
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float | timedelta = 30.0,
        timeout: float | timedelta | None = timedelta(hours=24),
        fail_on_partial: bool = False,
        cancel_on_kill: bool = True,
        if_job_running: IfJobRunning = "wait",
        database_ready_timeout: float | timedelta = 600.0,
        error_tolerance: float | timedelta = DEFAULT_ERROR_TOLERANCE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        one_knowledge_base(type(self).__name__, knowledge_base_uuid, knowledge_base_name)
        self.knowledge_base_uuid = knowledge_base_uuid
        self.knowledge_base_name = knowledge_base_name
        self.data_source_uuids = data_source_uuids
        self.gradient_conn_id = gradient_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        self.poll_interval = seconds(poll_interval, "poll_interval")
        self.timeout = optional_seconds(timeout, "timeout")
        self.fail_on_partial = fail_on_partial
        self.cancel_on_kill = cancel_on_kill
        if if_job_running not in IF_JOB_RUNNING_CHOICES:
            raise GradientConfigError(
                f"if_job_running must be one of {IF_JOB_RUNNING_CHOICES}, got {if_job_running!r}."
            )
        self.if_job_running: IfJobRunning = if_job_running
        self.database_ready_timeout = seconds(database_ready_timeout, "database_ready_timeout")
        self.error_tolerance = seconds(error_tolerance, "error_tolerance")
        # Literal (non-templated) values are checked now, at DAG parse; templates after rendering.
        self._inputs(parse_time=True)
        self._job_uuid: str | None = None

    # ----------------------------------------------------------------------------------------
    # Inputs
    # ----------------------------------------------------------------------------------------

    def _inputs(self, *, parse_time: bool = False) -> tuple[str, list[str] | None]:
        kb = self.knowledge_base_uuid
        ds = self.data_source_uuids
        if parse_time and (is_template(kb) or not isinstance(kb, (str, type(None)))):
            kb_checked = ""
        elif kb is None and self.knowledge_base_name is not None:
            kb_checked = ""  # not looked up yet: see _resolve_knowledge_base
        else:
            kb_checked = optional_uuid(kb, "knowledge_base_uuid", required=True) or ""
        ds_checked = None if parse_time and is_template(ds) else uuid_list_or_none(ds, "data_source_uuids")
        return kb_checked, ds_checked

    def _deadline(self) -> float | None:
        limits = [self.timeout, self.execution_timeout.total_seconds() if self.execution_timeout else None]
        known = [limit for limit in limits if limit is not None]
        return time.time() + min(known) if known else None

    # ----------------------------------------------------------------------------------------
    # Execution
    # ----------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Start (or reattach to) the job, publish its link, then wait as configured."""
        self._inputs()  # rendered values are checked before any request
        self._resolve_knowledge_base()
        knowledge_base_uuid, data_source_uuids = self._inputs()
        deadline = self._deadline()
        job = self._reattach(context) or self._start(context, knowledge_base_uuid, data_source_uuids, deadline)
        return self._follow(context, job, deadline)

    def execute_after_running_job(self, context: Context, event: Any = None, deadline: float | None = None) -> Any:
        """Resume after waiting (deferred) for a job that was already running: now start ours."""
        event = _outcome.validate_event(event)
        self._resolve_knowledge_base(event.get("knowledge_base_uuid"))
        if event["status"] == "timeout":
            raise GradientJobTimeoutError(
                f"Knowledge base {self.knowledge_base_uuid} was still busy with indexing job "
                f"{event.get('indexing_job_uuid')} when the maximum wait ran out; no job was started.",
                indexing_job_uuid=event.get("indexing_job_uuid"),
            )
        self.log.info("The job that was running ended (%s); starting ours.", event["status"])
        knowledge_base_uuid, data_source_uuids = self._inputs()
        job = self._start(context, knowledge_base_uuid, data_source_uuids, deadline)
        return self._follow(context, job, deadline)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the deferred wait: turn the trigger's event into the task's result."""
        return self._finish(context, event)

    def _reattach(self, context: Context) -> IndexingJob | None:
        """The job an earlier attempt of this task started, if it should be followed."""
        store = context.get("task_state_store")
        if store is None:
            return None
        uuid = store.get(self.STATE_KEY) or self._adopt_pending_start(store)
        if not uuid:
            return None
        try:
            job = self.hook.get_indexing_job(str(uuid))
        except GradientNotFoundError:
            self.log.warning("Indexing job %s from an earlier attempt no longer exists; starting anew.", uuid)
            store.delete(self.STATE_KEY)
            return None
        outcome = job.outcome
        if not outcome.is_terminal:
            self.log.info("Reattaching to indexing job %s started by an earlier attempt (%s).", uuid, job.describe())
            return job
        if outcome.is_success and not (outcome.value == "partial" and self.fail_on_partial):
            self.log.info("Indexing job %s from an earlier attempt already succeeded; not starting another.", uuid)
            return job
        self.log.info("Indexing job %s from an earlier attempt ended (%s); starting a new one.", uuid, job.describe())
        store.delete(self.STATE_KEY)
        return None

    def _adopt_pending_start(self, store: Any) -> str | None:
        """
        An earlier attempt died while its start request was in flight (after the POST, before the
        job uuid was stored): find the job that request created, so the retry follows it.
        """
        pending_since = store.get(self.PENDING_KEY)
        if not pending_since:
            return None
        knowledge_base_uuid, data_source_uuids = self._inputs()
        job = self.hook.find_started_job(knowledge_base_uuid, float(pending_since), data_source_uuids, checks=1)
        store.delete(self.PENDING_KEY)
        if job is None or not job.uuid:
            self.log.info("An earlier attempt's start request created no job; starting anew.")
            return None
        self.log.info("An earlier attempt's start request created indexing job %s; following it.", job.uuid)
        store.set(self.STATE_KEY, job.uuid)
        return job.uuid

    def _start(
        self, context: Context, knowledge_base_uuid: str, data_source_uuids: list[str] | None, deadline: float | None
    ) -> IndexingJob:
        """Start a job, honouring ``if_job_running`` and waiting for the database when needed."""
        store = context.get("task_state_store")
        policy: IfJobRunning = self.if_job_running
        ti = context.get("ti")
        if store is None and policy == "wait" and ti is not None and getattr(ti, "try_number", 1) > 1:
            # Without a task state store (Airflow < 3.3) a retry cannot know its own earlier job;
            # a running job on the knowledge base is most likely it, so follow it instead of waiting.
            self.log.info("No task state store (Airflow < 3.3): a retry adopts a job that is still running.")
            policy = "adopt"
        for _ in range(MAX_START_ATTEMPTS):
            details = self._ready_knowledge_base(knowledge_base_uuid)
            running = details.knowledge_base.last_indexing_job
            if running is not None and running.uuid and not running.is_terminal:
                job = self._handle_running(context, running, policy, deadline)
                if job is not None:
                    return self._remember(context, job)
                continue
            if store is not None:
                # Marks the window in which a start may reach the API before its uuid is stored.
                store.set(self.PENDING_KEY, time.time())
            try:
                job = self.hook.start_indexing_job(
                    knowledge_base_uuid, data_source_uuids, previous_job_uuid=running.uuid if running else None
                )
            except (GradientConflictError, GradientDatabaseNotReadyError) as err:
                # Refused for sure: no job was created, so no retry should look for one.
                if store is not None:
                    store.delete(self.PENDING_KEY)
                self.log.info("The knowledge base refused the start for now (%s).", err)
                continue
            self.log.info("Started indexing job %s on knowledge base %s.", job.uuid, knowledge_base_uuid)
            return self._remember(context, job)
        raise GradientError(
            f"Could not start an indexing job on knowledge base {knowledge_base_uuid} after "
            f"{MAX_START_ATTEMPTS} attempts: it stayed busy or its database stayed unavailable."
        )

    def _handle_running(
        self, context: Context, running: IndexingJob, policy: IfJobRunning, deadline: float | None
    ) -> IndexingJob | None:
        """Apply ``if_job_running`` to a job found running; return it to adopt, ``None`` to start after."""
        what = f"Knowledge base {self.knowledge_base_uuid} already has indexing job {running.uuid} running"
        if policy == "fail":
            raise GradientError(
                f"{what} ({running.describe()}) and if_job_running='fail'. Use 'wait' to start a new job "
                "after it, or 'adopt' to follow that job."
            )
        if policy == "adopt":
            self.log.info("%s; adopting it (if_job_running='adopt').", what)
            return running
        self.log.info("%s; waiting for it to end before starting ours (if_job_running='wait').", what)
        if self.deferrable:
            self.defer(
                trigger=self._trigger(running.uuid or "", deadline, cancel=False),
                method_name="execute_after_running_job",
                kwargs={"deadline": deadline},
                timeout=None,
            )
        event = self._wait(running.uuid or "", deadline, cancel=False)
        if event["status"] == "timeout":
            raise GradientJobTimeoutError(
                f"{what} and it did not end within the maximum wait; no job was started.",
                indexing_job_uuid=running.uuid,
            )
        return None

    def _ready_knowledge_base(self, knowledge_base_uuid: str) -> KnowledgeBaseDetails:
        """The knowledge base, once its database is ONLINE (bounded by ``database_ready_timeout``)."""
        give_up = time.monotonic() + self.database_ready_timeout
        polls = 0
        while True:
            details = self.hook.get_knowledge_base(knowledge_base_uuid)
            if details.database_ready:
                return details
            if time.monotonic() >= give_up:
                raise GradientDatabaseNotReadyError(
                    http_status=409,
                    error_id="database_not_ready",
                    message=f"Knowledge base {knowledge_base_uuid}'s database is still "
                    f"{details.database_status} after {self.database_ready_timeout:.0f}s.",
                    hint="Raise database_ready_timeout, or check the knowledge base in the console.",
                )
            self.log.info("Waiting for the knowledge base's database (%s).", details.database_status)
            delay = next_delay(min(self.poll_interval, 30.0), polls)
            time.sleep(min(delay, max(0.0, give_up - time.monotonic())))
            polls += 1

    def _remember(self, context: Context, job: IndexingJob) -> IndexingJob:
        """Store the job uuid for retries before doing anything else with the job."""
        store = context.get("task_state_store")
        if store is not None and job.uuid:
            store.set(self.STATE_KEY, job.uuid)
            store.delete(self.PENDING_KEY)
        return job

    def _forget(self, context: Context) -> None:
        store = context.get("task_state_store")
        if store is not None:
            store.delete(self.STATE_KEY)
            store.delete(self.PENDING_KEY)

    def _follow(self, context: Context, job: IndexingJob, deadline: float | None) -> Any:
        """Publish the job's link, then finish inline, return, defer or wait."""
        self._job_uuid = job.uuid
        ti = context["ti"]
        ti.xcom_push(key=XCOM_JOB_UUID, value=job.uuid)
        ti.xcom_push(key=XCOM_JOB_URL, value=self.hook.console_url(job.knowledge_base_uuid, job.uuid))
        if not self.wait_for_completion:
            self._forget(context)
            return job.summary()
        event = _outcome.job_event(job)
        if event is None:
            if self.deferrable:
                self.log.info("Deferring until indexing job %s ends (%s).", job.uuid, job.describe())
                trigger = self._trigger(job.uuid or "", deadline, cancel=True)
                self.defer(trigger=trigger, method_name="execute_complete", timeout=None)
            event = self._wait(job.uuid or "", deadline, cancel=True)
        return self._finish(context, event)

    def _trigger(self, indexing_job_uuid: str, deadline: float | None, *, cancel: bool) -> GradientIndexingJobTrigger:
        from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

        return GradientIndexingJobTrigger(
            indexing_job_uuid=indexing_job_uuid,
            knowledge_base_uuid=self.knowledge_base_uuid,
            gradient_conn_id=self.gradient_conn_id,
            poll_interval=self.poll_interval,
            end_time=deadline,
            cancel_on_kill=cancel and self.cancel_on_kill,
            cancel_on_timeout=cancel,
            error_tolerance=self.error_tolerance,
        )

    def _wait(self, indexing_job_uuid: str, deadline: float | None, *, cancel: bool) -> dict[str, Any]:
        """Wait in this worker by the same rules as the trigger (``cancel``: at the deadline)."""
        wait = JobWait(
            indexing_job_uuid,
            poll_interval=self.poll_interval,
            end_time=deadline,
            error_tolerance=self.error_tolerance,
            cancel_on_timeout=cancel,
        )
        return wait_for_event(wait, self.hook, log=self.log)

    def _finish(self, context: Context, event: Any) -> Any:
        event = _outcome.validate_event(event)
        status = event["status"]
        uuid = event.get("indexing_job_uuid") or self._job_uuid
        self._job_uuid = uuid  # also after a deferral, so lineage and on_kill know the job without XCom
        if status == "timeout" and not event.get("cancelled") and uuid:
            self._cancel_bounded(uuid, "the maximum wait ran out")
        if status != "error":
            # The job ended (or was given up on and cancelled): a later clear or retry starts anew.
            # On "error" the job may still run, so a retry must be able to reattach to it.
            self._forget(context)
        summary = _outcome.finish(event, fail_on_partial=self.fail_on_partial, log=self.log)
        self._annotate_outlets(context, summary)
        return summary

    def _annotate_outlets(self, context: Context, summary: dict[str, Any]) -> None:
        """Attach the job's details to the asset events of this task's outlets."""
        _outcome.annotate_outlets(context.get("outlet_events"), self.outlets, summary)

    def on_kill(self) -> None:
        """Worker SIGTERM or ``execution_timeout`` during a sync wait: cancel the job (bounded)."""
        if self.cancel_on_kill and self._job_uuid:
            self._cancel_bounded(self._job_uuid, "the task was killed")

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: data sources in, knowledge base out, the job as a run facet (``docs/events.md``)."""
        from airflow_provider_gradient._openlineage import lineage_on_complete

        return lineage_on_complete(self, task_instance)


class GradientCancelIndexingJobOperator(_GradientOperatorMixin, BaseOperator):
    """
    Cancel an indexing job: idempotent, and safe as a teardown or an on-failure task.

    Give the job (typically the start task's XCom) or a knowledge base (its running job is
    cancelled). A job that already ended, a job that no longer exists, or no job at all (the start
    task never ran, so the XCom is empty) is a logged no-op, not a failure. Returns the job's
    summary, or ``None`` when there was nothing to cancel.

    Typical use::

        cancel = GradientCancelIndexingJobOperator(
            task_id="cancel",
            indexing_job_uuid="{{ ti.xcom_pull(task_ids='reindex', key='indexing_job_uuid') }}",
        )
        reindex >> downstream >> cancel.as_teardown(setups=reindex)

    :param indexing_job_uuid: The job to cancel. (templated)
    :param knowledge_base_uuid: Cancel this knowledge base's running job (when no job uuid is
        given). (templated)
    :param knowledge_base_name: Or the knowledge base's name, as the console shows it (not with
        ``knowledge_base_uuid``); looked up only when there is no job uuid. (templated)
    :param gradient_conn_id: The ``gradient`` connection. (templated)
    :param wait_for_cancellation: Wait until the job reports it has ended.
    :param cancellation_timeout: The maximum wait for that (seconds or timedelta).
    :param poll_interval: Seconds between polls while waiting.
    """

    template_fields: Sequence[str] = (
        "indexing_job_uuid",
        "knowledge_base_uuid",
        "knowledge_base_name",
        "gradient_conn_id",
    )
    ui_color = "#ff6b6b"

    def __init__(
        self,
        *,
        indexing_job_uuid: str | None = None,
        knowledge_base_uuid: str | None = None,
        knowledge_base_name: str | None = None,
        gradient_conn_id: str = "gradient_default",
        wait_for_cancellation: bool = False,
        cancellation_timeout: float | timedelta = 300.0,
        poll_interval: float | timedelta = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if indexing_job_uuid is None and knowledge_base_uuid is None and knowledge_base_name is None:
            raise GradientConfigError(
                "GradientCancelIndexingJobOperator needs indexing_job_uuid (e.g. the start task's XCom "
                "'indexing_job_uuid'), knowledge_base_uuid or knowledge_base_name."
            )
        one_knowledge_base(type(self).__name__, knowledge_base_uuid, knowledge_base_name, required=False)
        self.indexing_job_uuid = indexing_job_uuid
        self.knowledge_base_uuid = knowledge_base_uuid
        self.knowledge_base_name = knowledge_base_name
        self.gradient_conn_id = gradient_conn_id
        self.wait_for_cancellation = wait_for_cancellation
        self.cancellation_timeout = seconds(cancellation_timeout, "cancellation_timeout")
        self.poll_interval = seconds(poll_interval, "poll_interval")
        for name in ("indexing_job_uuid", "knowledge_base_uuid"):
            value = getattr(self, name)
            if isinstance(value, str) and not is_template(value):
                optional_uuid(value, name)

    def execute(self, context: Context) -> Any:
        """Cancel the job if it is still running; a no-op otherwise."""
        job = self._target()
        if job is None:
            return None
        if job.is_terminal:
            self.log.info("Indexing job %s already ended (%s); nothing to cancel.", job.uuid, job.describe())
            return job.summary()
        uuid = job.uuid or ""
        try:
            job = self.hook.cancel_indexing_job(uuid)
        except GradientNotFoundError:
            self.log.info("Indexing job %s no longer exists; nothing to cancel.", uuid)
            return None
        except GradientError as err:
            # Some APIs refuse to cancel a job that has just ended: re-read it before failing.
            job = self.hook.get_indexing_job(uuid)
            if not job.is_terminal:
                raise
            self.log.info("Cancel refused (%s) but the job already ended (%s).", err, job.describe())
            return job.summary()
        self.log.info("Asked to cancel indexing job %s: %s.", uuid, job.describe())
        if self.wait_for_cancellation:
            job = self._await_end(uuid, job)
        return job.summary()

    def _target(self) -> IndexingJob | None:
        uuid = optional_uuid(self.indexing_job_uuid, "indexing_job_uuid")
        if uuid:
            try:
                return self.hook.get_indexing_job(uuid)
            except GradientNotFoundError:
                self.log.info("Indexing job %s does not exist; nothing to cancel.", uuid)
                return None
        kb = optional_uuid(self.knowledge_base_uuid, "knowledge_base_uuid")
        if kb is None and self.knowledge_base_name is not None:
            self._resolve_knowledge_base()
            kb = self.knowledge_base_uuid
        if kb:
            job = self.hook.get_knowledge_base(kb).knowledge_base.last_indexing_job
            if job is not None and job.uuid and not job.is_terminal:
                return job
            self.log.info("Knowledge base %s has no indexing job running; nothing to cancel.", kb)
            return None
        self.log.info("No indexing job to cancel: the job uuid is empty (the start task probably never started one).")
        return None

    def _await_end(self, uuid: str, job: IndexingJob) -> IndexingJob:
        """Wait until the job reports its end, by the rules of every wait (its error tolerance too)."""
        wait = JobWait(
            uuid,
            poll_interval=self.poll_interval,
            end_time=time.time() + self.cancellation_timeout,
            cancel_on_timeout=False,
        )
        wait.last_job = job
        if not job.is_terminal:
            event = wait_for_event(wait, self.hook, log=self.log)
            job = wait.last_job or job
            self._raise_unless_ended(uuid, job, event)
        self.log.info("Indexing job %s ended: %s.", uuid, job.describe())
        return job

    def _raise_unless_ended(self, uuid: str, job: IndexingJob, event: dict[str, Any]) -> None:
        if event["status"] == "timeout":
            raise GradientJobTimeoutError(
                f"Indexing job {uuid} still reports {job.describe()} {self.cancellation_timeout:.0f}s "
                "after it was asked to cancel.",
                indexing_job_uuid=uuid,
                phase=job.phase,
                status=job.status,
            )
        if event["status"] == "error":
            _outcome.finish(event, fail_on_partial=False, log=self.log)  # raises the wait's error
