"""The two transports: failure mapping (did the request reach the server?) and the shared session pool."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from airflow_provider_gradient import __version__, _api
from airflow_provider_gradient._settings import ClientSettings
from airflow_provider_gradient.exceptions import GradientTransportError
from airflow_provider_gradient.hooks import _transport
from airflow_provider_gradient.hooks._transport import AsyncSessionPool, async_send, new_requests_session, sync_send

TOKEN = "dop_v1_test_token_never_logged"
JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"
OP = _api.get_indexing_job(JOB)


def settings_for(base_url: str, **extra: Any) -> ClientSettings:
    return ClientSettings.from_connection(conn_id="t", host=base_url, password=TOKEN, extra=extra)


class RawServer:
    """A TCP server in a thread that reads a request and then hangs up or stays silent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stop = threading.Event()
        self.received = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        held: list[socket.socket] = []
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1.0)
            try:
                if conn.recv(65536):
                    self.received += 1
            except OSError:
                pass
            if self.mode == "close":
                conn.close()
            else:
                held.append(conn)
        for conn in held:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    server = RawServer(request.param)
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return int(port)


# --------------------------------------------------------------------------------------------
# requests
# --------------------------------------------------------------------------------------------


def test_requests_session_headers_and_proxy() -> None:
    settings = settings_for("https://api.example.test", proxy="http://proxy.internal:3128")
    session = new_requests_session(settings)
    assert session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert session.headers["Accept"] == "application/json"
    assert session.headers["User-Agent"].startswith(f"airflow-provider-gradient/{__version__} ")
    assert session.proxies == {"http": "http://proxy.internal:3128", "https": "http://proxy.internal:3128"}
    assert new_requests_session(settings_for("https://api.example.test")).proxies == {}


def test_sync_send_passes_timeouts_and_no_redirects(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Response:
        status_code = 200
        headers = {"X-Request-Id": "r", "Content-Type": "application/json"}
        content = b"{}"

    def fake_request(method: str, url: str, **kwargs: Any) -> Response:
        seen.update(kwargs, method=method, url=url)
        return Response()

    settings = settings_for("https://api.example.test", timeout=12, connect_timeout=3)
    session = new_requests_session(settings)
    monkeypatch.setattr(session, "request", fake_request)
    raw = sync_send(session, settings, _api.cancel_indexing_job(JOB))
    assert seen["timeout"] == (3.0, 12.0)
    assert seen["allow_redirects"] is False
    assert seen["method"] == "PUT"
    assert seen["url"] == f"https://api.example.test/v2/gen-ai/indexing_jobs/{JOB}/cancel"
    assert seen["json"] == {"uuid": JOB}
    assert (raw.status, raw.body, raw.request_id) == (200, b"{}", "r")
    assert raw.headers["content-type"] == "application/json"  # lower-cased


def _raise(exc: BaseException) -> Any:
    def fake_request(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fake_request


@pytest.mark.parametrize(
    ("exc", "sent", "match"),
    [
        (requests.exceptions.ConnectTimeout(), False, "could not connect .* within 10.0s"),
        (requests.exceptions.ReadTimeout(), True, "no answer .* within 30.0s"),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(None, "u", NewConnectionError(None, "[Errno 111] Connection refused"))  # type: ignore[arg-type]
            ),
            False,
            "before anything was sent",
        ),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(None, "u", NameResolutionError("api.example.test", None, OSError("no such host")))  # type: ignore[arg-type]
            ),
            False,
            "before anything was sent",
        ),
        (
            requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
            ),
            True,
            "after the request was sent",
        ),
        (requests.exceptions.ConnectionError("Connection aborted."), True, "after the request was sent"),
        (requests.exceptions.ChunkedEncodingError(), True, "failed: ChunkedEncodingError"),
        (requests.exceptions.SSLError(), True, "after the request was sent"),
    ],
)
def test_sync_failure_mapping(monkeypatch: pytest.MonkeyPatch, exc: BaseException, sent: bool, match: str) -> None:
    settings = settings_for("https://api.example.test")
    session = new_requests_session(settings)
    monkeypatch.setattr(session, "request", _raise(exc))
    with pytest.raises(GradientTransportError, match=match) as info:
        sync_send(session, settings, OP)
    assert info.value.request_sent is sent
    assert str(info.value).startswith("GET /v2/gen-ai/indexing_jobs/{uuid}: ")
    assert info.value.__cause__ is None  # the library's exception (and its URL/headers) is not chained
    assert TOKEN not in str(info.value)


def test_sync_refused_over_a_real_socket() -> None:
    settings = settings_for(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(GradientTransportError) as info:
        sync_send(new_requests_session(settings), settings, OP)
    assert info.value.request_sent is False


@pytest.mark.parametrize("raw_server", ["close"], indirect=True)
def test_sync_hang_up_after_request_over_a_real_socket(raw_server: RawServer) -> None:
    settings = settings_for(f"http://127.0.0.1:{raw_server.port}")
    with pytest.raises(GradientTransportError) as info:
        sync_send(new_requests_session(settings), settings, OP)
    assert info.value.request_sent is True
    assert raw_server.received >= 1


@pytest.mark.parametrize("raw_server", ["hang"], indirect=True)
def test_sync_read_timeout_over_a_real_socket(raw_server: RawServer) -> None:
    settings = settings_for(f"http://127.0.0.1:{raw_server.port}", timeout=0.2)
    with pytest.raises(GradientTransportError, match="no answer") as info:
        sync_send(new_requests_session(settings), settings, OP)
    assert info.value.request_sent is True


# --------------------------------------------------------------------------------------------
# aiohttp
# --------------------------------------------------------------------------------------------


async def test_async_refused() -> None:
    settings = settings_for(f"http://127.0.0.1:{closed_port()}")
    pool = AsyncSessionPool()
    session = pool.acquire(settings)
    try:
        with pytest.raises(GradientTransportError, match="could not connect") as info:
            await async_send(session, settings, OP)
    finally:
        await pool.release(settings)
    assert info.value.request_sent is False


@pytest.mark.parametrize("raw_server", ["close"], indirect=True)
async def test_async_hang_up_after_request(raw_server: RawServer) -> None:
    settings = settings_for(f"http://127.0.0.1:{raw_server.port}")
    pool = AsyncSessionPool()
    session = pool.acquire(settings)
    try:
        with pytest.raises(GradientTransportError, match="after the request was sent") as info:
            await async_send(session, settings, OP)
    finally:
        await pool.release(settings)
    assert info.value.request_sent is True


@pytest.mark.parametrize("raw_server", ["hang"], indirect=True)
async def test_async_read_timeout(raw_server: RawServer) -> None:
    settings = settings_for(f"http://127.0.0.1:{raw_server.port}", timeout=0.2)
    pool = AsyncSessionPool()
    session = pool.acquire(settings)
    try:
        with pytest.raises(GradientTransportError, match=r"no answer .* within 0.2s") as info:
            await async_send(session, settings, OP)
    finally:
        await pool.release(settings)
    assert info.value.request_sent is True


async def test_pool_counts_users_and_closes_with_the_last() -> None:
    pool = AsyncSessionPool()
    settings = settings_for("https://api.example.test")
    first = pool.acquire(settings)
    second = pool.acquire(settings)
    assert first is second
    assert pool.open_sessions() == 1
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    await pool.release(settings)
    assert not first.closed
    await pool.release(settings)
    assert first.closed
    assert pool.open_sessions() == 0
    await pool.release(settings)  # releasing more than acquired is harmless
    assert pool.open_sessions() == 0


async def test_pool_separates_settings() -> None:
    pool = AsyncSessionPool()
    a = settings_for("https://a.example.test")
    b = settings_for("https://b.example.test")
    c = settings_for("https://a.example.test", timeout=5)
    sessions = {id(pool.acquire(s)) for s in (a, b, c, a)}
    assert len(sessions) == 3
    assert pool.open_sessions() == 3
    for s in (a, b, c, a):
        await pool.release(s)
    assert pool.open_sessions() == 0


async def test_pool_replaces_a_session_closed_behind_its_back() -> None:
    pool = AsyncSessionPool()
    settings = settings_for("https://api.example.test")
    first = pool.acquire(settings)
    await first.close()
    second = pool.acquire(settings)
    assert second is not first
    assert not second.closed
    await pool.release(settings)
    assert second.closed


async def test_pool_session_timeouts() -> None:
    pool = AsyncSessionPool()
    settings = settings_for("https://api.example.test", timeout=7, connect_timeout=2)
    session = pool.acquire(settings)
    try:
        assert session.timeout.sock_read == 7.0
        assert session.timeout.sock_connect == 2.0
    finally:
        await pool.release(settings)


def _two_loops_hold_sessions(pool: AsyncSessionPool, settings: ClientSettings) -> tuple[Any, Any]:
    """Two live loops each take a session (neither released yet), then release them; return both."""

    async def take() -> Any:
        return pool.acquire(settings)

    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        a = loop_a.run_until_complete(take())
        b = loop_b.run_until_complete(take())
        loop_a.run_until_complete(pool.release(settings))
        loop_b.run_until_complete(pool.release(settings))
    finally:
        loop_a.close()
        loop_b.close()
    return a, b


def test_pool_is_per_event_loop() -> None:
    """
    A session is bound to its loop: two loops holding sessions at once get one each, and each is
    closed by its own loop's release. (Sharing one pool entry across loops turns this red.)
    """
    pool = AsyncSessionPool()
    a, b = _two_loops_hold_sessions(pool, settings_for("https://api.example.test"))
    assert a is not b
    assert a.closed
    assert b.closed
    assert pool.open_sessions() == 0


def test_a_loop_with_a_reused_id_never_gets_another_loops_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    CPython often gives a new loop the ``id()`` of one just freed. Make every ``id()`` in the module
    collide: the pool, keyed by the loop object, still gives each loop its own session (keying it by
    ``id(loop)`` turns this red).
    """
    monkeypatch.setattr(_transport, "id", lambda obj: 42, raising=False)
    pool = AsyncSessionPool()
    a, b = _two_loops_hold_sessions(pool, settings_for("https://api.example.test"))
    assert a is not b
    assert a.closed
    assert b.closed


def test_a_finished_loop_is_not_kept_alive_by_the_pool() -> None:
    """Once its sessions are released, a loop that ended is forgotten (a strong key would keep it)."""
    pool = AsyncSessionPool()
    settings = settings_for("https://api.example.test")

    async def use() -> None:
        pool.acquire(settings)
        await pool.release(settings)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(use())
    loop.close()
    dead = weakref.ref(loop)
    del loop
    gc.collect()
    assert dead() is None


def test_module_pool_is_shared() -> None:
    assert isinstance(_transport.SESSION_POOL, AsyncSessionPool)
