"""Shared pieces of the benchmarks: the emulator process, its control API, machine facts, tables."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TOKEN = "dop_v1_bench"


class EmulatorProcess:
    """The emulator in a child process (``emulator_server.py``), driven through its control API."""

    def __init__(
        self,
        *,
        per_minute: int = 0,
        per_hour: int = 0,
        window_scale: float = 1.0,
        speed: float = 1.0,
        headers: str = "binding",
        list_order: str | None = None,
        prior_hour: int = 0,
    ) -> None:
        self.args = [
            "--per-minute",
            str(per_minute),
            "--per-hour",
            str(per_hour),
            "--window-scale",
            str(window_scale),
            "--speed",
            str(speed),
            "--headers",
            headers,
            "--prior-hour",
            str(prior_hour),
            *(["--list-order", list_order] if list_order is not None else []),
        ]
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.started_at = 0.0  # epoch seconds when it was listening
        self.http = requests.Session()

    def __enter__(self) -> EmulatorProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "emulator_server.py"), *self.args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := re.search(r"listening on (http://\S+)", line):
                self.base_url = match.group(1)
                self.started_at = time.time()
                break
        if not self.base_url:
            self.process.kill()
            raise RuntimeError("the emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.http.request(method, f"{self.base_url}/_emulator{path}", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def start_jobs(self, durations: Sequence[float], *, pending: float = 0.0) -> list[str]:
        """One knowledge base per duration, each with a job RUNNING for that many emulated seconds."""
        jobs = []
        for index, duration in enumerate(durations):
            kb = self.control("POST", "/knowledge_bases", {"name": f"kb-{index}", "data_sources": 1})["uuid"]
            self.control("POST", f"/knowledge_bases/{kb}/script", {"duration": duration, "pending": pending})
            jobs.append(self.control("POST", f"/knowledge_bases/{kb}/jobs", {})["job_uuid"])
        return jobs

    def set_speed(self, speed: float) -> None:
        self.control("POST", "/clock", {"speed": speed})

    def requests_log(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/requests")["requests"])

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far (from /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watcher_available() -> bool:
    """Whether this checkout's hook has the event loop's job watcher (``aobserve_indexing_job``)."""
    from airflow_provider_gradient.hooks.gradient import GradientHook

    return hasattr(GradientHook, "aobserve_indexing_job")


def use_per_job_get() -> None:
    """Make this process's triggers poll as before the watcher: a GET of their own job per poll.

    The shipped trigger observes its job through ``GradientHook.aobserve_indexing_job`` and sleeps
    between polls through ``GradientHook.await_indexing_job_end``; pointing the first at the hook's
    per-job read (``aget_indexing_job``, the same answers) and the second at a plain sleep gives
    today's per-job-GET trigger out of the shipped code. Without the watcher the trigger already
    does that.
    """
    import asyncio

    from airflow_provider_gradient.hooks.gradient import GradientHook

    async def plain_sleep(self: GradientHook, indexing_job_uuid: str, timeout: float, **_: Any) -> bool:
        await asyncio.sleep(timeout)
        return False

    async def own_get(self: GradientHook, indexing_job_uuid: str, max_wait: float | None = None) -> Any:
        return await self.aget_indexing_job(indexing_job_uuid)

    if watcher_available():
        GradientHook.aobserve_indexing_job = own_get  # type: ignore[method-assign,unused-ignore]
    if hasattr(GradientHook, "await_indexing_job_end"):
        GradientHook.await_indexing_job_end = plain_sleep  # type: ignore[method-assign,unused-ignore]


def conn_env(base_url: str, **extra: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_GRADIENT_DEFAULT`` pointing at the emulator, with these extras."""
    value = {"conn_type": "gradient", "host": base_url, "password": TOKEN, "extra": extra}
    return {"AIRFLOW_CONN_GRADIENT_DEFAULT": json.dumps(value)}


def rss_bytes() -> int:
    """Resident memory of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        from importlib.metadata import version

        info["airflow"] = version("apache-airflow")
        info["aiohttp"] = version("aiohttp")
        info["httpx"] = version("httpx")
    except Exception as err:  # facts for the report, best effort
        info["versions_error"] = repr(err)
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "CPU max MHz", "Hypervisor vendor"):
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table, right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
