"""
Two hundred deferred tasks over fifty knowledge bases and two tokens with limits of their own,
on two Celery workers and three triggerers. Four runs of fifty tasks, one after another (a
knowledge base runs one job at a time), half of each run on each token. The processes share the
request budget only through the API's headers: no task may fail, no request may be answered 429,
each token's busiest rolling minute stays within its limit, and every task follows one job of its own.
"""

from __future__ import annotations

import json
import time

import pytest
from system_fleet import CONNECTIONS, POLL_INTERVAL, TOKENS, Fleet

pytestmark = [pytest.mark.system_celery, pytest.mark.timeout(900)]

DAG_ID = "gradient_fleet"
KNOWLEDGE_BASES = 50
RUNS = 4
JOB_SECONDS = 20.0


def test_two_hundred_deferred_tasks_share_two_tokens(fleet: Fleet) -> None:
    per_token = KNOWLEDGE_BASES // len(CONNECTIONS)
    # Polling every poll_interval regardless would ask more than each token's limit allows.
    for conn_id in CONNECTIONS:
        assert per_token * 60 / POLL_INTERVAL > fleet.deployment.token_limits(TOKENS[conn_id])[0]
    kbs = fleet.knowledge_bases("tokens", KNOWLEDGE_BASES, JOB_SECONDS)
    targets = fleet.targets(kbs)
    began = time.time()
    run_ids = [fleet.trigger(DAG_ID, targets) for _ in range(RUNS)]

    workers: set[str] = set()
    triggerers: set[str] = set()
    most_deferred = 0
    for run_id in run_ids:
        deadline = time.monotonic() + 600
        while True:
            run = fleet.api.run(DAG_ID, run_id)
            tis = fleet.tis(DAG_ID, run_id)
            deferred = [ti for ti in tis if ti["state"] == "deferred"]
            most_deferred = max(most_deferred, len(deferred))
            workers |= {ti["hostname"] for ti in tis if ti.get("hostname")}
            triggerers |= {ti["triggerer_job"]["hostname"] for ti in deferred if ti.get("triggerer_job")}
            if run["state"] in ("success", "failed"):
                break
            assert time.monotonic() < deadline, {ti["map_index"]: ti["state"] for ti in tis}
            time.sleep(2.0)
        assert run["state"] == "success", {ti["map_index"]: ti["state"] for ti in tis if ti["state"] != "success"}
    elapsed = time.time() - began

    followed = fleet.assert_one_job_per_task(DAG_ID, run_ids, targets)
    assert len(followed) == KNOWLEDGE_BASES * RUNS
    for run_id in run_ids:
        assert all(ti["try_number"] == 1 for ti in fleet.tis(DAG_ID, run_id))
    # The work spread over both workers and over at least two triggerers. Airflow spreads the
    # triggers: a triggerer whose loop comes round late may claim none of a run's.
    assert workers == set(fleet.deployment.WORKER_HOSTNAMES.values()), workers
    assert len(triggerers) >= 2, triggerers
    assert most_deferred >= KNOWLEDGE_BASES // 2, most_deferred

    tokens = fleet.token_figures(began)
    requests = sum(figures["requests"] for figures in tokens.values())
    summary = {
        "tasks": len(followed),
        "seconds": round(elapsed),
        "requests": requests,
        "requests_per_job": round(requests / len(followed), 2),
        "most_deferred_at_once": most_deferred,
        "tokens": tokens,
    }
    (fleet.deployment.log_dir / "celery-two-tokens.json").write_text(json.dumps(summary, indent=2))
    print(f"two tokens, {len(followed)} tasks: {json.dumps(summary)}")
    for name, figures in tokens.items():
        assert figures["answered_429"] == 0, (name, summary)
        assert figures["busiest_minute_attempted"] <= figures["limit_per_minute"], (name, summary)
        assert figures["requests"] > 0, (name, summary)
