"""
A deterministic simulation of many processes sharing one token: triggerers polling deferred jobs
and the workers' task processes starting them, each with its own :class:`RequestBudget`, against
the emulator's own :class:`RateLimiter` on a virtual clock.

It drives the budget through its clock-explicit methods (``try_take``, ``observe``) the way
:meth:`RequestBudget.acquire` does (background callers one at a time, in order; foreground ones
at once), and retries a 429 the way the hook's retry policy does (``retry-after`` plus a tenth of a
jittered backoff). A fan-out of minutes runs in well under a second, the same every time for a seed.
"""

from __future__ import annotations

import heapq
import itertools
import random
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_gradient._polling import next_delay
from airflow_provider_gradient.hooks._budget import RequestBudget
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


class _Process:
    """One OS process: its budget and its queue of background callers."""

    def __init__(self, sim: Simulation, name: str, config: Fanout, seed: int) -> None:
        self.sim = sim
        self.name = name
        self.budget = RequestBudget(config.per_minute, config.per_hour, rng=random.Random(seed))
        self.queue: deque[Callable[[], None]] = deque()
        self.pump_at: float | None = None

    def send(self, *, foreground: bool, answered: Callable[[int], None]) -> None:
        """Send one request through the budget; ``answered(status)`` gets the final answer."""
        first_try = self.sim.now
        refused = [0]

        def attempt() -> None:
            if foreground:
                self._foreground(go)
            else:
                self.queue.append(go)
                self._pump()

        def go() -> None:
            self.sim.request(self, foreground, on_answer)

        def on_answer(status: int, retry_after: float | None) -> None:
            if status == 429:
                # The hook's retry wait for a 429: what the server asked, plus the backoff's jitter.
                refused[0] += 1
                backoff = self.sim.rng.uniform(0, min(30.0, 2.0 ** (refused[0] - 1)))
                self.sim.at(self.sim.now + (retry_after if retry_after is not None else 1.0) + backoff, attempt)
                return
            self.sim.result.call_seconds.append(self.sim.now - first_try)
            answered(status)

        attempt()

    def _foreground(self, go: Callable[[], None]) -> None:
        delay = self.budget.try_take(self.sim.now, self.sim.wall, foreground=True)
        if delay > 0:
            self.sim.at(self.sim.now + delay, lambda: self._foreground(go))
            return
        go()

    def _pump(self) -> None:
        """Let the head of the background queue go when the budget allows (one wake-up pending at most)."""
        while self.queue:
            delay = self.budget.try_take(self.sim.now, self.sim.wall)
            if delay > 0:
                wake = max(self.sim.now + delay, self.sim.now + 1e-6)  # the clock always moves on
                if self.pump_at is None or wake < self.pump_at:
                    self.pump_at = wake
                    self.sim.at(wake, self._wake)
                return
            self.queue.popleft()()

    def _wake(self) -> None:
        if self.pump_at is not None and self.sim.now >= self.pump_at:
            self.pump_at = None
            self._pump()


class Simulation:
    """Run one :class:`Fanout` on a virtual clock."""

    def __init__(self, config: Fanout) -> None:
        self.config = config
        self.now = 0.0
        self.rng = random.Random(config.seed)
        self.limiter = RateLimiter(config.per_minute, config.per_hour, time_fn=lambda: self.now, headers=config.headers)
        self.result = Result(config)
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.triggerers = [
            _Process(self, f"triggerer-{index}", config, config.seed * 1000 + index)
            for index in range(config.triggerers)
        ]

    @property
    def wall(self) -> float:
        return self.now + self.limiter._epoch_offset

    def at(self, moment: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (moment, next(self._order), action))

    def request(self, process: _Process, foreground: bool, on_answer: Callable[[int, float | None], None]) -> None:
        """The request reaches the limiter after half the latency; its answer comes back after the rest."""

        def arrive() -> None:
            decision = self.limiter.check(TOKEN)
            status = 200 if decision.allowed else 429
            self.result.requests.append((self.now, status, "foreground" if foreground else "background"))

            def answer() -> None:
                process.budget.observe(decision.headers(), status, now=self.now, wall=self.wall)
                on_answer(status, float(decision.retry_after) if decision.retry_after is not None else None)

            self.at(self.now + self.config.latency / 2, answer)

        self.at(self.now + self.config.latency / 2, arrive)

    def run(self, horizon: float = 1800.0) -> Result:
        config = self.config
        for index in range(config.prior_hour):
            self.now = -3600.0 + 1.0 + index * 3500.0 / config.prior_hour
            self.limiter.check(TOKEN)
        self.now = 0.0
        self.result.noticed_after = [None] * config.tasks
        for index in range(config.tasks):
            start = config.task_spread * index / max(1, config.tasks - 1)
            self.at(start, lambda index=index: self._task(index))
        while self._events:
            moment, _, action = heapq.heappop(self._events)
            if moment > horizon:
                break
            self.now = moment
            action()
        return self.result

    def _task(self, index: int) -> None:
        """A task process: its own budget, ``worker_calls`` foreground calls in a row, then defer."""
        worker = _Process(self, f"task-{index}", self.config, self.config.seed * 1000 + 500 + index)
        calls = self.config.worker_calls

        def call(left: int) -> None:
            if left == 0:
                job_end = self.now + self.config.job_seconds
                triggerer = self.triggerers[index % len(self.triggerers)]
                self.at(self.now + self.config.defer_delay, lambda: self._poll(triggerer, index, job_end, 0))
                return
            worker.send(foreground=True, answered=lambda _status: call(left - 1))

        call(calls)

    def _poll(self, triggerer: _Process, index: int, job_end: float, polls: int) -> None:
        self.result.busy_until = max(self.result.busy_until, self.now)

        def answered(_status: int) -> None:
            if self.now >= job_end:
                self.result.noticed_after[index] = self.now - job_end
                return
            wait = next_delay(self.config.poll_interval, polls, self.rng)
            self.at(self.now + wait, lambda: self._poll(triggerer, index, job_end, polls + 1))

        triggerer.send(foreground=False, answered=answered)


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
