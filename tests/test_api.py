"""The transport-free core: request building, validation, response parsing, errors, retry decisions."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import tenacity

from airflow_provider_gradient import _api
from airflow_provider_gradient._settings import RetryPolicy
from airflow_provider_gradient.exceptions import (
    GradientAPIError,
    GradientAuthError,
    GradientConfigError,
    GradientConflictError,
    GradientDatabaseNotReadyError,
    GradientError,
    GradientNotFoundError,
    GradientRateLimitError,
    GradientResponseError,
    GradientServerError,
    GradientTransportError,
)
from airflow_provider_gradient.models import IndexingJob, IndexingJobPage

KB = "9758a232-b351-11ef-bf8f-4e013e2ddde4"
DS = "9a825ee0-bbb1-11ef-bf8f-4e013e2ddde4"
JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"


def raw(status: int, body: Any = None, **headers: str) -> _api.RawResponse:
    data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    return _api.RawResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, data)


# --------------------------------------------------------------------------------------------
# UUID validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KB, KB),
        (KB.upper(), KB),
        (f"  {KB} ", KB),
        (f"'\"{KB}\"'", KB),  # the spec's examples carry literal quotes
    ],
)
def test_validate_uuid_normalises(value: str, expected: str) -> None:
    assert _api.validate_uuid(value, "knowledge_base_uuid") == expected


@pytest.mark.parametrize(
    "value",
    ["", "kb-1", KB[:-1], KB.replace("-", ""), "{" + KB + "}", f"urn:uuid:{KB}", KB + "0", "../../etc", None, 42, [KB]],
)
def test_validate_uuid_rejects(value: Any) -> None:
    with pytest.raises(GradientConfigError, match=r"^indexing_job_uuid must be a UUID"):
        _api.validate_uuid(value, "indexing_job_uuid")


def test_validate_uuid_list() -> None:
    assert _api.validate_uuid_list([DS, DS.upper(), KB], "data_source_uuids") == [DS, KB]
    assert _api.validate_uuid_list((DS,), "data_source_uuids") == [DS]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (DS, r"data_source_uuids must be a list of UUID strings.*Wrap a single uuid in a list"),
        ([], r"data_source_uuids must not be empty"),
        ({"a": DS}, r"data_source_uuids must be a list"),
        (5, r"data_source_uuids must be a list"),
        ([DS, "nope"], r"data_source_uuids\[1\] must be a UUID"),
    ],
)
def test_validate_uuid_list_rejects(value: Any, match: str) -> None:
    with pytest.raises(GradientConfigError, match=match):
        _api.validate_uuid_list(value, "data_source_uuids")


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


OPERATIONS = [
    (lambda: _api.start_indexing_job(KB), "POST", "/v2/gen-ai/indexing_jobs", None, {"knowledge_base_uuid": KB}),
    (
        lambda: _api.start_indexing_job(KB, [DS]),
        "POST",
        "/v2/gen-ai/indexing_jobs",
        None,
        {"knowledge_base_uuid": KB, "data_source_uuids": [DS]},
    ),
    (lambda: _api.get_indexing_job(JOB), "GET", f"/v2/gen-ai/indexing_jobs/{JOB}", None, None),
    (lambda: _api.list_indexing_jobs(), "GET", "/v2/gen-ai/indexing_jobs", {}, None),
    (lambda: _api.list_indexing_jobs(2, 50), "GET", "/v2/gen-ai/indexing_jobs", {"page": 2, "per_page": 50}, None),
    (lambda: _api.sweep_indexing_jobs(3, 200), "GET", "/v2/gen-ai/indexing_jobs", {"page": 3, "per_page": 200}, None),
    (lambda: _api.cancel_indexing_job(JOB), "PUT", f"/v2/gen-ai/indexing_jobs/{JOB}/cancel", None, {"uuid": JOB}),
    (
        lambda: _api.list_indexing_job_data_sources(JOB),
        "GET",
        f"/v2/gen-ai/indexing_jobs/{JOB}/data_sources",
        None,
        None,
    ),
    (
        lambda: _api.get_indexing_job_report_url(JOB),
        "GET",
        f"/v2/gen-ai/indexing_jobs/{JOB}/details_signed_url",
        None,
        None,
    ),
    (lambda: _api.list_knowledge_bases(per_page=1), "GET", "/v2/gen-ai/knowledge_bases", {"per_page": 1}, None),
    (lambda: _api.get_knowledge_base(KB), "GET", f"/v2/gen-ai/knowledge_bases/{KB}", None, None),
    (
        lambda: _api.list_knowledge_base_data_sources(KB, 3),
        "GET",
        f"/v2/gen-ai/knowledge_bases/{KB}/data_sources",
        {"page": 3},
        None,
    ),
    (
        lambda: _api.list_knowledge_base_indexing_jobs(KB),
        "GET",
        f"/v2/gen-ai/knowledge_bases/{KB}/indexing_jobs",
        None,
        None,
    ),
    (
        lambda: _api.get_indexing_schedule(KB),
        "GET",
        f"/v2/gen-ai/scheduled-indexing/knowledge-base/{KB}",
        None,
        None,
    ),
]


@pytest.mark.parametrize(("build", "method", "path", "params", "body"), OPERATIONS)
def test_operations(build: Any, method: str, path: str, params: Any, body: Any) -> None:
    op = build()
    assert (op.method, op.path, op.params, op.body) == (method, path, params, body)
    assert op.idempotent is (method != "POST")
    # Templates never contain ids.
    assert KB not in op.label
    assert JOB not in op.label
    assert op.label.startswith(f"{method} /v2/gen-ai/")


def test_every_spec_operation_has_a_builder() -> None:
    ids = {build().operation_id for build, *_ in OPERATIONS}
    assert ids == {
        "genai_create_indexing_job",
        "genai_get_indexing_job",
        "genai_list_indexing_jobs",
        "genai_cancel_indexing_job",
        "genai_list_indexing_job_data_sources",
        "genai_get_indexing_job_details_signed_url",
        "genai_list_knowledge_bases",
        "genai_get_knowledge_base",
        "genai_list_knowledge_base_data_sources",
        "genai_list_indexing_jobs_by_knowledge_base",
        "genai_get_scheduled_indexing",
    }


@pytest.mark.parametrize(
    ("page", "per_page", "match"),
    [(0, None, "page must be"), (True, None, "page must be"), ("2", None, "page must be"), (None, 0, "per_page"),
     (None, 201, "per_page"), (None, 1.5, "per_page")],
)  # fmt: skip
def test_page_params_are_checked(page: Any, per_page: Any, match: str) -> None:
    with pytest.raises(GradientConfigError, match=match):
        _api.list_indexing_jobs(page, per_page)


def test_with_params_keeps_everything_else() -> None:
    op = _api.list_knowledge_base_data_sources(KB, per_page=10)
    nxt = op.with_params(page=2)
    assert nxt.params == {"per_page": 10, "page": 2}
    assert (nxt.path, nxt.method, nxt.operation_id, nxt.parse) == (op.path, op.method, op.operation_id, op.parse)
    assert op.params == {"per_page": 10}


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def test_parse_job() -> None:
    job = _api.parse_response(
        _api.get_indexing_job(JOB), raw(200, {"job": {"uuid": JOB, "total_tokens": "12", "phase": "X"}})
    )
    assert isinstance(job, IndexingJob)
    assert (job.uuid, job.total_tokens, job.phase) == (JOB, 12, "X")


def test_parse_lists() -> None:
    sources = _api.parse_response(
        _api.list_indexing_job_data_sources(JOB),
        raw(200, {"indexed_data_sources": [{"data_source_uuid": DS, "indexed_item_count": "3"}]}),
    )
    assert [(s.data_source_uuid, s.indexed_item_count) for s in sources] == [(DS, 3)]
    assert _api.parse_response(_api.list_indexing_job_data_sources(JOB), raw(200, {})) == []
    jobs = _api.parse_response(_api.list_knowledge_base_indexing_jobs(KB), raw(200, {"jobs": [{"uuid": JOB}]}))
    assert [j.uuid for j in jobs] == [JOB]


def test_parse_report_url_and_schedule() -> None:
    url = _api.parse_response(_api.get_indexing_job_report_url(JOB), raw(200, {"signed_url": "https://s3/x"}))
    assert url == "https://s3/x"
    assert _api.parse_response(_api.get_indexing_job_report_url(JOB), raw(200, {"signed_url": ""})) is None
    schedule = _api.parse_response(
        _api.get_indexing_schedule(KB), raw(200, {"indexing_info": {"days": [1, 3], "time": "04:00"}})
    )
    assert (schedule.days, schedule.time) == ([1, 3], "04:00")


def test_parse_empty_body_is_an_empty_object() -> None:
    page = _api.parse_response(_api.list_indexing_jobs(), raw(200))
    assert isinstance(page, IndexingJobPage)
    assert page.jobs == []


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html><title>Gateway</title></html>", r"not JSON \(text/html: Gateway\)"),
        (b'{"job": ', r"not JSON"),
        ([1, 2], r"does not have the documented shape: expected a JSON object"),
        ({"job": "done"}, r"field 'job' should be a dict"),
        ({"job": {"total_tokens": "lots"}}, r"documented shape"),
    ],
)
def test_garbled_2xx_is_a_response_error(body: Any, match: str) -> None:
    with pytest.raises(GradientResponseError, match=match) as info:
        _api.parse_response(_api.get_indexing_job(JOB), raw(200, body, content_type="text/html", x_request_id="rid-7"))
    assert info.value.http_status == 200
    assert info.value.request_id == "rid-7"
    assert str(info.value).startswith("GET /v2/gen-ai/indexing_jobs/{uuid}:")


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, GradientAPIError),
        (401, GradientAuthError),
        (403, GradientAuthError),
        (404, GradientNotFoundError),
        (409, GradientAPIError),
        (422, GradientAPIError),
        (429, GradientRateLimitError),
        (500, GradientServerError),
        (502, GradientServerError),
        (503, GradientServerError),
        (504, GradientServerError),
        (301, GradientAPIError),
    ],
)
def test_status_mapping(status: int, cls: type[GradientAPIError]) -> None:
    body = {"id": "some_id", "message": "Something happened.", "request_id": "body-rid"}
    with pytest.raises(GradientAPIError) as info:
        _api.parse_response(_api.get_indexing_job(JOB), raw(status, body, x_request_id="header-rid"))
    err = info.value
    assert type(err) is cls
    assert (err.http_status, err.error_id, err.api_message, err.request_id) == (
        status,
        "some_id",
        "Something happened.",
        "body-rid",
    )
    assert err.operation == "GET /v2/gen-ai/indexing_jobs/{uuid}"
    assert str(err).startswith(f"GET /v2/gen-ai/indexing_jobs/{{uuid}}: HTTP {status} (some_id): Something happened.")
    assert str(err).endswith("[request_id=body-rid]")


def test_request_id_falls_back_to_header() -> None:
    err = _api.api_error(_api.get_indexing_job(JOB), raw(404, {"id": "not_found", "message": "nope"}, x_request_id="h"))
    assert err.request_id == "h"
    assert "[request_id=h]" in str(err)


def test_auth_error_names_the_scopes() -> None:
    err = _api.api_error(_api.start_indexing_job(KB), raw(403, {"id": "forbidden", "message": "denied"}))
    assert isinstance(err, GradientAuthError)
    for scope in ("genai:read", "genai:create", "genai:update"):
        assert scope in str(err)


@pytest.mark.parametrize("status", [400, 409, 412, 422, 500])
def test_conflict_is_recognised_by_message(status: int) -> None:
    message = f"knowledge base {KB} Already has an indexing job running"
    err = _api.api_error(_api.start_indexing_job(KB), raw(status, {"id": "x", "message": message}))
    assert isinstance(err, GradientConflictError)
    assert err.http_status == status


@pytest.mark.parametrize("status", [400, 412, 500])
def test_database_not_ready_is_recognised_by_message(status: int) -> None:
    err = _api.api_error(
        _api.start_indexing_job(KB), raw(status, {"id": "x", "message": "rpc error: Failed to get DB creds"})
    )
    assert isinstance(err, GradientDatabaseNotReadyError)
    assert "still being created" in str(err)


def test_html_error_page_is_summarised_by_its_title() -> None:
    page = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 5000 + b"</body></html>"
    err = _api.api_error(_api.get_indexing_job(JOB), raw(502, page, content_type="text/html; charset=utf-8"))
    assert isinstance(err, GradientServerError)
    assert err.api_message == "no error message (text/html: 502 Bad Gateway)"
    assert len(str(err)) < 300


def test_html_without_title_is_stripped_and_cut() -> None:
    page = b"<html><body><h1>Oops</h1>" + b"word " * 500 + b"</body></html>"
    err = _api.api_error(_api.get_indexing_job(JOB), raw(500, page, content_type="text/html"))
    assert "<" not in err.api_message
    assert err.api_message.startswith("no error message (text/html: Oops word word")
    assert len(err.api_message) < 220


def test_empty_error_body() -> None:
    err = _api.api_error(_api.get_indexing_job(JOB), raw(503, b""))
    assert err.api_message == "no error message (empty body, unknown content type)"


def test_json_error_body_that_is_not_an_object() -> None:
    err = _api.api_error(_api.get_indexing_job(JOB), raw(500, ["boom"], content_type="application/json"))
    assert err.error_id is None
    assert "application/json" in err.api_message


# --------------------------------------------------------------------------------------------
# Retry-After / ratelimit-reset
# --------------------------------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    assert _api.retry_after_seconds({"retry-after": "7"}) == 7.0
    assert _api.retry_after_seconds({"retry-after": "-3"}) == 0.0
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=timezone.utc), usegmt=True)
    assert _api.retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(30.0)


def test_ratelimit_reset_used_when_retry_after_absent() -> None:
    now = 1_700_000_000.0
    headers = {"ratelimit-reset": str(int(now + 42)), "ratelimit-remaining": "0"}
    assert _api.retry_after_seconds(headers, now=now) == pytest.approx(42.0)
    # Without a remaining count the reset still counts (429 means nothing is left).
    assert _api.retry_after_seconds({"ratelimit-reset": str(now + 5)}, now=now) == pytest.approx(5.0)
    # Requests left: the reset is not a reason to wait.
    assert _api.retry_after_seconds({"ratelimit-reset": str(now + 5), "ratelimit-remaining": "12"}, now=now) is None
    assert _api.retry_after_seconds({"ratelimit-reset": "soon"}, now=now) is None
    assert _api.retry_after_seconds({}, now=now) is None


def test_retry_after_is_preferred_over_reset() -> None:
    now = time.time()
    headers = {"retry-after": "3", "ratelimit-reset": str(now + 100), "ratelimit-remaining": "0"}
    assert _api.retry_after_seconds(headers, now=now) == 3.0


def test_api_error_carries_retry_after_for_429_and_503_only() -> None:
    op = _api.get_indexing_job(JOB)
    assert _api.api_error(op, raw(429, {}, retry_after="4")).retry_after == 4.0
    assert _api.api_error(op, raw(503, {}, retry_after="2")).retry_after == 2.0
    assert _api.api_error(op, raw(500, {}, retry_after="2")).retry_after is None


# --------------------------------------------------------------------------------------------
# Retry decisions
# --------------------------------------------------------------------------------------------


def api_err(status: int, message: str = "x") -> GradientAPIError:
    return _api.api_error(_api.get_indexing_job(JOB), raw(status, {"message": message}))


GET = _api.get_indexing_job(JOB)
PUT = _api.cancel_indexing_job(JOB)
POST = _api.start_indexing_job(KB)


@pytest.mark.parametrize(
    ("error", "read", "start"),
    [
        (GradientTransportError("refused", request_sent=False), True, True),
        (GradientTransportError("read timeout", request_sent=True), True, False),
        (api_err(429), True, True),
        (api_err(500), True, False),
        (api_err(502), True, False),
        (api_err(503), True, False),
        (api_err(504), True, False),
        (api_err(501), False, False),
        (api_err(400), False, False),
        (api_err(401), False, False),
        (api_err(403), False, False),
        (api_err(404), False, False),
        (api_err(409, "already has an indexing job running"), False, False),
        (GradientResponseError("truncated", http_status=200), True, False),
        (GradientConfigError("bad"), False, False),
        (ValueError("bug"), False, False),
    ],
)
def test_is_retryable(error: BaseException, read: bool, start: bool) -> None:
    assert _api.is_retryable(GET, error) is read
    assert _api.is_retryable(PUT, error) is read  # cancel is idempotent
    assert _api.is_retryable(POST, error) is start


def _state(error: BaseException, attempt: int = 1) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_wait_honours_retry_after() -> None:
    wait = _api.retry_kwargs(GET, RetryPolicy(base_delay=1.0, max_delay=30.0))["wait"]
    err = _api.api_error(GET, raw(429, {}, retry_after="12"))
    for _ in range(20):
        assert 12.0 <= wait(_state(err)) <= 12.0 + 1.0  # the first backoff's jitter on top


def test_wait_is_jittered_exponential_backoff() -> None:
    wait = _api.retry_kwargs(GET, RetryPolicy(base_delay=1.0, max_delay=8.0))["wait"]
    err = api_err(502)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [wait(_state(err, attempt)) for _ in range(50)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jitter


def _run(op: _api.Operation[Any], policy: RetryPolicy, errors: list[BaseException]) -> tuple[int, list[float]]:
    """Run tenacity with the policy against a function raising ``errors`` in turn; count attempts."""
    calls = 0
    slept: list[float] = []

    def fn() -> str:
        nonlocal calls
        calls += 1
        if calls <= len(errors):
            raise errors[calls - 1]
        return "ok"

    retrying = tenacity.Retrying(sleep=slept.append, **_api.retry_kwargs(op, policy))
    with contextlib.suppress(GradientError):  # the attempt count is what is checked
        retrying(fn)
    return calls, slept


def test_stop_after_max_retries() -> None:
    calls, slept = _run(GET, RetryPolicy(max_retries=2, base_delay=0.01), [api_err(503)] * 10)
    assert calls == 3
    assert len(slept) == 2


def test_max_retries_zero_means_one_attempt() -> None:
    calls, _ = _run(GET, RetryPolicy(max_retries=0), [api_err(503)] * 10)
    assert calls == 1


def test_budget_stops_a_wait_that_would_overrun_it() -> None:
    calls, slept = _run(
        GET, RetryPolicy(max_retries=5, budget=10.0), [_api.api_error(GET, raw(429, {}, retry_after="60"))]
    )
    assert calls == 1
    assert slept == []


def test_success_after_retries() -> None:
    calls, slept = _run(GET, RetryPolicy(max_retries=5, base_delay=0.01), [api_err(502), api_err(504)])
    assert calls == 3
    assert len(slept) == 2


# --------------------------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------------------------


def test_next_page_takes_only_page_and_per_page() -> None:
    op = _api.list_indexing_jobs(per_page=10)
    nxt = _api.next_page(op, "https://evil.test/steal?page=2&per_page=25&token=x", 1, {1})
    assert nxt is not None
    assert nxt.params == {"page": 2, "per_page": 25}
    assert nxt.path == "/v2/gen-ai/indexing_jobs"


@pytest.mark.parametrize(
    ("url", "current", "seen"),
    [
        (None, 1, {1}),
        ("", 1, {1}),
        ("https://api/x?page=1", 1, {1}),  # points back to the same page
        ("https://api/x?page=1", 2, {1, 2}),  # points backwards
        ("https://api/x?page=3", 2, {1, 2, 3}),  # already read
        ("https://api/x?cursor=abc", 1, {1}),  # no page number
        ("https://api/x?page=two", 1, {1}),
    ],
)
def test_next_page_ends(url: str | None, current: int, seen: set[int]) -> None:
    assert _api.next_page(_api.list_indexing_jobs(), url, current, seen) is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_an_error_not_an_empty_result(status: int) -> None:
    # Redirects are not followed (the token must not travel elsewhere); an empty 3xx body must
    # not parse into an IndexingJob without a uuid.
    with pytest.raises(GradientAPIError, match=r"redirected to https://elsewhere.test/v2;") as info:
        _api.parse_response(_api.start_indexing_job(KB), raw(status, b"", location="https://elsewhere.test/v2?x=1"))
    assert info.value.http_status == status
    assert not _api.is_retryable(GET, info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"jobs": [], "meta": {"page": 1, "pages": 7, "total": 1300}}, 7),
        ({"jobs": [], "meta": {"page": 1, "pages": "7"}}, 7),  # a counter may come as a string
        ({"jobs": [], "links": {"pages": {"last": "https://elsewhere.example/v2/x?page=12&per_page=200"}}}, 12),
        ({"jobs": [], "meta": {"page": 2}, "links": {"pages": {"last": "https://a/b?per_page=5&page=3"}}}, 3),
        ({"jobs": [], "links": {"pages": {"last": "https://a/b?page=last"}}}, None),
        ({"jobs": [], "meta": {"pages": 0}}, None),
        ({"jobs": []}, None),
    ],
)
def test_last_page_number(body: Any, expected: int | None) -> None:
    assert _api.last_page_number(IndexingJobPage.model_validate(body)) == expected


def test_list_indexing_jobs_page_request() -> None:
    op = _api.list_indexing_jobs(page=4, per_page=200)
    assert (op.method, op.path, op.params) == ("GET", "/v2/gen-ai/indexing_jobs", {"page": 4, "per_page": 200})
    with pytest.raises(GradientConfigError, match="per_page must be an integer from 1 to 200"):
        _api.list_indexing_jobs(page=1, per_page=201)
