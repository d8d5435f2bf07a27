"""
Many knowledge-base event triggers on one event loop and token, against the emulator over real
sockets: after their first round, the job watcher's sweeps of the team's job list serve their
reads when the list is newest first; in any other order, or when the list fails, each reads its
knowledge base's own list. Either way every ended job yields exactly one event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from airflow.triggers.base import TriggerEvent
from test_knowledge_base_event import LIST_OP, Watch, run_job, start_job, wait_until, watch_conn, watch_emu

from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.triggers.knowledge_base_event import GradientKnowledgeBaseEventTrigger

__all__ = ["watch_conn", "watch_emu"]  # the fixtures

SWEEP_OP = "genai_list_indexing_jobs"
GET_OP = "genai_get_indexing_job"
MANY = 10
#: Two seconds between rounds: a round's read waits up to that for a sweep (one a second here).
POLL = 2.0


class CountedTrigger(GradientKnowledgeBaseEventTrigger):
    """The trigger, counting the rounds it started (the yardstick of one request per round)."""

    rounds = 0

    async def poll(self) -> AsyncIterator[TriggerEvent]:
        self.rounds += 1
        async for event in super().poll():
            yield event


@dataclass
class Outcome:
    """What the triggers reported, which jobs ended, and what they cost after their first round."""

    events: dict[str, list[str]]  # knowledge base -> uuids of the jobs its trigger reported
    ended: dict[str, list[str]]  # knowledge base -> uuids of its jobs that ended while watched
    rounds: int  # rounds started after every trigger's first round
    lists: int  # per-knowledge-base list requests after every trigger's first round
    sweeps: int  # team job list requests


async def _watch_many(emu: GradientEmulator) -> Outcome:
    history = emu.create_knowledge_base("history")
    emu.add_finished_jobs(history.uuid, 100)  # older jobs below the watched ones in the team list
    kbs = [emu.create_knowledge_base(f"kb{index}").uuid for index in range(MANY)]
    triggers = [CountedTrigger(knowledge_base_uuid=kb, poll_interval=POLL) for kb in kbs]
    watches = [Watch(trigger, emu) for trigger in triggers]

    async def rounds(count: int) -> None:
        target = [trigger.rounds + count for trigger in triggers]
        await wait_until(lambda: all(t.rounds >= n for t, n in zip(triggers, target, strict=True)), 60)

    ended: dict[str, list[str]] = {kb: [] for kb in kbs}
    for watch in watches:
        await watch.__aenter__()
    try:
        await rounds(2)  # the first round (each knowledge base's own list) is done
        lists, started = emu.count(operation=LIST_OP), sum(trigger.rounds for trigger in triggers)
        for kb in kbs[: MANY // 2]:  # jobs seen running for a few rounds
            emu.script_jobs(kb, "COMPLETED", duration=300, pending=1)
            ended[kb].append(emu.start_job_server_side(kb))
        await rounds(2)
        # A newer job elsewhere: the next rounds' reads start after the running jobs were created,
        # so they read those by themselves.
        emu.clock.advance(120)
        run_job(emu, history.uuid)
        await rounds(2)
        # Jobs created right after the sweeps saw the newest jobs, and ended before the next round.
        for kb in kbs[MANY // 2 :]:
            ended[kb].append(start_job(emu, kb))
        emu.clock.advance(120)  # every job so far ends (the first ones ran 300 s)
        for kb in kbs:  # and every knowledge base gets one more, created and ended between two rounds
            ended[kb].append(run_job(emu, kb, "FAILED"))
        await wait_until(lambda: sum(len(w.events) for w in watches) >= sum(map(len, ended.values())), 60)
        await rounds(2)  # nothing more comes
        return Outcome(
            events={kb: [e["indexing_job_uuid"] for e in w.events] for kb, w in zip(kbs, watches, strict=True)},
            ended=ended,
            rounds=sum(trigger.rounds for trigger in triggers) - started,
            lists=emu.count(operation=LIST_OP) - lists,
            sweeps=emu.count(operation=SWEEP_OP),
        )
    finally:
        await asyncio.gather(*(watch.stop() for watch in watches))


def _assert_one_event_per_ended_job(outcome: Outcome) -> None:
    for kb, uuids in outcome.ended.items():
        assert sorted(outcome.events[kb]) == sorted(uuids), kb


async def test_many_watchers_are_served_by_sweeps_of_a_newest_first_list(
    watch_emu: GradientEmulator, watch_conn: str
) -> None:
    outcome = await _watch_many(watch_emu)
    _assert_one_event_per_ended_job(outcome)
    # After the first round, pages of the team list serve the rounds: far fewer requests than one
    # per knowledge base per round (a few lists while the watcher learns who reads).
    assert outcome.sweeps > 0
    spent = outcome.lists + outcome.sweeps + watch_emu.count(operation=GET_OP)
    assert spent * 2 < outcome.rounds, outcome
    assert outcome.lists * 4 < outcome.rounds, outcome


@pytest.mark.parametrize("gradient_list_order", ["oldest", "none"])
async def test_many_watchers_read_their_own_lists_when_the_team_list_is_not_newest_first(
    watch_emu: GradientEmulator, watch_conn: str, gradient_list_order: str
) -> None:
    outcome = await _watch_many(watch_emu)
    _assert_one_event_per_ended_job(outcome)
    # Every round reads each knowledge base's list (the rounds still running at either end aside);
    # the team list was looked at once, and not again for a while.
    assert outcome.lists >= outcome.rounds - MANY, outcome
    assert outcome.sweeps <= 2, outcome


async def test_many_watchers_read_their_own_lists_when_the_team_list_fails(
    watch_emu: GradientEmulator, watch_conn: str
) -> None:
    # The list works for the first sweeps, then fails on every request.
    fault = watch_emu.faults.add(operation=SWEEP_OP, kind="status", status=500, times=None, after=2)
    outcome = await _watch_many(watch_emu)
    _assert_one_event_per_ended_job(outcome)
    assert fault.fired > 0  # the watcher tried the list
    assert outcome.lists >= outcome.rounds - MANY, outcome
