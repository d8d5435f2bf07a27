"""Run an ASGI app with uvicorn in a background daemon thread on a pre-bound socket."""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

__all__ = ["BackgroundServer"]


class _DropConnectionFilter(logging.Filter):
    """Hide uvicorn's error log for connections the ``reset`` fault drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        from airflow_provider_gradient.testing.emulator.app import DroppedConnection

        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DroppedConnection):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_FILTER = _DropConnectionFilter()


def _best(module: str, fallback: str) -> str:
    return module if importlib.util.find_spec(module) is not None else fallback


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread.

    :param app: the ASGI application.
    :param host: interface to bind.
    :param port: TCP port; ``0`` picks a free one.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Bind the socket, start uvicorn and wait until it accepts connections.

        :param timeout: seconds to wait for the startup.
        """
        if self.running:
            return
        logging.getLogger("uvicorn.error").addFilter(_FILTER)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            access_log=False,
            log_level="warning",
            lifespan="off",
            loop=_best("uvloop", "asyncio"),
            http=_best("httptools", "h11"),
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
            backlog=2048,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"gradient-emulator-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the emulator server thread exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("the emulator server did not start in time")
            time.sleep(0.005)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread.

        :param timeout: seconds to wait for the thread.
        """
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None
