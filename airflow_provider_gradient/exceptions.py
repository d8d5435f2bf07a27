"""
Errors raised by the DigitalOcean Gradient provider.

Every error derives from :class:`GradientError`, itself an ``AirflowException``, so a task fails
(and retries) the usual way. The tree::

    GradientError
    ├── GradientConfigError             bad connection or argument; nothing was sent (also a ValueError)
    ├── GradientTransportError          no usable HTTP response (connect error, timeout, reset)
    ├── GradientResponseError           a response that is not the JSON the API documents
    ├── GradientAPIError                the API answered with an error status
    │   ├── GradientAuthError           401 / 403 (token missing, wrong or lacking scopes)
    │   ├── GradientNotFoundError       404
    │   ├── GradientRateLimitError      429
    │   ├── GradientConflictError       the knowledge base already has an indexing job running
    │   ├── GradientDatabaseNotReadyError   the knowledge base's database is not ready yet
    │   └── GradientServerError         5xx
    ├── GradientAmbiguousStartError     a start request may or may not have created a job
    └── GradientJobError                the indexing job ended badly (failed, partial, timeout)
        ├── GradientJobCancelledError   the job was cancelled (also an AirflowFailException: no retry)
        └── GradientJobTimeoutError     the maximum wait ran out

No message, attribute or ``repr`` of these errors ever contains the API token.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

__all__ = [
    "TRANSIENT_ERRORS",
    "GradientAPIError",
    "GradientAmbiguousStartError",
    "GradientAuthError",
    "GradientConfigError",
    "GradientConflictError",
    "GradientDatabaseNotReadyError",
    "GradientError",
    "GradientJobCancelledError",
    "GradientJobError",
    "GradientJobTimeoutError",
    "GradientNotFoundError",
    "GradientRateLimitError",
    "GradientResponseError",
    "GradientServerError",
    "GradientTransportError",
]


class GradientError(AirflowException):
    """Base class of every error this provider raises."""


class GradientConfigError(GradientError, ValueError):
    """A connection or argument is invalid. Raised before any request is sent."""


def _reduce(error: GradientError) -> tuple[Any, ...]:
    """Pickle support for errors whose ``__init__`` takes keyword-only arguments."""
    return (_rebuild_error, (type(error), error.__dict__.copy(), str(error)))


def _rebuild_error(cls: type[GradientError], state: dict[str, Any], text: str) -> GradientError:
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.__dict__.update(state)
    return error


class GradientTransportError(GradientError):
    """
    No usable HTTP response arrived (connection refused, DNS failure, timeout, reset).

    :param message: What went wrong.
    :param request_sent: ``False`` when the request surely never reached the server (the connection
        could not be opened), ``True`` when it may have (read timeout, reset after sending).
    """

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self)


class GradientResponseError(GradientError):
    """
    The API answered 2xx but the body is not the JSON it documents (truncated, HTML, wrong shape).

    :param message: What was wrong with the body.
    :param http_status: The HTTP status of the response.
    :param request_id: The ``x-request-id`` of the response, for support tickets.
    """

    def __init__(self, message: str, *, http_status: int, request_id: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.request_id = request_id

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self)


class GradientAPIError(GradientError):
    """
    The API answered with an error status.

    :param http_status: The HTTP status.
    :param error_id: DigitalOcean's short error name (``not_found``, ``too_many_requests``...).
    :param message: DigitalOcean's error message (or a summary of a non-JSON body).
    :param request_id: The request id from the body or the ``x-request-id`` header.
    :param operation: A short description of the call, such as ``GET /v2/gen-ai/indexing_jobs/{uuid}``.
    :param retry_after: Seconds the server asked us to wait, if it said.
    """

    def __init__(
        self,
        *,
        http_status: int,
        error_id: str | None,
        message: str,
        request_id: str | None = None,
        operation: str = "",
        retry_after: float | None = None,
        hint: str = "",
    ) -> None:
        self.http_status = http_status
        self.error_id = error_id
        self.api_message = message
        self.request_id = request_id
        self.operation = operation
        self.retry_after = retry_after
        parts = [f"{operation + ': ' if operation else ''}HTTP {http_status}"]
        if error_id:
            parts.append(f"({error_id})")
        text = " ".join(parts) + f": {message}"
        if hint:
            text += f" {hint}"
        if request_id:
            text += f" [request_id={request_id}]"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self)


class GradientAuthError(GradientAPIError):
    """401 or 403: the token is missing, wrong, revoked or lacks the genai scopes."""


class GradientNotFoundError(GradientAPIError):
    """404: the job or knowledge base does not exist, or is outside the token's team."""


class GradientRateLimitError(GradientAPIError):
    """429: the token's rate limit (250/minute, 5,000/hour) is exhausted."""


class GradientConflictError(GradientAPIError):
    """The knowledge base already has an indexing job running."""


class GradientDatabaseNotReadyError(GradientAPIError):
    """The knowledge base's database is not ready yet ("failed to get db creds")."""


class GradientServerError(GradientAPIError):
    """5xx: the API failed on its side."""


class GradientAmbiguousStartError(GradientError):
    """
    A start request failed in a way that may have created a job, and no such job could be found.

    Raised instead of re-sending the start request, which has no idempotency key.
    """


class GradientJobError(GradientError):
    """
    The indexing job ended without the success the task asked for.

    :param message: A readable account of the outcome, including per-data-source errors.
    :param indexing_job_uuid: The job.
    :param phase: The job's last phase.
    :param status: The job's last status.
    """

    def __init__(
        self,
        message: str,
        *,
        indexing_job_uuid: str | None = None,
        phase: str | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.indexing_job_uuid = indexing_job_uuid
        self.phase = phase
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_job_error,
            (type(self), str(self), self.indexing_job_uuid, self.phase, self.status),
        )


def _rebuild_job_error(
    cls: type[GradientJobError], message: str, uuid: str | None, phase: str | None, status: str | None
) -> GradientJobError:
    return cls(message, indexing_job_uuid=uuid, phase=phase, status=status)


class GradientJobTimeoutError(GradientJobError):
    """The maximum wait for the indexing job ran out (the job was cancelled if asked to)."""


class GradientJobCancelledError(GradientJobError, AirflowFailException):
    """The indexing job was cancelled. The task fails without retrying (a retry would start a new job)."""


#: Errors worth waiting out while waiting for a job: the API or the network is unwell, not the
#: request. Every wait tolerates the same ones (``_wait.ErrorTolerance``).
TRANSIENT_ERRORS: tuple[type[GradientError], ...] = (
    GradientTransportError,
    GradientServerError,
    GradientResponseError,
    GradientRateLimitError,
)
