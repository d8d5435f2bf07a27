"""
Reconciling an ambiguous start against the emulator: which of a knowledge base's jobs
``GradientHook.find_started_job`` adopts as the one the start created, and which it leaves alone.

The jobs are real emulator jobs; their ``created_at`` (whole seconds) is read back from the API, so
the clock-skew edge is checked to the second.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_gradient.exceptions import GradientAmbiguousStartError
from airflow_provider_gradient.hooks.gradient import CLOCK_SKEW, GradientHook
from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.testing.emulator.gradient_emulator import KnowledgeBaseHandle


@pytest.fixture
def hook(gradient_conn: str) -> GradientHook:
    return GradientHook()


@pytest.fixture
def kb(gradient_emulator: GradientEmulator) -> KnowledgeBaseHandle:
    handle = gradient_emulator.create_knowledge_base(data_sources=2)
    gradient_emulator.script_jobs(handle.uuid, duration=10.0, pending=1.0)
    return handle


def _created(hook: GradientHook, job_uuid: str) -> float:
    created = hook.get_indexing_job(job_uuid).created_at
    assert created is not None
    return created.timestamp()


def _finish_and_start_another(emu: GradientEmulator, kb: KnowledgeBaseHandle, sources: list[str] | None) -> str:
    emu.clock.advance(20.0)  # the running job ends; the next one is created 20 s later (within the skew)
    return emu.start_job_server_side(kb.uuid, sources)


def test_a_job_for_other_data_sources_is_not_adopted(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """A start for data source 1 does not adopt a job for data source 2 (dropping the comparison turns this red)."""
    first, second = kb.data_source_uuids
    job = gradient_emulator.start_job_server_side(kb.uuid, [second])
    sent_at = _created(hook, job)
    assert hook.find_started_job(kb.uuid, sent_at, [first], checks=1) is None
    found = hook.find_started_job(kb.uuid, sent_at, [second], checks=1)
    assert found is not None
    assert found.uuid == job


def test_a_job_for_more_data_sources_than_asked_is_not_adopted(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """Same data sources means the same set: a superset is another start's job (a subset test turns this red)."""
    job = gradient_emulator.start_job_server_side(kb.uuid, kb.data_source_uuids)
    assert hook.find_started_job(kb.uuid, _created(hook, job), kb.data_source_uuids[:1], checks=1) is None
    found = hook.find_started_job(kb.uuid, _created(hook, job), list(reversed(kb.data_source_uuids)), checks=1)
    assert found is not None
    assert found.uuid == job  # the order of the uuids does not matter


def test_a_start_for_all_data_sources_adopts_the_jobs_for_any(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """``data_source_uuids=None`` (all of them) puts no condition on the job's data sources."""
    job = gradient_emulator.start_job_server_side(kb.uuid, kb.data_source_uuids[1:])
    found = hook.find_started_job(kb.uuid, _created(hook, job), None, checks=1)
    assert found is not None
    assert found.uuid == job


def test_the_clock_skew_window_is_inclusive_to_the_second(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """
    A job created exactly ``CLOCK_SKEW`` seconds before the start was sent is adopted; one second
    earlier it is not (a strict comparison, or a window one second off, turns this red).
    """
    job = gradient_emulator.start_job_server_side(kb.uuid)
    created = _created(hook, job)
    found = hook.find_started_job(kb.uuid, created + CLOCK_SKEW, None, checks=1)
    assert found is not None
    assert found.uuid == job
    assert hook.find_started_job(kb.uuid, created + CLOCK_SKEW + 1.0, None, checks=1) is None


def test_of_two_candidates_the_newest_is_adopted(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """Two jobs in the window: the newer one is the start's (taking the older turns this red)."""
    older = gradient_emulator.start_job_server_side(kb.uuid)
    newer = _finish_and_start_another(gradient_emulator, kb, None)
    sent_at = _created(hook, older)
    assert _created(hook, newer) > sent_at
    found = hook.find_started_job(kb.uuid, sent_at, None, checks=1)
    assert found is not None
    assert found.uuid == newer


def test_the_job_seen_before_the_start_is_never_adopted(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """
    The knowledge base's newest job read before the start, created within the skew window and
    even still running, is someone else's: it is not adopted, and neither is an older one also
    within the window (ignoring ``previous_job_uuid``, or only its uuid and not its age, turns
    this red).
    """
    older = gradient_emulator.start_job_server_side(kb.uuid)
    previous = _finish_and_start_another(gradient_emulator, kb, None)
    sent_at = _created(hook, previous) + 1.0
    assert _created(hook, older) >= sent_at - CLOCK_SKEW  # the older job alone would pass the skew test
    assert hook.find_started_job(kb.uuid, sent_at, None, checks=1, previous_job_uuid=previous) is None
    assert hook.find_started_job(kb.uuid, sent_at, None, checks=1, previous_job_uuid=older) is not None
    ours = _finish_and_start_another(gradient_emulator, kb, None)
    found = hook.find_started_job(kb.uuid, sent_at, None, checks=1, previous_job_uuid=previous)
    assert found is not None
    assert found.uuid == ours


def test_an_ambiguous_start_never_adopts_the_job_that_was_running(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle, no_sleep: list[float]
) -> None:
    """
    The start's answer is lost (a gateway's 502) and it created nothing; the job already running
    on the knowledge base, created a moment ago, is not taken for ours: the start is reported
    ambiguous. Without ``previous_job_uuid`` the same job would be adopted.
    """
    running = gradient_emulator.start_job_server_side(kb.uuid)
    gradient_emulator.faults.add("genai_create_indexing_job", status=502, times=None)
    with pytest.raises(GradientAmbiguousStartError):
        hook.start_indexing_job(kb.uuid, previous_job_uuid=running)
    assert hook.start_indexing_job(kb.uuid).uuid == running  # what the reconciliation alone would do
    assert gradient_emulator.count(operation="genai_create_indexing_job") == 2  # each start sent once, never re-sent


def test_no_job_is_found_after_the_given_checks(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle, no_sleep: list[float]
) -> None:
    """Nothing to adopt: the jobs are listed ``checks`` times, 2 s then 4 s apart, then ``None``."""
    gradient_emulator.reset_requests()
    assert hook.find_started_job(kb.uuid, gradient_emulator.clock.now(), None, checks=3) is None
    assert gradient_emulator.count(operation="genai_list_indexing_jobs_by_knowledge_base") == 3
    assert no_sleep == [2.0, 4.0]


def test_the_previous_job_is_found_wherever_it_is_listed(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle
) -> None:
    """
    Jobs newer than the previous one count from the previous job's age, not from the newest
    job's: ours (data source 1) is adopted although a newer job for data source 2 is listed
    first (taking the first listed job for the previous one turns this red).
    """
    first, second = kb.data_source_uuids
    previous = gradient_emulator.start_job_server_side(kb.uuid)
    ours = _finish_and_start_another(gradient_emulator, kb, [first])
    _finish_and_start_another(gradient_emulator, kb, [second])
    found = hook.find_started_job(kb.uuid, _created(hook, ours), [first], checks=1, previous_job_uuid=previous)
    assert found is not None
    assert found.uuid == ours


def test_the_default_is_three_listings(
    hook: GradientHook, gradient_emulator: GradientEmulator, kb: KnowledgeBaseHandle, no_sleep: list[float]
) -> None:
    """An ambiguous start looks three times, 2 s and 4 s apart, before it reports no job."""
    gradient_emulator.reset_requests()
    assert hook.find_started_job(kb.uuid, gradient_emulator.clock.now(), None) is None
    assert gradient_emulator.count(operation="genai_list_indexing_jobs_by_knowledge_base") == 3
    assert no_sleep == [2.0, 4.0]


def test_a_failed_listing_is_logged_and_the_next_check_still_looks(
    gradient_emulator: GradientEmulator,
    kb: KnowledgeBaseHandle,
    no_sleep: list[float],
    connect_without_retries: GradientHook,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """
    The first listing fails (500): the failure is logged with its error, and the second check
    finds the job (giving up at the first failure, or logging without the error, turns this red).
    """
    hook = connect_without_retries
    job = gradient_emulator.start_job_server_side(kb.uuid)
    gradient_emulator.faults.add("genai_list_indexing_jobs_by_knowledge_base", status=500, message="db down", times=1)
    found = hook.find_started_job(kb.uuid, _created(hook, job), None)
    assert found is not None
    assert found.uuid == job
    logged = capsys.readouterr()
    line = re.compile(
        r"Could not list the knowledge base's jobs to reconcile: "
        r"GET /v2/gen-ai/knowledge_bases/\{knowledge_base_uuid\}/indexing_jobs: HTTP 500 \(\w+\): db down "
        r"\[request_id=[^\]]+\]"
    )  # the message whole, in any Airflow version's log format
    assert line.search(logged.out + logged.err), logged.out + logged.err


@pytest.fixture
def connect_without_retries(gradient_emulator: GradientEmulator, monkeypatch: pytest.MonkeyPatch) -> GradientHook:
    conn = {"conn_type": "gradient", "host": gradient_emulator.base_url, "password": gradient_emulator.token}
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_DEFAULT", json.dumps({**conn, "extra": {"max_retries": 0}}))
    return GradientHook()


def test_the_newest_candidate_wins_in_any_listing_order(requests_mock: Any, make_conn: Any) -> None:
    """
    The API lists newest first; an answer listing the older job first still gives the newer one
    (taking the first candidate turns this red). A listing in another order comes only from a
    mocked answer: the emulator always lists newest first.
    """
    kb = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"
    older, newer = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    jobs = [
        {"uuid": older, "knowledge_base_uuid": kb, "created_at": "2026-01-01T00:00:00Z"},
        {"uuid": newer, "knowledge_base_uuid": kb, "created_at": "2026-01-01T00:00:30Z"},
        # Created in the same second as ``newer`` (whole seconds): the one listed first wins.
        {
            "uuid": "33333333-3333-4333-8333-333333333333",
            "knowledge_base_uuid": kb,
            "created_at": "2026-01-01T00:00:30Z",
        },
    ]
    conn = make_conn()
    requests_mock.get(f"{conn.base_url}/v2/gen-ai/knowledge_bases/{kb}/indexing_jobs", json={"jobs": jobs})
    sent_at = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    found = GradientHook().find_started_job(kb, sent_at, None, checks=1)
    assert found is not None
    assert found.uuid == newer
