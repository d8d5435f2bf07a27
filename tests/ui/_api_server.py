"""
A real ``airflow api-server`` in a subprocess, for the connection-form tests and the screenshot.

Temporary ``AIRFLOW_HOME`` with a freshly migrated SQLite database, a free port, the simple auth
manager with every user an admin (no login), and "Test connection" enabled. Nothing of the
calling process's Airflow configuration leaks in: every ``AIRFLOW*`` variable is dropped first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

__all__ = ["AirflowApiServer", "free_port", "running_api_server"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AirflowApiServer:
    """
    One ``airflow api-server`` process and its home.

    :param root: An empty directory for ``AIRFLOW_HOME``, the DAGs folder and the server log.
    :param extra_env: More environment for the server (e.g. ``AIRFLOW_CONN_*``).
    """

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.home = root / "airflow-home"
        self.dags = root / "dags"
        self.log_path = root / "api-server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def _airflow(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def start(self, timeout: float = 120.0) -> AirflowApiServer:
        """Migrate the database, start the server and wait until it answers its health check."""
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags.mkdir(parents=True, exist_ok=True)
        env = self.env()
        migrate = subprocess.run(
            self._airflow("db", "migrate"), env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-3000:]}")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self._airflow("api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the server and its workers
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow api-server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    self.startup_seconds = time.monotonic() - started
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"airflow api-server did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 15 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", timeout=60, **kwargs)


@contextlib.contextmanager
def running_api_server(root: Path, extra_env: dict[str, str] | None = None) -> Iterator[AirflowApiServer]:
    """Start an :class:`AirflowApiServer` in ``root`` and stop it on exit."""
    server = AirflowApiServer(root, extra_env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
