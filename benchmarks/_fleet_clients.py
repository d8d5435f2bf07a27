"""The four ways of waiting on N jobs that the fleet benchmark compares, all on one event loop.

* ``ours``: :class:`GradientIndexingJobTrigger`, run the way the triggerer runs a trigger.
* ``floor``: the least work possible: one shared ``aiohttp.ClientSession``, GET, ``json.loads``,
  check the phase.
* ``per_poll_session``: a trigger that opens a new ``aiohttp.ClientSession`` for every poll, as
  several existing providers' triggers do (``async with ClientSession() as s: await s.get(...)``).
* ``httpx``: one shared ``httpx.AsyncClient``.

All of them poll on the same schedule (:func:`~airflow_provider_gradient._polling.next_delay`), so
they make the same GETs; only the client machinery differs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gradient._polling import next_delay

RUNNING_PHASES = frozenset({"BATCH_JOB_PHASE_UNKNOWN", "BATCH_JOB_PHASE_PENDING", "BATCH_JOB_PHASE_RUNNING"})


def _ended(payload: dict[str, Any]) -> bool:
    return payload.get("job", {}).get("phase") not in RUNNING_PHASES


class PerPollSessionTrigger(BaseTrigger):
    """The baseline: a new HTTP session (and so a new connection) for every poll."""

    def __init__(self, base_url: str, token: str, job_uuid: str, poll_interval: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.base_url, self.token, self.job_uuid, self.poll_interval = base_url, token, job_uuid, poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"base_url": self.base_url, "job_uuid": self.job_uuid, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        url = f"{self.base_url}/v2/gen-ai/indexing_jobs/{self.job_uuid}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        polls = 0
        while True:
            async with aiohttp.ClientSession(headers=headers) as session, session.get(url) as response:
                payload = await response.json()
            if _ended(payload):
                yield TriggerEvent({"status": "success", "job": payload["job"]["uuid"]})  # type: ignore[no-untyped-call]
                return
            await asyncio.sleep(next_delay(self.poll_interval, polls))
            polls += 1


async def floor_wait(session: aiohttp.ClientSession, url: str, poll_interval: float) -> None:
    """The floor: shared aiohttp session, GET, parse, check."""
    polls = 0
    while True:
        async with session.get(url) as response:
            payload = json.loads(await response.read())
        if _ended(payload):
            return
        await asyncio.sleep(next_delay(poll_interval, polls))
        polls += 1


async def httpx_wait(client: Any, url: str, poll_interval: float) -> None:
    """A shared ``httpx.AsyncClient``."""
    polls = 0
    while True:
        response = await client.get(url)
        if _ended(response.json()):
            return
        await asyncio.sleep(next_delay(poll_interval, polls))
        polls += 1
