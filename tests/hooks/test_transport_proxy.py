"""
The proxy environment: both transports go through ``HTTPS_PROXY`` / ``HTTP_PROXY`` unless
``NO_PROXY`` says otherwise, and the connection's ``proxy`` extra wins over the environment.

Proven with a real forward proxy on 127.0.0.1 that records what went through it, in front of the
emulator. Neither transport skips a proxy for 127.0.0.1 by itself: only ``NO_PROXY`` does.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.testing.emulator import GradientEmulator

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class ForwardProxy(socketserver.ThreadingTCPServer):
    """
    A plain-HTTP forward proxy: one request per connection, forwarded to the host its absolute URL
    names (``Connection: close``), the answer relayed back. ``seen`` lists ``"METHOD URL"`` of each.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: ForwardProxy

    def handle(self) -> None:
        request_line = self.rfile.readline().decode("latin-1").strip()
        if not request_line:
            return
        method, target, version = request_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        length = 0
        while (line := self.rfile.readline().decode("latin-1")) not in ("\r\n", "\n", ""):
            name, _, value = line.partition(":")
            if name.lower() in ("connection", "proxy-connection", "keep-alive"):
                continue
            if name.lower() == "content-length":
                length = int(value.strip())
            headers.append((name, value.strip()))
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(f"{method} {target}")
        url = urlsplit(target)
        path = url.path + (f"?{url.query}" if url.query else "")
        head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        with socket.create_connection((url.hostname, url.port or 80), timeout=10) as upstream:
            upstream.sendall(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
            while chunk := upstream.recv(65536):
                self.wfile.write(chunk)


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def emulator_conn(gradient_emulator: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator's connection, with a clean proxy environment; call it to set the ``proxy`` extra."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)

    def set_conn(proxy: str | None = None) -> str:
        extra = {"proxy": proxy} if proxy else {}
        conn = {"conn_type": "gradient", "host": gradient_emulator.base_url, "password": gradient_emulator.token}
        monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps({**conn, "extra": extra}))
        return gradient_emulator.create_knowledge_base().uuid

    return set_conn


def _sync_read(kb: str) -> None:
    hook = GradientHook()
    try:
        assert hook.get_knowledge_base(kb).knowledge_base.uuid == kb
    finally:
        hook.close()


async def _async_read(kb: str) -> None:
    hook = GradientHook()
    try:
        assert (await hook.aget_knowledge_base(kb)).knowledge_base.uuid == kb
    finally:
        await hook.aclose()


def _went_through(proxy: ForwardProxy, kb: str) -> list[str]:
    return [line for line in proxy.seen if line.startswith("GET http://127.0.0.1:") and line.endswith(kb)]


async def test_both_transports_go_through_the_environments_proxy(
    emulator_conn: Any, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A worker's call and a trigger's poll both reach the API through ``HTTP_PROXY``. (An aiohttp
    session that ignores the environment, as it does without being told, turns this red.)
    """
    kb = emulator_conn()
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    _sync_read(kb)
    assert len(_went_through(forward_proxy, kb)) == 1, forward_proxy.seen
    await _async_read(kb)
    assert len(_went_through(forward_proxy, kb)) == 2, forward_proxy.seen


async def test_no_proxy_sends_both_transports_directly(
    emulator_conn: Any, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NO_PROXY`` naming the API's host keeps both off the proxy (ignoring it turns this red)."""
    kb = emulator_conn()
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _sync_read(kb)
    await _async_read(kb)
    assert forward_proxy.seen == []


async def test_the_connections_proxy_wins_over_the_environment(
    emulator_conn: Any, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The ``proxy`` extra is used on both paths though the environment names another proxy (requests
    lets the environment override a session's proxies: setting them on the session alone turns
    this red).
    """
    other = ForwardProxy()
    try:
        kb = emulator_conn(proxy=forward_proxy.url)
        monkeypatch.setenv("HTTP_PROXY", other.url)
        _sync_read(kb)
        await _async_read(kb)
        assert len(_went_through(forward_proxy, kb)) == 2, forward_proxy.seen
        assert other.seen == []
    finally:
        other.close()
