"""Pagination of the list endpoints and the "latest 15" KB-jobs endpoint."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from _emu_helpers import API, Api

from airflow_provider_gradient.testing.emulator import GradientEmulator


def _many_jobs(emu: GradientEmulator, count: int) -> list[str]:
    kb = emu.create_knowledge_base("many", data_sources=1)
    emu.script_jobs(kb.uuid, "COMPLETED", duration=1.0, pending=0.0)
    uuids = []
    for _ in range(count):
        uuids.append(emu.start_job_server_side(kb.uuid))
        emu.clock.advance(5)
    return uuids


def _query(url: str) -> dict[str, str]:
    return {key: value[0] for key, value in parse_qs(urlparse(url).query).items()}


def test_default_page_size_and_links(emu: GradientEmulator, api: Api) -> None:
    created = _many_jobs(emu, 45)
    body = api.get(f"{API}/indexing_jobs").json()
    assert len(body["jobs"]) == 20
    assert [job["uuid"] for job in body["jobs"]] == created[::-1][:20]  # newest first
    assert body["meta"] == {"page": 1, "pages": 3, "total": 45}
    pages = body["links"]["pages"]
    assert set(pages) == {"next", "last"}
    assert pages["next"].startswith(emu.base_url + f"{API}/indexing_jobs?")
    assert _query(pages["next"]) == {"page": "2", "per_page": "20"}
    assert _query(pages["last"])["page"] == "3"


def test_following_next_visits_everything_once(emu: GradientEmulator, api: Api) -> None:
    created = _many_jobs(emu, 23)
    seen: list[str] = []
    url: str | None = f"{API}/indexing_jobs?per_page=5"
    while url:
        body = api.get(url).json()
        seen += [job["uuid"] for job in body["jobs"]]
        url = body["links"]["pages"].get("next")
    assert seen == created[::-1]


def test_last_page_has_no_next(emu: GradientEmulator, api: Api) -> None:
    _many_jobs(emu, 7)
    body = api.get(f"{API}/indexing_jobs", params={"page": 4, "per_page": 2}).json()
    assert len(body["jobs"]) == 1
    assert body["meta"] == {"page": 4, "pages": 4, "total": 7}
    pages = body["links"]["pages"]
    assert "next" not in pages
    assert "last" not in pages
    assert _query(pages["first"])["page"] == "1"
    assert _query(pages["previous"])["page"] == "3"


def test_page_beyond_the_end_is_empty(emu: GradientEmulator, api: Api) -> None:
    _many_jobs(emu, 3)
    body = api.get(f"{API}/indexing_jobs", params={"page": 9}).json()
    assert body["jobs"] == []
    assert body["meta"] == {"page": 9, "pages": 1, "total": 3}
    assert _query(body["links"]["pages"]["previous"])["page"] == "1"


@pytest.mark.parametrize(("asked", "used"), [(500, 200), (201, 200), (0, 20), (-3, 20), (1, 1)])
def test_per_page_is_clamped(emu: GradientEmulator, api: Api, asked: int, used: int) -> None:
    emu.set_rate_limits(None, None)
    for index in range(205):
        emu.create_knowledge_base(f"kb{index}", data_sources=0)
    body = api.get(f"{API}/knowledge_bases", params={"per_page": asked}).json()
    assert len(body["knowledge_bases"]) == used
    assert body["meta"]["total"] == 205


def test_empty_list(api: Api) -> None:
    body = api.get(f"{API}/indexing_jobs").json()
    assert body["jobs"] == []
    assert body["meta"] == {"page": 1, "pages": 1, "total": 0}
    assert body["links"]["pages"] == {}


def test_knowledge_base_data_sources_are_paginated(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("wide", data_sources=5)
    body = api.get(f"{API}/knowledge_bases/{kb.uuid}/data_sources", params={"per_page": 2, "page": 2}).json()
    assert [ds["uuid"] for ds in body["knowledge_base_data_sources"]] == kb.data_source_uuids[2:4]
    assert body["meta"] == {"page": 2, "pages": 3, "total": 5}


def test_kb_jobs_endpoint_returns_latest_15(emu: GradientEmulator, api: Api) -> None:
    created = _many_jobs(emu, 18)
    kb_uuid = emu.job(created[0])["knowledge_base_uuid"]
    other = emu.create_knowledge_base("other")
    emu.start_job_server_side(other.uuid)
    body = api.get(f"{API}/knowledge_bases/{kb_uuid}/indexing_jobs").json()
    assert [job["uuid"] for job in body["jobs"]] == created[::-1][:15]
    assert body["meta"] == {"page": 1, "pages": 1, "total": 15}
