"""Render the benchmark results (``benchmarks/results/*.json``) into ``docs/performance.md``.

The page's prose is written by hand; the blocks between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` are replaced with tables generated from the JSON (``machine``, ``fleet``,
``ratelimit``, ``parse``, ``emulator``, ``targets``), and the plot ``docs/img/performance-fleet.png``
(CPU per poll and event-loop lag against N) is redrawn with matplotlib. ``--check`` only reports
whether the page is up to date with the JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "performance.md"
PLOT = HERE.parent / "docs" / "img" / "performance-fleet.png"
MODE_NAMES = {
    "ours": "GradientIndexingJobTrigger",
    "per_job_get": "today's trigger: a GET per job per poll",
    "floor": "floor: bare shared aiohttp session",
    "per_poll_session": "baseline: new aiohttp session per poll",
    "httpx": "shared httpx.AsyncClient",
}


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(_num(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_block(results: dict[str, Any]) -> str:
    source = next((r for r in results.values() if r and "machine" in r), None)
    if source is None:
        return "*No results yet: run `make bench`.*"
    m = source["machine"]
    rows = [
        ["CPU", f"{m.get('nproc')} vCPU, {m.get('Model name', '?')} ({m.get('Hypervisor vendor', 'bare metal')})"],
        ["Python / Airflow", f"{m.get('python')} / {m.get('airflow', '?')}"],
        ["aiohttp / httpx", f"{m.get('aiohttp', '?')} / {m.get('httpx', '?')}"],
        ["Platform", m.get("platform", "?")],
    ]
    for name, result in results.items():
        if result and "machine" in result:
            rm = result["machine"]
            load = ", ".join(str(x) for x in rm.get("load_average", []))
            rows.append([f"`{name}` run under", f"load average {load}"])
    return _table(["", ""], rows)


def fleet_block(fleet: dict[str, Any]) -> str:
    rows = []
    for r in fleet["rows"]:
        name = MODE_NAMES.get(r["mode"], r["mode"]) + (" (watcher)" if r.get("watcher") else "")
        rows.append(
            [
                r["n"],
                name,
                r.get("job_seconds"),
                r["cpu_us_per_poll"],
                r.get("user_cpu_us_per_poll"),
                r.get("cpu_us_per_job_minute"),
                r.get("x_per_job_get"),
                r["x_floor"],
                r["x_per_poll_session"],
                r["lag_p50_ms"],
                r["lag_p99_ms"],
                r.get("own_lag_p99_ms"),
                r.get("lag_max_ms"),
                r["rss_kib_per_wait"],
                r["polls_per_job"],
                r["sessions_peak"] if r["mode"] in ("ours", "per_job_get") else None,
                r.get("gc_full_collections"),
                r["failures"],
            ]
        )
    intervals = ", ".join(f"N={n}: {p:g} s" for n, p in fleet["poll_interval"].items())
    return (
        _table(
            [
                "N",
                "client",
                "job s",
                "µs CPU / poll",
                "µs user CPU / poll",
                "µs CPU / watched job / min",
                "x per-job GET",
                "x floor",
                "x per-poll session",
                "loop lag p50 ms",
                "loop lag p99 ms",
                "own-CPU lag p99 ms",
                "lag max ms",
                "KiB / wait",
                "polls / job",
                "aiohttp sessions",
                "full GCs",
                "failed",
            ],
            rows,
        )
        + f"\n\nReproduce: `{fleet.get('command', 'python benchmarks/bench_fleet.py')}`. "
        f"`poll_interval` {intervals}; jobs end after {fleet['polls_per_job_target']} polls"
        + (
            f", and in the last rows (the long workload) after {fleet['watch_minutes']:g} minutes; "
            if any(r.get("workload") == "long" for r in fleet["rows"])
            else "; "
        )
        + f"loop-lag ticker every {fleet['tick_seconds'] * 1000:g} ms."
        + _long_runs(fleet["rows"])
    )


def _long_runs(rows: list[dict[str, Any]]) -> str:
    """The sentence naming each repeated run of the long workload behind its median row."""
    repeated = [r for r in rows if len(r.get("cpu_us_per_job_minute_runs", ())) > 1]
    if not repeated:
        return ""
    each = "; ".join(
        f"{MODE_NAMES.get(r['mode'], r['mode'])}: "
        + ", ".join(f"{value:,.0f}" for value in r["cpu_us_per_job_minute_runs"])
        for r in repeated
    )
    return (
        f" Each long-workload row is its client's median of {len(repeated[0]['cpu_us_per_job_minute_runs'])} "
        f"runs, the clients alternating (µs CPU per watched job per minute in each run: {each})."
    )


WAIT_NAMES = {
    "per_job": "today's trigger: a GET per job",
    "watcher": "watcher: list sweeps",
    "fixed5": "plain client: GET every 5 s",
}
SCENARIO_NAMES = {"1k": "1,000 jobs", "4k": "4,000 jobs", "busy": "busy token, hourly headers"}


def _share_429(r: dict[str, Any]) -> str | None:
    """The token's 429 share, with how many met the minute and the hour limit."""
    if "token_throttled_share" not in r:
        return None
    share = f"{100 * r['token_throttled_share']:.2g} %"
    if r.get("token_throttled_429"):
        share += f" ({r.get('token_throttled_minute', '?')} minute, {r.get('token_throttled_hour', '?')} hour)"
    return share


def ratelimit_block(rl: dict[str, Any]) -> str:
    first_gets = any("last_first_get_real_s" in r for r in rl["rows"])
    rows = [
        [
            SCENARIO_NAMES.get(r.get("scenario", ""), r.get("scenario", "1k")),
            WAIT_NAMES.get(r.get("wait", r["mode"]), r.get("wait", r["mode"])),
            r.get("list_order", "newest"),
            r["poll_interval"],
            f"{r['finished']}/{r['jobs']}",
            r.get("most_running_at_once"),
            r["failed"],
            r["throttled_429"],
            _share_429(r),
            r["requests"],
            r.get("list_requests"),
            r["requests_per_finished_job"],
            *([r.get("last_first_get_real_s")] if first_gets else []),
            r["detection_late_p50_s"],
            r["detection_late_p95_s"],
            r["detection_late_max_s"],
            r["busiest_minute"],
            r["real_seconds"] / 60,
        ]
        for r in rl["rows"]
    ]
    scenarios = rl.get("scenarios", {})
    described = "; ".join(
        f"**{SCENARIO_NAMES.get(name, name)}**: {s['jobs']:,} tasks arriving within {s['arrivals'] / 60:g} min, "
        f"jobs running {s['running'][0] / 60:g} to {s['running'][1] / 60:g} min"
        + (f", {s['headers']} headers" if s["headers"] != "binding" else "")
        + (f", {s['prior_hour']:,} requests in the hour before" if s["prior_hour"] else "")
        + (f", another user sending {s['others_per_minute']:g} requests/min" if s["others_per_minute"] else "")
        + (f", {s['triggerers']} triggerers" if s.get("triggerers", 1) > 1 else ", one triggerer")
        for name, s in scenarios.items()
        if any(r.get("scenario") == name for r in rl["rows"])
    )
    return (
        _table(
            [
                "scenario",
                "waiting",
                "list order",
                "poll_interval s",
                "jobs seen ended",
                "most at once",
                "failed",
                "429 answers",
                "token's 429 share",
                "requests",
                "list pages",
                "requests / job",
                *(["last job's first GET s"] if first_gets else []),
                "seen late p50 s",
                "seen late p95 s",
                "seen late max s",
                "busiest minute",
                "run (real min)",
            ],
            rows,
        )
        + f"\n\nReproduce: `{rl.get('command', 'python benchmarks/bench_ratelimit.py')}`. "
        f"Time compressed x{rl['scale']:g} (windows, job clock, poll intervals and the package's own "
        "floors alike); durations and lateness are in real (uncompressed) seconds. The server's limits: "
        f"{rl['limits']['per_minute']}/min and {rl['limits']['per_hour']:,}/h"
        + (f"; {rl['older_jobs']:,} older ended jobs in every account" if rl.get("older_jobs") else "")
        + (f". {described}." if described else ".")
        + (f" Not run (no watcher in the checkout): {', '.join(rl['skipped'])}." if rl.get("skipped") else "")
    )


def parse_block(parse: dict[str, Any]) -> str:
    names = {
        "sdk": "`airflow.sdk` + base classes (baseline)",
        "gradient": "+ our operators and sensor",
        "http": "+ `HttpOperator`, `HttpSensor` (apache-airflow-providers-http)",
    }
    rows = [
        [
            names.get(r["kind"], r["kind"]),
            r["total_ms"],
            r["added_ms"],
            r["ratio_to_sdk"],
            r["modules_added"],
            ", ".join(r["heavy_modules_added"]) or "none",
        ]
        for r in parse["rows"]
    ]
    return _table(["import", "total ms", "added ms", "x baseline", "modules added", "heavy modules added"], rows) + (
        f"\n\nMedian of {parse['repeat']} fresh interpreters per row, interleaved."
    )


def emulator_block(emu: dict[str, Any]) -> str:
    rows = [
        [
            r["concurrency"],
            r["requests"],
            r["errors"],
            r["rps"],
            r.get("server_cpu_us_per_request"),
            r["p50_ms"],
            r["p95_ms"],
            r["p99_ms"],
        ]
        for r in emu["rows"]
    ]
    headers = ["connections", "requests", "errors", "requests/s", "server us CPU/request", "p50 ms", "p95 ms", "p99 ms"]
    load = emu.get("load_average_before", [None])[0]
    return _table(headers, rows) + (
        f"\n\nBest {emu['best_rps']:,.0f} requests/s (target {emu['target_rps']:,.0f}); "
        f"load average {_num(load)} when it started."
    )


def overhead_block(overhead: dict[str, Any]) -> str:
    rows = [[r["per"], r["step"], r["us"]] for r in overhead["rows"]]
    return _table(["paid per", "step", "us CPU"], rows) + "\n\nBest of 5 rounds, in-process, no network."


def targets_block(results: dict[str, Any]) -> str:
    rows = []
    for name, result in results.items():
        command = f"`{(result or {}).get('command', f'python benchmarks/bench_{name}.py')}`"
        for target, verdict in ((result or {}).get("targets") or {}).items():
            rows.append([name, f"`{target}`", "met" if verdict["met"] else "**missed**", verdict["detail"], command])
    emu = results.get("emulator")
    if emu:
        verdict = "met" if emu["meets_target"] else "**missed**"
        rows.append(
            ["emulator", "`>=1000 requests/s`", verdict, emu["best_rps"], "`python benchmarks/bench_emulator.py`"]
        )
    return _table(["benchmark", "target", "verdict", "measured", "reproduce"], rows)


def plot(fleet: dict[str, Any]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot", file=sys.stderr)
        return False
    fig, (cpu, lag) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, label in MODE_NAMES.items():
        rows = sorted((r for r in fleet["rows"] if r["mode"] == mode), key=lambda r: r["n"])
        if not rows:
            continue
        ns = [r["n"] for r in rows]
        cpu.plot(ns, [r["cpu_us_per_poll"] for r in rows], marker="o", label=label)
        lag.plot(ns, [r["lag_p99_ms"] for r in rows], marker="o", label=label)
    cpu.set(xlabel="concurrent waits N", ylabel="µs CPU per poll", title="CPU per status poll", xscale="log")
    lag.set(xlabel="concurrent waits N", ylabel="ms", title="event-loop lag p99", xscale="log", yscale="log")
    lag.axhline(100, color="grey", linestyle="--", linewidth=1)
    cpu.legend(fontsize=8)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    return True


def render(doc: str, results: dict[str, Any]) -> str:
    blocks: dict[str, Callable[[], str]] = {
        "machine": lambda: machine_block(results),
        "targets": lambda: targets_block(results),
    }
    named = (
        ("fleet", fleet_block),
        ("ratelimit", ratelimit_block),
        ("parse", parse_block),
        ("emulator", emulator_block),
        ("overhead", overhead_block),
    )
    for name, fn in named:
        if results.get(name):
            blocks[name] = lambda fn=fn, name=name: fn(results[name])  # type: ignore[misc]

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        body = blocks[name]() if name in blocks else "*No results yet: run `make bench`.*"
        return f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->"

    return re.sub(r"<!-- bench:(\w+) -->.*?<!-- /bench:\1 -->", replace, doc, flags=re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/performance.md is not up to date")
    args = parser.parse_args()
    results = {name: _load(name) for name in ("fleet", "ratelimit", "parse", "emulator", "overhead")}
    doc = DOC.read_text()
    new = render(doc, results)
    if args.check:
        if new != doc:
            print("docs/performance.md is not up to date with benchmarks/results: run benchmarks/report.py")
            return 1
        return 0
    DOC.write_text(new)
    print(f"updated {DOC}")
    if results.get("fleet") and plot(results["fleet"]):  # type: ignore[arg-type]
        print(f"wrote {PLOT}")
    for name, block in (("targets", targets_block(results)),):
        print(f"\n{name}:\n{block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
