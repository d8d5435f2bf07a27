"""Fault injection: every kind, call counting, and the create-then-fail trap."""

from __future__ import annotations

import threading
import time

import aiohttp
import pytest
import requests
from _emu_helpers import API, Api, assert_error

from airflow_provider_gradient.testing.emulator import FAULT_KINDS, GradientEmulator

GET_JOB = "genai_get_indexing_job"


@pytest.fixture
def job(emu: GradientEmulator) -> str:
    kb = emu.create_knowledge_base("faulty", data_sources=2)
    uuid = emu.start_job_server_side(kb.uuid)
    emu.clock.advance(30)  # running, with one data source in progress
    return uuid


def test_status_fault_counts_calls(emu: GradientEmulator, api: Api, job: str) -> None:
    fault = emu.faults.add(operation=GET_JOB, kind="status", status=503, times=2, after=1)
    statuses = [api.get(f"{API}/indexing_jobs/{job}").status_code for _ in range(4)]
    assert statuses == [200, 503, 503, 200]
    assert (fault.seen, fault.fired, fault.exhausted) == (4, 2, True)
    # other operations are not affected
    assert api.get(f"{API}/knowledge_bases").status_code == 200
    assert [r.fault for r in emu.requests if r.operation == GET_JOB] == [None, "status", "status", None]


def test_forever_and_wildcard(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation="*", kind="status", status=500, times=None, message="try later")
    for path in (f"{API}/indexing_jobs/{job}", f"{API}/knowledge_bases", f"{API}/indexing_jobs"):
        body = assert_error(api.get(path), 500, "server_error")
        assert body["message"] == "try later"
    emu.faults.clear()
    assert api.get(f"{API}/knowledge_bases").status_code == 200


def test_status_fault_with_extra_headers(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="status", status=429, headers={"retry-after": "3"})
    response = api.get(f"{API}/indexing_jobs/{job}")
    assert_error(response, 429, "too_many_requests")
    assert response.headers["retry-after"] == "3"


def test_html_error_page(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="html", status=502)
    response = api.get(f"{API}/indexing_jobs/{job}", validate=False)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    assert response.headers["x-request-id"]


def test_delay_longer_than_client_timeout(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="delay", seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get(f"{API}/indexing_jobs/{job}", timeout=0.2)
    assert api.get(f"{API}/indexing_jobs/{job}", timeout=5).status_code == 200


def test_connection_reset(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="reset")
    dropped = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    with pytest.raises(dropped):
        api.get(f"{API}/indexing_jobs/{job}", validate=False)
    with requests.Session() as fresh:
        response = fresh.get(
            f"{emu.base_url}{API}/indexing_jobs/{job}", headers={"Authorization": f"Bearer {emu.token}"}, timeout=5
        )
    assert response.status_code == 200
    assert emu.requests[-2].status == 0
    assert emu.requests[-2].fault == "reset"


def test_malformed_json(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="malformed_json")
    response = api.get(f"{API}/indexing_jobs/{job}", validate=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith('{"job":')
    with pytest.raises(ValueError, match=r"(?i)expect|unterminated|delimiter"):
        response.json()


def test_missing_fields(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="missing_fields")
    body = api.get(f"{API}/indexing_jobs/{job}").json()["job"]
    assert "phase" not in body
    assert "status" not in body
    assert body["uuid"] == job
    emu.faults.add(operation="genai_get_knowledge_base", kind="missing_fields", fields=["total_tokens", "started_at"])
    kb_uuid = body["knowledge_base_uuid"]
    last = api.get(f"{API}/knowledge_bases/{kb_uuid}").json()["knowledge_base"]["last_indexing_job"]
    assert "total_tokens" not in last
    assert "started_at" not in last
    assert last["phase"] == "BATCH_JOB_PHASE_RUNNING"


def test_unknown_enum(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation="genai_list_indexing_jobs", kind="unknown_enum")
    [listed] = api.get(f"{API}/indexing_jobs", validate=False).json()["jobs"]
    assert listed["phase"] == "BATCH_JOB_PHASE_FUTURE"
    assert listed["status"] == "INDEX_JOB_STATUS_FUTURE"
    emu.faults.add(operation=GET_JOB, kind="unknown_enum", phase="BATCH_JOB_PHASE_COMPLETED")
    assert api.get(f"{API}/indexing_jobs/{job}", validate=False).json()["job"]["phase"] == ("BATCH_JOB_PHASE_COMPLETED")


def test_numbers_as_numbers(emu: GradientEmulator, api: Api, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="numbers_as_numbers")
    body = api.get(f"{API}/indexing_jobs/{job}", validate=False).json()["job"]
    assert isinstance(body["total_tokens"], int)
    assert body["total_tokens"] > 0
    entry = body["data_source_jobs"][0]
    assert isinstance(entry["indexed_item_count"], int)
    assert isinstance(entry["total_bytes"], int)
    assert isinstance(entry["data_source_uuid"], str)
    # the next answer is back to strings
    assert isinstance(api.job(job)["total_tokens"], str)


def test_create_then_fail_creates_the_job(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("trap")
    emu.faults.add(operation="genai_create_indexing_job", kind="create_then_fail")
    assert_error(api.start_job(kb.uuid), 502, "bad_gateway")
    [job] = emu.jobs(kb.uuid)
    assert job["phase"] == "BATCH_JOB_PHASE_PENDING"
    # a blind retry now collides with the job it created
    body = assert_error(api.start_job(kb.uuid), 409, "conflict")
    assert "already has an indexing job running" in body["message"]
    assert emu.count("POST", "genai_create_indexing_job") == 2


def test_create_then_timeout(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("trap")
    emu.faults.add(operation="genai_create_indexing_job", kind="create_then_fail", seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.start_job(kb.uuid, timeout=0.2)
    assert len(emu.jobs(kb.uuid)) == 1


def test_bad_fault_definitions_are_rejected(emu: GradientEmulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.faults.add(kind="explode")
    with pytest.raises(ValueError, match="seconds"):
        emu.faults.add(kind="delay")
    assert "create_then_fail" in FAULT_KINDS


async def test_connection_reset_seen_by_aiohttp(emu: GradientEmulator, job: str) -> None:
    emu.faults.add(operation=GET_JOB, kind="reset")
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{emu.base_url}{API}/indexing_jobs/{job}", headers=headers) as response:
                await response.json()
        async with session.get(f"{emu.base_url}{API}/indexing_jobs/{job}", headers=headers) as response:
            assert response.status == 200


def test_delayed_request_does_not_leak_into_a_reset_emulator(emu: GradientEmulator, api: Api) -> None:
    """
    A POST still delayed when the emulator is reset must not create its job in the fresh state.
    The test waits for events: the fault firing (the POST is being delayed), then the POST's own
    answer. (Dropping the generation check after the delay turns this red: the job appears.)
    """
    kb = emu.create_knowledge_base("slow")
    fault = emu.faults.add(operation="genai_create_indexing_job", kind="delay", seconds=3.0)
    answer: dict[str, requests.Response] = {}
    client = threading.Thread(target=lambda: answer.update(post=api.start_job(kb.uuid, timeout=60)), daemon=True)
    client.start()
    give_up = time.monotonic() + 30
    while fault.fired == 0:
        assert time.monotonic() < give_up, "the POST never reached the fault"
        time.sleep(0.005)
    emu.reset()  # what the fixture does before the next test
    fresh = emu.create_knowledge_base("slow")
    assert fresh.uuid == kb.uuid  # same seed, same uuid: the delayed POST would hit it
    client.join(60)
    assert answer["post"].status_code == 503, answer["post"].text
    assert emu.jobs() == []
    assert emu.requests == []
