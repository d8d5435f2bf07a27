"""
The two transports: requests (sync, workers) and aiohttp (async, triggerer). They only move bytes.

Each maps its library's failures onto :class:`GradientTransportError`, recording whether the
request may have reached the server, which is what decides if a start POST may be re-sent.
Everything else (building requests, parsing, errors, retries) lives in :mod:`._api`.

The async side keeps one :class:`aiohttp.ClientSession` per event loop and connection settings,
shared by every caller on that loop and closed when the last one releases it.

Both honour the proxy environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) the way
``requests`` does: a worker's start and a triggerer's wait go the same way. The connection's
``proxy`` extra, when set, wins over the environment on both. Neither library skips the proxy for
``localhost`` or ``127.0.0.1`` by itself: list them in ``NO_PROXY`` to reach a local API directly.
"""

from __future__ import annotations

import asyncio
import platform
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gradient import __version__
from airflow_provider_gradient._api import Operation, RawResponse
from airflow_provider_gradient.exceptions import GradientTransportError

if TYPE_CHECKING:
    import aiohttp
    import requests

    from airflow_provider_gradient._settings import ClientSettings

__all__ = ["SESSION_POOL", "AsyncSessionPool", "async_send", "default_headers", "proxy_for", "sync_send"]

USER_AGENT = f"airflow-provider-gradient/{__version__} (python/{platform.python_version()})"


def default_headers(settings: ClientSettings) -> dict[str, str]:
    """Headers sent with every request. The only place the token is put on the wire."""
    return {
        "Authorization": f"Bearer {settings.token.get_secret_value()}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }


def _url(settings: ClientSettings, op: Operation[Any]) -> str:
    return settings.base_url + op.path


# --------------------------------------------------------------------------------------------
# requests
# --------------------------------------------------------------------------------------------


def new_requests_session(settings: ClientSettings) -> requests.Session:
    """A pooled ``requests.Session`` carrying the auth headers and proxy of ``settings``."""
    import requests

    session = requests.Session()
    session.headers.update(default_headers(settings))
    if settings.proxy:
        session.proxies = {"http": settings.proxy, "https": settings.proxy}
    return session


def sync_send(session: requests.Session, settings: ClientSettings, op: Operation[Any]) -> RawResponse:
    """Send one request with ``requests``; map failures to :class:`GradientTransportError`."""
    import requests

    try:
        response = session.request(
            op.method,
            _url(settings, op),
            params=dict(op.params) if op.params else None,
            json=dict(op.body) if op.body is not None else None,
            # Per request too: requests lets the environment's proxy override the session's.
            proxies={"http": settings.proxy, "https": settings.proxy} if settings.proxy else None,
            timeout=(settings.connect_timeout, settings.read_timeout),
            allow_redirects=False,
        )
        return RawResponse(response.status_code, _lower(response.headers), response.content)
    except requests.exceptions.ConnectTimeout:
        raise GradientTransportError(
            f"{op.label}: could not connect to {settings.base_url} within {settings.connect_timeout}s.",
            request_sent=False,
        ) from None
    except requests.exceptions.ReadTimeout:
        raise GradientTransportError(
            f"{op.label}: no answer from {settings.base_url} within {settings.read_timeout}s.",
            request_sent=True,
        ) from None
    except requests.exceptions.ConnectionError as err:
        sent = not _never_connected(err)
        raise GradientTransportError(
            f"{op.label}: connection to {settings.base_url} failed "
            f"({'after the request was sent' if sent else 'before anything was sent'}): {type(err).__name__}.",
            request_sent=sent,
        ) from None
    except requests.exceptions.RequestException as err:
        raise GradientTransportError(
            f"{op.label}: request to {settings.base_url} failed: {type(err).__name__}.", request_sent=True
        ) from None


def _never_connected(err: BaseException) -> bool:
    """Whether a requests ``ConnectionError`` happened before a connection was established."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # args also hold messages, URLs and pools: only exceptions are walked
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        stack.extend(getattr(current, "args", ()))
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return False


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


# --------------------------------------------------------------------------------------------
# aiohttp
# --------------------------------------------------------------------------------------------


def proxy_for(settings: ClientSettings) -> str | None:
    """
    The proxy a request to ``settings.base_url`` goes through: the connection's ``proxy`` extra,
    else what the environment says for that URL, read the way ``requests`` reads it for the sync
    transport (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``, less ``NO_PROXY``).
    """
    if settings.proxy:
        return settings.proxy
    from requests.utils import get_environ_proxies, select_proxy

    url = settings.base_url
    proxy: str | None = select_proxy(url, get_environ_proxies(url))
    return proxy


#: The proxy of each pooled session, read from the environment once, when the session is made
#: (reading it costs more than the rest of a poll's own work).
_PROXIES: weakref.WeakKeyDictionary[aiohttp.ClientSession, str | None] = weakref.WeakKeyDictionary()


async def async_send(session: aiohttp.ClientSession, settings: ClientSettings, op: Operation[Any]) -> RawResponse:
    """
    Send one request with ``aiohttp``; map failures to :class:`GradientTransportError`. The
    request goes through :func:`proxy_for`'s proxy (aiohttp's own ``trust_env`` is not used: it
    reads the environment and ``.netrc`` on a worker thread for every request, and a ``.netrc``
    entry would replace the token).
    """
    import aiohttp

    proxy = _PROXIES[session] if session in _PROXIES else proxy_for(settings)
    try:
        async with session.request(
            op.method,
            _url(settings, op),
            params=dict(op.params) if op.params else None,
            json=dict(op.body) if op.body is not None else None,
            proxy=proxy,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            return RawResponse(response.status, _lower(response.headers), body)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as err:
        raise GradientTransportError(
            f"{op.label}: could not connect to {settings.base_url}: {type(err).__name__}.",
            request_sent=False,
        ) from None
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        raise GradientTransportError(
            f"{op.label}: no answer from {settings.base_url} within {settings.read_timeout}s.",
            request_sent=True,
        ) from None
    except aiohttp.ClientError as err:
        raise GradientTransportError(
            f"{op.label}: connection to {settings.base_url} failed after the request was sent: {type(err).__name__}.",
            request_sent=True,
        ) from None


@dataclass
class _Entry:
    session: aiohttp.ClientSession
    users: int


class AsyncSessionPool:
    """
    One shared ``aiohttp.ClientSession`` per (event loop, connection settings).

    Thousands of triggers polling through one connection share one connection pool instead of
    opening a session per poll. :meth:`acquire` and :meth:`release` count users; the session is
    closed when the last user releases it.
    """

    def __init__(self) -> None:
        # Keyed by the loop object (weakly), not ``id(loop)``: two loops never share a session,
        # whatever ids they get, and a loop whose sessions were all released is forgotten with it.
        self._entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _Entry]] = (
            weakref.WeakKeyDictionary()
        )

    def _loop_entries(self) -> dict[tuple[Any, ...], _Entry]:
        return self._entries.setdefault(asyncio.get_running_loop(), {})

    def acquire(self, settings: ClientSettings) -> aiohttp.ClientSession:
        """Return the shared session for ``settings`` on the running loop, creating it if needed."""
        import aiohttp

        entries = self._loop_entries()
        key = settings.pool_key
        entry = entries.get(key)
        if entry is None or entry.session.closed:
            session = aiohttp.ClientSession(
                headers=default_headers(settings),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
                ),
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300, enable_cleanup_closed=True),
                raise_for_status=False,
            )
            _PROXIES[session] = proxy_for(settings)
            entry = entries[key] = _Entry(session, 0)
        entry.users += 1
        return entry.session

    async def release(self, settings: ClientSettings) -> None:
        """Give back a session obtained with :meth:`acquire`; close it when nobody uses it."""
        entries = self._loop_entries()
        key = settings.pool_key
        entry = entries.get(key)
        if entry is None:
            return
        entry.users -= 1
        if entry.users <= 0:
            del entries[key]
            await entry.session.close()

    def open_sessions(self) -> int:
        """How many sessions are open (for tests and benchmarks)."""
        return sum(1 for entries in self._entries.values() for entry in entries.values() if not entry.session.closed)


#: The process-wide pool used by :class:`~airflow_provider_gradient.hooks.gradient.GradientHook`.
SESSION_POOL = AsyncSessionPool()
