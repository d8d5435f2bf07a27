"""
A deterministic simulation of many processes sharing one token: triggerers polling deferred jobs
and the workers' task processes starting them, each with its own :class:`RequestBudget`, against
the emulator's own :class:`RateLimiter`.

Every request goes through the shipped code: :func:`~airflow_provider_gradient.hooks.gradient.paced_call`
(the hook's async call: the budget's real :meth:`RequestBudget.acquire`, the request, ``observe``,
and the hook's retry policy with tenacity), with only the transport replaced by a send to the
limiter. It all runs on an event loop whose time is virtual (:func:`virtual_time_loop`): every
``asyncio.sleep`` (the budget's waits, tenacity's backoff, the polls' intervals) moves the clock
on instead of waiting, and each budget reads that clock. A fan-out of minutes runs in a second or
two, the same every time for a seed.

A task process's own calls go through the same code as foreground calls (in a worker they are
sync: :meth:`RequestBudget.acquire_sync` makes the same decisions through the same ``_waits``,
with ``time.sleep``). Tenacity measures the retry budget on the real clock, which barely moves
here: the simulation checks that budget itself (``call_seconds``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_gradient import _api
from airflow_provider_gradient._polling import next_delay
from airflow_provider_gradient._settings import RetryPolicy
from airflow_provider_gradient.exceptions import GradientError
from airflow_provider_gradient.hooks._budget import RequestBudget
from airflow_provider_gradient.hooks.gradient import paced_call
from airflow_provider_gradient.testing.emulator.ratelimit import HeaderMode, RateLimiter

TOKEN = "simulated-token"


@dataclass(frozen=True)
class Fanout:
    """
    ``tasks`` deferrable start tasks on one token: each task process makes ``worker_calls``
    foreground requests (read the knowledge base, start the job), then its trigger polls the job
    in one of ``triggerers`` processes until the job ends.
    """

    tasks: int = 50
    triggerers: int = 2
    per_minute: int = 200
    per_hour: int = 100_000
    headers: HeaderMode = "binding"
    #: Seconds over which the task processes start (a loaded machine starts them slowly).
    task_spread: float = 15.0
    worker_calls: int = 2
    #: Seconds from the start request until the trigger runs in its triggerer.
    defer_delay: float = 2.0
    poll_interval: float = 5.0
    job_seconds: float = 21.0
    latency: float = 0.05
    #: Requests the token made in the hour before (spread over it): its hourly window is then not
    #: young, requests leave it all the time, and its count no longer tells who sends what.
    prior_hour: int = 0
    seed: int = 0


@dataclass
class Result:
    """What happened: every request's ``(arrival time, status, priority)``, and each job's end."""

    config: Fanout
    requests: list[tuple[float, int, str]] = field(default_factory=list)
    #: Per job: seconds from its end until its trigger saw it ended (``None``: never seen).
    noticed_after: list[float | None] = field(default_factory=list)
    #: Per request: seconds from its first attempt until it was answered without a 429.
    call_seconds: list[float] = field(default_factory=list)
    #: The moments the simulation saw a trigger waiting (for the stall check).
    busy_until: float = 0.0

    @property
    def limited(self) -> int:
        return sum(1 for _, status, _ in self.requests if status == 429)

    @property
    def limited_share(self) -> float:
        return self.limited / max(1, len(self.requests))

    def peak(self, *, accepted_only: bool = False, window: float = 60.0) -> int:
        """The most requests inside any rolling window (all attempts, or only those not answered 429)."""
        times = sorted(t for t, status, _ in self.requests if not (accepted_only and status == 429))
        return max((bisect_right(times, t) - bisect_right(times, t - window) for t in times), default=0)

    def longest_silence(self) -> float:
        """The longest gap between two requests while some job was still being waited for."""
        times = sorted(t for t, _, _ in self.requests if t <= self.busy_until)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


#: The connection's default retry policy: what the hook retries a 429 with.
POLICY = RetryPolicy()
#: One simulated call: its answer is ``{}``; ``paced_call`` parses it like any answer.
CALL = _api.Operation("simulated_call", "GET", "/simulated", "/simulated", lambda body: body)
_QUIET = logging.getLogger("budget_simulation")
_QUIET.propagate = False
_QUIET.setLevel(logging.CRITICAL)


def virtual_time_loop() -> tuple[asyncio.AbstractEventLoop, list[float]]:
    """
    A new event loop whose clock is virtual, and that clock (``[seconds]``, settable before the
    loop runs). When nothing is ready, the loop moves the clock to its next timer at once instead
    of waiting for it; a loop left with nothing to wait for stops with an error (a stalled run).
    """
    loop = asyncio.new_event_loop()
    clock = [0.0]
    selector = loop._selector  # type: ignore[attr-defined]
    real_select = selector.select

    def select(timeout: float | None = None) -> Any:
        if timeout is None:
            raise RuntimeError("the simulation stalled: no timer and nothing ready")
        clock[0] += max(0.0, timeout)
        return real_select(0)

    loop.time = lambda: clock[0]  # type: ignore[method-assign]
    selector.select = select
    return loop, clock


@contextmanager
def _seeded_global_random(seed: int) -> Iterator[None]:
    """Tenacity's jitter draws from the ``random`` module: seed it for the run, then restore it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class _Process:
    """One OS process: its own budget on the simulation's clock (per token and event loop, as in the hook)."""

    def __init__(self, sim: Simulation, name: str, seed: int) -> None:
        config = sim.config
        self.sim = sim
        self.name = name
        self.budget = RequestBudget(
            config.per_minute, config.per_hour, rng=random.Random(seed), clock=sim.monotonic, wall=sim.wall
        )

    async def call(self, *, foreground: bool) -> bool:
        """One call through the hook's paced, retried send; whether it was answered without a 429."""
        first_try = self.sim.monotonic()
        try:
            await paced_call(
                CALL, self.budget, POLICY, lambda: self.sim.send(foreground), foreground=foreground, logger=_QUIET
            )
        except GradientError:
            return False
        self.sim.result.call_seconds.append(self.sim.monotonic() - first_try)
        return True


class Simulation:
    """Run one :class:`Fanout` on a virtual clock."""

    def __init__(self, config: Fanout) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.loop, self._clock = virtual_time_loop()
        self.limiter = RateLimiter(config.per_minute, config.per_hour, time_fn=self.monotonic, headers=config.headers)
        self.result = Result(config)
        self.triggerers = [
            _Process(self, f"triggerer-{index}", config.seed * 1000 + index) for index in range(config.triggerers)
        ]

    def monotonic(self) -> float:
        return self._clock[0]

    def wall(self) -> float:
        return self._clock[0] + self.limiter._epoch_offset

    async def send(self, foreground: bool) -> _api.RawResponse:
        """The request reaches the limiter after half the latency; its answer comes back after the rest."""
        await asyncio.sleep(self.config.latency / 2)
        decision = self.limiter.check(TOKEN)
        status = 200 if decision.allowed else 429
        self.result.requests.append((self.monotonic(), status, "foreground" if foreground else "background"))
        await asyncio.sleep(self.config.latency / 2)
        return _api.RawResponse(status, decision.headers(), b"{}")

    def run(self, horizon: float = 1800.0) -> Result:
        config = self.config
        for index in range(config.prior_hour):
            self._clock[0] = -3600.0 + 1.0 + index * 3500.0 / config.prior_hour
            self.limiter.check(TOKEN)
        self._clock[0] = 0.0
        self.result.noticed_after = [None] * config.tasks
        with _seeded_global_random(config.seed):
            try:
                self.loop.run_until_complete(self._main(horizon))
            finally:
                self.loop.close()
        return self.result

    async def _main(self, horizon: float) -> None:
        config = self.config
        tasks = [
            asyncio.ensure_future(self._task(index, config.task_spread * index / max(1, config.tasks - 1)))
            for index in range(config.tasks)
        ]
        _, pending = await asyncio.wait(tasks, timeout=horizon)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _task(self, index: int, start: float) -> None:
        """A task process: its own budget, ``worker_calls`` foreground calls in a row, then defer."""
        await asyncio.sleep(start)
        worker = _Process(self, f"task-{index}", self.config.seed * 1000 + 500 + index)
        for _ in range(self.config.worker_calls):
            if not await worker.call(foreground=True):
                return  # the task failed: its job never started
        job_end = self.monotonic() + self.config.job_seconds
        triggerer = self.triggerers[index % len(self.triggerers)]
        await asyncio.sleep(self.config.defer_delay)
        for polls in itertools.count():
            self.result.busy_until = max(self.result.busy_until, self.monotonic())
            if not await triggerer.call(foreground=False):
                return  # the trigger failed
            if self.monotonic() >= job_end:
                self.result.noticed_after[index] = self.monotonic() - job_end
                return
            await asyncio.sleep(next_delay(self.config.poll_interval, polls, self.rng))


def simulate(**overrides: object) -> Result:
    """Run a :class:`Fanout` with ``overrides`` applied."""
    return Simulation(Fanout(**overrides)).run()  # type: ignore[arg-type]


def describe(result: Result) -> str:
    seen = [value for value in result.noticed_after if value is not None]
    fg = sum(1 for _, status, kind in result.requests if status == 429 and kind == "foreground")
    return (
        f"{len(result.requests)} requests, {result.limited} answered 429 ({result.limited_share:.1%}, {fg} fg), "
        f"peak {result.peak(accepted_only=True)} accepted / {result.peak()} attempted per rolling minute "
        f"(limit {result.config.per_minute}), longest silence {result.longest_silence():.1f}s, "
        f"jobs seen ended {len(seen)}/{len(result.noticed_after)}, "
        f"noticed after max {max(seen, default=0):.1f}s, slowest call {max(result.call_seconds, default=0):.1f}s"
    )
