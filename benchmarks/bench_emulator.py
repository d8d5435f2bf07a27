"""Capacity of the Gradient API emulator: job-status GETs per second.

Run with ``make bench`` or ``.venv/bin/python benchmarks/bench_emulator.py``. The emulator runs in
its own process (the CLI, rate limits off, request log on as in tests); this process is the
aiohttp client, firing a fixed number of ``GET /v2/gen-ai/indexing_jobs/{uuid}`` over N concurrent
keep-alive connections. It prints a table and writes ``benchmarks/results/emulator.json``.
The target is at least 1,000 requests per second on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests

TOKEN = "dop_v1_bench"
RESULTS = Path(__file__).resolve().parent / "results" / "emulator.json"
TARGET_RPS = 1000.0


def _start_emulator() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_gradient.testing.emulator",
            "--token",
            TOKEN,
            "--no-rate-limit",
            "--speed",
            "10",
            "--kb",
            "bench:3",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    base_url = kb_uuid = ""
    for line in process.stdout:
        if match := re.search(r"listening on (http://\S+)", line):
            base_url = match.group(1)
        if line.startswith("knowledge base "):
            kb_uuid = line.split()[3]
        if "Press Ctrl+C" in line:
            break
    if not base_url or not kb_uuid:
        process.kill()
        raise RuntimeError("the emulator did not start")
    return process, base_url, kb_uuid


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(url: str, total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    remaining = total
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        # warm-up (connections, caches)
        async with session.get(url) as response:
            await response.read()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p95_ms": round(pct(0.95), 2),
        "p99_ms": round(pct(0.99), 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = list(os.getloadavg())
    process, base_url, kb_uuid = _start_emulator()
    try:
        answer = requests.post(f"{base_url}/_emulator/knowledge_bases/{kb_uuid}/jobs", json={}, timeout=10)
        answer.raise_for_status()
        job_uuid = answer.json()["job_uuid"]
        url = f"{base_url}/v2/gen-ai/indexing_jobs/{job_uuid}"
        rows = []
        for level in args.concurrency:
            cpu_before = _cpu_seconds(process.pid)
            row = asyncio.run(_run(url, args.requests, level))
            cpu = _cpu_seconds(process.pid) - cpu_before
            # CPU the emulator spent per request: capacity independent of other load on the machine
            row["server_cpu_s"] = round(cpu, 3)
            row["server_cpu_us_per_request"] = round(cpu / row["requests"] * 1e6, 1) if cpu else None
            row["rps_per_server_core"] = round(row["requests"] / cpu, 1) if cpu else None
            rows.append(row)
    finally:
        process.terminate()
        process.communicate(timeout=15)

    header = (
        f"{'conc':>5} {'requests':>9} {'errors':>6} {'seconds':>8} {'req/s':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'cpu us/req':>10} {'req/cpu-s':>9}"
    )
    print("Gradient emulator: GET /v2/gen-ai/indexing_jobs/{uuid} (separate client process, keep-alive)")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['concurrency']:>5} {row['requests']:>9} {row['errors']:>6} {row['seconds']:>8.2f} "
            f"{row['rps']:>9.1f} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} {row['p99_ms']:>7.2f} "
            f"{row['server_cpu_us_per_request'] or 0:>10.1f} {row['rps_per_server_core'] or 0:>9.0f}"
        )
    best = max(row["rps"] for row in rows)
    per_core = max((row["rps_per_server_core"] or 0.0) for row in rows)
    verdict = "meets" if best >= TARGET_RPS else "MISSES"
    print(f"best {best:.0f} req/s: {verdict} the {TARGET_RPS:.0f} req/s target")
    print(f"server CPU: up to {per_core:.0f} requests per CPU-second (the wall rate needs a free core)")
    print(f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (other work skews results)")
    result = {
        "benchmark": "emulator_job_status_get",
        "target_rps": TARGET_RPS,
        "best_rps": best,
        "best_rps_per_server_core": per_core,
        "meets_target": best >= TARGET_RPS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
