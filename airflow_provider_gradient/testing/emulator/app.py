"""The DigitalOcean-surface Starlette application: 11 operations plus auth, rate limits and faults.

Every request goes through :func:`_pipeline`: request id, authentication (401), rate limiting
(429), scope check (403), fault injection, the operation handler, then headers and the request
log. The hot path does no schema validation and no logging.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from airflow_provider_gradient.testing.emulator.auth import bearer_token
from airflow_provider_gradient.testing.emulator.backend import Backend
from airflow_provider_gradient.testing.emulator.errors import ApiError
from airflow_provider_gradient.testing.emulator.faults import BODY_KINDS, Fault, apply_body_fault
from airflow_provider_gradient.testing.emulator.requestlog import REDACTED_AUTHORIZATION, RecordedRequest
from airflow_provider_gradient.testing.emulator.state import KB_JOBS_LIMIT

__all__ = ["API_PREFIX", "OPERATIONS", "DroppedConnection", "build_api_routes", "build_app"]

logger = logging.getLogger(__name__)

API_PREFIX = "/v2/gen-ai"
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_JSON = "application/json"
_HTML_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class DroppedConnection(Exception):
    """Raised after a partial response to make uvicorn drop the connection (``reset`` fault)."""


@dataclass
class Call:
    """What an operation handler gets."""

    request: Request
    params: dict[str, str]
    json: Any
    now: float
    backend: Backend

    def base_url(self) -> str:
        """Absolute ``scheme://host:port`` the client used."""
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    """One API operation: its operation id, the scope it needs and its handler."""

    operation_id: str
    scope: str
    handler: Handler


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _error_body(error_id: str, message: str, request_id: str) -> bytes:
    return _dumps({"id": error_id, "message": message, "request_id": request_id})


def _not_found() -> ApiError:
    return ApiError(404, "The resource you were accessing could not be found.")


# -- pagination ----------------------------------------------------------------------------
def _int_param(call: Call, name: str, default: int) -> int:
    raw = call.request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"invalid value for {name}: must be an integer") from None


def paginate(call: Call, items: Sequence[Any], render: Callable[[Any], dict[str, Any]], key: str) -> dict[str, Any]:
    """Slice ``items`` by ``page``/``per_page`` and add ``links.pages`` and ``meta``.

    ``per_page`` defaults to 20 and is clamped to 1..200; ``page`` below 1 counts as 1. ``first`` and
    ``previous`` appear only after page 1, ``next`` and ``last`` only before the last page.
    """
    page = max(1, _int_param(call, "page", 1))
    per_page = _int_param(call, "per_page", DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    total = len(items)
    pages = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    base = call.base_url() + call.request.url.path

    def url(number: int) -> str:
        return f"{base}?page={number}&per_page={per_page}"

    links: dict[str, str] = {}
    if page > 1:
        links["first"] = url(1)
        links["previous"] = url(min(page - 1, pages))
    if page < pages:
        links["next"] = url(page + 1)
        links["last"] = url(pages)
    return {
        key: [render(item) for item in chunk],
        "links": {"pages": links},
        "meta": {"page": page, "pages": pages, "total": total},
    }


# -- handlers ------------------------------------------------------------------------------
def _list_indexing_jobs(call: Call) -> dict[str, Any]:
    jobs = call.backend.store.list_all_jobs()
    return paginate(call, jobs, lambda job: job.render(call.now), "jobs")


def _create_indexing_job(call: Call) -> dict[str, Any]:
    body = call.json if call.json is not None else {}
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    kb_uuid = body.get("knowledge_base_uuid")
    if not isinstance(kb_uuid, str) or not kb_uuid:
        raise ApiError(400, "knowledge_base_uuid is required")
    sources = body.get("data_source_uuids")
    if sources is not None and (not isinstance(sources, list) or not all(isinstance(item, str) for item in sources)):
        raise ApiError(400, "data_source_uuids must be an array of strings")
    job = call.backend.store.start_job(kb_uuid, sources or None, origin="api")
    return {"job": job.render(call.backend.store.now())}


def _get_indexing_job(call: Call) -> dict[str, Any]:
    return {"job": call.backend.store.get_job(call.params["uuid"]).render(call.now)}


def _cancel_indexing_job(call: Call) -> dict[str, Any]:
    store = call.backend.store
    job = store.get_job(call.params["uuid"])
    body = call.json if call.json is not None else {}
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    body_uuid = body.get("uuid")
    if body_uuid not in (None, "", job.uuid):
        raise ApiError(400, "uuid in the body does not match the uuid in the path")
    job = store.cancel_job(job.uuid)
    return {"job": job.render(store.now())}


def _list_indexing_job_data_sources(call: Call) -> dict[str, Any]:
    job = call.backend.store.get_job(call.params["indexing_job_uuid"])
    return {"indexed_data_sources": job.render_data_sources(call.now)}


def _get_details_signed_url(call: Call) -> dict[str, Any]:
    job = call.backend.store.get_job(call.params["indexing_job_uuid"])
    if not job.report_available(call.now):
        raise ApiError(404, f"the details report of indexing job {job.uuid} is not available")
    expires = int(time.time()) + 900
    signature = hashlib.sha256(f"{job.uuid}:{expires}".encode()).hexdigest()
    return {
        "signed_url": f"{call.base_url()}/_emulator/reports/{job.uuid}.csv"
        f"?X-Amz-Expires=900&X-Amz-Date={expires}&X-Amz-Signature={signature}"
    }


def _list_indexing_jobs_by_knowledge_base(call: Call) -> dict[str, Any]:
    jobs = call.backend.store.list_jobs(call.params["knowledge_base_uuid"])[:KB_JOBS_LIMIT]
    return {
        "jobs": [job.render(call.now) for job in jobs],
        "links": {"pages": {}},
        "meta": {"page": 1, "pages": 1, "total": len(jobs)},
    }


def _get_knowledge_base(call: Call) -> dict[str, Any]:
    store = call.backend.store
    kb = store.get_knowledge_base(call.params["uuid"])
    return {
        "knowledge_base": store.render_knowledge_base(kb, call.now),
        "database_status": kb.database_status(call.now),
    }


def _list_knowledge_bases(call: Call) -> dict[str, Any]:
    store = call.backend.store
    kbs = list(store.knowledge_bases.values())
    return paginate(call, kbs, lambda kb: store.render_knowledge_base(kb, call.now), "knowledge_bases")


def _list_knowledge_base_data_sources(call: Call) -> dict[str, Any]:
    store = call.backend.store
    kb = store.get_knowledge_base(call.params["knowledge_base_uuid"])
    return paginate(
        call,
        kb.data_sources,
        lambda source: store.render_data_source(kb, source, call.now),
        "knowledge_base_data_sources",
    )


def _get_scheduled_indexing(call: Call) -> dict[str, Any]:
    kb = call.backend.store.get_knowledge_base(call.params["knowledge_base_uuid"])
    if kb.schedule is None:
        raise ApiError(404, f"no scheduled indexing configured for knowledge base {kb.uuid}")
    return {"indexing_info": kb.schedule.render()}


#: path -> method -> operation
OPERATIONS: dict[str, dict[str, Operation]] = {
    "/indexing_jobs": {
        "GET": Operation("genai_list_indexing_jobs", "genai:read", _list_indexing_jobs),
        "POST": Operation("genai_create_indexing_job", "genai:create", _create_indexing_job),
    },
    "/indexing_jobs/{uuid}": {
        "GET": Operation("genai_get_indexing_job", "genai:read", _get_indexing_job),
    },
    "/indexing_jobs/{uuid}/cancel": {
        "PUT": Operation("genai_cancel_indexing_job", "genai:update", _cancel_indexing_job),
    },
    "/indexing_jobs/{indexing_job_uuid}/data_sources": {
        "GET": Operation("genai_list_indexing_job_data_sources", "genai:read", _list_indexing_job_data_sources),
    },
    "/indexing_jobs/{indexing_job_uuid}/details_signed_url": {
        "GET": Operation("genai_get_indexing_job_details_signed_url", "genai:read", _get_details_signed_url),
    },
    "/knowledge_bases": {
        "GET": Operation("genai_list_knowledge_bases", "genai:read", _list_knowledge_bases),
    },
    "/knowledge_bases/{uuid}": {
        "GET": Operation("genai_get_knowledge_base", "genai:read", _get_knowledge_base),
    },
    "/knowledge_bases/{knowledge_base_uuid}/data_sources": {
        "GET": Operation("genai_list_knowledge_base_data_sources", "genai:read", _list_knowledge_base_data_sources),
    },
    "/knowledge_bases/{knowledge_base_uuid}/indexing_jobs": {
        "GET": Operation(
            "genai_list_indexing_jobs_by_knowledge_base", "genai:read", _list_indexing_jobs_by_knowledge_base
        ),
    },
    "/scheduled-indexing/knowledge-base/{knowledge_base_uuid}": {
        "GET": Operation("genai_get_scheduled_indexing", "genai:read", _get_scheduled_indexing),
    },
}


# -- responses -----------------------------------------------------------------------------
class _ResetResponse(Response):
    """Sends the headers and half of a body, then raises :class:`DroppedConnection`."""

    def __init__(self, partial: bytes, headers: dict[str, str]) -> None:
        super().__init__(content=b"", status_code=200, headers=headers, media_type=_JSON)
        self._partial = partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers = [(name, value) for name, value in self.raw_headers if name.lower() != b"content-length"]
        raw_headers.append((b"content-length", str(len(self._partial) * 2 + 64).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send({"type": "http.response.body", "body": self._partial, "more_body": True})
        raise DroppedConnection("emulated connection reset")


def _redacted_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        headers[name] = REDACTED_AUTHORIZATION if name == "authorization" else raw_value.decode("latin-1")
    return headers


def _pipeline(backend: Backend, operations: dict[str, Operation]) -> Callable[[Request], Any]:
    store, tokens, limiter, faults, log = (
        backend.store,
        backend.tokens,
        backend.limiter,
        backend.faults,
        backend.log,
    )

    async def endpoint(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        generation = backend.generation
        method = request.method
        operation = operations.get(method)
        raw_body = await request.body() if method in ("POST", "PUT", "PATCH") else b""
        parsed: Any = None
        rate = None
        fault: Fault | None = None
        media_type = _JSON
        extra_headers: dict[str, str] = {}
        response: Response | None = None
        try:
            if raw_body:
                try:
                    parsed = json.loads(raw_body)
                except ValueError:
                    parsed = None
                    if operation is not None:
                        # Authentication still comes first; remember the problem.
                        parsed = _BAD_JSON
            if operation is None:
                raise ApiError(405, f"method {method} is not allowed on this resource")
            token = bearer_token(request.headers.get("authorization"))
            scopes = tokens.scopes(token) if token is not None else None
            if token is None or scopes is None:
                raise ApiError(401, "Unable to authenticate you")
            rate = limiter.check(token)
            if not rate.allowed:
                raise ApiError(429, "API rate limit exceeded.")
            if operation.scope not in scopes:
                raise ApiError(403, "You do not have access for the attempted action.")
            fault = faults.match(operation.operation_id)
            if fault is not None:
                if fault.kind == "delay":
                    await asyncio.sleep(fault.seconds or 0.0)
                    if backend.generation != generation:
                        raise ApiError(503, "the emulator was reset while this request was delayed")
                elif fault.kind == "status":
                    extra_headers.update(fault.headers)
                    raise ApiError(fault.status or 500, fault.message or "Unexpected server-side error")
                elif fault.kind == "html":
                    status = fault.status or 502
                    extra_headers.update(fault.headers)
                    response_body: bytes = _HTML_PAGE.format(status=status).encode()
                    media_type = "text/html"
                    raise _Answer(status, response_body)
            if parsed is _BAD_JSON:
                raise ApiError(400, "the request body is not valid JSON")
            call = Call(request, dict(request.path_params), parsed, store.now(), backend)
            with store.lock:
                payload = operation.handler(call)
            if fault is not None and fault.kind == "create_then_fail":
                if fault.seconds is None:
                    extra_headers.update(fault.headers)
                    raise ApiError(fault.status or 502, fault.message or "Bad Gateway")
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind in BODY_KINDS and fault.kind != "malformed_json":
                payload = apply_body_fault(fault, payload)
            status, content = 200, _dumps(payload)
            if fault is not None and fault.kind == "malformed_json":
                content = content[: max(1, len(content) // 2)]
            if fault is not None and fault.kind == "reset":
                status = 0
                headers = (rate or limiter.idle()).headers()
                headers["x-request-id"] = request_id
                response = _ResetResponse(content[: max(1, len(content) // 2)], headers)
        except ApiError as error:
            status, content = error.status, _error_body(error.error_id, error.message, request_id)
        except _Answer as answer:
            status, content = answer.status, answer.body
        except Exception:
            logger.exception("emulator bug while handling %s %s", method, request.url.path)
            status = 500
            content = _error_body("server_error", "Unexpected server-side error", request_id)
        if response is None:
            headers = (rate or limiter.idle()).headers()
            headers["x-request-id"] = request_id
            headers.update(extra_headers)
            response = Response(content, status_code=status, headers=headers, media_type=media_type)
        if log.enabled and backend.generation == generation:  # not into the log of a later test
            log.append(
                RecordedRequest(
                    time=time.time(),
                    method=method,
                    path=request.scope["path"],
                    query=dict(request.query_params),
                    json=parsed if parsed is not _BAD_JSON else None,
                    body=raw_body.decode("utf-8", errors="replace"),
                    headers=_redacted_headers(request),
                    status=status,
                    operation=operation.operation_id if operation is not None else None,
                    request_id=request_id,
                    fault=fault.kind if fault is not None else None,
                )
            )
        return response

    return endpoint


class _Answer(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


_BAD_JSON = object()


def _not_found_endpoint(backend: Backend) -> Callable[[Request], Any]:
    log = backend.log

    async def endpoint(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        headers = backend.limiter.idle().headers()
        headers["x-request-id"] = request_id
        if log.enabled and request.url.path.startswith("/v2/"):
            raw_body = await request.body()
            log.append(
                RecordedRequest(
                    time=time.time(),
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    json=None,
                    body=raw_body.decode("utf-8", errors="replace"),
                    headers=_redacted_headers(request),
                    status=404,
                    operation=None,
                    request_id=request_id,
                )
            )
        body = _error_body("not_found", "The resource you were accessing could not be found.", request_id)
        return Response(body, status_code=404, headers=headers, media_type=_JSON)

    return endpoint


def build_api_routes(backend: Backend) -> list[BaseRoute]:
    """The DigitalOcean-surface routes (one per path, dispatching on the method)."""
    return [
        Route(API_PREFIX + path, _pipeline(backend, operations), methods=_ALL_METHODS)
        for path, operations in OPERATIONS.items()
    ]


def build_app(backend: Backend) -> Starlette:
    """The complete ASGI application: DigitalOcean surface, ``/_emulator`` control API, 404s."""
    from airflow_provider_gradient.testing.emulator.control import build_control_routes

    routes: list[BaseRoute] = [*build_api_routes(backend), *build_control_routes(backend)]
    routes.append(Route("/{path:path}", _not_found_endpoint(backend), methods=_ALL_METHODS))
    return Starlette(routes=routes)
