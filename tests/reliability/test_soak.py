"""
No lost outcome: a seeded soak run. Hundreds of jobs with random outcomes (success, partial, no
changes, failed, cancelled server-side while running) run in accelerated emulator time while
random transient faults hit the job reads. Most are waited for by triggers running concurrently in
one event loop (as in a triggerer), a subset by the start operator's sync path in worker threads.
Every task's outcome must equal the job's real final state in the emulator, within a hard timeout.

The plan (and so the counts published in docs/reliability.md) follows from the seed alone; a
bigger run is opt-in: ``GRADIENT_SOAK_JOBS=3000 pytest tests/reliability/test_soak.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from reliability_catalogue import SOAK_FAULT_KINDS, SOAK_JOBS, SoakPlan, soak_plan
from reliability_support import MemoryStore, context, env_name

from airflow_provider_gradient.exceptions import GradientJobCancelledError, GradientJobError
from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.indexing_job import GradientIndexingJobTrigger

pytestmark = pytest.mark.integration

#: Emulated seconds per wall second: jobs of 300-4,800 emulated seconds take 0.25-4 s.
SPEED = 1200.0
POLL = 1.0
DEADLINE = 80.0  # each task's maximum wait (a timeout is a mismatch: the test fails)
HARD_TIMEOUT = 110.0  # nothing may hang past this
CONN = "gradient_soak"
PLANNED = {
    "COMPLETED": "succeeded",
    "NO_CHANGES": "no_changes",
    "PARTIAL": "partial",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}


def real_outcome(job: dict[str, Any]) -> str:
    """The job's final state in the emulator, in the provider's outcome words (read independently)."""
    phase = job["phase"].removeprefix("BATCH_JOB_PHASE_")
    status = job["status"].removeprefix("INDEX_JOB_STATUS_")
    if phase == "SUCCEEDED":
        return {"COMPLETED": "succeeded", "NO_CHANGES": "no_changes", "PARTIAL": "partial"}.get(status, f"?{status}")
    return {"FAILED": "failed", "CANCELLED": "cancelled"}.get(phase, f"?{phase}")


async def _trigger_outcome(job: str) -> str:
    trigger = GradientIndexingJobTrigger(
        indexing_job_uuid=job, gradient_conn_id=CONN, poll_interval=POLL, end_time=time.time() + DEADLINE
    )
    try:
        async for event in trigger.run():
            payload = dict(event.payload)
            if payload["status"] in ("timeout", "error"):
                return f"{payload['status']}: {payload['message']}"
            return str(payload["outcome"])
        return "no event"
    finally:
        await trigger.cleanup()


def _operator_outcome(kb: str) -> str:
    op = GradientStartIndexingJobOperator(
        task_id="soak",
        knowledge_base_uuid=kb,
        gradient_conn_id=CONN,
        deferrable=False,
        poll_interval=POLL,
        timeout=DEADLINE,
    )
    try:
        return str(op.execute(context(store=MemoryStore()))["outcome"])
    except GradientJobCancelledError:
        return "cancelled"
    except GradientJobError as err:
        return "failed" if "ended" in str(err) else f"error: {err}"
    except Exception as err:
        return f"error: {err!r}"


def run_soak(emu: GradientEmulator, plan: SoakPlan) -> dict[str, Any]:
    """Run the plan against ``emu``; return per-job (planned, observed, real) and the counts."""
    kbs: list[str] = []
    for job in plan.jobs:
        kb = emu.create_knowledge_base(name=f"soak-{job.index}", data_sources=2)
        emu.script_jobs(kb.uuid, "COMPLETED" if job.outcome == "CANCELLED" else job.outcome, job.duration, job.pending)
        kbs.append(kb.uuid)
    kinds = dict(SOAK_FAULT_KINDS)
    for kind, after in plan.faults:
        emu.faults.add("genai_get_indexing_job", times=1, after=after, **kinds[kind])
    emu.clock.speed = SPEED
    began = time.monotonic()
    # Jobs waited for by triggers were started before the deferral (server-side here).
    uuids: dict[int, str] = {
        job.index: emu.start_job_server_side(kbs[job.index]) for job in plan.jobs if not job.via_operator
    }
    stop = threading.Event()

    def cancel_server_side() -> None:
        """Someone cancels the CANCELLED jobs in the console while they run."""
        pending = {job.index: job.cancel_after for job in plan.jobs if job.cancel_after is not None}
        seen: dict[int, float] = {}
        while pending and not stop.is_set():
            for index in list(pending):
                if index not in uuids:
                    jobs = emu.jobs(kbs[index])
                    if not jobs:
                        continue
                    uuids[index] = jobs[0]["uuid"]
                seen.setdefault(index, time.monotonic())
                if time.monotonic() - seen[index] >= (pending[index] or 0.0):
                    requests.put(
                        f"{emu.base_url}/v2/gen-ai/indexing_jobs/{uuids[index]}/cancel",
                        json={"uuid": uuids[index]},
                        headers={"Authorization": f"Bearer {emu.token}"},
                        timeout=10,
                    ).raise_for_status()
                    del pending[index]
            time.sleep(0.05)

    async def triggers() -> list[str]:
        waits = [_trigger_outcome(uuids[job.index]) for job in plan.jobs if not job.via_operator]
        return await asyncio.wait_for(asyncio.gather(*waits), HARD_TIMEOUT)

    canceller = threading.Thread(target=cancel_server_side, name="soak-cancel", daemon=True)
    canceller.start()
    operator_jobs = [job for job in plan.jobs if job.via_operator]
    try:
        with ThreadPoolExecutor(max_workers=len(operator_jobs) or 1, thread_name_prefix="soak-worker") as pool:
            futures = {job.index: pool.submit(_operator_outcome, kbs[job.index]) for job in operator_jobs}
            trigger_results = asyncio.run(triggers())
            operator_results = {index: future.result(timeout=HARD_TIMEOUT) for index, future in futures.items()}
    finally:
        stop.set()
        canceller.join(10)
    elapsed = time.monotonic() - began
    observed: dict[int, str] = dict(operator_results)
    observed.update(zip([job.index for job in plan.jobs if not job.via_operator], trigger_results, strict=True))
    rows = []
    for job in plan.jobs:
        jobs = emu.jobs(kbs[job.index])
        real = real_outcome(jobs[0]) if len(jobs) == 1 else f"{len(jobs)} jobs"
        rows.append((job.index, PLANNED[job.outcome], observed[job.index], real, job.via_operator))
    return {
        "rows": rows,
        "elapsed": elapsed,
        "faults_fired": sum(fault.fired for fault in emu.faults.list()),
        "requests": emu.count(),
        "posts": emu.count("POST", "genai_create_indexing_job"),
    }


def check(plan: SoakPlan, result: dict[str, Any]) -> None:
    rows = result["rows"]
    mismatches = [row for row in rows if not row[1] == row[2] == row[3]]
    counts = {
        "jobs": len(rows),
        "via_trigger": sum(not row[4] for row in rows),
        "via_operator": sum(row[4] for row in rows),
        "observed": dict(Counter(row[2] for row in rows)),
        "elapsed_s": round(result["elapsed"], 1),
        "faults_fired": result["faults_fired"],
        "requests": result["requests"],
    }
    print("soak counts:", json.dumps(counts))
    assert mismatches == [], f"{len(mismatches)} lost or wrong outcomes (index, planned, observed, real): {mismatches}"
    planned = {PLANNED[outcome]: count for outcome, count in plan.outcome_counts().items() if count}
    assert dict(Counter(row[2] for row in rows)) == planned
    assert result["posts"] == plan.operator_jobs  # one start per operator task, none re-sent
    assert result["faults_fired"] > 0


@pytest.fixture
def soak_emulator(gradient_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> GradientEmulator:
    emu: GradientEmulator = gradient_emulator_factory(rate_limit_per_minute=None, rate_limit_per_hour=None)
    extra = {"requests_per_minute": 1_000_000, "requests_per_hour": 10_000_000, "max_retries": 2}
    monkeypatch.setenv(
        env_name(CONN),
        json.dumps({"conn_type": "gradient", "host": emu.base_url, "password": emu.token, "extra": extra}),
    )
    return emu


@pytest.mark.timeout(180)
def test_soak_no_lost_outcome(soak_emulator: GradientEmulator) -> None:
    plan = soak_plan()
    assert len(plan.jobs) == SOAK_JOBS
    check(plan, run_soak(soak_emulator, plan))


@pytest.mark.timeout(1800)
@pytest.mark.skipif(not os.environ.get("GRADIENT_SOAK_JOBS"), reason="opt-in: set GRADIENT_SOAK_JOBS=3000")
def test_soak_big(soak_emulator: GradientEmulator) -> None:
    jobs = int(os.environ["GRADIENT_SOAK_JOBS"])
    plan = soak_plan(seed=int(os.environ.get("GRADIENT_SOAK_SEED", "1")), jobs=jobs, operator_jobs=max(1, jobs // 12))
    check(plan, run_soak(soak_emulator, plan))
