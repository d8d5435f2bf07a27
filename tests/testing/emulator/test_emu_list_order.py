"""The team-wide job list's order (newest, oldest, none), the page-size cap and cheap history."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests
from _emu_helpers import API, Api, assert_error

from airflow_provider_gradient.testing.emulator import GradientEmulator


def _created(job: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(job["created_at"]).replace("Z", "+00:00"))


def _walk(api: Api, per_page: int) -> list[dict[str, object]]:
    jobs: list[dict[str, object]] = []
    page = 1
    while True:
        body = api.get(f"{API}/indexing_jobs", params={"page": page, "per_page": per_page}).json()
        jobs += body["jobs"]
        if page >= body["meta"]["pages"]:
            return jobs
        page += 1


def _history(emu: GradientEmulator, count: int) -> list[str]:
    kb = emu.create_knowledge_base("history")
    return emu.add_finished_jobs(kb.uuid, count, spacing=5.0)


@pytest.mark.parametrize("gradient_list_order", ["newest", "oldest", "none"])
def test_the_fixture_lists_in_the_order_asked(emu: GradientEmulator, api: Api, gradient_list_order: str) -> None:
    created = _history(emu, 25)
    listed = [job["uuid"] for job in _walk(api, 7)]
    assert sorted(listed) == sorted(created)  # every job exactly once, across pages
    if gradient_list_order == "newest":
        assert listed == created[::-1]
    elif gradient_list_order == "oldest":
        assert listed == created
    else:
        times = [_created(job) for job in _walk(api, 7)]
        assert times != sorted(times)
        assert times != sorted(times, reverse=True)
        assert listed == [job["uuid"] for job in _walk(api, 7)]  # stable between requests


def test_history_is_finished_and_in_the_past(emu: GradientEmulator, api: Api) -> None:
    created = _history(emu, 3)
    jobs = [api.job(uuid) for uuid in created]
    assert [job["phase"] for job in jobs] == ["BATCH_JOB_PHASE_SUCCEEDED"] * 3
    assert _created(jobs[0]) < _created(jobs[1]) < _created(jobs[2])
    assert (_created(jobs[1]) - _created(jobs[0])).total_seconds() == 5.0
    assert emu.count() == 3  # adding them sent nothing through the API


def test_set_list_order_lasts_until_reset(emu: GradientEmulator, api: Api) -> None:
    created = _history(emu, 4)
    emu.set_list_order("oldest")
    assert emu.list_order == "oldest"
    assert [job["uuid"] for job in _walk(api, 200)] == created
    emu.reset()
    assert emu.list_order == "newest"


def test_unknown_list_order_is_refused(emu: GradientEmulator) -> None:
    with pytest.raises(ValueError, match="newest, oldest, none"):
        emu.set_list_order("random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list_order"):
        GradientEmulator(list_order="sideways")  # type: ignore[arg-type]


def test_control_api_sets_the_order_seeds_history_and_deletes(emu: GradientEmulator, api: Api) -> None:
    control = f"{emu.base_url}/_emulator"
    kb = emu.create_knowledge_base("ctl")
    answer = requests.post(f"{control}/knowledge_bases/{kb.uuid}/finished_jobs", json={"count": 5}, timeout=5)
    created = answer.json()["job_uuids"]
    assert len(created) == 5
    assert requests.put(f"{control}/list_order", json={"list_order": "oldest"}, timeout=5).json() == {
        "list_order": "oldest"
    }
    assert requests.get(f"{control}/list_order", timeout=5).json() == {"list_order": "oldest"}
    assert [job["uuid"] for job in _walk(api, 2)] == created
    assert requests.put(f"{control}/list_order", json={"list_order": "up"}, timeout=5).status_code == 400
    assert requests.delete(f"{control}/jobs/{created[2]}", timeout=5).status_code == 200
    assert [job["uuid"] for job in _walk(api, 2)] == created[:2] + created[3:]
    assert_error(api.get(f"{API}/indexing_jobs/{created[2]}"), 404, "not_found")


def test_per_page_of_the_job_list_is_capped_at_200(emu: GradientEmulator, api: Api) -> None:
    _history(emu, 450)
    body = api.get(f"{API}/indexing_jobs", params={"per_page": 500}).json()
    assert len(body["jobs"]) == 200
    assert body["meta"] == {"page": 1, "pages": 3, "total": 450}
    assert body["links"]["pages"]["last"].endswith("page=3&per_page=200")
