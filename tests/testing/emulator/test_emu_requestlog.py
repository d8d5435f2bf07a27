"""The request log: what is recorded, redaction, counting; the token never leaks."""

from __future__ import annotations

import json

import pytest
from _emu_helpers import API, Api

from airflow_provider_gradient.testing.emulator import GradientEmulator

SECRET = "dop_v1_" + "s3cr3t" * 8


def test_records_method_path_query_body_and_redacts(emu: GradientEmulator, api: Api) -> None:
    kb = emu.create_knowledge_base("log", data_sources=1)
    api.start_job(kb.uuid)
    api.get(f"{API}/indexing_jobs", params={"page": 1, "per_page": 5})
    post, listing = emu.requests
    assert post.method == "POST"
    assert post.path == f"{API}/indexing_jobs"
    assert post.json == {"knowledge_base_uuid": kb.uuid}
    assert post.operation == "genai_create_indexing_job"
    assert post.status == 200
    assert post.headers["authorization"] == "Bearer ***"
    assert listing.query == {"page": "1", "per_page": "5"}
    assert emu.count(method="POST", operation="genai_create_indexing_job") == 1
    assert emu.count(method="get") == 1
    assert emu.count(status=200) == 2
    emu.reset_requests()
    assert emu.requests == []


def test_request_id_in_log_matches_header(emu: GradientEmulator, api: Api) -> None:
    response = api.get(f"{API}/knowledge_bases")
    assert emu.requests[-1].request_id == response.headers["x-request-id"]


def test_unknown_routes_and_methods_are_answered_and_logged(emu: GradientEmulator, api: Api) -> None:
    response = api.get(f"{API}/nope", validate=False)
    assert response.status_code == 404
    assert response.json()["id"] == "not_found"
    response = api.request("DELETE", f"{API}/indexing_jobs", validate=False)
    assert response.status_code == 405
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert [r.operation for r in emu.requests] == [None, None]
    # control calls are not part of the log
    api.session.get(emu.base_url + "/_emulator/health")
    assert len(emu.requests) == 2


def test_token_never_leaks(emu: GradientEmulator, api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    emu.add_token(SECRET, scopes=["genai:read"])
    kb = emu.create_knowledge_base("secret")
    answers = [
        api.get(f"{API}/knowledge_bases/{kb.uuid}", bearer=SECRET),
        api.start_job(kb.uuid, bearer=SECRET),  # 403
        api.get(f"{API}/knowledge_bases", bearer=SECRET + "x"),  # 401
        api.get(f"{API}/knowledge_bases", headers={"Authorization": SECRET}, bearer=None),  # no scheme
    ]
    assert [a.status_code for a in answers] == [200, 403, 401, 401]
    for answer in answers:
        assert SECRET not in answer.text
        assert SECRET not in json.dumps(dict(answer.headers))
    dumped = json.dumps([r.as_dict() for r in emu.requests])
    assert SECRET not in dumped
    control = api.session.get(emu.base_url + "/_emulator/requests").text
    assert SECRET not in control
    out, err = capfd.readouterr()
    assert SECRET not in out
    assert SECRET not in err
