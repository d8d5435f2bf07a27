"""The fleet DAGs of the CeleryExecutor scenarios: trigger them, watch them, read the emulator's record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from system_clients import TERMINAL_RUN_STATES, AirflowAPI, Emulator, busiest_minute
from system_deployment import EMULATOR_SPEED, EMULATOR_TOKEN, SECOND_TOKEN, Deployment

FLEET_DAGS = ("gradient_fleet", "gradient_fleet_retry")
#: Connection id -> the name its token is recorded under in the emulator's request log.
CONNECTIONS = {"gradient_default": "first", "gradient_second": "second"}
#: The second token's own ``(per minute, per hour)`` limits (the first has the deployment's). A
#: run's tasks start their jobs with two calls each (25 tasks, 50 calls per token), and a run can
#: start within a minute of the one before. The tasks' own calls are not paced (docs/production.md,
#: "How the processes share one token"), so the minute limit less the fifth the polls leave holds
#: two runs' starts (100) well.
SECOND_TOKEN_LIMITS = (180, 50_000)
#: The DAGs' poll_interval.
POLL_INTERVAL = 5.0
TOKENS = {"gradient_default": EMULATOR_TOKEN, "gradient_second": SECOND_TOKEN}


@dataclass
class Fleet:
    """One scenario's view of the deployment, the REST API and the emulator."""

    deployment: Deployment
    api: AirflowAPI
    emulator: Emulator

    def knowledge_bases(self, prefix: str, count: int, running: float) -> list[str]:
        """``count`` knowledge bases whose jobs stay RUNNING ``running`` wall seconds."""
        return [
            self.emulator.scripted_kb(f"{prefix}-{index:03d}", running=running, pending=1, speed=EMULATOR_SPEED)
            for index in range(count)
        ]

    @staticmethod
    def targets(kbs: list[str], connections: Iterable[str] = tuple(CONNECTIONS)) -> list[list[str]]:
        """``[kb, connection id]`` pairs, the connections taking turns."""
        conns = list(connections)
        return [[kb, conns[index % len(conns)]] for index, kb in enumerate(kbs)]

    def trigger(self, dag_id: str, targets: list[list[str]]) -> str:
        return self.api.trigger(dag_id, {"targets": targets})

    def tis(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's mapped ``reindex`` task instances, by map index."""
        tis = [ti for ti in self.api.task_instances(dag_id, run_id) if ti["task_id"] == "reindex"]
        return sorted(tis, key=lambda ti: ti["map_index"])

    def wait_tis(
        self,
        dag_id: str,
        run_id: str,
        count: int,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,
        message: str,
    ) -> list[dict[str, Any]]:
        """Wait until the run has ``count`` mapped task instances and each satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            tis = self.tis(dag_id, run_id)
            if len(tis) == count and all(predicate(ti) for ti in tis):
                return tis
            failed = [ti["map_index"] for ti in tis if ti["state"] in ("failed", "upstream_failed")]
            assert not failed, f"tasks {failed} failed while waiting for {message}"
            states: dict[str | None, int] = {}
            for ti in tis:
                states[ti["state"]] = states.get(ti["state"], 0) + 1
            assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {message}: {states}"
            time.sleep(1.0)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        run = self.api.wait_for_run(dag_id, run_id, timeout)
        assert run["state"] in TERMINAL_RUN_STATES
        return run

    def job_uuid(self, dag_id: str, run_id: str, map_index: int) -> Any:
        return self.api.xcom(dag_id, run_id, "reindex", "indexing_job_uuid", map_index=map_index)

    def assert_one_job_per_task(self, dag_id: str, run_ids: list[str], targets: list[list[str]]) -> dict[str, str]:
        """
        Every task of the runs succeeded and followed a job of its own that completed; each
        knowledge base got one job per run, each started once. Returns ``{job uuid: kb}``.
        """
        followed: dict[str, str] = {}
        for run_id in run_ids:
            tis = self.tis(dag_id, run_id)
            assert [ti["state"] for ti in tis] == ["success"] * len(targets), {
                ti["map_index"]: ti["state"] for ti in tis if ti["state"] != "success"
            }
            for ti in tis:
                kb = targets[ti["map_index"]][0]
                uuid = self.job_uuid(dag_id, run_id, ti["map_index"])
                assert uuid, (run_id, ti["map_index"])
                assert uuid not in followed, (run_id, ti["map_index"], uuid)
                followed[uuid] = kb
        by_kb: dict[str, list[str]] = {}
        for uuid, kb in followed.items():
            by_kb.setdefault(kb, []).append(uuid)
        for kb, _ in targets:
            jobs = self.emulator.jobs(kb)
            assert sorted(job["uuid"] for job in jobs) == sorted(by_kb[kb]), (kb, jobs, by_kb[kb])
            assert all(job["status"].endswith("COMPLETED") for job in jobs), (kb, jobs)
            # A start answered 429 created nothing; any other answer counts as a start.
            assert len([r for r in self.emulator.starts_for(kb) if r["status"] != 429]) == len(run_ids), kb
        return followed

    def traffic(self, since: float) -> list[dict[str, Any]]:
        """The API requests (not control calls) received since ``since`` (epoch seconds)."""
        return [r for r in self.emulator.requests() if r["time"] >= since and r["path"].startswith("/v2/")]

    def token_figures(self, since: float) -> dict[str, dict[str, int]]:
        """Per token name: requests, 429s, busiest rolling minute (accepted and attempted) and its limit."""
        figures: dict[str, dict[str, int]] = {}
        traffic = self.traffic(since)
        for conn_id, name in CONNECTIONS.items():
            mine = [r for r in traffic if r.get("token_name") == name]
            figures[name] = {
                "requests": len(mine),
                "answered_429": len([r for r in mine if r["status"] == 429]),
                "busiest_minute_accepted": busiest_minute(r["time"] for r in mine if r["status"] != 429),
                "busiest_minute_attempted": busiest_minute(r["time"] for r in mine),
                "limit_per_minute": self.deployment.token_limits(TOKENS[conn_id])[0],
            }
        return figures
