"""The per-token request budget shared by async callers (the triggerer)."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from airflow_provider_gradient.hooks import _budget
from airflow_provider_gradient.hooks._budget import RequestBudget, budget_for
from airflow_provider_gradient.hooks.gradient import GradientHook

JOB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"
T0 = 1000.0  # a monotonic instant
WALL = 1_700_000_000.0  # an epoch instant


def test_headroom_leaves_room_for_other_users() -> None:
    budget = RequestBudget(250, 5000)
    assert (budget.per_minute, budget.per_hour) == (225, 4500)
    assert RequestBudget(1, 1).per_minute == 1  # never zero


def test_per_minute_window() -> None:
    budget = RequestBudget(10, 5000, headroom=1.0)
    for i in range(10):
        assert budget.delay(now=T0 + i, wall=WALL) == 0
        budget.take(now=T0 + i)
    # The 11th must wait until the first leaves the rolling minute.
    assert budget.delay(now=T0 + 10, wall=WALL) == pytest.approx(50.0)
    assert budget.delay(now=T0 + 59.5, wall=WALL) == pytest.approx(0.5)
    assert budget.delay(now=T0 + 60, wall=WALL) == 0


def test_per_hour_window() -> None:
    budget = RequestBudget(1000, 3, headroom=1.0)
    for i in range(3):
        budget.take(now=T0 + i * 100)
    assert budget.delay(now=T0 + 300, wall=WALL) == pytest.approx(3300.0)
    assert budget.delay(now=T0 + 3600, wall=WALL) == 0


def test_server_headers_make_callers_wait_for_the_reset() -> None:
    budget = RequestBudget(250, 5000, reserve=5)
    budget.observe({"ratelimit-remaining": "3", "ratelimit-reset": str(WALL + 42)})
    assert budget.delay(now=T0, wall=WALL) == pytest.approx(42.0)
    # After the reset time the server's count is forgotten.
    assert budget.delay(now=T0, wall=WALL + 43) == 0
    assert budget.delay(now=T0, wall=WALL) == 0


def test_plenty_left_on_the_server_means_no_wait() -> None:
    budget = RequestBudget(250, 5000, reserve=5)
    budget.observe({"ratelimit-remaining": "100", "ratelimit-reset": str(WALL + 42)})
    assert budget.delay(now=T0, wall=WALL) == 0


def test_taking_counts_down_the_server_remaining() -> None:
    budget = RequestBudget(250, 5000, reserve=5)
    budget.observe({"ratelimit-remaining": "7", "ratelimit-reset": str(WALL + 10)})
    budget.take(now=T0)
    assert budget.delay(now=T0, wall=WALL) == 0  # 6 left
    budget.take(now=T0)
    assert budget.delay(now=T0, wall=WALL) == pytest.approx(10.0)  # 5 left: the reserve


@pytest.mark.parametrize(
    "headers",
    [{"ratelimit-remaining": "many"}, {"ratelimit-reset": "soon"}, {}, {"ratelimit-remaining": "0"}],
)
def test_unusable_headers_are_ignored(headers: dict[str, str]) -> None:
    budget = RequestBudget(250, 5000)
    budget.observe(headers)
    assert budget.delay(now=T0, wall=WALL) == 0


async def test_acquire_waits_then_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = RequestBudget(1, 5000, headroom=1.0)
    budget.take()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        budget._minute.clear()  # as if the minute had passed

    monkeypatch.setattr(_budget, "asyncio", SimpleNamespace(sleep=fake_sleep))
    await budget.acquire()
    assert len(slept) == 1
    assert 59.0 <= slept[0] <= 65.0  # the wait plus at most 5 s of jitter
    assert budget.waited == pytest.approx(slept[0])
    assert len(budget._minute) == 1  # the slot was taken after the wait


async def test_acquire_does_not_wait_with_room() -> None:
    budget = RequestBudget(250, 5000)
    started = time.monotonic()
    for _ in range(20):
        await budget.acquire()
    assert time.monotonic() - started < 1.0
    assert budget.waited == 0


async def test_budget_for_is_shared_per_token_and_loop() -> None:
    a = budget_for("token-key-a", 250, 5000)
    assert budget_for("token-key-a", 250, 5000) is a
    assert budget_for("token-key-b", 250, 5000) is not a
    assert budget_for("token-key-a", 100, 5000) is not a


def test_budget_for_differs_per_loop() -> None:
    async def get() -> RequestBudget:
        return budget_for("token-key-loop", 250, 5000)

    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert loop_a.run_until_complete(get()) is not loop_b.run_until_complete(get())
    finally:
        loop_a.close()
        loop_b.close()


def test_a_new_loop_never_inherits_a_dead_loops_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Budgets are per loop object. CPython often gives a new loop the id() of one just freed;
    # make every id() in the module collide to show that two loops never share a budget (and
    # a later loop never inherits a "wait 600 s for the reset" that an earlier one heard).
    monkeypatch.setattr(_budget, "id", lambda obj: 42, raising=False)

    async def exhaust() -> None:
        budget_for("token-key-dead", 250, 5000).observe(
            {"ratelimit-remaining": "0", "ratelimit-reset": str(time.time() + 600)}
        )

    async def delay() -> float:
        return budget_for("token-key-dead", 250, 5000).delay()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(exhaust())
    assert loop.run_until_complete(delay()) > 50  # (a far reset is waited for one short window at a time)
    assert asyncio.run(delay()) == 0
    loop.close()

    # A dead loop's budgets do not keep it alive.
    dead = weakref.ref(loop)
    del loop
    gc.collect()
    assert dead() is None


async def test_hook_feeds_the_budget_from_response_headers(make_conn: Any) -> None:
    reset = time.time() + 30

    async def handler(request: web.Request) -> web.Response:
        headers = {"ratelimit-limit": "250", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
        return web.json_response({"job": {"uuid": JOB}}, headers=headers)

    app = web.Application()
    app.router.add_get(f"/v2/gen-ai/indexing_jobs/{JOB}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    conn = make_conn("gradient_budget", host=f"http://127.0.0.1:{server.port}", password="dop_v1_budget_token")
    hook = GradientHook(conn.conn_id)
    try:
        await hook.aget_indexing_job(JOB)
        settings = await hook.asettings()
        budget = budget_for(settings.token_key, settings.requests_per_minute, settings.requests_per_hour)
        assert 25.0 < budget.delay() <= 30.0  # the next poll waits for the server's reset
        assert "dop_v1_budget_token" not in repr([list(b) for b in _budget.BUDGETS.values()])
    finally:
        await hook.aclose()
        await server.close()


def test_default_reserve_leaves_a_tenth_of_the_minute_limit_to_others() -> None:
    assert RequestBudget(250, 5000).reserve == 25
    assert RequestBudget(200, 5000).reserve == 20
    assert RequestBudget(20, 5000).reserve == 5
    budget = RequestBudget(250, 5000)
    budget.observe({"ratelimit-remaining": "25", "ratelimit-reset": str(WALL + 30)})
    assert budget.delay(now=T0, wall=WALL) > 0
    budget.observe({"ratelimit-remaining": "26", "ratelimit-reset": str(WALL + 30)})
    assert budget.delay(now=T0, wall=WALL) == 0
