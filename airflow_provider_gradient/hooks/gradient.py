"""The hook for the DigitalOcean Gradient AI indexing-job API."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import tenacity
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_provider_gradient import _api, _sweep
from airflow_provider_gradient._settings import ClientSettings, RetryPolicy
from airflow_provider_gradient.exceptions import (
    GradientAmbiguousStartError,
    GradientAPIError,
    GradientAuthError,
    GradientConfigError,
    GradientError,
    GradientResponseError,
    GradientServerError,
    GradientTransportError,
)
from airflow_provider_gradient.hooks import _transport
from airflow_provider_gradient.hooks._budget import RequestBudget, budget_for, sync_budget_for
from airflow_provider_gradient.models import (
    IndexedDataSource,
    IndexingJob,
    IndexingJobPage,
    KnowledgeBase,
    KnowledgeBaseDataSource,
    KnowledgeBaseDataSourcePage,
    KnowledgeBaseDetails,
    KnowledgeBasePage,
    ScheduledIndexingInfo,
)

if TYPE_CHECKING:
    import aiohttp
    import requests

    from airflow_provider_gradient.hooks._watcher import JobWatcher, RecentJobs

__all__ = ["GradientHook", "KnowledgeBaseJobs", "paced_call"]

T = TypeVar("T")
Item = TypeVar("Item")

#: How far before a failed start (seconds) a job's ``created_at`` may lie and still be adopted as
#: the job that start created: an allowance for clock skew between Airflow and the API.
CLOCK_SKEW = 60.0
#: Seconds for which a connection read on an event loop serves the loop's other hooks of that
#: connection: a triggerer creating a thousand triggers reads it once, not a thousand times (in the
#: triggerer each read is a round trip to its supervisor). A changed connection reaches the
#: triggers created after that long; a running trigger keeps the settings it started with.
SETTINGS_TTL = 5.0


class KnowledgeBaseJobs(NamedTuple):
    """
    What :meth:`GradientHook.alist_recent_knowledge_base_indexing_jobs` read of a knowledge base.

    :param jobs: Its jobs created since the time asked for and the current state of the running
        jobs asked about; or, when ``listed``, its latest jobs as its own list holds them.
    :param next_since: The time the next call should pass as ``since`` so that no job created
        after this read is missed (``None``: the next call reads the knowledge base's own list).
    :param listed: Whether the knowledge base's own list was read (``GET
        /v2/gen-ai/knowledge_bases/{uuid}/indexing_jobs``).
    """

    jobs: list[IndexingJob]
    next_since: datetime | None
    listed: bool


#: Per event loop: (hook class, connection id) -> (monotonic time read, the read).
_LOOP_SETTINGS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[type, str], tuple[float, asyncio.Future[ClientSettings]]]
] = weakref.WeakKeyDictionary()


async def paced_call(
    op: _api.Operation[T],
    budget: RequestBudget,
    policy: RetryPolicy,
    send: Callable[[], Awaitable[_api.RawResponse]],
    *,
    foreground: bool,
    logger: Any = None,
    retry: bool = True,
) -> T:
    """
    One async call: a turn from the token's budget, the request, the budget told of the answer,
    and the retry policy around it. :meth:`GradientHook.arun` sends through its transport; the
    multi-process simulation of the budget (``tests/hooks/budget_simulation.py``) sends to the
    emulator's rate limiter on a virtual-time event loop, through this same code.

    :param op: The operation (its parser and retry rules).
    :param budget: The token's budget on this event loop; its ``clock`` measures the retry budget.
    :param policy: The connection's retry policy.
    :param send: Sends the request once and returns the raw answer.
    :param foreground: The caller's priority (see :mod:`._budget`).
    :param logger: Where retries are logged.
    :param retry: Retry per the policy; ``False`` raises the first failure.
    """
    started = budget.clock()

    async def attempt() -> T:
        await budget.acquire(foreground=foreground, max_wait=policy.budget - (budget.clock() - started))
        raw = await send()
        budget.observe_now(raw.headers, raw.status)
        return _api.parse_response(op, raw)

    # The first attempt goes without the retry machinery (a trigger's polls nearly always
    # succeed at once, and entering tenacity is the dearest step of a poll); a failure worth
    # retrying is then handed to tenacity as its first attempt, so the policy is the same.
    try:
        return await attempt()
    except Exception as error:
        if not retry or not _api.is_retryable(op, error):
            raise
        first: Exception | None = error
    async for again in tenacity.AsyncRetrying(**_api.retry_kwargs(op, policy, logger)):
        with again:
            if first is not None:
                made, first = first, None
                raise made
            return await attempt()
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


def _has_port(url: str) -> bool:
    try:
        return urlsplit(url).port is not None
    except ValueError:  # a malformed port: leave the URL alone, the settings check reports it
        return True


class GradientHook(BaseHook):
    """
    Talk to the DigitalOcean Gradient AI API: knowledge bases and their indexing jobs.

    Sync methods (for workers) use one reused ``requests.Session``; the ``a``-prefixed async
    methods (for triggers) use an ``aiohttp.ClientSession`` shared by every hook of the same
    connection on the event loop, and read the connection asynchronously. Both go through the
    same request building, parsing, error mapping and retry policy.

    Reads and cancel are retried on connection errors, timeouts, 429, 500, 502, 503 and 504 with
    exponential backoff and jitter, honouring ``Retry-After``. Starting a job is never blindly
    retried: see :meth:`start_indexing_job`.

    Every request goes through the token's request budget, which paces this process together with
    every other process using the token, through the API's rate-limit headers: sync calls and async
    non-GETs (a task's own start and cancel) go first, async GETs (the triggers' polls) make way as
    the token fills up (``docs/production.md``, "How the processes share one token").

    :param gradient_conn_id: The ``gradient`` connection: password = API token, host = optional
        API base URL (default ``https://api.digitalocean.com``); extras: see the connection docs.
    """

    conn_name_attr = "gradient_conn_id"
    default_conn_name = "gradient_default"
    conn_type = "gradient"
    hook_name = "DigitalOcean Gradient"

    def __init__(self, gradient_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gradient_conn_id = gradient_conn_id
        self._settings: ClientSettings | None = None
        self._session: requests.Session | None = None
        self._async_session: aiohttp.ClientSession | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None  # the loop _async_session belongs to

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gradient_conn_id={self.gradient_conn_id!r})"

    # ----------------------------------------------------------------------------------------
    # Connection
    # ----------------------------------------------------------------------------------------

    @property
    def settings(self) -> ClientSettings:
        """The validated connection settings (read synchronously; not for the event loop)."""
        if self._settings is None:
            try:
                conn = self.get_connection(self.gradient_conn_id)
            except AirflowNotFoundException:
                raise self._no_such_connection() from None
            self._settings = self._settings_from(conn, conn.extra_dejson)
        return self._settings

    async def asettings(self) -> ClientSettings:
        """
        The validated connection settings, read without blocking the event loop. Hooks of the same
        connection on one loop share one read for :data:`SETTINGS_TTL` seconds; a failed read is
        not kept.
        """
        if self._settings is None:
            reads = _LOOP_SETTINGS.setdefault(asyncio.get_running_loop(), {})
            key = (type(self), self.gradient_conn_id)
            entry = reads.get(key)
            if entry is None or time.monotonic() - entry[0] >= SETTINGS_TTL:
                entry = reads[key] = (time.monotonic(), asyncio.ensure_future(self._read_settings()))
            try:
                # shield: a caller cancelled while waiting must not cancel the read others wait for.
                self._settings = await asyncio.shield(entry[1])
            except BaseException:
                if reads.get(key) is entry and entry[1].done():
                    del reads[key]  # the next caller reads again
                raise
        return self._settings

    async def _read_settings(self) -> ClientSettings:
        from airflow_provider_gradient.hooks._async_connection import read_connection

        try:
            conn, extra = await read_connection(self, self.gradient_conn_id)
        except AirflowNotFoundException:
            raise self._no_such_connection() from None
        return self._settings_from(conn, extra)

    def _no_such_connection(self) -> GradientConfigError:
        conn_id = self.gradient_conn_id
        return GradientConfigError(
            f"gradient_conn_id={conn_id!r}: no such connection. Create a connection of type 'gradient' with "
            f"a DigitalOcean API token as its password (Admin > Connections, or the environment variable "
            f"AIRFLOW_CONN_{conn_id.upper()}), or pass the id of an existing one."
        )

    def _settings_from(self, conn: Any, extra: dict[str, Any]) -> ClientSettings:
        if conn.conn_type not in (None, "", self.conn_type):
            # Never send a token meant for another service (its password) to wherever its host points.
            raise GradientConfigError(
                f"gradient_conn_id={self.gradient_conn_id!r}: the connection has type {conn.conn_type!r}, "
                f"expected {self.conn_type!r}. Change its type to {self.conn_type!r} (DigitalOcean Gradient), "
                "or pass the id of a gradient connection."
            )
        host = (conn.host or "").strip()
        if host and "://" not in host:
            # A URI-style connection (gradient://:token@host:port/http) splits the URL into fields.
            host = f"{conn.schema if conn.schema in ('http', 'https') else 'https'}://{host}"
        if host and conn.port and not _has_port(host):
            parts = urlsplit(host)
            host = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{conn.port}"))
        return ClientSettings.from_connection(
            conn_id=self.gradient_conn_id, host=host, password=conn.password, extra=extra or {}
        )

    def get_conn(self) -> requests.Session:
        """The reused ``requests.Session`` (auth headers, proxy) of this hook."""
        if self._session is None:
            self._session = _transport.new_requests_session(self.settings)
        return self._session

    def close(self) -> None:
        """Close the sync session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    async def aclose(self) -> None:
        """Release this hook's share of the async session (closed when its last user leaves)."""
        if self._async_session is not None and self._settings is not None:
            own_loop = self._async_loop is asyncio.get_running_loop()
            self._async_session = None
            self._async_loop = None
            if own_loop:  # a share taken on another (finished) loop is not this loop's to release
                await _transport.SESSION_POOL.release(self._settings)

    def console_url(self, knowledge_base_uuid: str | None, indexing_job_uuid: str | None) -> str:
        """The console page of a job, from the connection's ``console_url_template``."""
        return self.settings.console_url_template.format(
            knowledge_base_uuid=knowledge_base_uuid or "", indexing_job_uuid=indexing_job_uuid or ""
        )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form for the legacy UI (the Airflow 3 UI reads ``get_provider_info``)."""
        from airflow_provider_gradient._conn_fields import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authorized GET (list one knowledge base) and report in plain words."""
        try:
            page = self.list_knowledge_bases(per_page=1)
        except GradientAuthError as err:
            return False, (
                f"The API rejected the token (HTTP {err.http_status}). Use a DigitalOcean token with "
                "the scopes genai:read, genai:create and genai:update."
            )
        except GradientError as err:
            return False, str(err)
        total = page.meta.total if page.meta and page.meta.total is not None else len(page.knowledge_bases)
        return True, f"Connected to {self.settings.base_url}: the token can read {total} knowledge base(s)."

    # ----------------------------------------------------------------------------------------
    # Running operations
    # ----------------------------------------------------------------------------------------

    def run(self, op: _api.Operation[T]) -> T:
        """Send one operation with the sync transport, retrying per the policy; return its result."""
        settings = self.settings
        session = self.get_conn()
        budget = sync_budget_for(settings.token_key, settings.requests_per_minute, settings.requests_per_hour)
        started = time.monotonic()
        for attempt in tenacity.Retrying(**_api.retry_kwargs(op, settings.retry, self.log)):
            with attempt:
                budget.acquire_sync(max_wait=settings.retry.budget - (time.monotonic() - started))
                raw = _transport.sync_send(session, settings, op)
                budget.observe_now(raw.headers, raw.status)
                return _api.parse_response(op, raw)
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def arun(self, op: _api.Operation[T], *, retry: bool = True) -> T:
        """
        Send one operation with the async transport (shared session, per-token budget).

        :param retry: Retry per the policy; ``False`` raises the first failure (for a caller that
            has a cheaper way to recover than waiting, such as the job watcher).
        """
        settings = await self.asettings()
        loop = asyncio.get_running_loop()
        if self._async_session is None or self._async_session.closed or self._async_loop is not loop:
            # A session is bound to the loop it was made on: a hook driven by a new loop (another
            # asyncio.run()) takes a share of that loop's session instead.
            self._async_session = _transport.SESSION_POOL.acquire(settings)
            self._async_loop = loop
        session = self._async_session
        budget = budget_for(settings.token_key, settings.requests_per_minute, settings.requests_per_hour)
        # Polls make way for a task's own calls (start, cancel) when the token runs low.
        return await paced_call(
            op,
            budget,
            settings.retry,
            lambda: _transport.async_send(session, settings, op),
            foreground=op.method != "GET",
            logger=self.log,
            retry=retry,
        )

    def _pages(self, first: _api.Operation[T], items: Callable[[T], list[Item]]) -> Iterator[Item]:
        """Every item of every page; stops on an empty page, past ``meta.pages`` or on a loop."""
        op: _api.Operation[T] | None = first
        seen: set[int] = set()
        while op is not None:
            page = self.run(op)
            page_items = items(page)
            yield from page_items
            op = _api.page_after(first, op, page, len(page_items), seen)

    async def _apages(self, first: _api.Operation[T], items: Callable[[T], list[Item]]) -> AsyncIterator[Item]:
        """Async :meth:`_pages`."""
        op: _api.Operation[T] | None = first
        seen: set[int] = set()
        while op is not None:
            page = await self.arun(op)
            page_items = items(page)
            for item in page_items:
                yield item
            op = _api.page_after(first, op, page, len(page_items), seen)

    # ----------------------------------------------------------------------------------------
    # Indexing jobs
    # ----------------------------------------------------------------------------------------

    def start_indexing_job(
        self,
        knowledge_base_uuid: str,
        data_source_uuids: list[str] | None = None,
        *,
        previous_job_uuid: str | None = None,
    ) -> IndexingJob:
        """
        Start an indexing job; never create two.

        The POST has no idempotency key, so it is re-sent only when it surely did not reach the
        server (connection refused) or was rate limited (429). When it may have arrived (read
        timeout, reset, 5xx, a garbled 2xx), the knowledge base's latest jobs are read instead and
        a job created in that window is adopted.

        :param knowledge_base_uuid: The knowledge base to index.
        :param data_source_uuids: Only these data sources; ``None`` indexes all of them.
        :param previous_job_uuid: The knowledge base's newest job as read before the start (its
            ``last_indexing_job``), if any: neither it nor an older job is adopted after an
            ambiguous start, however recently it was created.
        :raises GradientConflictError: The knowledge base already has a job running.
        :raises GradientAmbiguousStartError: The start may have failed or not, and no job was found.
        """
        op = _api.start_indexing_job(knowledge_base_uuid, data_source_uuids)
        kb_uuid = op.body["knowledge_base_uuid"] if op.body else knowledge_base_uuid
        sent_at = time.time()
        try:
            return self.run(op)
        except (GradientTransportError, GradientServerError, GradientResponseError) as err:
            if isinstance(err, GradientTransportError) and not err.request_sent:
                raise
            self.log.warning(
                "Starting an indexing job may have reached the API (%s). Not re-sending it: looking "
                "for the job it may have created instead.",
                err,
            )
            job = self.find_started_job(
                kb_uuid,
                sent_at,
                op.body.get("data_source_uuids") if op.body else None,
                previous_job_uuid=previous_job_uuid,
            )
            if job is not None:
                self.log.info("Adopting indexing job %s, created by the ambiguous start.", job.uuid)
                return job
            raise GradientAmbiguousStartError(
                f"Starting an indexing job on knowledge base {kb_uuid} failed ambiguously ({err}) and "
                "no job created by it was found. Nothing was re-sent; retrying the task is safe."
            ) from err

    def find_started_job(
        self,
        knowledge_base_uuid: str,
        sent_at: float,
        data_source_uuids: list[str] | None,
        checks: int = 3,
        *,
        previous_job_uuid: str | None = None,
    ) -> IndexingJob | None:
        """
        The job an ambiguous start created: on this knowledge base, created after the start was sent
        (less :data:`CLOCK_SKEW`), for the same data sources; the newest such job. A job that was
        there before the start is not adopted: ``previous_job_uuid`` (the knowledge base's newest
        job read before the start) and every job created before it are someone else's.

        :param knowledge_base_uuid: The knowledge base the start was for.
        :param sent_at: When the start was sent (epoch seconds, this machine's clock).
        :param data_source_uuids: The data sources the start asked for (``None``: all of them).
        :param checks: How many times to list the knowledge base's jobs (a new job may take a
            moment to be listed), 2 s, then 4 s, ... apart.
        :param previous_job_uuid: The newest job before the start, if known.
        """
        wanted = set(data_source_uuids or ())
        for check in range(checks):
            if check:
                time.sleep(2.0 * check)
            try:
                jobs = self.list_knowledge_base_indexing_jobs(knowledge_base_uuid)
            except (GradientAPIError, GradientTransportError, GradientResponseError) as err:
                # Whatever failed here, the caller must still hear that the start was ambiguous.
                self.log.warning("Could not list the knowledge base's jobs to reconcile: %s", err)
                continue
            earliest = sent_at - CLOCK_SKEW
            previous = next((job for job in jobs if previous_job_uuid and job.uuid == previous_job_uuid), None)
            if previous is not None and previous.created_at is not None:
                earliest = max(earliest, previous.created_at.timestamp())
            candidates = [
                (job.created_at.timestamp(), job)
                for job in jobs
                if job.uuid
                and job.uuid != previous_job_uuid
                and job.created_at is not None
                and job.created_at.timestamp() >= earliest
                and (not wanted or not job.data_source_uuids or set(job.data_source_uuids) == wanted)
            ]
            if candidates:
                return max(candidates, key=lambda candidate: candidate[0])[1]  # the newest, in any listing order
        return None

    def get_indexing_job(self, indexing_job_uuid: str) -> IndexingJob:
        """Get one indexing job."""
        return self.run(_api.get_indexing_job(indexing_job_uuid))

    def list_indexing_jobs(self, page: int | None = None, per_page: int | None = None) -> IndexingJobPage:
        """One page of all the team's indexing jobs (the API has no knowledge-base filter here)."""
        return self.run(_api.list_indexing_jobs(page, per_page))

    def iter_indexing_jobs(self, per_page: int = 100) -> Iterator[IndexingJob]:
        """Every indexing job of the team, following ``links.pages.next`` (never loops)."""
        return self._pages(_api.list_indexing_jobs(None, per_page), lambda page: page.jobs)

    def list_indexing_job_data_sources(self, indexing_job_uuid: str) -> list[IndexedDataSource]:
        """The per-data-source results of a job."""
        return self.run(_api.list_indexing_job_data_sources(indexing_job_uuid))

    def cancel_indexing_job(self, indexing_job_uuid: str) -> IndexingJob:
        """Cancel a job (``PUT .../cancel`` with body ``{"uuid": <job uuid>}``); return it as answered."""
        return self.run(_api.cancel_indexing_job(indexing_job_uuid))

    def get_indexing_job_report_url(self, indexing_job_uuid: str) -> str | None:
        """The signed URL of a finished job's detailed report (when ``is_report_available``)."""
        return self.run(_api.get_indexing_job_report_url(indexing_job_uuid))

    # ----------------------------------------------------------------------------------------
    # Knowledge bases
    # ----------------------------------------------------------------------------------------

    def get_knowledge_base(self, knowledge_base_uuid: str) -> KnowledgeBaseDetails:
        """A knowledge base, its ``last_indexing_job`` and its ``database_status``."""
        return self.run(_api.get_knowledge_base(knowledge_base_uuid))

    def list_knowledge_bases(self, page: int | None = None, per_page: int | None = None) -> KnowledgeBasePage:
        """One page of knowledge bases."""
        return self.run(_api.list_knowledge_bases(page, per_page))

    def iter_knowledge_bases(self, per_page: int = 100) -> Iterator[KnowledgeBase]:
        """Every knowledge base, following ``links.pages.next``."""
        return self._pages(_api.list_knowledge_bases(None, per_page), lambda page: page.knowledge_bases)

    def knowledge_base_uuid_for(self, knowledge_base_name: str) -> str:
        """
        The uuid of the knowledge base named ``knowledge_base_name`` (exact match), read from the
        list of knowledge bases (every page).

        :raises GradientConfigError: No knowledge base has that name, or several have.
        """
        kbs = self._pages(_api.list_knowledge_bases(None, _api.MAX_PER_PAGE), lambda page: page.knowledge_bases)
        uuid = _api.pick_knowledge_base(knowledge_base_name, kbs)
        self.log.info("Knowledge base %r is %s.", knowledge_base_name, uuid)
        return uuid

    def list_knowledge_base_data_sources(
        self, knowledge_base_uuid: str, page: int | None = None, per_page: int | None = None
    ) -> KnowledgeBaseDataSourcePage:
        """One page of a knowledge base's data sources."""
        return self.run(_api.list_knowledge_base_data_sources(knowledge_base_uuid, page, per_page))

    def iter_knowledge_base_data_sources(
        self, knowledge_base_uuid: str, per_page: int = 100
    ) -> Iterator[KnowledgeBaseDataSource]:
        """Every data source of a knowledge base, following ``links.pages.next``."""
        return self._pages(
            _api.list_knowledge_base_data_sources(knowledge_base_uuid, None, per_page),
            lambda page: page.knowledge_base_data_sources,
        )

    def list_knowledge_base_indexing_jobs(self, knowledge_base_uuid: str) -> list[IndexingJob]:
        """A knowledge base's latest indexing jobs (the API returns up to 15, newest first)."""
        return self.run(_api.list_knowledge_base_indexing_jobs(knowledge_base_uuid))

    def get_indexing_schedule(self, knowledge_base_uuid: str) -> ScheduledIndexingInfo:
        """A knowledge base's scheduled auto-indexing (404 when it has none)."""
        return self.run(_api.get_indexing_schedule(knowledge_base_uuid))

    # ----------------------------------------------------------------------------------------
    # Async (triggerer)
    # ----------------------------------------------------------------------------------------

    async def aget_indexing_job(self, indexing_job_uuid: str) -> IndexingJob:
        """Async :meth:`get_indexing_job`."""
        return await self.arun(_api.get_indexing_job(indexing_job_uuid))

    async def aobserve_indexing_job(self, indexing_job_uuid: str, max_wait: float | None = None) -> IndexingJob:
        """
        :meth:`aget_indexing_job` for a wait that reads its job again and again: the same result
        and the same errors, but many waits on one event loop and token are served together by
        sweeps of the team's job list (``GET /v2/gen-ai/indexing_jobs``, up to 200 jobs a request)
        instead of one GET each: a read is answered from the latest sweep when that read the job
        after the previous read, else by the next sweep. A job a sweep did not see (a first read
        when no sweeps run, an old job), and every read while too few jobs are watched for a sweep
        to pay, is the job's own GET; so is every read when the watcher fails. See
        ``docs/production.md``, "Many waits on one token".

        :param indexing_job_uuid: The job to read.
        :param max_wait: Seconds the read may wait for a sweep before it reads the job by its own
            GET (``None``: as long as the next sweep takes). The async wait driver passes the wait's
            :meth:`~airflow_provider_gradient._wait.JobWait.read_patience`: its poll interval (longer
            for its first read), cut to the time left before its deadline.
        """
        uuid = _api.validate_uuid(indexing_job_uuid, "indexing_job_uuid")  # bad input fails here
        watcher = await self._awatcher("reading indexing job %s by itself", uuid)
        job = None
        if watcher is not None:
            try:
                job = await watcher.observe(uuid, max_wait)
            except Exception as err:  # never fail a wait because of the watcher: read the job directly
                self.log.warning("The job watcher failed (%s); reading indexing job %s by itself.", err, uuid)
        if job is None:
            job = await self.arun(_api.get_indexing_job(uuid))
            if watcher is not None:
                watcher.learn(job)
        return job

    async def await_indexing_job_end(
        self,
        indexing_job_uuid: str,
        timeout: float,
        *,
        poll_interval: float | None = None,
        longest: float | None = None,
    ) -> bool:
        """
        Sleep until a wait's next read of a job: ``timeout`` seconds, or less when the job watcher
        of this event loop and token sees the job end in a sweep (the next
        :meth:`aobserve_indexing_job` then answers at once, without a request); or longer, up to
        ``longest`` seconds, while the watcher's sweeps see the job run (a read would only repeat
        what they saw). A job the watcher does not watch, and every sleep when the watcher fails,
        is a plain sleep of ``timeout`` seconds.

        :param indexing_job_uuid: The job the wait reads next.
        :param timeout: The wait's delay before its next read (seconds).
        :param poll_interval: The wait's longest delay between reads (seconds; ``None``: ``timeout``):
            the watcher sweeps a third of that apart, and checks that long into a longer sleep
            that its sweeps still see the job.
        :param longest: The longest the wait may sleep while the sweeps see its job (seconds;
            ``None``: ``timeout``).
        :returns: Whether the watcher saw the job end.
        """
        watcher = await self._awatcher("sleeping %.0fs", timeout)
        if watcher is None:
            await asyncio.sleep(timeout)
            return False
        return await watcher.sleep(indexing_job_uuid, timeout, poll_interval=poll_interval, longest=longest)

    async def _awatcher(self, instead: str, *args: object) -> JobWatcher | None:
        """
        The job watcher of this event loop and token (built on first use), or ``None`` when it
        cannot be had: a wait never fails because of the watcher, it logs what it does
        ``instead`` (a ``%`` format of ``args``, formatted only then) and does without.
        """
        from airflow_provider_gradient.hooks._watcher import watcher_for

        settings = await self.asettings()  # its errors are the read's, as without a watcher
        try:
            return watcher_for(settings, self._watcher_hook)
        except Exception as err:
            self.log.warning("The job watcher failed (%s); " + instead + ".", err, *args)
            return None

    def _watcher_hook(self) -> GradientHook:
        """A hook of this connection for a job watcher: its own share of the session, these settings."""
        hook = GradientHook(gradient_conn_id=self.gradient_conn_id)
        hook._settings = self._settings
        return hook

    async def alist_indexing_job_data_sources(self, indexing_job_uuid: str) -> list[IndexedDataSource]:
        """Async :meth:`list_indexing_job_data_sources`."""
        return await self.arun(_api.list_indexing_job_data_sources(indexing_job_uuid))

    async def acancel_indexing_job(self, indexing_job_uuid: str) -> IndexingJob:
        """Async :meth:`cancel_indexing_job`."""
        return await self.arun(_api.cancel_indexing_job(indexing_job_uuid))

    async def aget_knowledge_base(self, knowledge_base_uuid: str) -> KnowledgeBaseDetails:
        """Async :meth:`get_knowledge_base`."""
        return await self.arun(_api.get_knowledge_base(knowledge_base_uuid))

    async def aobserve_knowledge_base(self, knowledge_base_uuid: str) -> KnowledgeBaseDetails:
        """
        :meth:`aget_knowledge_base` for a wait that reads a knowledge base again and again: the same
        request, result and errors, and the job watcher of this event loop and token watches the
        knowledge base's latest job while it runs, so that the wait can sleep on that job with
        :meth:`await_indexing_job_end` (the knowledge base cannot be fresh before it ends).

        :param knowledge_base_uuid: The knowledge base to read.
        """
        details = await self.aget_knowledge_base(knowledge_base_uuid)
        job = details.knowledge_base.last_indexing_job
        if job is not None and (watcher := await self._awatcher("not watching indexing job %s", job.uuid)) is not None:
            watcher.learn(job)
        return details

    async def alist_knowledge_base_indexing_jobs(self, knowledge_base_uuid: str) -> list[IndexingJob]:
        """Async :meth:`list_knowledge_base_indexing_jobs`."""
        return await self.arun(_api.list_knowledge_base_indexing_jobs(knowledge_base_uuid))

    async def alist_recent_knowledge_base_indexing_jobs(
        self,
        knowledge_base_uuid: str,
        since: datetime | None,
        *,
        running: Iterable[str] = (),
        max_wait: float | None = None,
    ) -> KnowledgeBaseJobs:
        """
        A knowledge base's jobs created since ``since``, and the current state of its ``running``
        jobs, for a watch that reads them again and again: many such reads on one event loop and
        token are served by the job watcher's sweeps of the team's job list (``GET
        /v2/gen-ai/indexing_jobs``, up to 200 jobs a request) instead of one request each, when that
        list is newest first. Otherwise (no ``since``, a list in another order, too few reads for a
        sweep to pay, a sweep that failed or did not reach back to ``since``, a running job that
        cannot be read) it reads the knowledge base's own list (:meth:`alist_knowledge_base_indexing_jobs`,
        its latest 15 jobs), whose errors it raises. See ``docs/events.md``.

        :param knowledge_base_uuid: The knowledge base.
        :param since: The previous call's ``next_since`` (``None``: read the knowledge base's list).
        :param running: Jobs of the knowledge base last seen running: when the recent jobs came
            from a sweep, those not among them are read through :meth:`aobserve_indexing_job`
            (served by the next sweep, or their own GETs).
        :param max_wait: Seconds a read may wait for a sweep (``None``: as long as the next sweep takes).
        """
        op = _api.list_knowledge_base_indexing_jobs(knowledge_base_uuid)  # bad input fails here
        uuid = _api.validate_uuid(knowledge_base_uuid, "knowledge_base_uuid")
        running = [_api.validate_uuid(job, "running") for job in running]
        watcher = await self._awatcher("reading the jobs of knowledge base %s", uuid)
        recent = None if since is None or watcher is None else await self._arecent(watcher, uuid, since, max_wait)
        if recent is not None:
            # The running jobs created since ``since`` are listed with the recent jobs already.
            listed = {job.uuid for job in recent.jobs}
            reads = (self.aobserve_indexing_job(job, max_wait) for job in running if job not in listed)
            states = await asyncio.gather(*reads, return_exceptions=True)
            jobs = [state for state in states if isinstance(state, IndexingJob)]
            for state in states:
                if not isinstance(state, IndexingJob | GradientError):
                    raise state  # not an API answer: a bug, or the task's cancellation
            if len(jobs) == len(states):  # else a running job is gone: its list says what it has
                return KnowledgeBaseJobs([*recent.jobs, *jobs], recent.next_since, listed=False)
        # Jobs created after this read are created after every job listed before it; when no job
        # was, after this moment by the triggerer's clock (within CLOCK_SLACK of the API's).
        newest = watcher.newest_listed if watcher is not None else None
        now = datetime.now(timezone.utc)
        jobs = await self.arun(op)
        times = [job.created_at for job in jobs if job.created_at is not None]
        if newest is not None:
            times.append(newest)
        if not times:
            times.append(now)
        return KnowledgeBaseJobs(jobs, _sweep.next_since(max(times, default=None)), listed=True)

    async def _arecent(
        self, watcher: JobWatcher, knowledge_base_uuid: str, since: datetime, max_wait: float | None
    ) -> RecentJobs | None:
        """The watcher's answer for a knowledge base's recent jobs; ``None`` when it fails too."""
        try:
            return await watcher.observe_recent(knowledge_base_uuid, since, max_wait)
        except Exception as err:  # never fail a watch because of the watcher: read the list
            self.log.warning(
                "The job watcher failed (%s); reading the jobs of knowledge base %s.", err, knowledge_base_uuid
            )
            return None

    async def aknowledge_base_uuid_for(self, knowledge_base_name: str) -> str:
        """Async :meth:`knowledge_base_uuid_for`."""
        first = _api.list_knowledge_bases(None, _api.MAX_PER_PAGE)
        kbs = [kb async for kb in self._apages(first, lambda page: page.knowledge_bases)]
        uuid = _api.pick_knowledge_base(knowledge_base_name, kbs)
        self.log.info("Knowledge base %r is %s.", knowledge_base_name, uuid)
        return uuid
