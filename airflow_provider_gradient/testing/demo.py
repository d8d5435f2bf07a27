"""
The README demo: run the example DAGs with the real ``airflow dags test`` against the emulator.

``python -m airflow_provider_gradient.testing.demo`` (``make demo``):

1. starts the Gradient API emulator in this process (accelerated clock) and creates knowledge bases
   (the DAGs find two of them by name, one by uuid);
2. creates a throw-away ``AIRFLOW_HOME`` and migrates its sqlite metadata DB;
3. runs the example DAGs, each with ``airflow dags test`` in its own process (independent runs in
   parallel, each with its own copy of the DB): scheduled reindexing, the data pipeline and its
   asset consumer, and a failing run whose teardown cancels its indexing job;
4. shows each run's start → deferral → completion (or cancellation) from the task logs and the
   emulator's job records, prints a summary table, and exits non-zero if anything did not end as
   expected; on success it prints where to go next (:data:`NEXT_STEPS`).

Nothing here talks to DigitalOcean: the connection points at the local emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_gradient.testing.emulator import GradientEmulator

__all__ = ["DemoRun", "main"]

#: Long enough that only a cancellation ends the job (emulated seconds).
_LONG_JOB = 10_000_000.0
#: Log lines worth showing, from the task logs of ``airflow dags test``.
_HIGHLIGHTS = re.compile(
    r"Started indexing job|Deferring until|running trigger in line|Indexing job \S+ ended|"
    r"latest indexing job|Asked to cancel|Cancelled indexing job|nothing to cancel|failed \(simulate_failure|"
    r"Refreshing answers|is fresh \(job|Task failed with exception|DagRun Finished"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Printed when the demo passed: where to go from here.
NEXT_STEPS = """
Next steps
  * Read docs/getting-started.md: install the provider in your Airflow, create the connection,
    copy an example DAG.
  * Point the same DAGs at your DigitalOcean account: create an API token with the scopes
    genai:read, genai:create and genai:update, then on every Airflow component
        export AIRFLOW_CONN_GRADIENT_DEFAULT='{"conn_type":"gradient","password":"dop_v1_..."}'
    and give the examples your knowledge bases: GRADIENT_KB_NAMES (names, comma-separated) for
    gradient_scheduled_reindex, the knowledge_base_name param for gradient_cancel_*, and
    GRADIENT_KB_UUID for gradient_data_pipeline (an Asset needs the uuid).
  * Something not working? docs/troubleshooting.md."""


@dataclass
class DemoRun:
    """One ``airflow dags test`` run of the demo and what it should end in.

    :param dag_id: The example DAG.
    :param expect_success: Whether the DAG run should succeed.
    :param conf: The run's conf (DAG params).
    :param check: Reads the emulator's job records; returns a one-line account, raises AssertionError.
    """

    dag_id: str
    expect_success: bool
    conf: dict[str, Any] = field(default_factory=dict)
    check: Callable[[], str] = field(default=lambda: "")
    returncode: int | None = None
    seconds: float = 0.0
    output: str = ""
    verdict: str = ""
    ok: bool = False


def _say(text: str = "") -> None:
    print(text, flush=True)


def _example_dags_folder(given: str | None) -> Path:
    folder = Path(given).resolve() if given else Path(__file__).resolve().parents[2] / "example_dags"
    if not (folder / "gradient_scheduled_reindex.py").is_file():
        raise SystemExit(
            f"example DAGs not found in {folder}: run the demo from a clone of the repository "
            "(`make demo`) or pass --dags-folder."
        )
    return folder


def _airflow(args: Sequence[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the real ``airflow`` CLI of this interpreter."""
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _phase(job: dict[str, Any]) -> str:
    phase = str(job.get("phase") or "?").removeprefix("BATCH_JOB_PHASE_")
    status = str(job.get("status") or "?").removeprefix("INDEX_JOB_STATUS_")
    return f"{phase}/{status}"


def _job_line(job: dict[str, Any]) -> str:
    return f"job {str(job['uuid'])[:8]} {_phase(job)}"


def _expect_jobs(emulator: GradientEmulator, kb_uuid: str, phases: list[str]) -> list[dict[str, Any]]:
    jobs = list(reversed(emulator.jobs(kb_uuid)))
    got = [str(job.get("phase", "")).removeprefix("BATCH_JOB_PHASE_") for job in jobs]
    if got != phases:
        raise AssertionError(f"knowledge base {kb_uuid[:8]}: expected jobs {phases}, the emulator has {got}")
    return jobs


def _highlights(output: str) -> list[str]:
    lines = []
    for raw in output.splitlines():
        line = _ANSI.sub("", raw)
        if not _HIGHLIGHTS.search(line):
            continue
        # "2026-01-01T00:00:00.000000Z [info     ] message [logger] loc=..." -> "00:00:00 message"
        match = re.match(r"\S*T(\d\d:\d\d:\d\d)\S*\s+\[[a-z ]+\]\s+(.*?)(?:\s+\[[\w.]+\].*)?$", line)
        text = f"{match.group(1)}  {match.group(2)}" if match else line.strip()
        lines.append(text[:160])
    return lines


def _run_lane(runs: list[DemoRun], env: dict[str, str], timeout: float) -> None:
    """Run DAGs one after the other in one AIRFLOW_HOME (a later one may read an earlier one's assets)."""
    for run in runs:
        args = ["dags", "test", run.dag_id]
        if run.conf:
            args += ["--conf", json.dumps(run.conf)]
        started = time.monotonic()
        try:
            done = _airflow(args, env, timeout)
            run.returncode, run.output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            run.returncode, run.output = -1, f"timed out after {timeout:.0f}s: {err}"
        run.seconds = time.monotonic() - started
        _say(f"  finished {run.dag_id} in {run.seconds:.0f}s (exit code {run.returncode})")


def _judge(run: DemoRun) -> None:
    succeeded = run.returncode == 0
    if succeeded != run.expect_success:
        wanted = "succeed" if run.expect_success else "fail"
        run.verdict = f"the DAG run should {wanted}; `airflow dags test` exited {run.returncode}"
        return
    try:
        run.verdict = run.check()
    except AssertionError as err:
        run.verdict = str(err)
        return
    run.ok = True


def _print_table(runs: list[DemoRun]) -> None:
    headers = ("DAG", "expected", "DAG run", "time", "what the emulator saw")
    rows = [
        (
            run.dag_id,
            "success" if run.expect_success else "failed",
            ("success" if run.returncode == 0 else "failed") + ("" if run.ok else "  <-- UNEXPECTED"),
            f"{run.seconds:.0f}s",
            run.verdict,
        )
        for run in runs
    ]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    _say(line(headers))
    _say(line(["-" * width for width in widths]))
    for row in rows:
        _say(line(row))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the process exit code (0 when every DAG run ended as expected).

    :param argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_gradient.testing.demo",
        description="Run the example DAGs with `airflow dags test` against the local Gradient API emulator.",
    )
    parser.add_argument("--dags-folder", help="the example_dags folder (default: the repository's)")
    parser.add_argument("--speed", type=float, default=30.0, help="emulated seconds per wall second (default 30)")
    parser.add_argument("--serial", action="store_true", help="run the DAGs one at a time (slower, less CPU)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME and the full logs")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per `airflow dags test`")
    args = parser.parse_args(argv)

    dags_folder = _example_dags_folder(args.dags_folder)
    began = time.monotonic()
    home_root = Path(tempfile.mkdtemp(prefix="gradient-demo-"))
    emulator = GradientEmulator(speed=args.speed).start()
    try:
        return _demo(emulator, dags_folder, home_root, args)
    finally:
        emulator.stop()
        _say(f"\nTotal {time.monotonic() - began:.0f}s.")
        if args.keep:
            _say(f"Kept AIRFLOW_HOME and logs in {home_root}")
        else:
            shutil.rmtree(home_root, ignore_errors=True)


def _demo(emulator: GradientEmulator, dags_folder: Path, home_root: Path, args: argparse.Namespace) -> int:
    _say(f"Gradient API emulator at {emulator.base_url} (clock x{args.speed:g}).")
    docs = emulator.create_knowledge_base("product-docs", data_sources=2)
    faq = emulator.create_knowledge_base("support-faq", data_sources=1)
    pipeline = emulator.create_knowledge_base("pipeline-docs", data_sources=1)
    doomed = emulator.create_knowledge_base("big-crawl", data_sources=3)
    emulator.script_jobs(doomed.uuid, "COMPLETED", duration=_LONG_JOB)
    for kb in (docs, faq, pipeline, doomed):
        _say(f"  knowledge base {kb.name:<14} {kb.uuid}  ({len(kb.data_source_uuids)} data sources)")

    base_home = home_root / "home"
    base_home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "GRADIENT_", "_AIRFLOW"))}
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "AIRFLOW_CONN_GRADIENT_DEFAULT": emulator.airflow_conn_json(),
            "GRADIENT_KB_NAMES": f"{docs.name},{faq.name}",
            "GRADIENT_KB_UUID": pipeline.uuid,
            "PYTHONWARNINGS": "ignore",
        }
    )

    def home_env(home: Path) -> dict[str, str]:
        return {
            **env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }

    _say(f"\nMigrating a fresh Airflow metadata DB in {base_home} ...")
    started = time.monotonic()
    migrated = _airflow(["db", "migrate"], home_env(base_home), args.timeout)
    if migrated.returncode != 0:
        _say(migrated.stdout + migrated.stderr)
        _say("`airflow db migrate` failed.")
        return 1
    _say(f"  done in {time.monotonic() - started:.0f}s.")

    def scheduled_check() -> str:
        lines = [_job_line(_expect_jobs(emulator, kb.uuid, ["SUCCEEDED"])[0]) for kb in (docs, faq)]
        return "; ".join(lines)

    def pipeline_check() -> str:
        return _job_line(_expect_jobs(emulator, pipeline.uuid, ["SUCCEEDED"])[0]) + ", asset event emitted"

    def consumer_check() -> str:
        job = _expect_jobs(emulator, pipeline.uuid, ["SUCCEEDED"])[0]
        consumer = next(run for run in runs if run.dag_id == "gradient_knowledge_base_consumer")
        if f"indexing job {job['uuid']} ended" not in consumer.output:
            raise AssertionError("the consumer did not read the reindex job from the asset event")
        return f"read {_job_line(job)} from the asset event"

    def cancel_check() -> str:
        job = _expect_jobs(emulator, doomed.uuid, ["CANCELLED"])[0]
        return f"{_job_line(job)}: cancelled by the teardown after a task failed"

    runs = [
        DemoRun("gradient_scheduled_reindex", True, check=scheduled_check),
        DemoRun("gradient_data_pipeline", True, check=pipeline_check),
        DemoRun("gradient_knowledge_base_consumer", True, check=consumer_check),
        DemoRun(
            "gradient_cancel_teardown",
            False,
            conf={"knowledge_base_name": doomed.name, "simulate_failure": True},
            check=cancel_check,
        ),
    ]
    # Independent lanes run in parallel, each on its own copy of the migrated DB (sqlite allows one
    # writer); the asset consumer runs after its producer, in the same lane, to see its event.
    lanes = [[runs[0]], [runs[1], runs[2]], [runs[3]]]
    if args.serial:
        lanes = [runs]
    threads = []
    _say(f"\nRunning {len(runs)} DAGs with `airflow dags test` ({len(lanes)} at a time) ...")
    for index, lane in enumerate(lanes):
        home = home_root / f"lane{index}"
        shutil.copytree(base_home, home)
        for run in lane:
            _say(f"  started  {run.dag_id}" + (f" --conf '{json.dumps(run.conf)}'" if run.conf else ""))
        thread = threading.Thread(target=_run_lane, args=(lane, home_env(home), args.timeout), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()

    for run in runs:
        _judge(run)
        _say(f"\n=== {run.dag_id} " + "=" * max(0, 70 - len(run.dag_id)))
        for line in _highlights(run.output) or ["(no task log lines matched)"]:
            _say(f"  {line}")
        if args.keep:
            log = home_root / f"{run.dag_id}.log"
            log.write_text(run.output)
            _say(f"  full log: {log}")
        elif not run.ok:
            _say("  --- last lines of the output ---")
            for line in run.output.splitlines()[-25:]:
                _say(f"  {_ANSI.sub('', line)}")

    _say("\nSummary")
    _print_table(runs)
    failed = [run.dag_id for run in runs if not run.ok]
    if failed:
        _say(f"\nDEMO FAILED: {', '.join(failed)} did not end as expected.")
        return 1
    _say("\nEvery DAG run ended as expected: start -> deferral -> completion, and a cancellation on failure.")
    _say(NEXT_STEPS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
