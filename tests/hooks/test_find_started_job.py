"""
Reconciling an ambiguous start against the emulator: which of a knowledge base's jobs
``GradientHook.find_started_job`` adopts as the one the start created, and which it leaves alone.

The jobs are real emulator jobs; their ``created_at`` (whole seconds) is read back from the API, so
the clock-skew edge is checked to the second.
"""

from __future__ import annotations

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
    emu.clock.advance(60.0)  # the running job ends; the next one is created a minute later
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
    even still running, is someone else's: it is not adopted, and neither is an older one
    (ignoring ``previous_job_uuid`` turns this red).
    """
    older = gradient_emulator.start_job_server_side(kb.uuid)
    previous = _finish_and_start_another(gradient_emulator, kb, None)
    sent_at = _created(hook, previous) + 1.0
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
