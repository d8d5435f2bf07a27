"""Job state machine on the emulated clock: phases, statuses, per-data-source progress, outcomes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from _emu_helpers import API, Api

from airflow_provider_gradient.testing.emulator import GradientEmulator


def test_completed_job_walks_through_every_state(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=2)
    emu.clock.speed = 0  # frozen: only advance() moves time
    emu.script_jobs(kb.uuid, "COMPLETED", duration=60.0, pending=5.0)
    created = api.start_job(kb.uuid).json()["job"]
    assert created["phase"] == "BATCH_JOB_PHASE_PENDING"
    assert created["status"] == "INDEX_JOB_STATUS_PENDING"
    assert created["data_source_uuids"] == kb.data_source_uuids
    assert created["total_datasources"] == 2
    assert created["completed_datasources"] == 0
    assert created["data_source_jobs"] == []
    assert "started_at" not in created
    assert "finished_at" not in created
    assert created["created_at"].endswith("Z")

    emu.clock.advance(5 + 15)  # 15 s into the first data source (30 s each)
    job = api.job(created["uuid"])
    assert job["phase"] == "BATCH_JOB_PHASE_RUNNING"
    assert job["status"] == "INDEX_JOB_STATUS_IN_PROGRESS"
    assert job["started_at"].endswith("Z")
    [first] = job["data_source_jobs"]
    assert first["status"] == "DATA_SOURCE_STATUS_IN_PROGRESS"
    assert first["data_source_uuid"] == kb.data_source_uuids[0]
    assert "completed_at" not in first
    half_tokens = int(job["total_tokens"])
    assert half_tokens > 0
    assert job["tokens"] == half_tokens
    assert isinstance(job["total_tokens"], str)
    assert all(isinstance(first[name], str) for name in ("indexed_item_count", "total_bytes"))
    assert int(first["indexed_item_count"]) > 0

    emu.clock.advance(30)  # 15 s into the second
    job = api.job(created["uuid"])
    assert job["completed_datasources"] == 1
    first, second = job["data_source_jobs"]
    assert first["status"] == "DATA_SOURCE_STATUS_UPDATED"
    assert first["completed_at"].endswith("Z")
    assert second["status"] == "DATA_SOURCE_STATUS_IN_PROGRESS"
    assert int(job["total_tokens"]) > half_tokens
    assert job["is_report_available"] is False

    emu.clock.advance(30)
    job = api.job(created["uuid"])
    assert job["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"
    assert job["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert job["completed_datasources"] == 2
    assert job["is_report_available"] is True
    assert job["finished_at"].endswith("Z")
    assert all(ds["status"] == "DATA_SOURCE_STATUS_UPDATED" for ds in job["data_source_jobs"])
    assert (
        api.get(f"{API}/indexing_jobs/{job['uuid']}/data_sources").json()["indexed_data_sources"]
        == job["data_source_jobs"]
    )
    # the knowledge base tracks its last job
    kb_body = api.get(f"{API}/knowledge_bases/{kb.uuid}").json()
    assert kb_body["knowledge_base"]["last_indexing_job"] == job
    assert kb_body["database_status"] == "ONLINE"
    # and each data source its last per-source entry
    sources = api.get(f"{API}/knowledge_bases/{kb.uuid}/data_sources").json()["knowledge_base_data_sources"]
    assert [s["last_datasource_indexing_job"]["status"] for s in sources] == ["DATA_SOURCE_STATUS_UPDATED"] * 2


@pytest.mark.parametrize(
    ("outcome", "phase", "status", "failing_status"),
    [
        ("NO_CHANGES", "BATCH_JOB_PHASE_SUCCEEDED", "INDEX_JOB_STATUS_NO_CHANGES", None),
        ("PARTIAL", "BATCH_JOB_PHASE_SUCCEEDED", "INDEX_JOB_STATUS_PARTIAL", "DATA_SOURCE_STATUS_PARTIALLY_UPDATED"),
        ("FAILED", "BATCH_JOB_PHASE_FAILED", "INDEX_JOB_STATUS_FAILED", "DATA_SOURCE_STATUS_FAILED"),
    ],
)
def test_scripted_outcomes(
    emu: GradientEmulator, api: Api, outcome: str, phase: str, status: str, failing_status: str | None
) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=3)
    emu.script_jobs(kb.uuid, outcome, duration=1200.0, error_msg="boom", error_details="details", failed_item_count=7)
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    emu.clock.advance(1300)
    job = api.job(uuid)
    assert (job["phase"], job["status"]) == (phase, status)
    entries = job["data_source_jobs"]
    if failing_status is None:
        assert {e["status"] for e in entries} == {"DATA_SOURCE_STATUS_NOT_UPDATED"}
        assert job["total_tokens"] == "0"
        assert all(int(e["skipped_item_count"]) > 0 for e in entries)
        return
    *ok, failing = entries
    assert {e["status"] for e in ok} == {"DATA_SOURCE_STATUS_UPDATED"}
    assert failing["status"] == failing_status
    assert failing["error_msg"] == "boom"
    assert failing["error_details"] == "details"
    assert failing["failed_item_count"] == "7"
    assert job["total_items_failed"] == "7"


def test_outcome_list_is_consumed_in_order_and_last_one_sticks(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=1)
    emu.script_jobs(kb.uuid, ["FAILED", "COMPLETED"], duration=10.0, pending=0.0)
    statuses = []
    for _ in range(3):
        uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
        emu.clock.advance(11)
        statuses.append(api.job(uuid)["status"])
    assert statuses == ["INDEX_JOB_STATUS_FAILED", "INDEX_JOB_STATUS_COMPLETED", "INDEX_JOB_STATUS_COMPLETED"]


def test_failed_data_sources_can_be_chosen(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=3)
    emu.script_jobs(kb.uuid, "PARTIAL", duration=30.0, failed_data_sources=[kb.data_source_uuids[0]])
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    emu.clock.advance(60)
    statuses = [e["status"] for e in api.job(uuid)["data_source_jobs"]]
    assert statuses == [
        "DATA_SOURCE_STATUS_PARTIALLY_UPDATED",
        "DATA_SOURCE_STATUS_UPDATED",
        "DATA_SOURCE_STATUS_UPDATED",
    ]


def test_speed_makes_a_long_job_finish_in_wall_milliseconds(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=2)
    emu.script_jobs(kb.uuid, "COMPLETED", duration=1200.0)
    emu.clock.speed = 1_000_000.0
    uuid = api.start_job(kb.uuid).json()["job"]["uuid"]
    emu.clock.advance(0)
    time.sleep(0.01)
    assert api.job(uuid)["phase"] == "BATCH_JOB_PHASE_SUCCEEDED"


def test_subset_of_data_sources(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("docs", data_sources=3)
    wanted = kb.data_source_uuids[1:2]
    job = api.post(f"{API}/indexing_jobs", json={"knowledge_base_uuid": kb.uuid, "data_source_uuids": wanted}).json()[
        "job"
    ]
    assert job["data_source_uuids"] == wanted
    assert job["total_datasources"] == 1


def test_foreign_data_source_is_rejected(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("a", data_sources=1)
    other = emu.create_knowledge_base("b", data_sources=1)
    response = api.post(
        f"{API}/indexing_jobs",
        json={"knowledge_base_uuid": kb.uuid, "data_source_uuids": other.data_source_uuids},
    )
    assert response.status_code == 400
    assert other.data_source_uuids[0] in response.json()["message"]
    assert emu.jobs() == []


def test_server_side_job_and_auto_index(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("auto", data_sources=1, auto_index=True)
    [job] = emu.jobs(kb.uuid)
    assert job["phase"] == "BATCH_JOB_PHASE_PENDING"
    assert (
        api.get(f"{API}/knowledge_bases/{kb.uuid}").json()["knowledge_base"]["last_indexing_job"]["uuid"]
        == (job["uuid"])
    )
    emu.clock.advance(3600)
    second = emu.start_job_server_side(kb.uuid)
    assert emu.jobs(kb.uuid)[0]["uuid"] == second
    assert emu.count(method="POST") == 0


def test_scheduled_indexing_fires_on_emulated_time(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("sched", data_sources=1)
    info = emu.set_schedule(kb.uuid, days=[1, 2, 3, 4, 5, 6, 7], time="02:00")
    assert info["time"] == "02:00:00"
    body = api.get(f"{API}/scheduled-indexing/knowledge-base/{kb.uuid}").json()["indexing_info"]
    assert body["is_active"] is True
    assert "last_ran_at" not in body
    emu.clock.advance(24 * 3600 + 1)
    body = api.get(f"{API}/scheduled-indexing/knowledge-base/{kb.uuid}").json()["indexing_info"]
    assert body["last_ran_at"].endswith("T02:00:00Z")
    jobs = emu.jobs(kb.uuid)
    assert len(jobs) == 1
    assert jobs[0]["created_at"].endswith("T02:00:00Z")
    emu.clear_schedule(kb.uuid)
    assert api.get(f"{API}/scheduled-indexing/knowledge-base/{kb.uuid}").status_code == 404


def test_same_seed_same_uuids(gradient_emulator_factory: Callable[..., GradientEmulator]) -> None:
    one = gradient_emulator_factory(seed=7)
    two = gradient_emulator_factory(seed=7)
    three = gradient_emulator_factory(seed=8)
    kbs = [emu.create_knowledge_base("docs", data_sources=2) for emu in (one, two, three)]
    assert kbs[0] == kbs[1]
    assert kbs[0].uuid != kbs[2].uuid
    assert one.start_job_server_side(kbs[0].uuid) == two.start_job_server_side(kbs[1].uuid)
