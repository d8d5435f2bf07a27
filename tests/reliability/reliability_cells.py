"""
Running one fault-matrix cell: a fresh knowledge base on an emulator, the fault injected on the
step's operation, the real provider code driven through that step over real sockets, and what
happened collected as a :class:`CellRun` for the catalogue's :class:`Expect` to check.

Cells are independent (each has its own emulator state and connection id), so the matrix runs
them on a few emulators in parallel threads: the waits they prove (backoff, ``retry-after``, the
hourly reset, reconciliation) are real waits.
"""

from __future__ import annotations

import asyncio
import os
import queue
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reliability_catalogue import LONG_WAIT, Fault, Step
from reliability_support import MemoryStore, conn_json, context, env_name

from airflow_provider_gradient.testing.emulator import GradientEmulator

POLL = 0.3


@dataclass
class CellRun:
    """What one cell did: its result or error, and what the emulator saw."""

    fault: str
    step: str
    value: Any
    error: BaseException | None
    elapsed: float
    posts: int
    puts: int
    reads: int
    jobs: list[dict[str, Any]]
    final_phase: str
    tokens: int | None
    real_tokens: int | None

    @property
    def message(self) -> str:
        if self.error is not None:
            return str(self.error)
        if isinstance(self.value, dict):
            return str(self.value.get("message", ""))
        return ""


def _resolve(add: dict[str, Any]) -> dict[str, Any]:
    """Fault arguments with ``"+N"`` header values turned into epoch seconds from now."""
    headers = {
        name: str(int(time.time() + float(value[1:]))) if value.startswith("+") else value
        for name, value in (add.get("headers") or {}).items()
    }
    return {**add, "headers": headers} if headers else dict(add)


async def _first_event(trigger: Any, limit: float) -> dict[str, Any]:
    async def collect() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    try:
        return await asyncio.wait_for(collect(), limit)
    finally:
        await trigger.cleanup()


def _run_step(step: str, kb: str, job: str | None, conn_id: str, wait: float) -> Any:
    from airflow_provider_gradient.operators.indexing_job import (
        GradientCancelIndexingJobOperator,
        GradientStartIndexingJobOperator,
    )
    from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor
    from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

    if step in ("start", "poll_sync"):
        op = GradientStartIndexingJobOperator(
            task_id="reindex",
            knowledge_base_uuid=kb,
            gradient_conn_id=conn_id,
            deferrable=False,
            poll_interval=POLL,
            timeout=wait,
        )
        return op.execute(context(store=MemoryStore()))
    if step == "poll_trigger":
        trigger = GradientIndexingJobTrigger(
            indexing_job_uuid=job,
            knowledge_base_uuid=kb,
            gradient_conn_id=conn_id,
            poll_interval=POLL,
            end_time=time.time() + wait,
        )
        return asyncio.run(_first_event(trigger, wait + LONG_WAIT))
    if step == "sensor":
        sensor = GradientIndexingJobSensor(
            task_id="sense",
            indexing_job_uuid=job,
            gradient_conn_id=conn_id,
            mode="poke",
            poke_interval=POLL,
            timeout=wait,
            deferrable=False,
        )
        return sensor.execute(context())
    if step == "cancel":
        return GradientCancelIndexingJobOperator(
            task_id="cancel", indexing_job_uuid=job, gradient_conn_id=conn_id
        ).execute(context())
    raise AssertionError(f"unknown step {step!r}")


def _import_provider() -> None:
    """Import the operators, sensor and trigger once, before any cell starts its clock."""
    import airflow_provider_gradient.hooks.gradient
    import airflow_provider_gradient.operators.indexing_job
    import airflow_provider_gradient.sensors.indexing_job
    import airflow_provider_gradient.triggers.indexing_job  # noqa: F401


def _tokens(value: Any) -> int | None:
    if not isinstance(value, dict):
        return None
    summary = value.get("summary") if "summary" in value else value
    tokens = (summary or {}).get("total_tokens")
    return int(tokens) if tokens is not None else None


def run_cell(emu: GradientEmulator, fault: Fault, step: Step, conn_id: str) -> CellRun:
    """Run one cell on ``emu`` (reset first) through connection ``conn_id``."""
    from reliability_catalogue import CELL_EXTRA

    emu.reset()
    emu.set_rate_limits(None, None)
    os.environ[env_name(conn_id)] = conn_json(emu, **{**CELL_EXTRA, **fault.extra})
    kb = emu.create_knowledge_base(name=f"{fault.key}-{step.key}", data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", duration=600.0 if step.key == "cancel" else 1.0, pending=0.2)
    job = None if step.key in ("start", "poll_sync") else emu.start_job_server_side(kb.uuid)
    emu.faults.add(operation=step.operation, **_resolve(fault.add))
    started = time.monotonic()
    value: Any = None
    error: BaseException | None = None
    try:
        value = _run_step(step.key, kb.uuid, job, conn_id, fault.wait)
    except Exception as err:
        error = err
    elapsed = time.monotonic() - started
    # Let requests still being answered land in the log (a delayed one outlives the client's retry).
    linger = float(fault.add.get("seconds") or 0.0) - elapsed if fault.add.get("kind") == "delay" else 0.0
    time.sleep(max(0.05, linger + 0.3))
    jobs = emu.jobs(kb.uuid)
    method = {"genai_create_indexing_job": "POST", "genai_cancel_indexing_job": "PUT"}.get(step.operation, "GET")
    real = int(jobs[0]["total_tokens"]) if jobs else None
    return CellRun(
        fault=fault.key,
        step=step.key,
        value=value,
        error=error,
        elapsed=elapsed,
        posts=emu.count("POST", "genai_create_indexing_job"),
        puts=emu.count("PUT", "genai_cancel_indexing_job"),
        reads=emu.count(method, step.operation),
        jobs=jobs,
        final_phase=jobs[0]["phase"] if jobs else "NONE",
        tokens=_tokens(value),
        real_tokens=real,
    )


def run_cells(cells: Iterable[tuple[Fault, Step]], workers: int = 12) -> dict[tuple[str, str], CellRun]:
    """Run cells in parallel threads, one emulator per thread; return them keyed by (fault, step)."""
    todo = list(cells)
    _import_provider()
    # Long cells first (the hourly reset, the reconciliation of a failed start) so they overlap.
    todo.sort(key=lambda cell: -(cell[0].key == "hourly_limit") * 2 - (cell[1].key == "start"))
    emulators: queue.Queue[GradientEmulator] = queue.Queue()
    started = [GradientEmulator(rate_limit_per_minute=None, rate_limit_per_hour=None).start() for _ in range(workers)]
    for emu in started:
        emulators.put(emu)
    conn_ids = [f"reliability_cell_{index}" for index in range(len(todo))]

    def work(index: int) -> CellRun:
        emu = emulators.get()
        try:
            fault, step = todo[index]
            return run_cell(emu, fault, step, conn_ids[index])
        finally:
            emulators.put(emu)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cell") as pool:
            runs = list(pool.map(work, range(len(todo))))
    finally:
        for emu in started:
            emu.stop()
        for conn_id in conn_ids:
            os.environ.pop(env_name(conn_id), None)
    return {(run.fault, run.step): run for run in runs}
