"""
One of three triggerers is SIGKILLed while it holds waits of a hundred tasks (of the triggerers
that hold any, the one whose share is closest to a third): the others take its triggers over once
its heartbeat is older than the health threshold. Every task completes exactly once (one fired
event per task across all triggerers' logs), on its first try, with the one job it started.

The emulator's clock stands still until the kill has been handed over, so no job ends before
every task waits, however long a hundred task starts take on a loaded machine.
"""

from __future__ import annotations

import signal
import time

import pytest
from system_deployment import EMULATOR_SPEED, TRIGGERER_HEALTH_THRESHOLD
from system_fleet import Fleet

pytestmark = [pytest.mark.system_celery, pytest.mark.timeout(900)]

DAG_ID = "gradient_fleet"
TASKS = 100
#: How long the jobs run once the clock moves again.
JOB_SECONDS = 30.0


def test_killed_triggerer_of_three_hands_its_waits_over(fleet: Fleet) -> None:
    kbs = fleet.knowledge_bases("triggerer-killed", TASKS, JOB_SECONDS)
    targets = fleet.targets(kbs)
    fleet.emulator.set_speed(0)
    try:
        kill_one_of_three(fleet, targets)
    finally:
        fleet.emulator.set_speed(EMULATOR_SPEED)


def kill_one_of_three(fleet: Fleet, targets: list[list[str]]) -> None:
    deployment = fleet.deployment
    run_id = fleet.trigger(DAG_ID, targets)

    tis = fleet.wait_tis(
        DAG_ID,
        run_id,
        TASKS,
        lambda ti: ti["state"] == "deferred" and bool(ti.get("triggerer_job")),
        timeout=480,
        message="every task to wait in a triggerer",
    )
    held: dict[str, list[int]] = {}
    for ti in tis:
        held.setdefault(ti["triggerer_job"]["hostname"], []).append(ti["map_index"])
    # Airflow, not the provider, spreads the triggers: each triggerer claims what is unassigned when
    # its loop comes round, so on a loaded machine one may claim none. The scenario needs only a
    # victim that holds waits, and the others alive to take them.
    # triggerer_named() fails on a hostname that is none of the deployment's triggerers.
    victim_host = min(held, key=lambda host: abs(len(held[host]) - TASKS / 3))
    victim = deployment.triggerer_named(victim_host)
    victim_job = next(ti["triggerer_job"]["id"] for ti in tis if ti["triggerer_job"]["hostname"] == victim_host)
    deployment.processes[victim].kill(signal.SIGKILL)
    killed_at = time.monotonic()

    moved = fleet.wait_tis(
        DAG_ID,
        run_id,
        TASKS,
        lambda ti: (
            ti["state"] == "success" or bool(ti.get("triggerer_job") and ti["triggerer_job"]["id"] != victim_job)
        ),
        timeout=TRIGGERER_HEALTH_THRESHOLD + 90,
        message="the other triggerers to take the victim's waits over",
    )
    handover = time.monotonic() - killed_at
    taken_by = {
        ti["triggerer_job"]["hostname"]
        for ti in moved
        if ti["map_index"] in held[victim_host] and ti.get("triggerer_job")
    }
    assert victim_host not in taken_by, taken_by
    fleet.emulator.set_speed(EMULATOR_SPEED)  # the jobs run on

    run = fleet.wait_for_run(DAG_ID, run_id, timeout=400)
    assert run["state"] == "success"
    tis = fleet.tis(DAG_ID, run_id)
    assert all(ti["try_number"] == 1 for ti in tis), [ti["map_index"] for ti in tis if ti["try_number"] != 1]
    fleet.assert_one_job_per_task(DAG_ID, [run_id], targets)
    # No trigger fired twice (a killed triggerer's waits are re-created, not duplicated). The trigger
    # logs are read as written so far, so a fired event may still be missing from them.
    fired = {
        ti["map_index"]: sum(
            text.count("Trigger fired event")
            for text in deployment.trigger_logs(DAG_ID, run_id, "reindex", ti["map_index"]).values()
        )
        for ti in tis
    }
    assert max(fired.values()) == 1, {index: count for index, count in fired.items() if count > 1}
    print(
        f"triggerer {victim} killed holding {len(held[victim_host])} of {TASKS} waits "
        f"({ {host: len(indexes) for host, indexes in held.items()} }); taken over by {sorted(taken_by)} "
        f"within {handover:.0f}s; {TASKS} tasks completed once each"
    )
