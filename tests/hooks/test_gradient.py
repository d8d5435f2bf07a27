"""GradientHook: every sync method against requests-mock, retries, start reconciliation, pagination."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer
from task_support import logged
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from airflow_provider_gradient import __version__
from airflow_provider_gradient.exceptions import (
    GradientAmbiguousStartError,
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
from airflow_provider_gradient.hooks._transport import SESSION_POOL
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.models import (
    IndexedDataSource,
    IndexingJob,
    IndexingJobPage,
    JobOutcome,
    KnowledgeBaseDataSourcePage,
    KnowledgeBaseDetails,
    KnowledgeBasePage,
    ScheduledIndexingInfo,
)

BASE = "https://api.example.test"
TOKEN = "dop_v1_test_token_never_logged"
KB = "9758a232-b351-11ef-bf8f-4e013e2ddde4"
DS1 = "9a825ee0-bbb1-11ef-bf8f-4e013e2ddde4"
DS2 = "9a825ee0-bbb1-11ef-bf8f-4e013e2ddde5"
JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"
OTHER_JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2dd000"

JOBS_URL = f"{BASE}/v2/gen-ai/indexing_jobs"
JOB_URL = f"{JOBS_URL}/{JOB}"
KB_URL = f"{BASE}/v2/gen-ai/knowledge_bases/{KB}"
KB_JOBS_URL = f"{KB_URL}/indexing_jobs"


def iso(delta_seconds: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_seconds)).isoformat().replace("+00:00", "Z")


def job_json(
    uuid: str = JOB, phase: str = "BATCH_JOB_PHASE_RUNNING", created: float = 0.0, **more: Any
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "knowledge_base_uuid": KB,
        "phase": phase,
        "status": "INDEX_JOB_STATUS_IN_PROGRESS",
        "created_at": iso(created),
        "total_tokens": "123",
        "completed_datasources": 0,
        "total_datasources": 2,
        **more,
    }


def connect_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the TCP connection cannot be opened (nothing was sent)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, JOBS_URL, reason))  # type: ignore[arg-type]


def reset_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the connection is reset after the request went out."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


@pytest.fixture
def hook(mock_conn: Any, no_sleep: list[float]) -> GradientHook:
    """A hook on ``gradient_default`` with instant retry waits."""
    return GradientHook()


# --------------------------------------------------------------------------------------------
# Every sync method: request shape and typed result
# --------------------------------------------------------------------------------------------


def assert_common_headers(request: Any, token: str) -> None:
    assert request.headers["Authorization"] == f"Bearer {token}"
    assert request.headers["User-Agent"].startswith(f"airflow-provider-gradient/{__version__}")
    assert request.headers["Accept"] == "application/json"


def test_start_indexing_job_all_sources(hook: GradientHook, requests_mock: Any, mock_conn: Any) -> None:
    requests_mock.post(JOBS_URL, json={"job": job_json()})
    job = hook.start_indexing_job(KB.upper())
    assert isinstance(job, IndexingJob)
    assert (job.uuid, job.total_tokens, job.outcome) == (JOB, 123, JobOutcome.RUNNING)
    request = requests_mock.last_request
    assert request.method == "POST"
    assert request.json() == {"knowledge_base_uuid": KB}
    assert request.headers["Content-Type"] == "application/json"
    assert_common_headers(request, mock_conn.token)


def test_start_indexing_job_some_sources(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.post(JOBS_URL, json={"job": job_json(data_source_uuids=[DS1, DS2])})
    job = hook.start_indexing_job(KB, [DS1, DS2, DS1])
    assert requests_mock.last_request.json() == {"knowledge_base_uuid": KB, "data_source_uuids": [DS1, DS2]}
    assert job.data_source_uuids == [DS1, DS2]


def test_get_indexing_job(hook: GradientHook, requests_mock: Any, mock_conn: Any) -> None:
    requests_mock.get(
        JOB_URL,
        json={
            "job": job_json(
                phase="BATCH_JOB_PHASE_SUCCEEDED",
                status="INDEX_JOB_STATUS_NO_CHANGES",
                data_source_jobs=[{"data_source_uuid": DS1, "indexed_item_count": "7"}],
            )
        },
    )
    job = hook.get_indexing_job(JOB)
    assert job.outcome is JobOutcome.NO_CHANGES
    assert job.data_source_jobs[0].indexed_item_count == 7
    request = requests_mock.last_request
    assert (request.method, request.path, request.query, request.body) == (
        "GET",
        f"/v2/gen-ai/indexing_jobs/{JOB}",
        "",
        None,
    )
    assert_common_headers(request, mock_conn.token)


def test_list_indexing_jobs(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(JOBS_URL, json={"jobs": [job_json(), job_json(OTHER_JOB)], "meta": {"total": 2}})
    page = hook.list_indexing_jobs(page=2, per_page=50)
    assert isinstance(page, IndexingJobPage)
    assert [j.uuid for j in page.jobs] == [JOB, OTHER_JOB]
    assert requests_mock.last_request.qs == {"page": ["2"], "per_page": ["50"]}


def test_list_indexing_job_data_sources(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{JOB_URL}/data_sources",
        json={"indexed_data_sources": [{"data_source_uuid": DS1, "status": "DATA_SOURCE_STATUS_UPDATED"}]},
    )
    sources = hook.list_indexing_job_data_sources(JOB)
    assert all(isinstance(s, IndexedDataSource) for s in sources)
    assert [s.data_source_uuid for s in sources] == [DS1]
    assert requests_mock.last_request.method == "GET"


def test_cancel_indexing_job(hook: GradientHook, requests_mock: Any, mock_conn: Any) -> None:
    requests_mock.put(f"{JOB_URL}/cancel", json={"job": job_json(phase="BATCH_JOB_PHASE_CANCELLED")})
    job = hook.cancel_indexing_job(JOB)
    assert job.outcome is JobOutcome.CANCELLED
    request = requests_mock.last_request
    assert request.method == "PUT"
    assert request.path == f"/v2/gen-ai/indexing_jobs/{JOB}/cancel"
    assert request.json() == {"uuid": JOB}
    assert_common_headers(request, mock_conn.token)


def test_get_indexing_job_report_url(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(f"{JOB_URL}/details_signed_url", json={"signed_url": "https://bucket.test/report?sig=1"})
    assert hook.get_indexing_job_report_url(JOB) == "https://bucket.test/report?sig=1"


def test_get_knowledge_base(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        KB_URL,
        json={
            "knowledge_base": {"uuid": KB, "name": "docs", "last_indexing_job": job_json()},
            "database_status": "CREATING",
        },
    )
    details = hook.get_knowledge_base(KB)
    assert isinstance(details, KnowledgeBaseDetails)
    assert details.knowledge_base.name == "docs"
    assert details.knowledge_base.last_indexing_job is not None
    assert details.knowledge_base.last_indexing_job.uuid == JOB
    assert not details.database_ready


def test_list_knowledge_bases(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{BASE}/v2/gen-ai/knowledge_bases", json={"knowledge_bases": [{"uuid": KB}], "meta": {"total": 1}}
    )
    page = hook.list_knowledge_bases(page=1, per_page=10)
    assert isinstance(page, KnowledgeBasePage)
    assert [kb.uuid for kb in page.knowledge_bases] == [KB]
    assert requests_mock.last_request.qs == {"page": ["1"], "per_page": ["10"]}


def test_list_knowledge_base_data_sources(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{KB_URL}/data_sources", json={"knowledge_base_data_sources": [{"uuid": DS1, "bucket_name": "b"}]}
    )
    page = hook.list_knowledge_base_data_sources(KB, per_page=5)
    assert isinstance(page, KnowledgeBaseDataSourcePage)
    assert [(d.uuid, d.bucket_name) for d in page.knowledge_base_data_sources] == [(DS1, "b")]
    assert requests_mock.last_request.qs == {"per_page": ["5"]}


def test_list_knowledge_base_indexing_jobs(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(KB_JOBS_URL, json={"jobs": [job_json(), job_json(OTHER_JOB)]})
    jobs = hook.list_knowledge_base_indexing_jobs(KB)
    assert [j.uuid for j in jobs] == [JOB, OTHER_JOB]
    assert requests_mock.last_request.query == ""


def test_get_indexing_schedule(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{BASE}/v2/gen-ai/scheduled-indexing/knowledge-base/{KB}",
        json={"indexing_info": {"knowledge_base_uuid": KB, "days": [1, 5], "time": "03:00", "is_active": True}},
    )
    schedule = hook.get_indexing_schedule(KB)
    assert isinstance(schedule, ScheduledIndexingInfo)
    assert (schedule.days, schedule.time, schedule.is_active) == ([1, 5], "03:00", True)


def test_session_is_reused_and_closed(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(JOB_URL, json={"job": job_json()})
    hook.get_indexing_job(JOB)
    session = hook.get_conn()
    hook.get_indexing_job(JOB)
    assert hook.get_conn() is session
    hook.close()
    assert hook._session is None
    assert hook.get_conn() is not session


# --------------------------------------------------------------------------------------------
# Input validation: nothing is sent
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda h: h.get_indexing_job("job-1"), r"^indexing_job_uuid must be a UUID"),
        (lambda h: h.cancel_indexing_job(""), r"^indexing_job_uuid must be a UUID"),
        (lambda h: h.list_indexing_job_data_sources(None), r"^indexing_job_uuid must be a UUID string"),
        (lambda h: h.get_indexing_job_report_url("x"), r"^indexing_job_uuid"),
        (lambda h: h.get_knowledge_base("kb"), r"^knowledge_base_uuid must be a UUID"),
        (lambda h: h.list_knowledge_base_indexing_jobs(KB + "x"), r"^knowledge_base_uuid"),
        (lambda h: h.list_knowledge_base_data_sources("kb"), r"^knowledge_base_uuid"),
        (lambda h: h.get_indexing_schedule("kb"), r"^knowledge_base_uuid"),
        (lambda h: h.start_indexing_job("kb"), r"^knowledge_base_uuid must be a UUID"),
        (lambda h: h.start_indexing_job(KB, DS1), r"^data_source_uuids must be a list of UUID strings"),
        (lambda h: h.start_indexing_job(KB, []), r"^data_source_uuids must not be empty"),
        (lambda h: h.start_indexing_job(KB, [DS1, "ds-2"]), r"^data_source_uuids\[1\] must be a UUID"),
        (lambda h: h.list_indexing_jobs(per_page=1000), r"^per_page must be"),
    ],
)
def test_bad_arguments_send_nothing(hook: GradientHook, requests_mock: Any, call: Any, match: str) -> None:
    with pytest.raises(GradientConfigError, match=match):
        call(hook)
    assert requests_mock.call_count == 0


# --------------------------------------------------------------------------------------------
# Retries of reads and cancel
# --------------------------------------------------------------------------------------------

OK_JOB = {"json": {"job": {"uuid": JOB}}, "status_code": 200}


@pytest.mark.parametrize(
    "failure",
    [
        {"exc": connect_error()},
        {"exc": reset_error()},
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": requests.exceptions.ConnectTimeout},
        {"status_code": 500, "json": {"id": "server_error", "message": "boom"}},
        {"status_code": 502, "text": "<html><title>502 Bad Gateway</title></html>"},
        {"status_code": 503, "json": {}},
        {"status_code": 504, "text": ""},
        {"status_code": 429, "json": {"id": "too_many_requests"}, "headers": {"retry-after": "1"}},
        {"status_code": 200, "text": '{"job": {"uu'},  # truncated body
    ],
    ids=lambda f: str(f.get("status_code") or getattr(f["exc"], "__name__", type(f["exc"]).__name__)),
)
def test_reads_are_retried(hook: GradientHook, requests_mock: Any, no_sleep: list[float], failure: Any) -> None:
    requests_mock.get(JOB_URL, [failure, failure, OK_JOB])
    assert hook.get_indexing_job(JOB).uuid == JOB
    assert requests_mock.call_count == 3
    assert len(no_sleep) == 2


@pytest.mark.parametrize("failure", [{"exc": reset_error()}, {"status_code": 503, "json": {}}])
def test_cancel_is_retried(hook: GradientHook, requests_mock: Any, failure: Any) -> None:
    requests_mock.put(f"{JOB_URL}/cancel", [failure, OK_JOB])
    assert hook.cancel_indexing_job(JOB).uuid == JOB
    assert requests_mock.call_count == 2
    assert all(r.json() == {"uuid": JOB} for r in requests_mock.request_history)


def test_429_waits_what_retry_after_says(hook: GradientHook, requests_mock: Any, no_sleep: list[float]) -> None:
    requests_mock.get(JOB_URL, [{"status_code": 429, "json": {}, "headers": {"Retry-After": "17"}}, OK_JOB])
    hook.get_indexing_job(JOB)
    assert len(no_sleep) == 1
    assert 17.0 <= no_sleep[0] <= 18.0  # plus the first backoff's jitter: refused callers come back spread out


def test_429_without_retry_after_waits_for_ratelimit_reset(
    hook: GradientHook, requests_mock: Any, no_sleep: list[float]
) -> None:
    reset = int(time.time()) + 40
    headers = {"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    requests_mock.get(JOB_URL, [{"status_code": 429, "json": {}, "headers": headers}, OK_JOB])
    hook.get_indexing_job(JOB)
    assert len(no_sleep) == 1
    assert 37.0 <= no_sleep[0] <= 42.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, GradientAPIError),
        (401, GradientAuthError),
        (403, GradientAuthError),
        (404, GradientNotFoundError),
        (422, GradientAPIError),
        (501, GradientServerError),
    ],
)
def test_client_errors_are_not_retried(
    hook: GradientHook, requests_mock: Any, no_sleep: list[float], status: int, cls: type[Exception]
) -> None:
    requests_mock.get(JOB_URL, [{"status_code": status, "json": {"id": "x", "message": "no"}}, OK_JOB])
    with pytest.raises(cls) as info:
        hook.get_indexing_job(JOB)
    assert type(info.value) is cls
    assert requests_mock.call_count == 1
    assert no_sleep == []


def test_max_retries_from_the_connection(make_conn: Any, requests_mock: Any, no_sleep: list[float]) -> None:
    make_conn(extra={"max_retries": 2})
    requests_mock.get(JOB_URL, status_code=503, json={"id": "service_unavailable", "message": "down"})
    with pytest.raises(GradientServerError, match="HTTP 503"):
        GradientHook().get_indexing_job(JOB)
    assert requests_mock.call_count == 3
    assert len(no_sleep) == 2


def test_429_uses_budget_not_retries(make_conn: Any, requests_mock: Any, no_sleep: list[float]) -> None:
    """Many tasks on one token meet the limit together: waiting it out must not exhaust max_retries."""
    make_conn(extra={"max_retries": 1, "retry_budget": 300})
    limited = {"status_code": 429, "json": {"id": "too_many_requests"}, "headers": {"retry-after": "2"}}
    requests_mock.get(JOB_URL, [limited, limited, limited, limited, {"json": {"job": job_json()}}])
    assert GradientHook().get_indexing_job(JOB).uuid == JOB
    assert requests_mock.call_count == 5
    assert len(no_sleep) == 4
    assert min(no_sleep) >= 2.0


def test_retry_budget_from_the_connection(make_conn: Any, requests_mock: Any, no_sleep: list[float]) -> None:
    make_conn(extra={"retry_budget": 5})
    requests_mock.get(JOB_URL, status_code=429, json={"id": "too_many_requests"}, headers={"retry-after": "60"})
    with pytest.raises(GradientRateLimitError) as info:
        GradientHook().get_indexing_job(JOB)
    assert info.value.retry_after == 60.0
    assert requests_mock.call_count == 1
    assert no_sleep == []


def test_exhausted_connection_errors_raise_transport_error(
    make_conn: Any, requests_mock: Any, no_sleep: list[float]
) -> None:
    make_conn(extra={"max_retries": 1})
    requests_mock.get(JOB_URL, exc=connect_error())
    with pytest.raises(GradientTransportError, match="before anything was sent") as info:
        GradientHook().get_indexing_job(JOB)
    assert info.value.request_sent is False
    assert requests_mock.call_count == 2


# --------------------------------------------------------------------------------------------
# Start: never blindly re-sent
# --------------------------------------------------------------------------------------------


def post_count(requests_mock: Any) -> int:
    return sum(1 for r in requests_mock.request_history if r.method == "POST")


@pytest.mark.parametrize(
    "failure",
    [
        {"status_code": 502, "text": "<html><title>502 Bad Gateway</title></html>"},
        {"status_code": 500, "json": {"id": "server_error", "message": "oops"}},
        {"status_code": 503, "json": {}, "headers": {"retry-after": "1"}},
        {"status_code": 504, "text": ""},
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": reset_error()},
        {"status_code": 200, "text": "<html>proxy says hi</html>"},
    ],
    ids=["502", "500", "503", "504", "read-timeout", "reset", "garbled-200"],
)
def test_ambiguous_start_is_reconciled_not_resent(hook: GradientHook, requests_mock: Any, failure: Any) -> None:
    requests_mock.post(JOBS_URL, [failure, {"json": {"job": job_json(OTHER_JOB)}}])
    requests_mock.get(
        KB_JOBS_URL,
        json={
            "jobs": [
                job_json(JOB, created=1.0),
                job_json("00000000-0000-4000-8000-000000000001", phase="BATCH_JOB_PHASE_SUCCEEDED", created=-86400),
            ]
        },
    )
    job = hook.start_indexing_job(KB)
    assert job.uuid == JOB
    assert post_count(requests_mock) == 1
    assert [r.method for r in requests_mock.request_history] == ["POST", "GET"]


def test_reconciliation_adopts_a_job_that_finished_quickly(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.post(JOBS_URL, status_code=502, text="")
    finished = job_json(JOB, phase="BATCH_JOB_PHASE_SUCCEEDED", created=0.5)
    requests_mock.get(KB_JOBS_URL, json={"jobs": [finished]})
    assert hook.start_indexing_job(KB).uuid == JOB
    assert post_count(requests_mock) == 1


def test_reconciliation_retries_the_listing_before_giving_up(
    hook: GradientHook, requests_mock: Any, no_sleep: list[float]
) -> None:
    requests_mock.post(JOBS_URL, exc=requests.exceptions.ReadTimeout)
    requests_mock.get(KB_JOBS_URL, [{"json": {"jobs": []}}, {"json": {"jobs": [job_json(JOB, created=2.0)]}}])
    assert hook.start_indexing_job(KB).uuid == JOB
    assert post_count(requests_mock) == 1
    assert no_sleep == [2.0]  # the reconciliation's pause, not a real one


def test_ambiguous_start_with_no_job_found(hook: GradientHook, requests_mock: Any, no_sleep: list[float]) -> None:
    requests_mock.post(JOBS_URL, status_code=502, json={"id": "bad_gateway", "message": "upstream"})
    old = job_json(JOB, phase="BATCH_JOB_PHASE_SUCCEEDED", created=-3600)
    requests_mock.get(KB_JOBS_URL, json={"jobs": [old]})
    with pytest.raises(GradientAmbiguousStartError, match=rf"knowledge base {KB} failed ambiguously") as info:
        hook.start_indexing_job(KB)
    assert "Nothing was re-sent" in str(info.value)
    assert isinstance(info.value.__cause__, GradientServerError)
    assert post_count(requests_mock) == 1
    assert requests_mock.call_count == 4  # 1 POST + 3 reconciliation reads
    assert no_sleep == [2.0, 4.0]


def test_ambiguous_start_when_reconciliation_cannot_read(
    make_conn: Any, requests_mock: Any, no_sleep: list[float]
) -> None:
    # If the job list cannot be read either, the caller still learns that the start was
    # ambiguous (and that nothing was re-sent), not just that some GET failed.
    make_conn(extra={"max_retries": 0})
    requests_mock.post(JOBS_URL, exc=requests.exceptions.ReadTimeout)
    requests_mock.get(KB_JOBS_URL, exc=requests.exceptions.ReadTimeout)
    with pytest.raises(GradientAmbiguousStartError):
        GradientHook().start_indexing_job(KB)
    assert post_count(requests_mock) == 1


@pytest.mark.parametrize(
    "failure",
    [{"exc": connect_error()}, {"exc": requests.exceptions.ConnectTimeout}],
    ids=["refused", "connect-timeout"],
)
def test_start_is_resent_when_it_surely_did_not_arrive(hook: GradientHook, requests_mock: Any, failure: Any) -> None:
    requests_mock.post(JOBS_URL, [failure, {"json": {"job": job_json()}}])
    assert hook.start_indexing_job(KB).uuid == JOB
    assert post_count(requests_mock) == 2
    assert requests_mock.call_count == 2  # no reconciliation read


def test_start_is_resent_on_429(hook: GradientHook, requests_mock: Any, no_sleep: list[float]) -> None:
    requests_mock.post(
        JOBS_URL,
        [
            {"status_code": 429, "json": {"id": "too_many_requests"}, "headers": {"retry-after": "3"}},
            {"json": {"job": job_json()}},
        ],
    )
    assert hook.start_indexing_job(KB).uuid == JOB
    assert post_count(requests_mock) == 2
    assert no_sleep[0] >= 3.0


def test_start_never_connecting_raises_transport_error(
    make_conn: Any, requests_mock: Any, no_sleep: list[float]
) -> None:
    make_conn(extra={"max_retries": 2})
    requests_mock.post(JOBS_URL, exc=connect_error())
    with pytest.raises(GradientTransportError) as info:
        GradientHook().start_indexing_job(KB)
    assert info.value.request_sent is False
    assert post_count(requests_mock) == 3
    assert requests_mock.call_count == 3


@pytest.mark.parametrize("status", [400, 409, 412, 500])
def test_start_conflict(hook: GradientHook, requests_mock: Any, status: int) -> None:
    requests_mock.post(
        JOBS_URL,
        status_code=status,
        json={"id": "failed_precondition", "message": f"knowledge base {KB} already has an indexing job running"},
    )
    with pytest.raises(GradientConflictError, match="already has an indexing job running"):
        hook.start_indexing_job(KB)
    assert requests_mock.call_count == 1


def test_start_database_not_ready(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.post(JOBS_URL, status_code=500, json={"id": "internal", "message": "failed to get db creds"})
    with pytest.raises(GradientDatabaseNotReadyError, match="still being created"):
        hook.start_indexing_job(KB)
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(("status", "cls"), [(401, GradientAuthError), (404, GradientNotFoundError)])
def test_start_client_errors_are_final(
    hook: GradientHook, requests_mock: Any, status: int, cls: type[Exception]
) -> None:
    requests_mock.post(JOBS_URL, status_code=status, json={"id": "x", "message": "no"})
    with pytest.raises(cls):
        hook.start_indexing_job(KB)
    assert requests_mock.call_count == 1


# --------------------------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------------------------


def paged(items_key: str, pages: dict[int, list[dict[str, Any]]], next_for: Any, total_pages: int | None = None) -> Any:
    def callback(request: Any, context: Any) -> dict[str, Any]:
        page = int(request.qs.get("page", ["1"])[0])
        nxt = next_for(page, request)
        return {
            items_key: pages.get(page, []),
            "links": {"pages": {"next": nxt} if nxt else {}},
            "meta": {"page": page, "pages": total_pages or len(pages), "total": sum(len(v) for v in pages.values())},
        }

    return callback


def test_iter_indexing_jobs_walks_every_page(hook: GradientHook, requests_mock: Any) -> None:
    pages = {
        1: [job_json("00000000-0000-4000-8000-000000000001")],
        2: [job_json("00000000-0000-4000-8000-000000000002")],
        3: [job_json("00000000-0000-4000-8000-000000000003")],
    }

    def next_for(page: int, request: Any) -> str | None:
        return f"{JOBS_URL}?page={page + 1}&per_page=1" if page < 3 else None

    requests_mock.get(JOBS_URL, json=paged("jobs", pages, next_for))
    uuids = [j.uuid for j in hook.iter_indexing_jobs(per_page=1)]
    assert uuids == [f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3)]
    assert [r.qs for r in requests_mock.request_history] == [
        {"per_page": ["1"]},
        {"page": ["2"], "per_page": ["1"]},
        {"page": ["3"], "per_page": ["1"]},
    ]


def test_iter_knowledge_bases_walks_every_page(hook: GradientHook, requests_mock: Any) -> None:
    pages = {1: [{"uuid": "a"}, {"uuid": "b"}], 2: [{"uuid": "c"}]}
    requests_mock.get(
        f"{BASE}/v2/gen-ai/knowledge_bases",
        json=paged(
            "knowledge_bases",
            pages,
            lambda p, r: f"{BASE}/v2/gen-ai/knowledge_bases?page=2&per_page=2" if p == 1 else None,
        ),
    )
    assert [kb.uuid for kb in hook.iter_knowledge_bases(per_page=2)] == ["a", "b", "c"]
    assert requests_mock.call_count == 2


def test_iter_knowledge_base_data_sources_walks_every_page(hook: GradientHook, requests_mock: Any) -> None:
    pages = {1: [{"uuid": "a"}], 2: [{"uuid": "b"}], 3: [{"uuid": "c"}], 4: [{"uuid": "d"}]}
    requests_mock.get(
        f"{KB_URL}/data_sources",
        json=paged(
            "knowledge_base_data_sources", pages, lambda p, r: f"{KB_URL}/data_sources?page={p + 1}" if p < 4 else None
        ),
    )
    assert [d.uuid for d in hook.iter_knowledge_base_data_sources(KB, per_page=1)] == ["a", "b", "c", "d"]
    assert requests_mock.call_count == 4
    # per_page of the first request is kept on later pages even when the link leaves it out.
    assert all(r.qs.get("per_page") == ["1"] for r in requests_mock.request_history)


def test_next_link_to_the_same_page_ends_the_walk(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(JOBS_URL, json=paged("jobs", {1: [job_json()]}, lambda p, r: f"{JOBS_URL}?page={p}"))
    assert [j.uuid for j in hook.iter_indexing_jobs()] == [JOB]
    assert requests_mock.call_count == 1


def test_next_link_cycle_ends_the_walk(hook: GradientHook, requests_mock: Any) -> None:
    # 1 → 2 → 1 → ...: a server bug must not make the walk endless.
    requests_mock.get(
        JOBS_URL,
        json=paged("jobs", {1: [job_json()], 2: [job_json(OTHER_JOB)]}, lambda p, r: f"{JOBS_URL}?page={3 - p}"),
    )
    assert [j.uuid for j in hook.iter_indexing_jobs()] == [JOB, OTHER_JOB]
    assert requests_mock.call_count == 2


def test_next_link_on_another_host_never_gets_the_token(hook: GradientHook, requests_mock: Any) -> None:
    evil = requests_mock.get("https://evil.test/v2/gen-ai/indexing_jobs", json={"jobs": []})
    requests_mock.get(
        JOBS_URL,
        json=paged(
            "jobs",
            {1: [job_json()], 2: [job_json(OTHER_JOB)]},
            lambda p, r: "https://evil.test/v2/gen-ai/indexing_jobs?page=2&per_page=100&steal=1" if p == 1 else None,
        ),
    )
    assert [j.uuid for j in hook.iter_indexing_jobs()] == [JOB, OTHER_JOB]
    assert not evil.called
    assert {r.hostname for r in requests_mock.request_history} == {"api.example.test"}
    assert requests_mock.request_history[1].qs == {"page": ["2"], "per_page": ["100"]}


def test_pagination_errors_propagate(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        JOBS_URL,
        [
            {"json": {"jobs": [job_json()], "links": {"pages": {"next": f"{JOBS_URL}?page=2"}}}},
            {"status_code": 404, "json": {"id": "not_found", "message": "gone"}},
        ],
    )
    walk = hook.iter_indexing_jobs()
    assert next(walk).uuid == JOB
    with pytest.raises(GradientNotFoundError):
        next(walk)


# --------------------------------------------------------------------------------------------
# Error messages, request ids and the token
# --------------------------------------------------------------------------------------------


def test_error_carries_id_message_and_request_id(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        JOB_URL,
        status_code=404,
        json={"id": "not_found", "message": "The resource you were accessing could not be found.", "request_id": "b-1"},
        headers={"x-request-id": "h-1"},
    )
    with pytest.raises(GradientNotFoundError) as info:
        hook.get_indexing_job(JOB)
    err = info.value
    assert (err.http_status, err.error_id, err.request_id) == (404, "not_found", "b-1")
    assert err.api_message == "The resource you were accessing could not be found."
    assert str(err).startswith("GET /v2/gen-ai/indexing_jobs/{uuid}: HTTP 404 (not_found): The resource")


def test_error_request_id_from_header(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        JOB_URL, status_code=403, json={"id": "forbidden", "message": "no"}, headers={"X-Request-Id": "h-2"}
    )
    with pytest.raises(GradientAuthError) as info:
        hook.get_indexing_job(JOB)
    assert info.value.request_id == "h-2"
    assert "[request_id=h-2]" in str(info.value)
    assert "genai:read" in str(info.value)


def test_html_error_page_is_summarised(make_conn: Any, requests_mock: Any, no_sleep: list[float]) -> None:
    make_conn(extra={"max_retries": 0})
    html = "<html><head><title>504 Gateway Time-out</title></head><body>" + "<p>x</p>" * 1000 + "</body></html>"
    requests_mock.get(JOB_URL, status_code=504, text=html, headers={"Content-Type": "text/html"})
    with pytest.raises(GradientServerError) as info:
        GradientHook().get_indexing_job(JOB)
    assert "text/html: 504 Gateway Time-out" in str(info.value)
    assert "<p>" not in str(info.value)


def test_token_never_leaks(
    make_conn: Any,
    requests_mock: Any,
    no_sleep: list[float],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    conn = make_conn(extra={"max_retries": 2})
    caplog.set_level(logging.DEBUG)
    hook = GradientHook()
    assert conn.token not in repr(hook)
    assert conn.token not in repr(hook.settings)
    requests_mock.get(
        JOB_URL,
        [
            {"exc": reset_error()},
            {"status_code": 503, "json": {}},
            {"status_code": 401, "json": {"id": "unauthorized", "message": "Unable to authenticate you"}},
        ],
    )
    requests_mock.post(JOBS_URL, exc=requests.exceptions.ReadTimeout)
    requests_mock.get(KB_JOBS_URL, json={"jobs": []})
    errors: list[GradientError] = []
    for call in (lambda: hook.get_indexing_job(JOB), lambda: hook.start_indexing_job(KB)):
        with pytest.raises(GradientError) as info:
            call()
        errors.append(info.value)
    text = logged(caplog, capfd)
    assert "Retrying" in text  # the retries were logged...
    assert "may have reached the API" in text
    assert conn.token not in text  # ...without the token
    for err in errors:
        assert conn.token not in str(err)
        assert conn.token not in repr(err)
        assert conn.token.encode() not in pickle.dumps(err)


# --------------------------------------------------------------------------------------------
# test_connection
# --------------------------------------------------------------------------------------------


def test_test_connection_ok(hook: GradientHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{BASE}/v2/gen-ai/knowledge_bases", json={"knowledge_bases": [{"uuid": KB}], "meta": {"total": 12}}
    )
    ok, message = hook.test_connection()
    assert ok is True
    assert message == f"Connected to {BASE}: the token can read 12 knowledge base(s)."
    assert requests_mock.call_count == 1
    assert requests_mock.last_request.qs == {"per_page": ["1"]}


@pytest.mark.parametrize("status", [401, 403])
def test_test_connection_rejected_token(hook: GradientHook, requests_mock: Any, status: int) -> None:
    requests_mock.get(
        f"{BASE}/v2/gen-ai/knowledge_bases", status_code=status, json={"id": "unauthorized", "message": "no"}
    )
    ok, message = hook.test_connection()
    assert ok is False
    assert f"HTTP {status}" in message
    for scope in ("genai:read", "genai:create", "genai:update"):
        assert scope in message


def test_test_connection_other_failure(make_conn: Any, requests_mock: Any, no_sleep: list[float]) -> None:
    make_conn(extra={"max_retries": 0})
    requests_mock.get(
        f"{BASE}/v2/gen-ai/knowledge_bases", status_code=500, json={"id": "server_error", "message": "kaput"}
    )
    ok, message = GradientHook().test_connection()
    assert ok is False
    assert "HTTP 500" in message
    assert "kaput" in message


def test_test_connection_without_token(make_conn: Any, requests_mock: Any) -> None:
    make_conn(password=None)
    ok, message = GradientHook().test_connection()
    assert ok is False
    assert "has no API token" in message
    assert requests_mock.call_count == 0


def test_conn_metadata() -> None:
    assert GradientHook.conn_type == "gradient"
    assert GradientHook.default_conn_name == "gradient_default"
    assert GradientHook.hook_name == "DigitalOcean Gradient"
    behaviour = GradientHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "API token"
    assert "login" in behaviour["hidden_fields"]


def test_response_error_on_garbled_read(make_conn: Any, requests_mock: Any, no_sleep: list[float]) -> None:
    make_conn(extra={"max_retries": 1})
    requests_mock.get(JOB_URL, text="not json", headers={"x-request-id": "r-9"})
    with pytest.raises(GradientResponseError) as info:
        GradientHook().get_indexing_job(JOB)
    assert info.value.request_id == "r-9"
    assert requests_mock.call_count == 2


# --------------------------------------------------------------------------------------------
# Async methods: against a real local HTTP server (aiohttp.web) over sockets
# --------------------------------------------------------------------------------------------


class FakeAPI:
    """A tiny stand-in for the Gradient API: records requests, can fail the next N with 503."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        self.base_url = ""
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": json.loads(body) if body else None,
            }
        )
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response(
                {"id": "service_unavailable", "message": "try later"}, status=503, headers={"Retry-After": "0"}
            )
        path = request.path
        if path == f"/v2/gen-ai/indexing_jobs/{JOB}" and request.method == "GET":
            return web.json_response({"job": job_json(total_tokens="77")}, headers={"x-request-id": "rid"})
        if path == f"/v2/gen-ai/indexing_jobs/{JOB}/data_sources":
            return web.json_response(
                {
                    "indexed_data_sources": [
                        {"data_source_uuid": DS1, "indexed_item_count": "5"},
                        {"data_source_uuid": DS2},
                    ]
                }
            )
        if path == f"/v2/gen-ai/indexing_jobs/{JOB}/cancel" and request.method == "PUT":
            return web.json_response({"job": job_json(phase="BATCH_JOB_PHASE_CANCELLED")})
        if path == f"/v2/gen-ai/knowledge_bases/{KB}":
            return web.json_response({"knowledge_base": {"uuid": KB, "name": "docs"}, "database_status": "ONLINE"})
        if path == f"/v2/gen-ai/knowledge_bases/{KB}/indexing_jobs":
            return web.json_response({"jobs": [job_json(), job_json(OTHER_JOB, phase="BATCH_JOB_PHASE_SUCCEEDED")]})
        return web.json_response({"id": "not_found", "message": "The resource was not found."}, status=404)


@pytest.fixture
async def fake_api(make_conn: Any) -> AsyncIterator[FakeAPI]:
    api = FakeAPI()
    server = TestServer(api.app, host="127.0.0.1")
    await server.start_server()
    api.base_url = f"http://127.0.0.1:{server.port}"
    make_conn(host=api.base_url)
    try:
        yield api
    finally:
        await server.close()


@pytest.fixture
def no_sync_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Fail if anything reads the connection synchronously on the event loop's thread (it would block
    the loop). A sync read in a worker thread is allowed: that is how Airflow < 3.3.2 reads it.
    """
    original = GradientHook.get_connection.__func__  # type: ignore[attr-defined]

    def guarded(cls: type[GradientHook], *args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop runs in this thread: a worker thread, blocking is fine
            return original(cls, *args, **kwargs)
        raise AssertionError("the sync get_connection was called on the event loop")

    monkeypatch.setattr(GradientHook, "get_connection", classmethod(guarded))


async def test_async_methods(fake_api: FakeAPI, no_sync_connection: None) -> None:
    hook = GradientHook()
    try:
        job = await hook.aget_indexing_job(JOB)
        assert isinstance(job, IndexingJob)
        assert (job.uuid, job.total_tokens) == (JOB, 77)

        sources = await hook.alist_indexing_job_data_sources(JOB)
        assert [(s.data_source_uuid, s.indexed_item_count) for s in sources] == [(DS1, 5), (DS2, None)]

        cancelled = await hook.acancel_indexing_job(JOB)
        assert cancelled.outcome is JobOutcome.CANCELLED

        details = await hook.aget_knowledge_base(KB)
        assert isinstance(details, KnowledgeBaseDetails)
        assert details.knowledge_base.name == "docs"
        assert details.database_ready

        jobs = await hook.alist_knowledge_base_indexing_jobs(KB)
        assert [j.uuid for j in jobs] == [JOB, OTHER_JOB]
    finally:
        await hook.aclose()

    assert [(r["method"], r["path"]) for r in fake_api.requests] == [
        ("GET", f"/v2/gen-ai/indexing_jobs/{JOB}"),
        ("GET", f"/v2/gen-ai/indexing_jobs/{JOB}/data_sources"),
        ("PUT", f"/v2/gen-ai/indexing_jobs/{JOB}/cancel"),
        ("GET", f"/v2/gen-ai/knowledge_bases/{KB}"),
        ("GET", f"/v2/gen-ai/knowledge_bases/{KB}/indexing_jobs"),
    ]
    assert fake_api.requests[2]["json"] == {"uuid": JOB}
    assert all(r["json"] is None for i, r in enumerate(fake_api.requests) if i != 2)
    for request in fake_api.requests:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["User-Agent"].startswith(f"airflow-provider-gradient/{__version__}")
        assert request["query"] == {}


async def test_async_retries_on_503(fake_api: FakeAPI, no_sync_connection: None) -> None:
    fake_api.fail_next = 2
    hook = GradientHook()
    try:
        job = await hook.aget_indexing_job(JOB)
    finally:
        await hook.aclose()
    assert job.uuid == JOB
    assert len(fake_api.requests) == 3


async def test_async_cancel_retried_on_503(fake_api: FakeAPI) -> None:
    fake_api.fail_next = 1
    hook = GradientHook()
    try:
        assert (await hook.acancel_indexing_job(JOB)).outcome is JobOutcome.CANCELLED
    finally:
        await hook.aclose()
    assert [r["method"] for r in fake_api.requests] == ["PUT", "PUT"]
    assert all(r["json"] == {"uuid": JOB} for r in fake_api.requests)


async def test_async_max_retries_and_error(fake_api: FakeAPI, make_conn: Any, no_sync_connection: None) -> None:
    fake_api.fail_next = 10
    make_conn(host=fake_api.base_url, extra={"max_retries": 1})
    hook = GradientHook()
    try:
        with pytest.raises(GradientServerError, match=r"HTTP 503 \(service_unavailable\): try later"):
            await hook.aget_indexing_job(JOB)
    finally:
        await hook.aclose()
    assert len(fake_api.requests) == 2


async def test_async_not_found_is_not_retried(fake_api: FakeAPI) -> None:
    hook = GradientHook()
    try:
        with pytest.raises(GradientNotFoundError):
            await hook.aget_knowledge_base("00000000-0000-4000-8000-000000000000")
    finally:
        await hook.aclose()
    assert len(fake_api.requests) == 1


async def test_async_bad_uuid_sends_nothing(fake_api: FakeAPI) -> None:
    hook = GradientHook()
    with pytest.raises(GradientConfigError, match=r"^indexing_job_uuid"):
        await hook.aget_indexing_job("nope")
    await hook.aclose()
    assert fake_api.requests == []


async def test_async_hooks_share_one_session(fake_api: FakeAPI, no_sync_connection: None) -> None:
    assert SESSION_POOL.open_sessions() == 0
    first, second = GradientHook(), GradientHook()
    await asyncio.gather(first.aget_indexing_job(JOB), second.aget_indexing_job(JOB), first.aget_knowledge_base(KB))
    assert SESSION_POOL.open_sessions() == 1
    session = first._async_session
    assert session is not None
    assert second._async_session is session

    await first.aclose()
    assert SESSION_POOL.open_sessions() == 1
    assert not session.closed
    # The remaining user still works.
    assert (await second.aget_indexing_job(JOB)).uuid == JOB

    await second.aclose()
    assert SESSION_POOL.open_sessions() == 0
    assert session.closed


async def test_async_aclose_twice_does_not_steal_other_users_share(fake_api: FakeAPI) -> None:
    first, second = GradientHook(), GradientHook()
    await first.aget_indexing_job(JOB)
    await second.aget_indexing_job(JOB)
    await first.aclose()
    await first.aclose()
    assert SESSION_POOL.open_sessions() == 1
    await second.aclose()
    assert SESSION_POOL.open_sessions() == 0


async def test_async_hook_reacquires_after_aclose(fake_api: FakeAPI) -> None:
    hook = GradientHook()
    await hook.aget_indexing_job(JOB)
    await hook.aclose()
    assert SESSION_POOL.open_sessions() == 0
    assert (await hook.aget_indexing_job(JOB)).uuid == JOB
    assert SESSION_POOL.open_sessions() == 1
    await hook.aclose()
    assert SESSION_POOL.open_sessions() == 0


@pytest.fixture
def connection_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The connection ids the async hooks read (each read takes 50 ms, as a round trip would)."""
    from airflow_provider_gradient.hooks import _async_connection

    reads: list[str] = []
    original = _async_connection.read_connection

    async def counted(hook: Any, conn_id: str) -> Any:
        reads.append(conn_id)
        await asyncio.sleep(0.05)
        return await original(hook, conn_id)

    monkeypatch.setattr(_async_connection, "read_connection", counted)
    return reads


async def test_hooks_of_one_connection_share_one_read_on_a_loop(
    fake_api: FakeAPI, make_conn: Any, connection_reads: list[str]
) -> None:
    make_conn("gradient_other", host=fake_api.base_url, password="dop_v1_another_token")
    settings = await asyncio.gather(*(GradientHook().asettings() for _ in range(50)))
    assert connection_reads == ["gradient_default"]  # a thousand new triggers: one read
    assert all(item is settings[0] for item in settings)
    other = await GradientHook("gradient_other").asettings()
    assert connection_reads == ["gradient_default", "gradient_other"]
    assert other.token_key != settings[0].token_key


def test_each_loop_reads_the_connection_itself(fake_api: FakeAPI, connection_reads: list[str]) -> None:
    async def read() -> None:
        await GradientHook().asettings()

    asyncio.run(read())
    asyncio.run(read())
    assert connection_reads == ["gradient_default", "gradient_default"]


async def test_a_changed_connection_is_read_after_the_ttl(
    fake_api: FakeAPI, make_conn: Any, connection_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_gradient.hooks import gradient

    monkeypatch.setattr(gradient, "SETTINGS_TTL", 3600.0)  # (however slow the machine)
    assert (await GradientHook().asettings()).retry.max_retries == 5
    make_conn(host=fake_api.base_url, extra={"max_retries": 1})
    assert (await GradientHook().asettings()).retry.max_retries == 5  # within the TTL: the same read
    monkeypatch.setattr(gradient, "SETTINGS_TTL", 0.0)
    assert (await GradientHook().asettings()).retry.max_retries == 1
    assert len(connection_reads) == 2


async def test_a_failed_connection_read_is_not_kept(make_conn: Any, connection_reads: list[str]) -> None:
    with pytest.raises(GradientConfigError, match="no such connection"):
        await GradientHook("gradient_late").asettings()
    make_conn("gradient_late")
    assert (await GradientHook("gradient_late").asettings()).base_url == "https://api.example.test"
    assert connection_reads == ["gradient_late", "gradient_late"]


async def test_a_cancelled_caller_does_not_cancel_the_read_others_wait_for(
    fake_api: FakeAPI, connection_reads: list[str]
) -> None:
    first = asyncio.ensure_future(GradientHook().asettings())
    second = asyncio.ensure_future(GradientHook().asettings())
    await asyncio.sleep(0.01)  # both wait for the one read (50 ms)
    first.cancel()
    assert (await second).base_url == fake_api.base_url
    assert connection_reads == ["gradient_default"]
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_async_different_connections_do_not_share(fake_api: FakeAPI, make_conn: Any) -> None:
    make_conn("gradient_other", host=fake_api.base_url, password="dop_v1_another_token")
    first, second = GradientHook(), GradientHook("gradient_other")
    await first.aget_indexing_job(JOB)
    await second.aget_indexing_job(JOB)
    assert SESSION_POOL.open_sessions() == 2
    assert first._async_session is not second._async_session
    assert {r["headers"]["Authorization"] for r in fake_api.requests} == {
        "Bearer dop_v1_test_token_never_logged",
        "Bearer dop_v1_another_token",
    }
    await first.aclose()
    await second.aclose()
    assert SESSION_POOL.open_sessions() == 0


@pytest.fixture
def threaded_api(make_conn: Any) -> Iterator[None]:
    """A minimal job endpoint served from a thread, for tests that run their own event loops."""
    body = json.dumps({"job": job_json()}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    make_conn(host=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_async_hook_used_from_two_event_loops(threaded_api: None) -> None:
    # A hook may be driven by more than one event loop (a sync caller running the async API
    # with asyncio.run() each time): a later loop must not reuse an earlier loop's session,
    # and aclose() on it must not release a share of a session it does not hold there.
    hook = GradientHook()

    async def poll() -> str | None:
        return (await hook.aget_indexing_job(JOB)).uuid

    async def poll_and_close() -> str | None:
        try:
            return await poll()
        finally:
            await hook.aclose()

    first_loop = asyncio.new_event_loop()
    try:
        assert first_loop.run_until_complete(poll()) == JOB  # the hook keeps its share on this loop
        first_session = hook._async_session
        assert asyncio.run(poll_and_close()) == JOB
        assert asyncio.run(poll_and_close()) == JOB
        assert first_session is not None
        assert not first_session.closed  # still first_loop's, untouched by the other loops
        assert hook._settings is not None
        first_loop.run_until_complete(SESSION_POOL.release(hook._settings))
        assert first_session.closed
    finally:
        first_loop.close()
    assert SESSION_POOL.open_sessions() == 0
