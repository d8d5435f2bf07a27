"""
A real multi-process Airflow deployment on this machine, for the system tests.

:class:`Deployment` starts, in this order: a throw-away PostgreSQL cluster (installed from the OS
packages when its binaries are missing), ``airflow db migrate``, the project's Gradient API emulator,
then ``airflow api-server``, ``airflow scheduler`` (LocalExecutor), ``airflow dag-processor`` and two
``airflow triggerer`` processes. With ``executor="CeleryExecutor"`` it also starts a throw-away Redis
(the broker, installed from the OS packages when missing; PostgreSQL is the result backend) and
``airflow celery worker`` processes, each with a hostname and an ``AIRFLOW_HOME`` of its own.
Every process runs in its own process group and carries a marker environment variable, so
:meth:`Deployment.stop` can stop all of them (and anything they forked) by pid, also when a test
fails or the interpreter exits. Each process writes to its own log file in
:attr:`Deployment.log_dir`, which survives the run.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SYSTEM_DAGS = HERE / "dags"
#: The project's example DAGs the scenarios run as they are shipped.
EXAMPLE_DAGS = ("gradient_scheduled_reindex.py", "gradient_cancel_on_failure.py")
MARKER_ENV = "GRADIENT_SYSTEM_TEST_RUN"
EMULATOR_TOKEN = "dop_v1_system_test_token"
#: A second token (connection ``gradient_second``), whose rate-limit windows start empty.
SECOND_TOKEN = "dop_v1_system_test_second_token"
#: The per-minute limit the emulator enforces for the token, and the one the connection declares.
RATE_LIMIT_PER_MINUTE = 200
RATE_LIMIT_PER_HOUR = 100_000
#: Emulated seconds per wall-clock second.
EMULATOR_SPEED = 10.0
TRIGGERER_HEALTH_THRESHOLD = 8.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessExited(RuntimeError):
    """A process of the deployment exited: no point waiting for it any longer."""


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, message: str = "condition") -> Any:
    """Call ``predicate`` until it returns something truthy; raise :class:`TimeoutError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ProcessExited:
            raise
        except Exception as error:  # the predicate may hit a server that is still starting
            last_error = error
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """One long-running process in its own process group, logging to ``log_path``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = REPO
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_file.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
        self._log_file.flush()
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (SIGKILL: the process dies with all its children)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill_tree(self) -> None:
        """SIGKILL the process group and every descendant, also those that left the group."""
        if self.popen is None:
            return
        tree = descendants(self.popen.pid)  # before the kill: orphans lose their parent pid
        self.kill(signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
        """Ask the process group to exit, wait ``timeout`` seconds, then SIGKILL what is left."""
        if self.popen is not None:
            if self.popen.poll() is None:
                self.kill(sig)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.kill(signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.popen.wait(5)
            # Children that stayed in the group (LocalExecutor workers, trigger runners, log servers).
            self.kill(signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.write(f"\n==== {time.strftime('%H:%M:%S')} stopped\n".encode())
            self._log_file.close()
            self._log_file = None


def _stat(pid: str) -> tuple[int, int] | None:
    """``(ppid, session id)`` of a process, from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[1]), int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def _has_marker(pid: str, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read().split(b"\0")
    except OSError:
        return False


def our_pids(marker: str, sessions: set[int]) -> list[int]:
    """
    Pids of live processes we started, directly or not: members of the sessions we created
    (``start_new_session``), processes whose environment carries ``MARKER_ENV=marker``, and their
    descendants. The environment alone is not enough: ``setproctitle`` (task runners, LocalExecutor
    workers) overwrites the memory ``/proc/<pid>/environ`` shows.
    """
    needle = f"{MARKER_ENV}={marker}".encode()
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            stat = _stat(entry)
            if stat is not None:
                table[int(entry)] = stat
    ours = {pid for pid, (_, sid) in table.items() if sid in sessions}
    ours |= {pid for pid in table if pid not in ours and _has_marker(str(pid), needle)}
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in ours and pid not in ours}
        ours |= children
        grew = bool(children)
    return sorted(ours)


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it (by parent pid)."""
    table = {int(e): stat for e in os.listdir("/proc") if e.isdigit() and (stat := _stat(e)) is not None}
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in tree and pid not in tree}
        tree |= children
        grew = bool(children)
    return sorted(tree)


def cmdline(pid: int) -> str:
    """A process's command line (its title, when it set one)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _postgres_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name), reverse=True
    )
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def apt_install(package: str) -> None:
    """Install a Debian package (``apt-get update`` first), as root or through ``sudo -n``."""
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update"], check=True, env=env)
    subprocess.run([*prefix, "apt-get", "install", "-y", "--no-install-recommends", package], check=True, env=env)


def ensure_postgres_installed() -> Path:
    """The directory holding ``initdb``/``postgres``; installs the ``postgresql`` package if needed."""
    bindir = _postgres_bindir()
    if bindir is not None:
        return bindir
    apt_install("postgresql")
    bindir = _postgres_bindir()
    if bindir is None:
        raise RuntimeError("installed the postgresql package but found no initdb")
    return bindir


def _postgres_user() -> str | None:
    """The user PostgreSQL runs as: ourselves unless we are root (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "gradient-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "gradient-pg"], check=True
    )
    return "gradient-pg"


class Postgres:
    """A throw-away cluster in ``root/pgdata`` listening on 127.0.0.1 only."""

    def __init__(self, root: Path, log_dir: Path, marker: str) -> None:
        self.root = root
        self.log_dir = log_dir
        self.marker = marker
        self.port = free_port()
        self.data = root / "pgdata"
        self.process: ManagedProcess | None = None

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def start(self) -> None:
        bindir = ensure_postgres_installed()
        user = _postgres_user()
        self.data.mkdir(mode=0o700)
        sockets = self.root / "pgsock"
        sockets.mkdir()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chmod(self.root, 0o755)  # noqa: S103 - the postgres user must traverse it
            for path in (self.data, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", MARKER_ENV: self.marker}
        kwargs: dict[str, Any] = {}
        if user is not None:
            entry = pwd.getpwnam(user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        with open(self.log_dir / "postgres-initdb.log", "wb") as log:
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", "airflow", "--auth=trust", "-E", "UTF8"],
                env=env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                **kwargs,
            )
        argv = [
            str(bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=256MB",
        ]
        self.process = ManagedProcess("postgres", argv, env, self.log_dir / "postgres.log", cwd=self.root, user=user)
        self.process.start()
        wait_until(self._ready, 60, 0.2, "PostgreSQL to accept connections")
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE airflow")
        conn.close()

    def _ready(self) -> bool:
        if self.process is None or not self.process.alive:
            raise RuntimeError(f"postgres exited; see {self.process.log_path if self.process else self.log_dir}")
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres", connect_timeout=2).close()
        return True

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast shutdown".
            self.process.stop(timeout=20, sig=signal.SIGINT)


# --------------------------------------------------------------------------------------------
# Redis (the Celery broker)
# --------------------------------------------------------------------------------------------


def ensure_redis_installed() -> str:
    """The ``redis-server`` binary; installs the ``redis-server`` package if needed."""
    found = shutil.which("redis-server")
    if found:
        return found
    apt_install("redis-server")
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("installed the redis-server package but found no redis-server")
    return found


class Redis:
    """A throw-away Redis in ``root/redis`` on 127.0.0.1 only, without persistence."""

    def __init__(self, root: Path, log_dir: Path, marker: str) -> None:
        self.root = root / "redis"
        self.log_dir = log_dir
        self.marker = marker
        self.port = free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = ensure_redis_installed()
        self.root.mkdir()
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        env = {"PATH": os.environ.get("PATH", ""), MARKER_ENV: self.marker}
        self.process = ManagedProcess("redis", argv, env, self.log_dir / "redis.log", cwd=self.root).start()
        wait_until(self._ready, 30, 0.1, "Redis to accept connections")

    def _ready(self) -> bool:
        if self.process is None or not self.process.alive:
            raise RuntimeError(f"redis exited; see {self.log_dir / 'redis.log'}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)


# --------------------------------------------------------------------------------------------
# The deployment
# --------------------------------------------------------------------------------------------


@dataclass
class Ports:
    api: int = field(default_factory=free_port)
    emulator: int = field(default_factory=free_port)
    worker_logs: int = field(default_factory=free_port)


#: Distinct loopback hostnames, so ``triggerer_job.hostname`` / a task instance's ``hostname`` tell
#: which process runs a trigger or a task (see :mod:`system_hostname`).
TRIGGERER_LOOPBACKS = ("127.0.0.1", "localhost", "127.0.0.2")
WORKER_LOOPBACKS = ("127.0.0.3", "127.0.0.4", "127.0.0.5")


class Deployment:
    """
    The whole system under test. ``start()`` brings everything up and waits until it is healthy;
    ``stop()`` brings everything down (idempotent, registered with :mod:`atexit`).

    :param log_dir: Where every process log (and Airflow's task logs) goes; kept after the run.
    :param executor: ``"LocalExecutor"`` (tasks run under the scheduler) or ``"CeleryExecutor"``.
    :param triggerers: How many ``airflow triggerer`` processes to run (at most three).
    :param workers: How many ``airflow celery worker`` processes (CeleryExecutor only).
    :param worker_concurrency: Task slots of each Celery worker.
    :param second_token_limits: ``(per minute, per hour)`` of the second token (connection
        ``gradient_second``), ``None``: the same limits as the first.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        executor: str = "LocalExecutor",
        triggerers: int = 2,
        workers: int = 0,
        worker_concurrency: int = 8,
        second_token_limits: tuple[int, int] | None = None,
    ) -> None:
        if executor not in ("LocalExecutor", "CeleryExecutor"):
            raise ValueError(f"executor must be LocalExecutor or CeleryExecutor, got {executor!r}")
        if (executor == "CeleryExecutor") != (workers > 0):
            raise ValueError("workers: at least one with CeleryExecutor, none with LocalExecutor")
        self.executor = executor
        self.TRIGGERERS = tuple(f"triggerer-{chr(ord('a') + i)}" for i in range(triggerers))
        self.TRIGGERER_HOSTNAMES = dict(zip(self.TRIGGERERS, TRIGGERER_LOOPBACKS, strict=False))
        self.WORKERS = tuple(f"worker-{chr(ord('a') + i)}" for i in range(workers))
        self.WORKER_HOSTNAMES = dict(zip(self.WORKERS, WORKER_LOOPBACKS, strict=False))
        if len(self.TRIGGERER_HOSTNAMES) < triggerers or len(self.WORKER_HOSTNAMES) < workers:
            raise ValueError("more triggerers or workers than distinct loopback hostnames")
        self.worker_concurrency = worker_concurrency
        self.second_token_limits = second_token_limits
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.marker = uuid.uuid4().hex
        self.root = Path(tempfile.mkdtemp(prefix="gradient-system-"))
        self.home = self.root / "airflow-home"
        self.home.mkdir()
        # The DAGs folder: the system-test DAGs plus the example DAGs, copied as they are.
        self.dags = self.root / "dags"
        self.dags.mkdir()
        for path in [*sorted(SYSTEM_DAGS.glob("*.py")), *(REPO / "example_dags" / name for name in EXAMPLE_DAGS)]:
            shutil.copy2(path, self.dags / path.name)
        self.ports = Ports()
        self.postgres = Postgres(self.root, self.log_dir, self.marker)
        self.redis = Redis(self.root, self.log_dir, self.marker) if self.WORKERS else None
        self.processes: dict[str, ManagedProcess] = {}
        self.bin = Path(sys.executable).parent
        self.timings: dict[str, float] = {}
        self._stopped = False
        atexit.register(self.stop)

    # -- configuration ------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.emulator}"

    def token_limits(self, token: str = EMULATOR_TOKEN) -> tuple[int, int]:
        """``(per minute, per hour)`` the emulator enforces for ``token``."""
        if token == SECOND_TOKEN and self.second_token_limits is not None:
            return self.second_token_limits
        return RATE_LIMIT_PER_MINUTE, RATE_LIMIT_PER_HOUR

    def connection_json(self, token: str = EMULATOR_TOKEN) -> str:
        """``AIRFLOW_CONN_GRADIENT_DEFAULT``: the emulator, declaring the token's real limits.

        ``GRADIENT_SYSTEM_CONN_EXTRA`` (JSON) overrides extras, for experiments.
        """
        per_minute, per_hour = self.token_limits(token)
        extra: dict[str, Any] = {
            "requests_per_minute": per_minute,
            "requests_per_hour": per_hour,
            "timeout": 10,
            "connect_timeout": 5,
        }
        extra.update(json.loads(os.environ.get("GRADIENT_SYSTEM_CONN_EXTRA", "{}")))
        return json.dumps({"conn_type": "gradient", "host": self.emulator_url, "password": token, "extra": extra})

    def airflow_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME", "VIRTUAL_ENV")
        env = {key: os.environ[key] for key in keep if key in os.environ}
        env.update(
            {
                MARKER_ENV: self.marker,
                "PYTHONUNBUFFERED": "1",
                "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "16",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(self.root),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.sqlalchemy_url,
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__SECRET_KEY": _secret(self.root, "api"),
                "AIRFLOW__API_AUTH__JWT_SECRET": _secret(self.root, "jwt"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir / "airflow"),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports.worker_logs),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_THRESHOLD),
                "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "10",
                "AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT": "30",
                "AIRFLOW_CONN_GRADIENT_DEFAULT": self.connection_json(),
                "AIRFLOW_CONN_GRADIENT_SECOND": self.connection_json(SECOND_TOKEN),
            }
        )
        if self.redis is not None:
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CORE__PARALLELISM": str(2 * self.worker_concurrency * len(self.WORKERS)),
                    "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.sqlalchemy_url,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                    # A task whose worker died before it ran is queued again after this long.
                    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
                    # Sending a task to the broker may take seconds on a loaded 2-core machine; the
                    # default (1 s) makes the scheduler resend it, then fail a task a worker runs.
                    "AIRFLOW__CELERY__OPERATION_TIMEOUT": "15",
                    # Fifty tasks resuming at once against a just restarted API server on 2 cores
                    # take longer than the default 5 s to be answered.
                    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
                }
            )
        if extra:
            env.update(extra)
        return env

    # -- lifecycle ----------------------------------------------------------------------------
    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def start(self) -> None:
        began = time.monotonic()
        self.postgres.start()
        self._timed("postgres", began)
        if self.redis is not None:
            step = time.monotonic()
            self.redis.start()
            self._timed("redis", step)

        step = time.monotonic()
        with open(self.log_dir / "airflow-db-migrate.log", "wb") as log:
            result = subprocess.run(
                [str(self.bin / "airflow"), "db", "migrate"],
                env=self.airflow_env(),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed; see {self.log_dir / 'airflow-db-migrate.log'}")
        self._timed("db migrate", step)

        step = time.monotonic()
        self._spawn(
            "emulator",
            [
                sys.executable,
                "-m",
                "airflow_provider_gradient.testing.emulator",
                "--port",
                str(self.ports.emulator),
                "--token",
                EMULATOR_TOKEN,
                "--seed",
                "0",
                "--speed",
                str(EMULATOR_SPEED),
                "--rate-limit-per-minute",
                str(RATE_LIMIT_PER_MINUTE),
                "--rate-limit-per-hour",
                str(RATE_LIMIT_PER_HOUR),
            ],
        )
        wait_until(
            lambda: (
                self._check_alive("emulator") and requests.get(f"{self.emulator_url}/_emulator/health", timeout=2).ok
            ),
            60,
            0.2,
            "the emulator",
        )
        for name, token in (("first", EMULATOR_TOKEN), ("second", SECOND_TOKEN)):
            per_minute, per_hour = self.token_limits(token)
            body = {"token": token, "name": name, "per_minute": per_minute, "per_hour": per_hour}
            requests.post(f"{self.emulator_url}/_emulator/tokens", json=body, timeout=10).raise_for_status()
        self._timed("emulator", step)

        step = time.monotonic()
        self.start_airflow()
        self._timed("airflow processes healthy", step)
        self._timed("total startup", began)

    def start_airflow(self) -> None:
        """Start every Airflow process (API server, scheduler, dag processor, workers, triggerers)."""
        airflow = str(self.bin / "airflow")
        self._spawn(
            "api-server",
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.ports.api), "--workers", "1"],
        )
        self._spawn("scheduler", [airflow, "scheduler"])
        self._spawn("dag-processor", [airflow, "dag-processor"])
        for name in self.WORKERS:
            self.start_worker(name)
        for name in self.TRIGGERERS:
            self.start_triggerer(name)
        self.wait_healthy(180)

    def stop_airflow(self) -> None:
        """Stop every Airflow process (SIGTERM to all first, so they shut down in parallel)."""
        airflow = [name for name in self.processes if name != "emulator"]
        for name in airflow:
            self.processes[name].kill(signal.SIGTERM)
        for name in airflow:
            self.processes[name].stop(timeout=20)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(name, argv, dict(env or self.airflow_env()), self.log_dir / f"{name}.log")
        self.processes[name] = process.start()
        return process

    def start_triggerer(self, name: str) -> ManagedProcess:
        """(Re)start the triggerer ``name`` with its own log-server port."""
        old = self.processes.get(name)
        if old is not None:
            old.stop()
        env = self.airflow_env(
            {
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "system_hostname.hostname",
                "GRADIENT_SYSTEM_HOSTNAME": self.TRIGGERER_HOSTNAMES[name],
                "PYTHONPATH": str(HERE),
            }
        )
        return self._spawn(name, [str(self.bin / "airflow"), "triggerer"], env)

    def start_worker(self, name: str) -> ManagedProcess:
        """(Re)start the Celery worker ``name``: its own hostname, ``AIRFLOW_HOME`` and log-server port."""
        old = self.processes.get(name)
        if old is not None:
            old.stop()
        home = self.root / f"{name}-home"
        home.mkdir(exist_ok=True)
        hostname = self.WORKER_HOSTNAMES[name]
        env = self.airflow_env(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "system_hostname.hostname",
                "GRADIENT_SYSTEM_HOSTNAME": hostname,
                "PYTHONPATH": str(HERE),
            }
        )
        argv = [str(self.bin / "airflow"), "celery", "worker", "--celery-hostname", f"{name}@{hostname}"]
        return self._spawn(name, [*argv, "--concurrency", str(self.worker_concurrency)], env)

    def celery_workers_ready(self) -> bool:
        """Whether every worker logged that it is ready to take tasks (this incarnation)."""
        for name in self.WORKERS:
            text = self.processes[name].log_text()
            if " ready." not in text[text.rfind("==== ") :]:
                return False
        return True

    def _check_alive(self, *names: str) -> bool:
        for name in names or tuple(self.processes):
            process = self.processes.get(name)
            if process is not None and not process.alive:
                raise ProcessExited(
                    f"{name} exited with {process.popen.returncode if process.popen else '?'}; see {process.log_path}"
                )
        return True

    def wait_healthy(self, timeout: float = 120) -> None:
        """Wait until the API answers and scheduler, dag processor and both triggerers heartbeat."""

        def healthy() -> bool:
            self._check_alive()
            health = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
            components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            if not all(health.get(name, {}).get("status") == "healthy" for name in components):
                return False
            return len(self.alive_triggerer_job_ids()) >= len(self.TRIGGERERS) and self.celery_workers_ready()

        wait_until(healthy, timeout, 1.0, "the Airflow deployment to become healthy")
        # Warm the execution API up (its first request initialises lazily and can take many seconds).
        requests.get(f"{self.api_url}/execution/health", timeout=60).raise_for_status()

    def alive_triggerer_job_ids(self) -> list[int]:
        """Ids of the triggerer jobs that heartbeat recently (straight from the metadata DB)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.postgres.port, user="airflow", dbname="airflow")
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
                    "AND latest_heartbeat > now() - make_interval(secs => %s) ORDER BY id",
                    (TRIGGERER_HEALTH_THRESHOLD,),
                )
                return [row[0] for row in cursor.fetchall()]
        finally:
            conn.close()

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query against the metadata DB (for diagnostics the REST API lacks)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.postgres.port, user="airflow", dbname="airflow")
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def triggerer_named(self, hostname: str) -> str:
        """The triggerer process (name) that reports ``hostname`` (see :mod:`system_hostname`)."""
        for name, known in self.TRIGGERER_HOSTNAMES.items():
            if known == hostname:
                return name
        raise AssertionError(f"no triggerer reports hostname {hostname!r}")

    def trigger_logs(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[int, str]:
        """``{triggerer job id: text}`` of the trigger log files of a task (all tries)."""
        folder = self.log_dir / "airflow" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        logs = {}
        for path in sorted(folder.glob("attempt=*.log.trigger.*.log")):
            job_id = int(path.name.rsplit(".", 2)[-2])
            logs[job_id] = logs.get(job_id, "") + path.read_text(errors="replace")
        return logs

    def _sessions(self) -> set[int]:
        sessions = {p.popen.pid for p in self.processes.values() if p.popen is not None}
        for service in (self.postgres, self.redis):
            if service is not None and service.process is not None and service.process.popen is not None:
                sessions.add(service.process.popen.pid)
        return sessions

    def our_processes(self) -> dict[int, str]:
        """``{pid: command line}`` of every live process the harness started (and their children)."""
        return {pid: cmdline(pid) for pid in our_pids(self.marker, self._sessions())}

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._save_emulator_record()
        self.stop_airflow()
        if "emulator" in self.processes:
            self.processes["emulator"].stop(timeout=5)
        if self.redis is not None:
            self.redis.stop()
        self.postgres.stop()
        sessions = self._sessions()
        for _ in range(3):  # anything we started that escaped its process group
            leftovers = our_pids(self.marker, sessions)
            if not leftovers:
                break
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)

    def _save_emulator_record(self) -> None:
        """Keep the emulator's jobs and request log (tokens redacted) beside the process logs."""
        process = self.processes.get("emulator")
        if process is None or not process.alive:
            return
        for name in ("requests", "jobs"):
            try:
                response = requests.get(f"{self.emulator_url}/_emulator/{name}", timeout=30)
                (self.log_dir / f"emulator-{name}.json").write_bytes(response.content)
            except (requests.RequestException, OSError) as error:
                with contextlib.suppress(OSError):
                    (self.log_dir / f"emulator-{name}.json").write_text(json.dumps({"error": repr(error)}))

    def log_tails(self, lines: int = 25) -> Iterator[tuple[str, str]]:
        for name, process in self.processes.items():
            tail = process.log_text().splitlines()[-lines:]
            yield name, "\n".join(tail)


def _secret(root: Path, name: str) -> str:
    path = root / f".{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text()


def _fernet_key(root: Path) -> str:
    path = root / ".fernet.key"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode())
    return path.read_text()
