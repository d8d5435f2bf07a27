"""The ``/_emulator`` control API: drive the emulator from another process.

It is not part of the DigitalOcean surface: no authentication, no rate limit, not recorded in the
request log. Bodies and answers are JSON; errors are ``{"id", "message"}`` with status 400 or 404.

======  ==============================================  ==================================================
Method  Path                                            Body / answer
======  ==============================================  ==================================================
GET     /_emulator/health                               ``{"status": "ok", "now": ..., "speed": ...}``
POST    /_emulator/reset                                forget everything (KBs, jobs, faults, requests...)
POST    /_emulator/tokens                               ``{"token", "scopes"}``
POST    /_emulator/knowledge_bases                      ``{"name", "data_sources", "database_ready",
                                                        "database_ready_after", "auto_index", "region"}``
                                                        -> ``{"uuid", "name", "data_source_uuids"}``
POST    /_emulator/knowledge_bases/{uuid}/script        ``{"outcome": str | [str], "duration", "pending",
                                                        "failed_data_sources", "error_msg",
                                                        "error_details", "failed_item_count"}``
POST    /_emulator/knowledge_bases/{uuid}/database_ready ``{"ready": true}``
POST    /_emulator/knowledge_bases/{uuid}/jobs          ``{"data_source_uuids"}`` -> ``{"job_uuid", "job"}``
PUT     /_emulator/knowledge_bases/{uuid}/schedule      ``{"days", "time", "is_active"}``
DELETE  /_emulator/knowledge_bases/{uuid}/schedule
GET     /_emulator/faults                               ``{"faults": [...]}``
POST    /_emulator/faults                               arguments of ``FaultInjector.add`` -> the fault
DELETE  /_emulator/faults                               remove all faults
GET     /_emulator/clock                                ``{"now", "now_rfc3339", "speed"}``
POST    /_emulator/clock                                ``{"advance": seconds, "speed": factor}``
PUT     /_emulator/rate_limits                          ``{"per_minute", "per_hour"[, "headers"]}``
GET     /_emulator/requests                             ``{"requests": [...]}``
DELETE  /_emulator/requests                             clear the request log
GET     /_emulator/jobs?kb_uuid=                        ``{"jobs": [...]}`` (newest first)
DELETE  /_emulator/jobs/{uuid}                          delete a job (404 afterwards)
POST    /_emulator/knowledge_bases/{uuid}/finished_jobs ``{"count", "before", "spacing"}`` -> ``{"job_uuids"}``
GET     /_emulator/list_order                           ``{"list_order": "newest" | "oldest" | "none"}``
PUT     /_emulator/list_order                           ``{"list_order": ...}``: the job list's order
GET     /_emulator/reports/{uuid}.csv                   the CSV report a signed URL points to
======  ==============================================  ==================================================
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_gradient.testing.emulator.auth import ALL_SCOPES
from airflow_provider_gradient.testing.emulator.backend import Backend, build_scripts
from airflow_provider_gradient.testing.emulator.clock import rfc3339
from airflow_provider_gradient.testing.emulator.errors import ApiError
from airflow_provider_gradient.testing.emulator.state import check_list_order

__all__ = ["CONTROL_PREFIX", "build_control_routes"]

CONTROL_PREFIX = "/_emulator"

ControlHandler = Callable[[Backend, Request, dict[str, Any]], Any]


def _json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={"x-request-id": str(uuid.uuid4())},
    )


def _wrap(backend: Backend, handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            with backend.store.lock:
                result = handler(backend, request, body)
        except ApiError as error:
            return _json_response({"id": error.error_id, "message": error.message}, error.status)
        except (ValueError, TypeError, KeyError) as error:
            return _json_response({"id": "bad_request", "message": str(error)}, 400)
        if isinstance(result, Response):
            result.headers["x-request-id"] = str(uuid.uuid4())
            return result
        return _json_response(result if result is not None else {"ok": True})

    return endpoint


def _health(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    return {"status": "ok", "now": backend.clock.now(), "speed": backend.clock.speed}


def _reset(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.reset()


def _add_token(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.tokens.add(str(body["token"]), body.get("scopes", sorted(ALL_SCOPES)))


def _create_kb(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    kb = backend.store.create_knowledge_base(
        str(body.get("name", "knowledge-base")),
        body.get("data_sources", 1),
        database_ready=bool(body.get("database_ready", True)),
        database_ready_after=body.get("database_ready_after"),
        auto_index=bool(body.get("auto_index", False)),
        region=str(body.get("region", "tor1")),
    )
    return {"uuid": kb.uuid, "name": kb.name, "data_source_uuids": [ds.uuid for ds in kb.data_sources]}


def _script(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    scripts = build_scripts(
        body.get("outcome", "COMPLETED"),
        duration=body.get("duration"),
        pending=body.get("pending"),
        failed_data_sources=body.get("failed_data_sources"),
        error_msg=body.get("error_msg"),
        error_details=body.get("error_details"),
        failed_item_count=body.get("failed_item_count"),
    )
    backend.store.script_jobs(request.path_params["uuid"], scripts)


def _database_ready(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.store.set_database_ready(request.path_params["uuid"], bool(body.get("ready", True)))


def _start_job(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    store = backend.store
    job = store.start_job(
        request.path_params["uuid"],
        body.get("data_source_uuids"),
        origin="server",
        require_database=False,
    )
    return {"job_uuid": job.uuid, "job": job.render(store.now())}


def _set_schedule(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    schedule = backend.store.set_schedule(
        request.path_params["uuid"],
        days=body.get("days", [1, 2, 3, 4, 5, 6, 7]),
        time=str(body.get("time", "02:00:00")),
        is_active=bool(body.get("is_active", True)),
    )
    return {"indexing_info": schedule.render()}


def _clear_schedule(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.store.clear_schedule(request.path_params["uuid"])


def _list_faults(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    return {"faults": [fault.as_dict() for fault in backend.faults.list()]}


def _add_fault(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    return backend.faults.add(**body).as_dict()


def _clear_faults(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.faults.clear()


def _clock(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    if request.method == "POST":
        if body.get("speed") is not None:
            backend.clock.speed = float(body["speed"])
        if body.get("advance") is not None:
            backend.clock.advance(float(body["advance"]))
    now = backend.store.now()
    return {"now": now, "now_rfc3339": rfc3339(now), "speed": backend.clock.speed}


def _rate_limits(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.limiter.configure(body.get("per_minute"), body.get("per_hour"), body.get("headers"))


def _requests(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        backend.log.clear()
        return None
    return {"requests": [item.as_dict() for item in backend.log.snapshot()]}


def _jobs(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    store = backend.store
    now = store.now()
    return {"jobs": [job.render(now) for job in store.list_jobs(request.query_params.get("kb_uuid"))]}


def _delete_job(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    backend.store.delete_job(request.path_params["uuid"])


def _finished_jobs(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    uuids = backend.store.add_finished_jobs(
        request.path_params["uuid"],
        int(body["count"]),
        before=float(body.get("before", 3600.0)),
        spacing=float(body.get("spacing", 1.0)),
    )
    return {"job_uuids": uuids}


def _list_order(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    if request.method == "PUT":
        backend.store.list_order = check_list_order(str(body.get("list_order")))
    return {"list_order": backend.store.list_order}


def _report(backend: Backend, request: Request, body: dict[str, Any]) -> Any:
    store = backend.store
    now = store.now()
    job = store.get_job(request.path_params["uuid"])
    if not job.report_available(now):
        raise ApiError(404, "report not available")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["data_source_uuid", "status", "indexed_item_count", "failed_item_count", "error_msg"])
    for entry in job.render_data_sources(now):
        writer.writerow(
            [
                entry["data_source_uuid"],
                entry["status"],
                entry["indexed_item_count"],
                entry["failed_item_count"],
                entry.get("error_msg", ""),
            ]
        )
    return Response(out.getvalue(), media_type="text/csv")


def build_control_routes(backend: Backend) -> list[BaseRoute]:
    """The ``/_emulator`` routes."""
    table: list[tuple[str, ControlHandler, list[str]]] = [
        ("/health", _health, ["GET"]),
        ("/reset", _reset, ["POST"]),
        ("/tokens", _add_token, ["POST"]),
        ("/knowledge_bases", _create_kb, ["POST"]),
        ("/knowledge_bases/{uuid}/script", _script, ["POST"]),
        ("/knowledge_bases/{uuid}/database_ready", _database_ready, ["POST"]),
        ("/knowledge_bases/{uuid}/jobs", _start_job, ["POST"]),
        ("/knowledge_bases/{uuid}/schedule", _set_schedule, ["PUT"]),
        ("/knowledge_bases/{uuid}/schedule", _clear_schedule, ["DELETE"]),
        ("/faults", _list_faults, ["GET"]),
        ("/faults", _add_fault, ["POST"]),
        ("/faults", _clear_faults, ["DELETE"]),
        ("/clock", _clock, ["GET", "POST"]),
        ("/rate_limits", _rate_limits, ["PUT"]),
        ("/requests", _requests, ["GET", "DELETE"]),
        ("/jobs", _jobs, ["GET"]),
        ("/jobs/{uuid}", _delete_job, ["DELETE"]),
        ("/knowledge_bases/{uuid}/finished_jobs", _finished_jobs, ["POST"]),
        ("/list_order", _list_order, ["GET", "PUT"]),
        ("/reports/{uuid}.csv", _report, ["GET"]),
    ]
    return [Route(CONTROL_PREFIX + path, _wrap(backend, handler), methods=methods) for path, handler, methods in table]
