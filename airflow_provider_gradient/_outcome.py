"""
Events and task results: one set of rules for the trigger, the sync wait, the sensor and the operators.

A wait (:mod:`~airflow_provider_gradient._wait`) produces an *event* (a dict of JSON primitives, the
same whether it comes from the trigger or from a sync poll loop); :func:`finish` turns an event
into the task's result or exception.
Unknown or missing statuses are errors, never success.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_gradient.exceptions import (
    GradientConfigError,
    GradientError,
    GradientJobCancelledError,
    GradientJobError,
    GradientJobTimeoutError,
)

if TYPE_CHECKING:  # the pydantic models cost ~0.1 s to build: not at DAG parse time
    from airflow_provider_gradient.models import IndexingJob, KnowledgeBaseDetails

__all__ = [
    "EVENT_STATUSES",
    "OUTLET_EXTRA_KEYS",
    "annotate_outlets",
    "error_event",
    "finish",
    "job_event",
    "knowledge_base_event",
    "parse_time",
    "timeout_event",
    "validate_event",
]

#: Every status an event may carry.
EVENT_STATUSES = frozenset({"success", "partial", "failed", "cancelled", "timeout", "error"})

#: Keyed by ``JobOutcome`` values (a ``str`` enum, so its members look up the same).
_STATUS_OF_OUTCOME = {
    "succeeded": "success",
    "no_changes": "success",
    "partial": "partial",
    "failed": "failed",
    "cancelled": "cancelled",
}


def _base(job: IndexingJob | None, uuid: str | None, status: str, message: str) -> dict[str, Any]:
    return {
        "status": status,
        "indexing_job_uuid": (job.uuid if job else None) or uuid,
        "knowledge_base_uuid": job.knowledge_base_uuid if job else None,
        "phase": job.phase if job else None,
        "job_status": job.status if job else None,
        "outcome": job.outcome.value if job else None,
        "message": message,
        "errors": job.error_summary() if job else [],
        "summary": job.summary() if job else None,
    }


def job_event(job: IndexingJob) -> dict[str, Any] | None:
    """The event for a job, or ``None`` while it is still running."""
    outcome = job.outcome
    if not outcome.is_terminal:
        return None
    status = _STATUS_OF_OUTCOME[outcome]
    message = f"Indexing job {job.uuid} ended: {job.describe()}"
    if job.token_count is not None:
        message += f", {job.token_count} tokens"
    return _base(job, job.uuid, status, message + ".")


def parse_time(value: Any, param: str = "indexed_after") -> datetime | None:
    """Parse an ISO-8601 time (or datetime) into an aware UTC datetime; ``None`` stays ``None``."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise GradientConfigError(
                f"{param} must be an ISO-8601 time such as '2026-01-31T12:00:00+00:00', got {value!r}."
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def knowledge_base_event(details: KnowledgeBaseDetails, indexed_after: datetime | None) -> dict[str, Any] | None:
    """
    The event for "is this knowledge base fresh?", or ``None`` to keep waiting.

    Fresh means: no job running and the latest job succeeded (COMPLETED, NO_CHANGES or PARTIAL),
    and, with ``indexed_after``, that job finished at or after that time. A latest job that failed
    ends the wait as failed, unless ``indexed_after`` is set and the job is older (a newer job may
    still come).
    """
    kb = details.knowledge_base
    job = kb.last_indexing_job
    if job is None or not job.uuid or not job.outcome.is_terminal:
        return None
    finished = job.finished_at or job.updated_at
    if indexed_after is not None and (finished is None or finished < indexed_after):
        return None
    event = job_event(job)
    if event is not None:
        event["knowledge_base_uuid"] = event["knowledge_base_uuid"] or kb.uuid
        event["message"] = f"Knowledge base {kb.uuid}: latest " + event["message"][0].lower() + event["message"][1:]
    return event


def timeout_event(job: IndexingJob | None, uuid: str | None, *, cancelled: bool, waited: str) -> dict[str, Any]:
    """The event for a wait whose deadline passed (``cancelled``: the job was cancelled on the way out)."""
    state = f" Last seen: {job.describe()}." if job else ""
    action = " The job was cancelled." if cancelled else ""
    event = _base(job, uuid, "timeout", f"Indexing job {uuid} did not finish within {waited}.{state}{action}")
    event["cancelled"] = cancelled
    return event


def error_event(uuid: str | None, error: BaseException, job: IndexingJob | None = None) -> dict[str, Any]:
    """The event for a wait that could not go on (a non-retryable error, or errors that lasted too long)."""
    event = _base(job, uuid, "error", f"Waiting for indexing job {uuid} failed: {error}")
    event["request_id"] = getattr(error, "request_id", None)
    return event


def validate_event(event: Any) -> dict[str, Any]:
    """
    Check an event strictly: a dict whose ``status`` is one of :data:`EVENT_STATUSES`.

    :raises GradientError: For a missing event, a missing or unknown status. Never read as success.
    """
    if not isinstance(event, dict):
        raise GradientError(f"Expected a trigger event (a dict), got {type(event).__name__}: {event!r}.")
    status = event.get("status")
    if status not in EVENT_STATUSES:
        raise GradientError(
            f"The trigger event has an unknown status {status!r} (expected one of "
            f"{sorted(EVENT_STATUSES)}); refusing to treat it as success: {event!r}."
        )
    return event


def finish(event: Any, *, fail_on_partial: bool, log: Any = None) -> dict[str, Any]:
    """
    Turn an event into the task's result, or raise.

    * success → the job summary (a small JSON-serializable dict).
    * partial → the summary with a warning, or :class:`GradientJobError` if ``fail_on_partial``.
    * failed → :class:`GradientJobError` with the per-data-source errors.
    * cancelled → :class:`GradientJobCancelledError` (no retry).
    * timeout → :class:`GradientJobTimeoutError`.
    * error → :class:`GradientError`.
    """
    log = log or logging.getLogger(__name__)
    event = validate_event(event)
    status = event["status"]
    uuid = event.get("indexing_job_uuid")
    message = str(event.get("message") or "")
    errors = [str(line) for line in event.get("errors") or []]
    details = "".join(f"\n  - {line}" for line in errors)
    kwargs = {"indexing_job_uuid": uuid, "phase": event.get("phase"), "status": event.get("job_status")}
    summary = dict(event.get("summary") or {"indexing_job_uuid": uuid})
    if status == "success":
        log.info("%s", message)
        return summary
    if status == "partial":
        text = f"{message} Some items failed to index:{details or ' (no details given)'}"
        if fail_on_partial:
            raise GradientJobError(text + "\nFailing because fail_on_partial=True.", **kwargs)
        log.warning("%s", text)
        return summary
    if status == "failed":
        raise GradientJobError(f"{message}{details}", **kwargs)
    if status == "cancelled":
        raise GradientJobCancelledError(f"{message}{details}", **kwargs)
    if status == "timeout":
        raise GradientJobTimeoutError(message, **kwargs)
    request_id = event.get("request_id")
    if request_id and str(request_id) not in message:
        message += f" [request_id={request_id}]"
    raise GradientError(message)


#: What a successful task adds to the asset events of its outlets.
OUTLET_EXTRA_KEYS = ("indexing_job_uuid", "knowledge_base_uuid", "status", "outcome", "total_tokens")


def annotate_outlets(outlet_events: Any, outlets: Any, summary: dict[str, Any]) -> None:
    """
    Add the job's details (:data:`OUTLET_EXTRA_KEYS`) to the asset event of each outlet.

    :param outlet_events: The context's ``outlet_events`` (``None`` outside a task run).
    :param outlets: The task's ``outlets``.
    :param summary: The job summary the task returns.
    """
    if outlet_events is None or not outlets:  # an unused accessor mapping is empty: not a reason to stop
        return
    extra = {key: summary.get(key) for key in OUTLET_EXTRA_KEYS}
    for outlet in outlets:
        try:
            outlet_events[outlet].extra.update(extra)
        except (KeyError, TypeError, AttributeError):
            continue
