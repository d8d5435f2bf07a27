"""
The reliability catalogue, defined once as data: the fault matrix (fault x step -> expected outcome
text + the assertion), the other scenarios with the tests that prove them, the limits on older
Airflow versions, and the soak run's seeded plan.

``test_fault_matrix.py`` runs every cell and applies its :class:`Expect`; ``render_matrix.py``
renders ``docs/reliability.md`` from the same data, and ``test_reliability_doc.py`` checks the
committed document equals the rendering, so the published outcomes cannot drift from the tests.

This module imports nothing heavy (no Airflow): exceptions are matched by class name.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# -------------------------------------------------------------------------------------------
# Steps and faults
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Where in a task's life the fault hits, and which API operation it targets."""

    key: str
    title: str
    operation: str


STEPS: tuple[Step, ...] = (
    Step("start", "Start (start operator, sync): `POST /indexing_jobs`", "genai_create_indexing_job"),
    Step("poll_sync", "Poll, sync wait (start operator in the worker)", "genai_get_indexing_job"),
    Step("poll_trigger", "Poll, deferred (`GradientIndexingJobTrigger`)", "genai_get_indexing_job"),
    Step("sensor", "Sensor poke (`GradientIndexingJobSensor`, poke mode)", "genai_get_indexing_job"),
    Step("cancel", "Cancel (cancel operator): `PUT /indexing_jobs/{uuid}/cancel`", "genai_cancel_indexing_job"),
)

#: Seconds until ``ratelimit-reset`` in the hourly-limit fault: beyond the cells' retry budget.
HOURLY_RESET = 12.0
#: The cells' connection extras: a retry budget shorter than HOURLY_RESET, so the reset is "far away".
CELL_EXTRA: dict[str, Any] = {"max_retries": 4, "retry_budget": 6}
#: The client read timeout of the read-timeout fault, and the emulator's delay (longer).
READ_TIMEOUT, DELAY = 1.0, 2.5
#: The maximum wait (operator timeout, trigger deadline, sensor timeout) of permanent faults.
SHORT_WAIT = 4.0
#: ... and of the others (never reached when the outcome is right).
LONG_WAIT = 30.0


@dataclass(frozen=True)
class Fault:
    """
    One kind of misbehaviour, as emulator fault-injection arguments.

    :param key: identifier.
    :param title: the fault as the document names it.
    :param add: keyword arguments of ``emu.faults.add`` (the operation comes from the step). A
        header value ``"+N"`` means "now + N seconds" (epoch), resolved when the fault is added.
    :param extra: connection extras for the cell.
    :param wait: the maximum wait of the cell.
    """

    key: str
    title: str
    add: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    wait: float = LONG_WAIT


FAULTS: tuple[Fault, ...] = (
    Fault(
        "429_retry_after",
        "429 with `retry-after: 1` (x2)",
        {
            "kind": "status",
            "status": 429,
            "times": 2,
            "message": "API rate limit exceeded.",
            "headers": {"retry-after": "1"},
        },
    ),
    Fault("429_no_retry_after", "429 without `retry-after` (x2)", {"kind": "status", "status": 429, "times": 2}),
    Fault(
        "hourly_limit",
        f"Hourly limit: 429, no `retry-after`, `ratelimit-remaining: 0`, reset in {HOURLY_RESET:.0f} s "
        f"(beyond the {CELL_EXTRA['retry_budget']} s retry budget)",
        {
            "kind": "status",
            "status": 429,
            "times": 1,
            "message": "API rate limit exceeded.",
            "headers": {"ratelimit-remaining": "0", "ratelimit-reset": f"+{HOURLY_RESET:.0f}"},
        },
    ),
    Fault("500_burst", "500 burst (x2)", {"kind": "status", "status": 500, "times": 2}),
    Fault("502_burst", "502 burst (x2)", {"kind": "status", "status": 502, "times": 2}),
    Fault("503_burst", "503 burst (x2)", {"kind": "status", "status": 503, "times": 2}),
    Fault("504_burst", "504 burst (x2)", {"kind": "status", "status": 504, "times": 2}),
    Fault("reset", "Connection reset mid-answer (x2)", {"kind": "reset", "times": 2}),
    Fault(
        "read_timeout",
        f"Read timeout: answer delayed {DELAY} s, client `timeout` {READ_TIMEOUT} s (x1)",
        {"kind": "delay", "seconds": DELAY, "times": 1},
        extra={"timeout": READ_TIMEOUT},
    ),
    Fault("malformed_json", "Malformed JSON: a 200 cut in half (x2)", {"kind": "malformed_json", "times": 2}),
    Fault("html_page", "HTML error page (502, `text/html`) (x2)", {"kind": "html", "status": 502, "times": 2}),
    Fault(
        "unknown_enum",
        "Unknown enum values (`BATCH_JOB_PHASE_FUTURE`) on every answer",
        {"kind": "unknown_enum", "times": None},
        wait=SHORT_WAIT,
    ),
    Fault(
        "missing_fields",
        "Missing `phase` and `status` on every answer",
        {"kind": "missing_fields", "times": None},
        wait=SHORT_WAIT,
    ),
    Fault(
        "numbers",
        "uint64 counters sent as JSON numbers on every answer",
        {"kind": "numbers_as_numbers", "times": None},
    ),
)

# -------------------------------------------------------------------------------------------
# Expected outcomes
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """
    The expected outcome of one cell: the text published in the document and what is asserted.

    :param text: the outcome in words (the document's cell).
    :param result: ``success`` (the step returned), ``error:<ExceptionClass>`` (it raised that,
        or a subclass), or ``event:<status>`` (the trigger's one event).
    :param message: a substring of the error or event message.
    :param posts: exact number of start POSTs the emulator received.
    :param jobs: exact number of jobs on the knowledge base afterwards.
    :param puts: exact number of cancel PUTs.
    :param phase: the job's final phase in the emulator (without ``BATCH_JOB_PHASE_``).
    :param not_phase: a phase the job must not end in.
    :param min_reads: at least this many requests of the faulted operation (it was retried).
    :param max_reads: at most this many (it did not hammer the API).
    :param min_elapsed: the step took at least this long (it honoured a wait).
    :param max_elapsed: ... at most this long (it failed fast).
    :param counters: the result's token count equals the emulator's.
    """

    text: str
    result: str = "success"
    message: str | None = None
    posts: int | None = None
    jobs: int | None = None
    puts: int | None = None
    phase: str | None = None
    not_phase: str | None = None
    min_reads: int | None = None
    max_reads: int | None = None
    min_elapsed: float | None = None
    max_elapsed: float | None = None
    counters: bool = False

    def check(self, run: Any) -> None:
        """Assert this outcome on a finished cell (see ``reliability_cells.CellRun``)."""
        if self.result == "success":
            assert run.error is None, f"expected success, got {run.error!r}"
        elif self.result.startswith("error:"):
            wanted = self.result.split(":", 1)[1]
            assert run.error is not None, f"expected {wanted}, got success {run.value!r}"
            names = [klass.__name__ for klass in type(run.error).__mro__]
            assert wanted in names, f"expected {wanted}, got {run.error!r}"
        elif self.result.startswith("event:"):
            assert run.error is None, f"the trigger raised {run.error!r}"
            assert run.value["status"] == self.result.split(":", 1)[1], run.value
        else:  # pragma: no cover - a typo in the catalogue
            raise AssertionError(f"unknown expected result {self.result!r}")
        if self.message is not None:
            assert self.message in run.message, f"{self.message!r} not in {run.message!r}"
        for name, actual in (("posts", run.posts), ("jobs", len(run.jobs)), ("puts", run.puts)):
            wanted_count = getattr(self, name)
            assert wanted_count is None or actual == wanted_count, f"{name}: {actual} != {wanted_count}"
        phase = run.final_phase.removeprefix("BATCH_JOB_PHASE_")
        assert self.phase is None or phase == self.phase, f"final phase {phase} != {self.phase}"
        assert self.not_phase is None or phase != self.not_phase, f"final phase is {phase}"
        assert self.min_reads is None or run.reads >= self.min_reads, f"{run.reads} requests < {self.min_reads}"
        assert self.max_reads is None or run.reads <= self.max_reads, f"{run.reads} requests > {self.max_reads}"
        assert self.min_elapsed is None or run.elapsed >= self.min_elapsed, f"took {run.elapsed:.1f}s"
        assert self.max_elapsed is None or run.elapsed <= self.max_elapsed, f"took {run.elapsed:.1f}s"
        if self.counters:
            assert run.tokens is not None, "no token count in the result"
            assert run.tokens == run.real_tokens > 0, f"{run.tokens} != {run.real_tokens}"


def _recovered(step: str, reads: int, extra: str = "", **kw: Any) -> Expect:
    """The transient fault is ridden out and the job's real outcome is reported."""
    if step == "cancel":
        return Expect(f"Retried{extra}: cancelled, {reads} PUTs", puts=reads, phase="CANCELLED", **kw)
    what = {
        "start": "Retried",
        "poll_sync": "Polling goes on",
        "poll_trigger": "Polling goes on",
        "sensor": "Poke retried",
    }[step]
    text = f"{what}{extra}: success, the job's real outcome"
    if step == "poll_trigger":
        return Expect(text, result="event:success", posts=0, puts=0, phase="SUCCEEDED", min_reads=reads, **kw)
    if step == "start":
        return Expect(f"{text}; {reads} POSTs, 1 job", posts=reads, jobs=1, phase="SUCCEEDED", **kw)
    posts = 1 if step == "poll_sync" else 0
    return Expect(text, posts=posts, jobs=1, puts=0, phase="SUCCEEDED", min_reads=reads, **kw)


def _ambiguous_no_job(status_text: str) -> Expect:
    return Expect(
        "Not re-sent; reconciled: no job was created, so a clear `GradientAmbiguousStartError` "
        '("retrying the task is safe"); 1 POST, 0 jobs',
        result="error:GradientAmbiguousStartError",
        message=status_text,
        posts=1,
        jobs=0,
    )


_RECONCILED = Expect(
    "Not re-sent; reconciled: the job it created is adopted and followed to success; 1 POST, 1 job",
    posts=1,
    jobs=1,
    phase="SUCCEEDED",
)


def _burst(status: int) -> dict[str, Expect]:
    label = {500: "HTTP 500", 502: "HTTP 502", 503: "HTTP 503", 504: "HTTP 504"}[status]
    return {
        "start": _ambiguous_no_job(label),
        "poll_sync": _recovered("poll_sync", 3),
        "poll_trigger": _recovered("poll_trigger", 3),
        "sensor": _recovered("sensor", 3),
        "cancel": _recovered("cancel", 3),
    }


def _never_success(what: str) -> dict[str, Expect]:
    """A permanently unreadable phase: never an end, never success."""
    return {
        "start": Expect(
            f"The start answer's {what} reads as running; polling reads the real outcome: success",
            posts=1,
            jobs=1,
            phase="SUCCEEDED",
        ),
        "poll_sync": Expect(
            f"{what.capitalize()} never reads as an end: the maximum wait runs out, `GradientJobTimeoutError`, "
            "the job is cancelled (a no-op if it already ended); never success",
            result="error:GradientJobTimeoutError",
            message="did not finish within",
            posts=1,
            puts=1,
        ),
        "poll_trigger": Expect(
            f"{what.capitalize()} never reads as an end: `timeout` event at the deadline, cancel sent; never success",
            result="event:timeout",
            puts=1,
        ),
        "sensor": Expect(
            f"{what.capitalize()} never reads as an end: `AirflowSensorTimeout`; the sensor cancels nothing",
            result="error:AirflowSensorTimeout",
            puts=0,
            not_phase="CANCELLED",
        ),
        "cancel": Expect("Cancel sent once; the job is cancelled", puts=1, phase="CANCELLED"),
    }


def _rate_limited(retry_after: bool) -> dict[str, Expect]:
    wait = " after `retry-after` (>= 2 s in all)" if retry_after else " with backoff"
    bound = {"min_elapsed": 2.0} if retry_after else {}
    return {
        "start": _recovered("start", 3, wait, **bound),  # a 429 never creates a job: the POST is re-sent
        "poll_sync": _recovered("poll_sync", 3, wait, **bound),
        "poll_trigger": _recovered("poll_trigger", 3, wait, **bound),
        "sensor": _recovered("sensor", 3, wait, **bound),
        "cancel": _recovered("cancel", 3, wait, **bound),
    }


_HOURLY_WAIT = {"min_elapsed": HOURLY_RESET - 2, "max_reads": 3}
#: "Fails fast": before the reset a waiting client would sleep until (it can only be later). Not a
#: tighter bound: the cells run concurrently on a shared machine.
_FAST = {"max_elapsed": HOURLY_RESET - 2}

#: fault key -> step key -> expected outcome.
MATRIX: dict[str, dict[str, Expect]] = {
    "429_retry_after": _rate_limited(True),
    "429_no_retry_after": _rate_limited(False),
    "hourly_limit": {
        "start": Expect(
            "Fails fast with `GradientRateLimitError` naming the hourly limit (no hour-long sleep in a "
            "worker); 1 POST, 0 jobs",
            result="error:GradientRateLimitError",
            message="5,000 per hour",
            posts=1,
            jobs=0,
            **_FAST,
        ),
        "poll_sync": Expect(
            "Waits for `ratelimit-reset` without hammering (<= 3 reads), then success",
            posts=1,
            puts=0,
            phase="SUCCEEDED",
            **_HOURLY_WAIT,
        ),
        "poll_trigger": Expect(
            "Waits for `ratelimit-reset` without hammering (<= 3 reads), then `success` event",
            result="event:success",
            puts=0,
            phase="SUCCEEDED",
            **_HOURLY_WAIT,
        ),
        "sensor": _recovered("sensor", 2, " (the poke that met the limit counts as not yet)"),
        "cancel": Expect(
            "Fails fast with `GradientRateLimitError` (the job is re-read: still running), so the teardown "
            "fails loudly instead of reporting a cancel that did not happen",
            result="error:GradientRateLimitError",
            puts=1,
            phase="RUNNING",
            **_FAST,
        ),
    },
    "500_burst": _burst(500),
    "502_burst": _burst(502),
    "503_burst": _burst(503),
    "504_burst": _burst(504),
    "reset": {
        "start": _RECONCILED,
        "poll_sync": _recovered("poll_sync", 3),
        "poll_trigger": _recovered("poll_trigger", 3),
        "sensor": _recovered("sensor", 3),
        "cancel": _recovered("cancel", 3),
    },
    "read_timeout": {
        "start": Expect(
            "Not re-sent; reconciled: the job the late request created is found and followed to success; 1 POST, 1 job",
            posts=1,
            jobs=1,
            phase="SUCCEEDED",
        ),
        "poll_sync": _recovered("poll_sync", 2),
        "poll_trigger": _recovered("poll_trigger", 2),
        "sensor": _recovered("sensor", 2),
        "cancel": _recovered("cancel", 2),
    },
    "malformed_json": {
        "start": _RECONCILED,
        "poll_sync": _recovered("poll_sync", 3),
        "poll_trigger": _recovered("poll_trigger", 3),
        "sensor": _recovered("sensor", 3),
        "cancel": _recovered("cancel", 3),
    },
    "html_page": {
        **_burst(502),
        "start": _ambiguous_no_job("502 Bad Gateway"),  # the page is summarised by its <title>
    },
    "unknown_enum": _never_success("unknown phase"),
    "missing_fields": _never_success("missing phase"),
    "numbers": {
        "start": Expect(
            "Parsed: success, token count exact; 1 POST", posts=1, jobs=1, phase="SUCCEEDED", counters=True
        ),
        "poll_sync": Expect("Parsed: success, token count exact", posts=1, phase="SUCCEEDED", counters=True),
        "poll_trigger": Expect(
            "Parsed: `success` event, token count exact", result="event:success", phase="SUCCEEDED", counters=True
        ),
        "sensor": Expect("Parsed: success, token count exact", phase="SUCCEEDED", counters=True),
        "cancel": Expect("Parsed: cancelled, 1 PUT", puts=1, phase="CANCELLED"),
    },
}

FAULTS_BY_KEY = {fault.key: fault for fault in FAULTS}
STEPS_BY_KEY = {step.key: step for step in STEPS}


def cells() -> list[tuple[Fault, Step, Expect]]:
    """Every (fault, step, expected outcome), in document order."""
    return [(fault, step, MATRIX[fault.key][step.key]) for fault in FAULTS for step in STEPS]


# -------------------------------------------------------------------------------------------
# Other scenarios: what is proven, and by which test
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A reliability property, its tested outcome, and the tests proving it (``path::name``)."""

    section: str
    scenario: str
    outcome: str
    tests: tuple[str, ...]


_R = "tests/reliability/"
SCENARIOS: tuple[Scenario, ...] = (
    # -- no duplicate jobs
    Scenario(
        "No duplicate jobs",
        "Ambiguous start: job created, client sees 502 / a read timeout",
        "The POST is never re-sent; the job is found and followed; exactly 1 POST and 1 job",
        (f"{_R}test_no_duplicate_jobs.py::test_ambiguous_start_leaves_exactly_one_job",),
    ),
    Scenario(
        "No duplicate jobs",
        "Worker SIGKILLed right after the start; the task is run again",
        "The job uuid was in the task state store before the kill; the rerun reattaches: 1 POST, "
        "the same job followed to success",
        (
            f"{_R}test_no_duplicate_jobs.py::test_worker_killed_after_start_reattaches",
            "tests/system/test_system_3_worker_killed.py::test_killed_worker_retry_reattaches_to_the_job",
        ),
    ),
    Scenario(
        "No duplicate jobs",
        "Triggerer restart mid-wait",
        "The trigger re-created from its serialized kwargs (`airflow.sdk.serde`) resumes the same job; "
        "nothing cancelled, no new job",
        (
            f"{_R}test_no_duplicate_jobs.py::test_triggerer_restart_mid_wait_resumes",
            "tests/system/test_system_2_triggerer_killed.py::test_killed_triggerer_hands_the_trigger_over",
        ),
    ),
    Scenario(
        "No duplicate jobs",
        "`if_job_running` with a job started outside Airflow",
        "`wait`: 1 POST, after the other job ended; `adopt`: 0 POSTs, that job followed; "
        "`fail`: 0 POSTs, a clear error",
        (f"{_R}test_no_duplicate_jobs.py::test_if_job_running_policies_with_an_outside_job",),
    ),
    # -- nothing left running
    Scenario(
        "Nothing left running",
        "Mark failed / mark success / clear while deferred (Airflow 3.3 trigger `on_kill`)",
        "The trigger the triggerer holds (re-created from serde) cancels the job: 1 PUT, CANCELLED",
        (
            f"{_R}test_nothing_left_running.py::test_trigger_on_kill_cancels_the_job",
            "tests/system/test_system_4_marked_failed.py::test_marking_the_deferred_task_failed_cancels_the_job",
        ),
    ),
    Scenario(
        "Nothing left running",
        "Maximum wait exceeded (sync and deferred)",
        "The job is cancelled and the task fails with `GradientJobTimeoutError`",
        (
            f"{_R}test_nothing_left_running.py::test_maximum_wait_cancels_the_job",
            f"{_R}test_fault_matrix.py::test_cell[unknown_enum-poll_sync]",
        ),
    ),
    Scenario(
        "Nothing left running",
        "Worker SIGTERM during a sync wait",
        "Airflow's task runner SIGTERM handler calls `on_kill` (real `dag.test()` in a subprocess): "
        "the job is cancelled, the task fails as cancelled",
        (f"{_R}test_nothing_left_running.py::test_worker_sigterm_during_a_sync_wait_cancels_the_job",),
    ),
    Scenario(
        "Nothing left running",
        "Teardown cancel after an upstream failure",
        "The teardown runs and cancels the running job (real DAG runs)",
        (
            "tests/dag_runs/test_dag_runs.py::test_upstream_failure_teardown_cancels_the_running_job",
            "tests/example_dags/test_example_dags.py::test_cancel_teardown_cancels_the_job_when_the_run_fails",
            "tests/system/test_system_6_cancel_on_failure.py::test_upstream_failure_cancels_the_job",
        ),
    ),
    # -- token hygiene
    Scenario(
        "Token hygiene",
        "Runs with failures (401, 5xx, timeouts, failed and cancelled jobs)",
        "The token is in no log line (caplog, stdout/stderr), XCom value, serialized trigger kwargs, "
        "exception message, pickle or repr, nor in the emulator's recorded headers",
        (f"{_R}test_token_hygiene.py::test_token_appears_nowhere_after_failing_runs",),
    ),
    Scenario(
        "Token hygiene",
        "Plain `http://` to a non-loopback host",
        "Refused before any request (`GradientConfigError` naming `allow_insecure_http`); a listener "
        "on that address receives nothing. Allowed only with `allow_insecure_http: true`",
        (f"{_R}test_token_hygiene.py::test_plain_http_to_a_non_loopback_host_sends_nothing",),
    ),
    # -- bad input
    Scenario(
        "Bad input",
        "Invalid UUIDs, empty lists, a string for `data_source_uuids`, zero/negative intervals and "
        "timeouts, unknown policies, a missing / wrong-type / token-less connection",
        "A `GradientConfigError` (or Airflow's not-found error) naming the parameter and the fix, at "
        "construction or before the first request; the emulator records no request",
        (f"{_R}test_bad_input.py::test_bad_input_is_refused_before_any_request",),
    ),
    # -- no lost outcome
    Scenario(
        "No lost outcome",
        "Seeded soak: jobs with random outcomes and random transient faults, as concurrent triggers "
        "plus a subset through the operator's sync path",
        "Every task's outcome equals the job's real final state; nothing hangs (see the counts below)",
        (f"{_R}test_soak.py::test_soak_no_lost_outcome",),
    ),
)

#: What does not hold on older Airflow versions (the provider supports Airflow 3.0+).
LIMITS: tuple[tuple[str, str], ...] = (
    (
        "Airflow < 3.3: no trigger `on_kill`",
        "Marking a *deferred* task failed or success, or clearing it, does not reach the trigger: the "
        "remote job keeps running. Add a teardown `GradientCancelIndexingJobOperator` (it runs after "
        "an upstream failure on every Airflow 3 version), or cancel from the console.",
    ),
    (
        "Airflow < 3.3: no task state store",
        "A retry cannot know the job its earlier attempt started. With `if_job_running='wait'` (the "
        "default) a retry therefore *adopts* a job still running on the knowledge base instead of "
        "waiting for it and starting another (`test_retry_without_a_state_store_adopts_the_running_job`); "
        "if that job already ended, the retry starts a new one.",
    ),
    (
        "Any version: worker SIGKILL / OOM during a sync wait",
        "No handler runs, so nothing is cancelled; the job keeps running and the retry reattaches "
        "(3.3+) or adopts it (< 3.3). Use `deferrable=True` to keep long waits out of workers.",
    ),
)

# -------------------------------------------------------------------------------------------
# The soak run's plan: deterministic from its seed
# -------------------------------------------------------------------------------------------

SOAK_SEED = 20260801
SOAK_JOBS = 300
#: How many of them run through the start operator's sync path (the rest as triggers in one loop).
SOAK_OPERATOR_JOBS = 24
SOAK_OUTCOMES = ("COMPLETED", "NO_CHANGES", "PARTIAL", "FAILED", "CANCELLED")
#: Transient faults scattered over the job reads (kind, fault-injection arguments).
SOAK_FAULT_KINDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("500", {"kind": "status", "status": 500}),
    ("502", {"kind": "status", "status": 502}),
    ("503", {"kind": "status", "status": 503}),
    ("504", {"kind": "status", "status": 504}),
    ("429", {"kind": "status", "status": 429, "headers": {"retry-after": "1"}}),
    ("reset", {"kind": "reset"}),
    ("malformed_json", {"kind": "malformed_json"}),
    ("html", {"kind": "html", "status": 502}),
    ("unknown_enum", {"kind": "unknown_enum"}),
    ("missing_fields", {"kind": "missing_fields"}),
    ("numbers", {"kind": "numbers_as_numbers"}),
)
SOAK_FAULTS = 120


@dataclass(frozen=True)
class SoakJob:
    """One planned job: its outcome, emulated durations, and how it is driven."""

    index: int
    outcome: str
    pending: float
    duration: float
    cancel_after: float | None
    via_operator: bool


@dataclass(frozen=True)
class SoakPlan:
    """The seeded plan: jobs and the fault stream (fault kind, after how many matching reads)."""

    jobs: tuple[SoakJob, ...]
    faults: tuple[tuple[str, int], ...]

    def outcome_counts(self) -> dict[str, int]:
        counts = Counter(job.outcome for job in self.jobs)
        return {outcome: counts[outcome] for outcome in SOAK_OUTCOMES}

    def fault_counts(self) -> dict[str, int]:
        counts = Counter(kind for kind, _ in self.faults)
        return {kind: counts[kind] for kind, _ in SOAK_FAULT_KINDS}

    @property
    def operator_jobs(self) -> int:
        return sum(job.via_operator for job in self.jobs)


def soak_plan(seed: int = SOAK_SEED, jobs: int = SOAK_JOBS, operator_jobs: int = SOAK_OPERATOR_JOBS) -> SoakPlan:
    """The soak run's jobs and faults, from the seed alone (emulated seconds; the run sets the speed)."""
    rng = random.Random(seed)
    via = set(rng.sample(range(jobs), operator_jobs))
    planned = []
    for index in range(jobs):
        outcome = rng.choice(SOAK_OUTCOMES)
        pending = rng.uniform(0, 600)
        duration = rng.uniform(300, 4800)
        cancel_after = rng.uniform(0.3, 2.5) if outcome == "CANCELLED" else None  # wall seconds
        if outcome == "CANCELLED":
            duration = 1_000_000.0  # still running whenever the cancel comes
        planned.append(SoakJob(index, outcome, pending, duration, cancel_after, index in via))
    faults = tuple((rng.choice(SOAK_FAULT_KINDS)[0], rng.randint(0, 2 * jobs)) for _ in range(SOAK_FAULTS))
    return SoakPlan(tuple(planned), faults)
