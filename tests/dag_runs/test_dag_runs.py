"""Real Airflow runs (``dag.test()``, ``airflow dags test``) of the DAGs in ``dags/`` against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.airflow_db, pytest.mark.integration]

LINK_KEY = "_link_GradientIndexingJobLink"


def states(run: dict[str, Any]) -> dict[str, str]:
    return {task: info["state"] for task, info in run["tasks"].items()}


def test_parsing_the_dags_sends_no_request(dag_runs: dict[str, Any]) -> None:
    assert dag_runs["parse_requests"] == 0


def test_start_deferred_then_sensor_then_teardown_cancel_is_green(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["gradient_start_sense_cancel"]
    assert run["dag_run_state"] == "success"
    assert states(run) == {"start": "success", "sense": "success", "fresh": "success", "cancel": "success"}
    [job] = run["jobs"]
    assert job["status"] == "INDEX_JOB_STATUS_COMPLETED"
    start = run["xcoms"]["start"]
    assert start["indexing_job_uuid"] == job["uuid"]
    assert start["return_value"]["indexing_job_uuid"] == job["uuid"]
    assert start["return_value"]["total_tokens"] > 0
    assert run["xcoms"]["sense"]["return_value"]["indexing_job_uuid"] == job["uuid"]
    assert run["xcoms"]["fresh"]["return_value"]["indexing_job_uuid"] == job["uuid"]
    # The teardown found the job finished: a no-op, no cancel request.
    assert run["xcoms"]["cancel"]["return_value"]["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert (run["posts"], run["cancels"]) == (1, 0)
    assert run["task_state_store"] == []  # removed once the job ended
    assert run["token_in_xcom"] is False


def test_extra_link_xcom(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["gradient_start_sense_cancel"]
    start = run["xcoms"]["start"]
    assert start[LINK_KEY] == start["indexing_job_url"]
    assert run["kb"] in start[LINK_KEY]


def test_asset_event_extra(dag_runs: dict[str, Any]) -> None:
    """The start operator and the knowledge-base sensor both emit their outlet's event with the job."""
    run = dag_runs["gradient_start_sense_cancel"]
    events = {event["uri"]: event["extra"] for event in run["asset_events"]}
    assert set(events) == {"gradient://knowledge-bases/docs", "gradient://knowledge-bases/docs/fresh"}
    for extra in events.values():
        assert extra["indexing_job_uuid"] == run["jobs"][0]["uuid"]
        assert extra["status"] == "INDEX_JOB_STATUS_COMPLETED"
        assert extra["total_tokens"] == run["xcoms"]["start"]["return_value"]["total_tokens"]


def test_failing_job_fails_the_sensor_and_the_teardown_runs(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["gradient_failing_job"]
    assert run["dag_run_state"] == "failed"
    assert states(run) == {"start": "success", "sense": "failed", "cancel": "success"}
    assert run["jobs"][0]["status"] == "INDEX_JOB_STATUS_FAILED"
    assert run["cancels"] == 0  # nothing left to cancel


def test_failing_start_task_keeps_its_link_and_the_on_failure_cancel_runs(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["gradient_failing_start"]
    # (The run itself counts as successful: its leaf, the on-failure cancel, succeeded.)
    assert states(run) == {"start": "failed", "cancel_on_failure": "success"}
    start = run["xcoms"]["start"]
    assert start["indexing_job_uuid"] == run["jobs"][0]["uuid"]
    assert start[LINK_KEY] == start["indexing_job_url"]  # the link works after a failure
    assert run["posts"] == 1
    assert run["task_state_store"] == []


def test_upstream_failure_teardown_cancels_the_running_job(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["gradient_upstream_failure"]
    assert states(run) == {"start": "success", "boom": "failed", "cancel": "success", "cancel_on_failure": "success"}
    [job] = run["jobs"]
    assert job["phase"] == "BATCH_JOB_PHASE_CANCELLED"
    assert run["cancels"] == 1  # whichever cleanup ran first cancelled it; the other was a no-op


def test_retry_reattaches_through_the_task_state_store(dag_runs: dict[str, Any]) -> None:
    """Try 1 starts the job, then its wait fails (a 403); try 2 reattaches instead of starting another."""
    run = dag_runs["gradient_retry_reattach"]
    assert run["faults_fired"] == [1]
    assert run["tasks"]["start"] == {"state": "success", "try_number": 2}
    [job] = run["jobs"]
    assert run["posts"] == 1
    assert run["xcoms"]["start"]["return_value"]["indexing_job_uuid"] == job["uuid"]
    assert run["task_state_store"] == []
    log = Path(dag_runs["log"]).read_text()
    # Try 2 found the job in the store: still running (reattached) or, on a slow machine, already done.
    assert (
        f"Reattaching to indexing job {job['uuid']} started by an earlier attempt" in log
        or f"Indexing job {job['uuid']} from an earlier attempt already succeeded" in log
    )


def test_sync_wait_in_a_real_run(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["gradient_sync_start"]
    assert states(run) == {"start": "success"}
    assert run["xcoms"]["start"]["return_value"]["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert run["posts"] == 1


def test_airflow_dags_test_cli_is_green(dag_runs: dict[str, Any]) -> None:
    cli = dag_runs["cli"]
    assert cli["returncode"] == 0, cli["output_tail"]
    [job] = cli["jobs"]
    assert job["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert cli["token_in_output"] is False
