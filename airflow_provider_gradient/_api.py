"""
The transport-free core of the Gradient client ("sans-IO").

It builds requests (:class:`Operation`), turns ``(status, headers, body)`` into a typed model or an
exception, and decides which failures are retried and how long to wait. The sync (requests) and
async (aiohttp) transports in :mod:`airflow_provider_gradient.hooks.gradient` only move bytes, so
the two paths cannot drift apart.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import tenacity
from pydantic import ValidationError
from pydantic_core import from_json

from airflow_provider_gradient._settings import RetryPolicy
from airflow_provider_gradient._uuids import validate_uuid, validate_uuid_list
from airflow_provider_gradient.exceptions import (
    GradientAPIError,
    GradientAuthError,
    GradientConfigError,
    GradientConflictError,
    GradientDatabaseNotReadyError,
    GradientNotFoundError,
    GradientRateLimitError,
    GradientResponseError,
    GradientServerError,
    GradientTransportError,
)
from airflow_provider_gradient.models import (
    IndexedDataSource,
    IndexingJob,
    IndexingJobPage,
    KnowledgeBase,
    KnowledgeBaseDataSourcePage,
    KnowledgeBaseDetails,
    KnowledgeBasePage,
    ListedIndexingJobs,
    ScheduledIndexingInfo,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "Operation",
    "RawResponse",
    "cancel_indexing_job",
    "get_indexing_job",
    "get_indexing_job_report_url",
    "get_indexing_schedule",
    "get_knowledge_base",
    "last_page_number",
    "list_indexing_job_data_sources",
    "list_indexing_jobs",
    "list_knowledge_base_data_sources",
    "list_knowledge_base_indexing_jobs",
    "list_knowledge_bases",
    "next_page",
    "parse_response",
    "pick_knowledge_base",
    "retry_kwargs",
    "start_indexing_job",
    "sweep_indexing_jobs",
    "validate_uuid",
    "validate_uuid_list",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Statuses retried for idempotent calls (429 is retried for every call: it never creates a job).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_PER_PAGE = 200

_CONFLICT_TEXT = "already has an indexing job running"
_DB_NOT_READY_TEXT = "failed to get db creds"
_SCOPES_HINT = (
    "Check that the connection's token is valid and has the scopes genai:read, genai:create and "
    "genai:update (plus regions:read, sizes:read and actions:read)."
)


@dataclass(frozen=True)
class RawResponse:
    """What a transport hands back: status, lower-cased headers and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        """The ``x-request-id`` header, if any."""
        return self.headers.get("x-request-id")


@dataclass(frozen=True)
class Operation(Generic[T]):
    """
    One API call, fully described and validated, with the parser for its 200 body.

    :param operation_id: The OpenAPI ``operationId``.
    :param method: HTTP method.
    :param path: The path with its parameters filled in (and quoted).
    :param template: The path template, for messages (never contains ids or secrets).
    :param parse: Turns the decoded JSON body into the result.
    :param params: Query parameters.
    :param body: JSON body.
    :param idempotent: Whether a failed attempt may be sent again. Only the start POST is not.
    """

    operation_id: str
    method: str
    path: str
    template: str
    parse: Callable[[Any], T] = field(repr=False)
    params: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None
    idempotent: bool = True

    @property
    def label(self) -> str:
        """``METHOD /path/{template}``, for logs and error messages."""
        return f"{self.method} {self.template}"

    def with_params(self, **params: Any) -> Operation[T]:
        """A copy with other query parameters (used to fetch the next page)."""
        return Operation(
            operation_id=self.operation_id,
            method=self.method,
            path=self.path,
            template=self.template,
            parse=self.parse,
            params={**(self.params or {}), **params},
            body=self.body,
            idempotent=self.idempotent,
        )


# --------------------------------------------------------------------------------------------
# Input validation: before any request is built
# --------------------------------------------------------------------------------------------


# validate_uuid / validate_uuid_list live in the light _uuids module (imported at DAG parse time)
# and are re-exported here.


def _q(value: str) -> str:
    return quote(value, safe="")


def _page_params(page: int | None, per_page: int | None) -> dict[str, int]:
    params: dict[str, int] = {}
    if page is not None:
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise GradientConfigError(f"page must be an integer >= 1, got {page!r}.")
        params["page"] = page
    if per_page is not None:
        if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise GradientConfigError(f"per_page must be an integer from 1 to {MAX_PER_PAGE}, got {per_page!r}.")
        params["per_page"] = per_page
    return params


# --------------------------------------------------------------------------------------------
# The operations of the spec
# --------------------------------------------------------------------------------------------

_JOBS = "/v2/gen-ai/indexing_jobs"
_KBS = "/v2/gen-ai/knowledge_bases"


def _job(body: Any) -> IndexingJob:
    return IndexingJob.model_validate(_field(body, "job", dict))


def _field(body: Any, name: str, kind: type) -> Any:
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    value = body.get(name)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ValueError(f"field {name!r} should be a {kind.__name__}, got {type(value).__name__}")
    return value


def start_indexing_job(knowledge_base_uuid: str, data_source_uuids: list[str] | None = None) -> Operation[IndexingJob]:
    """``POST /v2/gen-ai/indexing_jobs``: start indexing a knowledge base (all or some data sources)."""
    body: dict[str, Any] = {"knowledge_base_uuid": validate_uuid(knowledge_base_uuid, "knowledge_base_uuid")}
    if data_source_uuids is not None:
        body["data_source_uuids"] = validate_uuid_list(data_source_uuids, "data_source_uuids")
    return Operation("genai_create_indexing_job", "POST", _JOBS, _JOBS, _job, body=body, idempotent=False)


def get_indexing_job(indexing_job_uuid: str) -> Operation[IndexingJob]:
    """``GET /v2/gen-ai/indexing_jobs/{uuid}``."""
    job = _q(validate_uuid(indexing_job_uuid, "indexing_job_uuid"))
    return Operation("genai_get_indexing_job", "GET", f"{_JOBS}/{job}", f"{_JOBS}/{{uuid}}", _job)


def list_indexing_jobs(page: int | None = None, per_page: int | None = None) -> Operation[IndexingJobPage]:
    """``GET /v2/gen-ai/indexing_jobs``: one page of every job of the team (no knowledge-base filter)."""
    return _team_jobs(page, per_page, IndexingJobPage.model_validate)


def sweep_indexing_jobs(page: int | None = None, per_page: int | None = None) -> Operation[ListedIndexingJobs]:
    """:func:`list_indexing_jobs` for the job watcher: the jobs left as decoded JSON."""
    return _team_jobs(page, per_page, ListedIndexingJobs.model_validate)


def _team_jobs(page: int | None, per_page: int | None, parse: Callable[[Any], T]) -> Operation[T]:
    return Operation("genai_list_indexing_jobs", "GET", _JOBS, _JOBS, parse, params=_page_params(page, per_page))


def cancel_indexing_job(indexing_job_uuid: str) -> Operation[IndexingJob]:
    """``PUT /v2/gen-ai/indexing_jobs/{uuid}/cancel`` with body ``{"uuid": <job uuid>}`` (as godo sends)."""
    job = validate_uuid(indexing_job_uuid, "indexing_job_uuid")
    return Operation(
        "genai_cancel_indexing_job",
        "PUT",
        f"{_JOBS}/{_q(job)}/cancel",
        f"{_JOBS}/{{uuid}}/cancel",
        _job,
        body={"uuid": job},
    )


def list_indexing_job_data_sources(indexing_job_uuid: str) -> Operation[list[IndexedDataSource]]:
    """``GET /v2/gen-ai/indexing_jobs/{indexing_job_uuid}/data_sources`` (not paginated)."""
    job = _q(validate_uuid(indexing_job_uuid, "indexing_job_uuid"))
    return Operation(
        "genai_list_indexing_job_data_sources",
        "GET",
        f"{_JOBS}/{job}/data_sources",
        f"{_JOBS}/{{indexing_job_uuid}}/data_sources",
        lambda body: [IndexedDataSource.model_validate(item) for item in _field(body, "indexed_data_sources", list)],
    )


def get_indexing_job_report_url(indexing_job_uuid: str) -> Operation[str | None]:
    """``GET /v2/gen-ai/indexing_jobs/{indexing_job_uuid}/details_signed_url``."""
    job = _q(validate_uuid(indexing_job_uuid, "indexing_job_uuid"))
    return Operation(
        "genai_get_indexing_job_details_signed_url",
        "GET",
        f"{_JOBS}/{job}/details_signed_url",
        f"{_JOBS}/{{indexing_job_uuid}}/details_signed_url",
        lambda body: _field(body, "signed_url", str) or None,
    )


def list_knowledge_bases(page: int | None = None, per_page: int | None = None) -> Operation[KnowledgeBasePage]:
    """``GET /v2/gen-ai/knowledge_bases``."""
    return Operation(
        "genai_list_knowledge_bases",
        "GET",
        _KBS,
        _KBS,
        KnowledgeBasePage.model_validate,
        params=_page_params(page, per_page),
    )


def get_knowledge_base(knowledge_base_uuid: str) -> Operation[KnowledgeBaseDetails]:
    """``GET /v2/gen-ai/knowledge_bases/{uuid}``: the knowledge base and its database status."""
    kb = _q(validate_uuid(knowledge_base_uuid, "knowledge_base_uuid"))
    return Operation(
        "genai_get_knowledge_base",
        "GET",
        f"{_KBS}/{kb}",
        f"{_KBS}/{{uuid}}",
        KnowledgeBaseDetails.model_validate,
    )


def list_knowledge_base_data_sources(
    knowledge_base_uuid: str, page: int | None = None, per_page: int | None = None
) -> Operation[KnowledgeBaseDataSourcePage]:
    """``GET /v2/gen-ai/knowledge_bases/{knowledge_base_uuid}/data_sources``."""
    kb = _q(validate_uuid(knowledge_base_uuid, "knowledge_base_uuid"))
    return Operation(
        "genai_list_knowledge_base_data_sources",
        "GET",
        f"{_KBS}/{kb}/data_sources",
        f"{_KBS}/{{knowledge_base_uuid}}/data_sources",
        KnowledgeBaseDataSourcePage.model_validate,
        params=_page_params(page, per_page),
    )


def list_knowledge_base_indexing_jobs(knowledge_base_uuid: str) -> Operation[list[IndexingJob]]:
    """``GET /v2/gen-ai/knowledge_bases/{knowledge_base_uuid}/indexing_jobs``: the latest 15 jobs."""
    kb = _q(validate_uuid(knowledge_base_uuid, "knowledge_base_uuid"))
    return Operation(
        "genai_list_indexing_jobs_by_knowledge_base",
        "GET",
        f"{_KBS}/{kb}/indexing_jobs",
        f"{_KBS}/{{knowledge_base_uuid}}/indexing_jobs",
        lambda body: IndexingJobPage.model_validate(body).jobs,
    )


def get_indexing_schedule(knowledge_base_uuid: str) -> Operation[ScheduledIndexingInfo]:
    """``GET /v2/gen-ai/scheduled-indexing/knowledge-base/{knowledge_base_uuid}``."""
    kb = _q(validate_uuid(knowledge_base_uuid, "knowledge_base_uuid"))
    return Operation(
        "genai_get_scheduled_indexing",
        "GET",
        f"/v2/gen-ai/scheduled-indexing/knowledge-base/{kb}",
        "/v2/gen-ai/scheduled-indexing/knowledge-base/{knowledge_base_uuid}",
        lambda body: ScheduledIndexingInfo.model_validate(_field(body, "indexing_info", dict)),
    )


def pick_knowledge_base(knowledge_base_name: str, knowledge_bases: Iterable[KnowledgeBase]) -> str:
    """
    The uuid of the one knowledge base named ``knowledge_base_name`` (exact match) among
    ``knowledge_bases`` (every page of :func:`list_knowledge_bases`).

    :param knowledge_base_name: The name, as shown in the console.
    :param knowledge_bases: Every knowledge base the token can read.
    :raises GradientConfigError: No knowledge base has that name, or several have.
    """
    every = list(knowledge_bases)
    matches = sorted({kb.uuid for kb in every if kb.uuid and kb.name == knowledge_base_name})
    if len(matches) == 1:
        return matches[0]
    if not matches:
        near = sorted(
            {kb.name for kb in every if kb.name and kb.name.strip().lower() == knowledge_base_name.strip().lower()}
        )
        did_you_mean = f" Did you mean {', '.join(repr(name) for name in near)}?" if near else ""
        raise GradientConfigError(
            f"knowledge_base_name={knowledge_base_name!r} matches none of the {len(every)} knowledge base(s) "
            f"the token can read.{did_you_mean} Use the name exactly as the console shows it, or pass "
            "knowledge_base_uuid instead."
        )
    raise GradientConfigError(
        f"knowledge_base_name={knowledge_base_name!r} matches {len(matches)} knowledge bases "
        f"({', '.join(matches)}). Rename all but one in the console, or pass knowledge_base_uuid instead."
    )


def page_after(first: Operation[T], op: Operation[T], page: Any, count: int, seen: set[int]) -> Operation[T] | None:
    """
    The operation for the page after ``page`` (the answer to ``op``, a walk begun with ``first``),
    or ``None`` at the end: an empty page, the last page by ``meta.pages``, or no usable next link.

    :param count: How many items ``page`` held.
    :param seen: The page numbers read so far in this walk (updated).
    """
    meta = getattr(page, "meta", None)
    current = (meta.page if meta and meta.page else None) or int((op.params or {}).get("page", 1))
    seen.add(current)
    if not count or (meta is not None and meta.pages is not None and current >= meta.pages):
        return None
    return next_page(first, getattr(page, "next_url", None), current, seen)


def next_page(op: Operation[T], next_url: str | None, current_page: int, seen: set[int]) -> Operation[T] | None:
    """
    The operation for the page after ``current_page``, or ``None`` when there is none.

    The ``next`` link's host is never followed (the token only goes to the configured base URL):
    only its ``page`` and ``per_page`` are taken. A link that points back to a page already read
    ends the walk instead of looping forever.
    """
    if not next_url:
        return None
    query = parse_qs(urlsplit(next_url).query)
    try:
        page = int(query.get("page", [""])[0])
    except ValueError:
        log.warning("Ignoring a next-page link without a page number: %s", _strip_query(next_url))
        return None
    if page <= current_page or page in seen:
        log.warning("Stopping pagination: the next link points back to page %s.", page)
        return None
    params: dict[str, Any] = {"page": page}
    per_page = query.get("per_page", [""])[0]
    if per_page.isdigit():
        params["per_page"] = int(per_page)
    return op.with_params(**params)


def last_page_number(page: IndexingJobPage | ListedIndexingJobs) -> int | None:
    """
    The number of a list's last page: ``meta.pages``, else the ``page`` of ``links.pages.last``
    (its host is never followed), else ``None`` when the answer says neither.
    """
    if page.meta is not None and page.meta.pages is not None and page.meta.pages >= 1:
        return int(page.meta.pages)
    last = page.links.pages.last if page.links and page.links.pages else None
    if last:
        number = parse_qs(urlsplit(last).query).get("page", [""])[0]
        if number.isdigit() and int(number) >= 1:
            return int(number)
    return None


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


def parse_response(op: Operation[T], response: RawResponse) -> T:
    """
    Turn a response into the operation's result, or raise the matching error.

    :raises GradientAPIError: (a subclass of it) for an error status.
    :raises GradientResponseError: for a 2xx whose body is not the documented JSON.
    """
    if not 200 <= response.status < 300:
        raise api_error(op, response)
    try:
        body = from_json(response.body) if response.body else {}  # faster than json.loads on large list pages
    except ValueError:
        raise GradientResponseError(
            f"{op.label}: the API answered HTTP {response.status} with a body that is not JSON "
            f"({_describe_body(response)}).",
            http_status=response.status,
            request_id=response.request_id,
        ) from None
    try:
        return op.parse(body)
    except (ValidationError, ValueError, TypeError) as err:
        raise GradientResponseError(
            f"{op.label}: the API's answer does not have the documented shape: {_short(err)}",
            http_status=response.status,
            request_id=response.request_id,
        ) from None


def api_error(op: Operation[Any], response: RawResponse) -> GradientAPIError:
    """Build the error for an error response: DigitalOcean's ``{id, message, request_id}`` when present."""
    error_id: str | None = None
    message = ""
    request_id = response.request_id
    try:
        body = from_json(response.body) if response.body else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        error_id = body.get("id") if isinstance(body.get("id"), str) else None
        message = str(body.get("message") or "")
        request_id = str(body.get("request_id") or "") or request_id
    if not message:
        message = f"no error message ({_describe_body(response)})"
    message = redact(message)
    status = response.status
    lowered = message.lower()
    retry_after = retry_after_seconds(response.headers) if status in (429, 503) else None
    kwargs: dict[str, Any] = {
        "http_status": status,
        "error_id": error_id,
        "message": message,
        "request_id": request_id,
        "operation": op.label,
        "retry_after": retry_after,
    }
    if _CONFLICT_TEXT in lowered:
        return GradientConflictError(**kwargs)
    if _DB_NOT_READY_TEXT in lowered:
        return GradientDatabaseNotReadyError(
            **kwargs, hint="The knowledge base's database is still being created; try again shortly."
        )
    if status in (401, 403):
        return GradientAuthError(**kwargs, hint=_SCOPES_HINT)
    if status == 404:
        return GradientNotFoundError(**kwargs, hint="Check the uuid, and that it belongs to the token's team.")
    if status == 429:
        return GradientRateLimitError(
            **kwargs,
            hint="Every user of the token shares its limit (by default 250 requests per minute and "
            "5,000 per hour); raise poll_interval or spread the work.",
        )
    if status >= 500:
        return GradientServerError(**kwargs)
    if 300 <= status < 400:
        location = _strip_query(response.headers.get("location", "")) or "an unknown location"
        return GradientAPIError(
            **kwargs,
            hint=f"The API redirected to {location}; redirects are not followed. Check the connection's host.",
        )
    return GradientAPIError(**kwargs)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """
    How long the server asked us to wait: ``retry-after`` (seconds or an HTTP date), else the
    time until ``ratelimit-reset`` (epoch seconds) when the token has nothing left.
    """
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = headers.get("ratelimit-reset")
    if reset and headers.get("ratelimit-remaining", "0").strip() in ("0", ""):
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


#: What a token looks like in a server's text: a DigitalOcean token, or whatever follows "Bearer".
_TOKEN_TEXT = re.compile(r"\bdo[a-z]_v1_[A-Za-z0-9_-]+|(?<=bearer )[^\s\"',;]+", re.IGNORECASE)


def redact(text: str) -> str:
    """
    ``text`` (a server's error message or body) with anything that looks like a token replaced:
    a gateway that echoes the request's ``Authorization`` header must not put the token into an
    exception, and from there into a log.
    """
    return _TOKEN_TEXT.sub("[redacted]", text)


def _describe_body(response: RawResponse) -> str:
    content_type = response.headers.get("content-type", "unknown content type").split(";")[0]
    if not response.body:
        return f"empty body, {content_type}"
    text = response.body[:2000].decode("utf-8", "replace")
    if "html" in content_type or text.lstrip().startswith("<"):
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    text = redact(" ".join(text.split()))
    return f"{content_type}: {text[:160]}"


def _short(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


# --------------------------------------------------------------------------------------------
# Retries (one policy for both transports)
# --------------------------------------------------------------------------------------------


def is_retryable(op: Operation[Any], error: BaseException) -> bool:
    """
    Whether a failed attempt may be sent again.

    * 429 always: a rate-limited request did nothing on the server.
    * Reads and cancel (idempotent): connection errors, timeouts, resets, 500/502/503/504, and
      2xx bodies that are not JSON (a truncated answer).
    * The start POST: only when the request surely never reached the server (connect error).
      Anything ambiguous is reconciled by the caller instead of being re-sent.
    """
    if isinstance(error, GradientRateLimitError):
        return True
    if isinstance(error, GradientTransportError):
        return op.idempotent or not error.request_sent
    if not op.idempotent:
        return False
    if isinstance(error, GradientServerError):
        return error.http_status in RETRYABLE_STATUSES
    return isinstance(error, GradientResponseError)


class _Wait(tenacity.wait.wait_base):
    """Full-jitter exponential backoff, or what the server asked for (``Retry-After``)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._jitter = tenacity.wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is not None:
            # At least what the server asked, plus the backoff's jitter: the callers it refused at
            # the same moment (many tasks on one token) must not all come back at the same moment.
            return float(asked) + float(self._jitter(retry_state))
        return float(self._jitter(retry_state))


class _Stop(tenacity.stop.stop_base):
    """
    Stop after ``max_retries`` retries or when the next wait would overrun the ``budget``.

    A 429 does not use up a retry, only budget: waiting out the rate limit (as the server asks) is
    the cure, and many tasks sharing one token meet it together.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._attempts = tenacity.stop_after_attempt(policy.max_retries + 1)
        self._budget = tenacity.stop_before_delay(policy.budget)

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if self._budget(retry_state):
            return True
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return not isinstance(error, GradientRateLimitError) and bool(self._attempts(retry_state))


def retry_kwargs(op: Operation[Any], policy: RetryPolicy, logger: Any = None) -> dict[str, Any]:
    """
    Keyword arguments for ``tenacity.Retrying`` / ``tenacity.AsyncRetrying`` for one operation.

    The same policy serves both transports: only the ``Retrying`` class differs.
    """
    logger = logger or log

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s failed (attempt %d of %d): %s. Retrying in %.1fs.",
            op.label,
            state.attempt_number,
            policy.max_retries + 1,
            error,
            state.upcoming_sleep,
        )

    return {
        "retry": tenacity.retry_if_exception(lambda error: is_retryable(op, error)),
        "wait": _Wait(policy),
        "stop": _Stop(policy),
        "before_sleep": before_sleep,
        "reraise": True,
    }
