"""Thin clients for the public Airflow REST API (``/api/v2``) and the emulator's control API."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
TERMINAL_RUN_STATES = frozenset({"success", "failed"})

API_PREFIX = "/v2/gen-ai"


class AirflowAPI:
    """The Airflow 3 public REST API, authenticated with a SimpleAuthManager token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self._token: str | None = None

    # -- plumbing -----------------------------------------------------------------------------
    def _auth(self) -> None:
        # ``[core] simple_auth_manager_all_admins = True``: GET /auth/token hands out an admin JWT.
        response = self.session.get(f"{self.base_url}/auth/token", timeout=10)
        response.raise_for_status()
        self._token = response.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self._token}"

    def request(self, method: str, path: str, *, expect: Iterable[int] = (200,), **kwargs: Any) -> Any:
        if self._token is None:
            self._auth()
        kwargs.setdefault("timeout", 30)
        url = f"{self.base_url}/api/v2{path}"
        response = self.session.request(method, url, **kwargs)
        if response.status_code == 401:  # token expired: get a new one once
            self._auth()
            response = self.session.request(method, url, **kwargs)
        if response.status_code not in set(expect):
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    # -- DAGs and runs ------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict[str, Any] | None:
        data = self.request("GET", f"/dags/{dag_id}", expect=(200, 404))
        return data if data and "dag_id" in data else None

    def import_errors(self) -> list[dict[str, Any]]:
        return self.get("/importErrors", params={"limit": 100})["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id is not None:
            body["dag_run_id"] = run_id
        return str(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, page by page (the API answers at most ``[api] maximum_page_limit``)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100, "offset": len(found)}
            )
            found.extend(page["task_instances"])
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None, *, missing_ok: bool = False
    ) -> dict[str, Any]:
        """One task instance; with ``missing_ok`` a not-yet-existing one (e.g. unexpanded) is ``{"state": None}``."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index is not None and map_index >= 0:
            path += f"/{map_index}"
        data = self.request("GET", path, expect=(200, 404) if missing_ok else (200,))
        return data if data and "task_id" in data else {"state": None}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")["task_instances"]

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        return self.request(
            "PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": state}
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        data = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index, "deserialize": True},
            expect=(200, 404),
        )
        return None if data is None or "value" not in data else data["value"]

    def links(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """``{link name: url}`` of the task instance's extra links."""
        data = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links", params={"map_index": map_index}
        )
        return dict(data.get("extra_links", data))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        data = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": True},
            headers={"Accept": "application/json"},
            expect=(200, 404),
        )
        if not data:
            return ""
        content = data.get("content", "")
        if isinstance(content, list):
            return "\n".join(item.get("event", str(item)) if isinstance(item, dict) else str(item) for item in content)
        return str(content)

    # -- waiting ------------------------------------------------------------------------------
    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dag = self.dag(dag_id)
            if dag is not None:
                return dag
            time.sleep(1)
        errors = [e for e in self.import_errors() if dag_id.split("_")[0] in e.get("filename", "")]
        raise AssertionError(
            f"DAG {dag_id} was not parsed within {timeout}s; import errors: {errors or self.import_errors()}"
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                states = {ti["task_id"] + _mi(ti): ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise AssertionError(f"run {dag_id}/{run_id} still {run['state']} after {timeout}s; tasks: {states}")
            time.sleep(1)


def _mi(ti: dict[str, Any]) -> str:
    return f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""


@dataclass
class StateWatcher:
    """Polls one task instance and records every distinct state it was seen in (in order)."""

    api: AirflowAPI
    dag_id: str
    run_id: str
    task_id: str
    map_index: int | None = None
    seen: list[str | None] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    #: The latest response seen in each state (e.g. ``snapshots["deferred"]["triggerer_job"]``).
    snapshots: dict[str | None, dict[str, Any]] = field(default_factory=dict)

    def poll(self) -> dict[str, Any]:
        ti = self.api.task_instance(self.dag_id, self.run_id, self.task_id, self.map_index, missing_ok=True)
        if not self.seen or self.seen[-1] != ti["state"]:
            self.seen.append(ti["state"])
        self.last = ti
        self.snapshots[ti["state"]] = ti
        return ti

    def wait_for(self, states: Iterable[str | None], timeout: float, interval: float = 0.3) -> dict[str, Any]:
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            ti = self.poll()
            if ti["state"] in wanted:
                return ti
            if ti["state"] in TERMINAL_TI_STATES and not wanted & TERMINAL_TI_STATES:
                raise AssertionError(
                    f"{self.task_id} ended {ti['state']} while waiting for {sorted(map(str, wanted))}; seen {self.seen}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.task_id} not in {sorted(map(str, wanted))} after {timeout}s; seen {self.seen}"
                )
            time.sleep(interval)


class Emulator:
    """The emulator's ``/_emulator`` control API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/_emulator{path}", timeout=30, **kwargs)
        if not response.ok:
            raise AssertionError(f"emulator {method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def create_kb(self, name: str, data_sources: int = 1) -> str:
        return str(self._call("POST", "/knowledge_bases", json={"name": name, "data_sources": data_sources})["uuid"])

    def script(self, kb_uuid: str, outcome: str | list[str] = "COMPLETED", **options: Any) -> None:
        self._call("POST", f"/knowledge_bases/{kb_uuid}/script", json={"outcome": outcome, **options})

    def scripted_kb(
        self, name: str, *, running: float, pending: float = 1.0, outcome: str = "COMPLETED", speed: float = 1.0
    ) -> str:
        """A knowledge base whose next jobs stay PENDING ``pending`` and RUNNING ``running`` wall seconds."""
        kb_uuid = self.create_kb(name)
        self.script(kb_uuid, outcome, duration=running * speed, pending=pending * speed)
        return kb_uuid

    def jobs(self, kb_uuid: str | None = None) -> list[dict[str, Any]]:
        params = {"kb_uuid": kb_uuid} if kb_uuid else None
        return self._call("GET", "/jobs", params=params)["jobs"]

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/requests")["requests"]

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def set_speed(self, speed: float) -> None:
        """Emulated seconds per wall-clock second (``0`` freezes every job where it is)."""
        self._call("POST", "/clock", json={"speed": speed})

    def add_fault(self, operation: str, kind: str, **options: Any) -> dict[str, Any]:
        return self._call("POST", "/faults", json={"operation": operation, "kind": kind, **options})

    def set_rate_limits(self, per_minute: int | None, per_hour: int | None, headers: str | None = None) -> None:
        self._call("PUT", "/rate_limits", json={"per_minute": per_minute, "per_hour": per_hour, "headers": headers})

    def add_token(self, token: str) -> None:
        """Accept another token (with every scope); it has rate-limit windows of its own."""
        self._call("POST", "/tokens", json={"token": token})

    # -- request-log queries ------------------------------------------------------------------
    def starts_for(self, kb_uuid: str) -> list[dict[str, Any]]:
        """Every POST /indexing_jobs for the knowledge base (whatever it was answered)."""
        return [
            r
            for r in self.requests()
            if r["method"] == "POST"
            and r["path"] == f"{API_PREFIX}/indexing_jobs"
            and isinstance(r.get("json"), dict)
            and r["json"].get("knowledge_base_uuid") == kb_uuid
        ]

    def cancels_for(self, job_uuid: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests()
            if r["method"] == "PUT" and r["path"] == f"{API_PREFIX}/indexing_jobs/{job_uuid}/cancel"
        ]

    def requests_touching(self, job_uuids: Iterable[str], kb_uuids: Iterable[str]) -> list[dict[str, Any]]:
        needles = set(job_uuids) | set(kb_uuids)
        out = []
        for r in self.requests():
            body = r.get("json") if isinstance(r.get("json"), dict) else {}
            if any(n in r["path"] for n in needles) or body.get("knowledge_base_uuid") in needles:
                out.append(r)
        return out


def busiest_minute(times: Iterable[float], window: float = 60.0) -> int:
    """The largest number of events inside any ``window``-second interval."""
    best, inside = 0, deque[float]()
    for moment in sorted(times):
        inside.append(moment)
        while inside[0] <= moment - window:
            inside.popleft()
        best = max(best, len(inside))
    return best
