"""The :class:`GradientEmulator` handle: the Python API tests and demos use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette

from airflow_provider_gradient.testing.emulator.app import build_app
from airflow_provider_gradient.testing.emulator.auth import ALL_SCOPES
from airflow_provider_gradient.testing.emulator.backend import Backend, build_scripts
from airflow_provider_gradient.testing.emulator.clock import EmulatedClock
from airflow_provider_gradient.testing.emulator.faults import FaultInjector
from airflow_provider_gradient.testing.emulator.jobs import DEFAULT_PENDING_SECONDS, DEFAULT_SECONDS_PER_SOURCE
from airflow_provider_gradient.testing.emulator.ratelimit import HeaderMode, RateLimiter
from airflow_provider_gradient.testing.emulator.requestlog import RecordedRequest
from airflow_provider_gradient.testing.emulator.server import BackgroundServer
from airflow_provider_gradient.testing.emulator.state import ListOrder, check_list_order

__all__ = ["DEFAULT_TOKEN", "GradientEmulator", "KnowledgeBaseHandle"]

#: Token the emulator accepts unless told otherwise (all genai scopes).
DEFAULT_TOKEN = "dop_v1_emulator"  # noqa: S105 - a fake token for the local emulator


@dataclass(frozen=True)
class KnowledgeBaseHandle:
    """What :meth:`GradientEmulator.create_knowledge_base` returns.

    :param uuid: the knowledge base uuid.
    :param name: its name.
    :param data_source_uuids: its data sources, in creation order.
    """

    uuid: str
    name: str
    data_source_uuids: list[str] = field(default_factory=list)


class GradientEmulator:
    """A local emulator of the DigitalOcean Gradient indexing-job API.

    :param token: the token accepted with every genai scope.
    :param seed: seed for every generated uuid (same seed and calls -> same uuids).
    :param speed: emulated seconds per wall second (jobs progress on emulated time).
    :param rate_limit_per_minute: burst limit per token (``None`` = unlimited).
    :param rate_limit_per_hour: hourly limit per token (``None`` = unlimited).
    :param rate_limit_headers: what ``ratelimit-remaining`` / ``ratelimit-reset`` describe:
        ``"binding"`` (the window with fewer requests left) or ``"hourly"`` (the hourly window
        only, as DigitalOcean documents it).
    :param host: interface to listen on.
    :param port: TCP port, ``0`` for a free one.
    :param default_pending: emulated seconds a job stays PENDING unless scripted.
    :param default_seconds_per_source: emulated seconds each data source takes unless scripted.
    :param conflict_status: status of "already has an indexing job running" (default 409).
    :param db_not_ready_status: status of "failed to get db creds" (default 400).
    :param record_requests: keep the request log (turn off for long benchmarks).
    :param list_order: the order ``GET /v2/gen-ai/indexing_jobs`` lists jobs in, which the real API
        does not document: ``"newest"`` first (default), ``"oldest"`` first, or ``"none"`` (an order
        unrelated to creation, stable between requests). :meth:`reset` keeps it.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        seed: int = 0,
        speed: float = 1.0,
        rate_limit_per_minute: int | None = 250,
        rate_limit_per_hour: int | None = 5000,
        *,
        rate_limit_headers: HeaderMode = "binding",
        host: str = "127.0.0.1",
        port: int = 0,
        default_pending: float = DEFAULT_PENDING_SECONDS,
        default_seconds_per_source: float = DEFAULT_SECONDS_PER_SOURCE,
        conflict_status: int = 409,
        db_not_ready_status: int = 400,
        record_requests: bool = True,
        list_order: ListOrder = "newest",
    ) -> None:
        self._backend = Backend(
            token=token,
            seed=seed,
            speed=speed,
            rate_limit_per_minute=rate_limit_per_minute,
            rate_limit_per_hour=rate_limit_per_hour,
            rate_limit_headers=rate_limit_headers,
            default_pending=default_pending,
            default_per_source=default_seconds_per_source,
            conflict_status=conflict_status,
            db_not_ready_status=db_not_ready_status,
            record_requests=record_requests,
            list_order=check_list_order(list_order),
        )
        self.app: Starlette = build_app(self._backend)
        self._server = BackgroundServer(self.app, host, port)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> GradientEmulator:
        """Start serving in a background daemon thread; returns ``self``."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop the server (the state is kept; :meth:`start` serves it again on a new port if 0)."""
        self._server.stop()

    def __enter__(self) -> GradientEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self.running else "stopped"
        return f"<GradientEmulator {state}>"

    @property
    def running(self) -> bool:
        """Whether the server is up."""
        return self._server.running

    def reset(self) -> None:
        """Forget KBs, jobs, faults, requests, extra tokens and rate-limit counts; reset the clock."""
        self._backend.reset()

    # -- connection details ----------------------------------------------------------------
    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running emulator."""
        if not self.running:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def token(self) -> str:
        """The default token (genai:read, genai:create, genai:update)."""
        return self._backend.token

    def add_token(self, token: str, scopes: Iterable[str] = ALL_SCOPES) -> None:
        """Accept another token with the given scopes.

        :param token: the bearer token.
        :param scopes: e.g. ``["genai:read"]`` for a read-only token.
        """
        self._backend.tokens.add(token, scopes)

    def airflow_conn_json(self, conn_type: str = "gradient") -> str:
        """JSON value for ``AIRFLOW_CONN_GRADIENT_DEFAULT`` pointing at this emulator.

        :param conn_type: the connection type.
        """
        return json.dumps({"conn_type": conn_type, "host": self.base_url, "password": self.token})

    @property
    def conn_uri(self) -> str:
        """The same connection in Airflow URI form (host is the percent-encoded base URL)."""
        return f"gradient://:{quote(self.token, safe='')}@{quote(self.base_url, safe='')}"

    # -- server-side state -----------------------------------------------------------------
    def create_knowledge_base(
        self,
        name: str = "docs",
        data_sources: int | Sequence[str] = 1,
        database_ready: bool = True,
        auto_index: bool = False,
        *,
        database_ready_after: float | None = None,
        region: str = "tor1",
    ) -> KnowledgeBaseHandle:
        """Create a knowledge base with web-crawler data sources.

        :param name: its name.
        :param data_sources: how many data sources, or their base URLs.
        :param database_ready: whether ``database_status`` is ONLINE from the start; if not, it is
            CREATING (and starting a job fails with "failed to get db creds") until
            :meth:`set_database_ready` or ``database_ready_after`` emulated seconds.
        :param auto_index: start an indexing job right away, as the real service does on creation.
        :param database_ready_after: emulated seconds after which the database turns ONLINE.
        :param region: region code.
        """
        kb = self._backend.store.create_knowledge_base(
            name,
            data_sources,
            database_ready=database_ready,
            database_ready_after=database_ready_after,
            auto_index=auto_index,
            region=region,
        )
        return KnowledgeBaseHandle(kb.uuid, kb.name, [ds.uuid for ds in kb.data_sources])

    def script_jobs(
        self,
        kb_uuid: str,
        outcome: str | Sequence[str] = "COMPLETED",
        duration: float | None = None,
        pending: float | None = None,
        *,
        failed_data_sources: Sequence[str] | None = None,
        error_msg: str | None = None,
        error_details: str | None = None,
        failed_item_count: int | None = None,
    ) -> None:
        """Script how the knowledge base's next jobs end.

        A list of outcomes is consumed one per job, in order; the last one stays in force for
        every later job (a single outcome therefore applies to all next jobs).

        :param kb_uuid: the knowledge base.
        :param outcome: ``COMPLETED``, ``NO_CHANGES``, ``PARTIAL`` or ``FAILED`` (or a list).
        :param duration: emulated RUNNING seconds, split evenly over the data sources.
        :param pending: emulated PENDING seconds.
        :param failed_data_sources: data sources that fail (default: the job's last one).
        :param error_msg: ``error_msg`` on failing data sources.
        :param error_details: ``error_details`` on failing data sources.
        :param failed_item_count: ``failed_item_count`` on failing data sources.
        """
        scripts = build_scripts(
            outcome,
            duration=duration,
            pending=pending,
            failed_data_sources=failed_data_sources,
            error_msg=error_msg,
            error_details=error_details,
            failed_item_count=failed_item_count,
        )
        self._backend.store.script_jobs(kb_uuid, scripts)

    def set_database_ready(self, kb_uuid: str, ready: bool = True) -> None:
        """Turn the knowledge base's ``database_status`` ONLINE (or back to CREATING).

        :param kb_uuid: the knowledge base.
        :param ready: ONLINE when true.
        """
        self._backend.store.set_database_ready(kb_uuid, ready)

    def start_job_server_side(self, kb_uuid: str, data_source_uuids: Sequence[str] | None = None) -> str:
        """Start a job without the client (console, auto-indexing); returns the job uuid.

        :param kb_uuid: the knowledge base.
        :param data_source_uuids: data sources to index (default: all).
        :raises ApiError: 404 unknown KB, or the conflict status if a job is already running.
        """
        job = self._backend.store.start_job(kb_uuid, data_source_uuids, origin="server", require_database=False)
        return job.uuid

    def set_schedule(
        self, kb_uuid: str, days: Sequence[int] = (1, 2, 3, 4, 5, 6, 7), time: str = "02:00", is_active: bool = True
    ) -> dict[str, Any]:
        """Configure scheduled indexing; jobs start by themselves when emulated time passes a run.

        :param kb_uuid: the knowledge base.
        :param days: days of the week, cron style (Monday = 1, Sunday = 7 or 0).
        :param time: ``HH:MM`` or ``HH:MM:SS`` UTC.
        :param is_active: whether the schedule fires.
        :returns: the ``indexing_info`` the API will return.
        """
        return self._backend.store.set_schedule(kb_uuid, days=days, time=time, is_active=is_active).render()

    def clear_schedule(self, kb_uuid: str) -> None:
        """Remove scheduled indexing (the API then answers 404).

        :param kb_uuid: the knowledge base.
        """
        self._backend.store.clear_schedule(kb_uuid)

    def delete_job(self, job_uuid: str) -> None:
        """Delete a job: its GET answers 404 and the lists leave it out.

        :param job_uuid: the job uuid.
        """
        self._backend.store.delete_job(job_uuid)

    def add_finished_jobs(self, kb_uuid: str, count: int, *, before: float = 3600.0, spacing: float = 1.0) -> list[str]:
        """Add history cheaply: ``count`` finished jobs created in the past, without any request.

        :param kb_uuid: the knowledge base.
        :param count: how many jobs.
        :param before: emulated seconds before now the newest of them was created.
        :param spacing: emulated seconds between their creations.
        :returns: their uuids, oldest first.
        """
        return self._backend.store.add_finished_jobs(kb_uuid, count, before=before, spacing=spacing)

    # -- controls --------------------------------------------------------------------------
    @property
    def list_order(self) -> ListOrder:
        """The order of the team-wide job list now: ``"newest"``, ``"oldest"`` or ``"none"``."""
        return self._backend.store.list_order

    def set_list_order(self, order: ListOrder) -> None:
        """List ``GET /v2/gen-ai/indexing_jobs`` in another order until :meth:`reset`.

        :param order: ``"newest"``, ``"oldest"`` or ``"none"``.
        """
        self._backend.store.list_order = check_list_order(order)

    @property
    def clock(self) -> EmulatedClock:
        """The emulated clock: ``advance(seconds)``, ``speed``, ``now()``."""
        return self._backend.clock

    @property
    def faults(self) -> FaultInjector:
        """Fault injection: ``faults.add(operation=..., kind=..., ...)``, ``faults.clear()``."""
        return self._backend.faults

    @property
    def rate_limiter(self) -> RateLimiter:
        """The per-token rate limiter."""
        return self._backend.limiter

    def set_rate_limits(self, per_minute: int | None, per_hour: int | None, headers: HeaderMode | None = None) -> None:
        """Change the rate limits (``None`` = unlimited).

        :param per_minute: burst limit per rolling minute.
        :param per_hour: limit per rolling hour.
        :param headers: ``"binding"`` or ``"hourly"`` header reading; ``None`` keeps the current one.
        """
        self._backend.limiter.configure(per_minute, per_hour, headers)

    # -- observation -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """DigitalOcean-surface requests received so far, oldest first (Authorization redacted)."""
        return self._backend.log.snapshot()

    def count(
        self,
        method: str | None = None,
        operation: str | None = None,
        *,
        path: str | None = None,
        status: int | None = None,
    ) -> int:
        """Count recorded requests matching every given criterion.

        :param method: HTTP method, e.g. ``"POST"``.
        :param operation: operation id, e.g. ``"genai_create_indexing_job"``.
        :param path: exact URL path.
        :param status: answered status.
        """
        return sum(
            1
            for item in self._backend.log.snapshot()
            if (method is None or item.method == method.upper())
            and (operation is None or item.operation == operation)
            and (path is None or item.path == path)
            and (status is None or item.status == status)
        )

    def reset_requests(self) -> None:
        """Clear the request log."""
        self._backend.log.clear()

    def jobs(self, kb_uuid: str | None = None) -> list[dict[str, Any]]:
        """Every job (or a KB's jobs) rendered as the API would right now, newest first.

        :param kb_uuid: restrict to this knowledge base.
        """
        store = self._backend.store
        with store.lock:
            now = store.now()
            return [job.render(now) for job in store.list_jobs(kb_uuid)]

    def job(self, job_uuid: str) -> dict[str, Any]:
        """One job rendered as the API would right now.

        :param job_uuid: the job uuid.
        """
        store = self._backend.store
        with store.lock:
            return store.get_job(job_uuid).render(store.now())
