"""The /_emulator control API drives everything another process needs."""

from __future__ import annotations

from typing import Any

import requests
from _emu_helpers import API, Api

from airflow_provider_gradient.testing.emulator import GradientEmulator


def _control(emu: GradientEmulator, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{emu.base_url}/_emulator{path}", json=body, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    return response.json()


def test_full_cycle_through_the_control_api(emu: GradientEmulator, api: Api) -> None:
    assert _control(emu, "GET", "/health")["status"] == "ok"
    kb = _control(emu, "POST", "/knowledge_bases", {"name": "remote", "data_sources": 2, "database_ready": False})
    assert len(kb["data_source_uuids"]) == 2
    assert api.start_job(kb["uuid"]).status_code == 400  # db not ready
    _control(emu, "POST", f"/knowledge_bases/{kb['uuid']}/database_ready", {"ready": True})
    _control(emu, "POST", f"/knowledge_bases/{kb['uuid']}/script", {"outcome": ["FAILED"], "duration": 100})
    job = _control(emu, "POST", f"/knowledge_bases/{kb['uuid']}/jobs", {})
    assert job["job"]["phase"] == "BATCH_JOB_PHASE_PENDING"
    clock = _control(emu, "POST", "/clock", {"advance": 200, "speed": 10})
    assert clock["speed"] == 10
    assert clock["now_rfc3339"].endswith("Z")
    assert api.job(job["job_uuid"])["status"] == "INDEX_JOB_STATUS_FAILED"
    listed = _control(emu, "GET", f"/jobs?kb_uuid={kb['uuid']}")["jobs"]
    assert [j["uuid"] for j in listed] == [job["job_uuid"]]
    signed = api.get(f"{API}/indexing_jobs/{job['job_uuid']}/details_signed_url").json()["signed_url"]
    report = requests.get(signed, timeout=5)
    assert report.status_code == 200
    assert "DATA_SOURCE_STATUS_FAILED" in report.text


def test_faults_tokens_requests_schedule_and_reset(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("remote")
    fault = _control(emu, "POST", "/faults", {"operation": "genai_get_knowledge_base", "kind": "status", "status": 500})
    assert fault["kind"] == "status"
    assert api.get(f"{API}/knowledge_bases/{kb.uuid}").status_code == 500
    assert _control(emu, "GET", "/faults")["faults"][0]["fired"] == 1
    _control(emu, "DELETE", "/faults")
    assert api.get(f"{API}/knowledge_bases/{kb.uuid}").status_code == 200

    _control(emu, "POST", "/tokens", {"token": "reader", "scopes": ["genai:read"]})
    assert api.get(f"{API}/knowledge_bases", bearer="reader").status_code == 200
    assert api.start_job(kb.uuid, bearer="reader").status_code == 403

    logged = _control(emu, "GET", "/requests")["requests"]
    assert [r["operation"] for r in logged][:2] == ["genai_get_knowledge_base", "genai_get_knowledge_base"]
    assert all(r["headers"]["authorization"] == "Bearer ***" for r in logged)
    _control(emu, "DELETE", "/requests")
    assert emu.requests == []

    info = _control(emu, "PUT", f"/knowledge_bases/{kb.uuid}/schedule", {"days": [1], "time": "04:00"})
    assert info["indexing_info"]["days"] == [1]
    assert api.get(f"{API}/scheduled-indexing/knowledge-base/{kb.uuid}").status_code == 200

    _control(emu, "PUT", "/rate_limits", {"per_minute": 1, "per_hour": 10, "headers": "hourly"})
    _control(emu, "POST", "/tokens", {"token": "limited"})
    first = api.get(f"{API}/knowledge_bases", bearer="limited")
    assert (first.status_code, first.headers["ratelimit-remaining"]) == (200, "9")  # the hourly count
    assert api.get(f"{API}/knowledge_bases", bearer="limited").status_code == 429

    _control(emu, "POST", "/reset")
    assert emu.jobs() == []
    assert api.get(f"{API}/knowledge_bases").json()["knowledge_bases"] == []
    assert api.get(f"{API}/knowledge_bases", bearer="reader").status_code == 401


def test_control_errors(emu: GradientEmulator) -> None:
    base = f"{emu.base_url}/_emulator"
    missing = requests.post(f"{base}/knowledge_bases/nope/jobs", json={}, timeout=5)
    assert missing.status_code == 404
    bad = requests.post(f"{base}/faults", json={"kind": "explode"}, timeout=5)
    assert bad.status_code == 400
    bad_headers = requests.put(f"{base}/rate_limits", json={"per_minute": 1, "headers": "daily"}, timeout=5)
    assert bad_headers.status_code == 400
    assert "headers must be one of" in bad_headers.text
    assert "unknown fault kind" in bad.json()["message"]
    bad = requests.post(f"{base}/knowledge_bases/x/script", data=b"[", timeout=5)
    assert bad.status_code == 400
