"""
The drivers of the waits in :mod:`~airflow_provider_gradient._wait`: they read, sleep and cancel.

One sync driver (:func:`step`, :func:`wait_for_event`) serves the start operator's worker-side wait and the
sensor's poke; one async driver (:func:`astep`, :func:`await_event`) serves the trigger. The rules
(what to read, when, what an answer or an error means, when the deadline cancels) are the wait's;
a driver only carries them out with a :class:`~airflow_provider_gradient.hooks.gradient.GradientHook`.

The async driver reads the job through one call site, :func:`_aread_job`: the hook's
:meth:`~airflow_provider_gradient.hooks.gradient.GradientHook.aobserve_indexing_job`, which serves the
waits on one event loop and token from sweeps of the job list where that is cheaper than a GET per job.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_gradient._wait import JobWait, KnowledgeBaseWait, Read
from airflow_provider_gradient.exceptions import GradientError

if TYPE_CHECKING:
    from airflow_provider_gradient.hooks.gradient import GradientHook
    from airflow_provider_gradient.models import IndexingJob

__all__ = ["CANCEL_TIMEOUT", "ReadJob", "acancel", "astep", "await_event", "cancel", "step", "wait_for_event"]

#: Seconds a cancel may take before the wait gives up on it (within Airflow's ``on_kill`` timeout,
#: ``[triggerer] on_kill_timeout``, 30 by default).
CANCEL_TIMEOUT = 20.0

Wait = JobWait | KnowledgeBaseWait
#: How the async driver reads a job: ``await read_job(uuid)``.
ReadJob = Callable[[str], Awaitable["IndexingJob"]]


def _log_note(wait: Wait, log: Any) -> None:
    if wait.note is not None:
        level, message = wait.note
        log.log(level, "%s", message)


# -------------------------------------------------------------------------------------------
# Sync: the operator's worker-side wait and the sensor's poke
# -------------------------------------------------------------------------------------------


def _read(hook: GradientHook, read: Read) -> Any:
    if read.kind == "job":
        return hook.get_indexing_job(read.uuid)
    if read.kind == "data_sources":
        return hook.list_indexing_job_data_sources(read.uuid)
    return hook.get_knowledge_base(read.uuid)


def step(wait: Wait, hook: GradientHook, *, log: Any, clock: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """
    One poll (a read, and its follow-up reads such as a failed job's detail): the event, or ``None``.

    :param wait: The wait.
    :param hook: The hook to read with.
    :param log: Where the wait's notes go.
    :param clock: The current time (epoch seconds).
    """
    while True:
        try:
            event = wait.evaluate(_read(hook, wait.next_read()))
        except GradientError as err:
            event = wait.on_error(err, clock())
        _log_note(wait, log)
        if event is not None or not wait.more_to_read:
            return event


def cancel(
    hook: GradientHook, indexing_job_uuid: str, reason: str, *, log: Any, timeout: float | None = None
) -> IndexingJob | None:
    """
    Cancel a job without ever raising or blocking longer than ``timeout`` (:data:`CANCEL_TIMEOUT`).

    :returns: The job as the cancel answered it, or ``None`` if it could not be cancelled.
    """
    timeout = CANCEL_TIMEOUT if timeout is None else timeout
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["job"] = hook.cancel_indexing_job(indexing_job_uuid)
        except Exception as err:  # best effort: report below
            outcome["error"] = err

    thread = threading.Thread(target=send, name="gradient-cancel", daemon=True)
    thread.start()
    thread.join(timeout)
    if "job" in outcome:
        log.info("Cancelled indexing job %s (%s): %s.", indexing_job_uuid, reason, outcome["job"].describe())
        return outcome["job"]  # type: ignore[no-any-return]
    log.warning(
        "Could not cancel indexing job %s (%s): %s",
        indexing_job_uuid,
        reason,
        outcome.get("error", f"no answer within {timeout:.0f}s"),
    )
    return None


def wait_for_event(
    wait: Wait,
    hook: GradientHook,
    *,
    log: Any,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Any] = time.sleep,
) -> dict[str, Any]:
    """
    Wait in this thread until the wait's event; cancel at the deadline if the wait says so.

    :param wait: The wait.
    :param hook: The hook to read (and cancel) with.
    :param log: Where the notes go.
    :param clock: The current time (epoch seconds).
    :param sleep: How to wait between reads.
    """
    while True:
        event = step(wait, hook, log=log, clock=clock)
        if event is not None:
            return event
        now = clock()
        if wait.timed_out(now):
            uuid = wait.cancel_due()
            job = cancel(hook, uuid, "the maximum wait ran out", log=log) if uuid else None
            return wait.timeout_event(job)
        sleep(wait.next_read_in(now))


# -------------------------------------------------------------------------------------------
# Async: the trigger
# -------------------------------------------------------------------------------------------


async def _aread_job(hook: GradientHook, uuid: str, read_job: ReadJob | None, max_wait: float) -> IndexingJob:
    """The one place the async driver reads a job (waiting at most ``max_wait`` for a sweep)."""
    if read_job is not None:
        return await read_job(uuid)
    return await hook.aobserve_indexing_job(uuid, max_wait=max_wait)


async def _apause(
    hook: GradientHook, wait: Wait, read_job: ReadJob | None, seconds: float, clock: Callable[[], float]
) -> None:
    """
    The one place the async driver sleeps between polls: when the wait sleeps on a job
    (:attr:`~airflow_provider_gradient._wait.JobWait.sleeps_on`), the job watcher may cut the sleep
    short when a sweep sees the job end, or lengthen it (up to the wait's
    :meth:`~airflow_provider_gradient._wait.JobWait.longest_sleep`) while its sweeps see the job run.
    """
    uuid = wait.sleeps_on
    if read_job is None and uuid is not None:
        await hook.await_indexing_job_end(
            uuid, seconds, poll_interval=wait.poll_interval, longest=wait.longest_sleep(clock())
        )
    else:
        await asyncio.sleep(seconds)


async def _aread(hook: GradientHook, read: Read, read_job: ReadJob | None, max_wait: float) -> Any:
    if read.kind == "job":
        return await _aread_job(hook, read.uuid, read_job, max_wait)
    if read.kind == "data_sources":
        return await hook.alist_indexing_job_data_sources(read.uuid)
    return await hook.aobserve_knowledge_base(read.uuid)


async def astep(
    wait: Wait,
    hook: GradientHook,
    *,
    log: Any,
    read_job: ReadJob | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any] | None:
    """
    One poll, as :func:`step`, on the event loop.

    :param read_job: How to read a job (default: ``hook.aobserve_indexing_job``: many waits on one loop
        share the job watcher's sweeps).
    """
    while True:
        try:
            event = wait.evaluate(await _aread(hook, wait.next_read(), read_job, wait.read_patience(clock())))
        except GradientError as err:
            event = wait.on_error(err, clock())
        _log_note(wait, log)
        if event is not None or not wait.more_to_read:
            return event


async def acancel(
    hook: GradientHook, indexing_job_uuid: str, reason: str, *, log: Any, timeout: float | None = None
) -> IndexingJob | None:
    """
    Cancel a job, best effort and bounded by ``timeout`` (:data:`CANCEL_TIMEOUT`); never raises.

    :returns: The job as the cancel answered it, or ``None`` if it could not be cancelled.
    """
    timeout = CANCEL_TIMEOUT if timeout is None else timeout
    try:
        job = await asyncio.wait_for(hook.acancel_indexing_job(indexing_job_uuid), timeout=timeout)
    except Exception as err:  # best effort: log and go on
        log.warning("Could not cancel indexing job %s (%s): %s", indexing_job_uuid, reason, err)
        return None
    log.info("Cancelled indexing job %s (%s): %s.", indexing_job_uuid, reason, job.describe())
    return job


async def await_event(
    wait: Wait,
    hook: GradientHook,
    *,
    log: Any,
    read_job: ReadJob | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """
    Wait on the event loop until the wait's event; cancel at the deadline if the wait says so.

    :param wait: The wait.
    :param hook: The hook to read (and cancel) with.
    :param log: Where the notes go.
    :param read_job: How to read a job (default: ``hook.aobserve_indexing_job``: many waits on one loop
        share the job watcher's sweeps).
    :param clock: The current time (epoch seconds).
    :param sleep: How to wait between reads (default: until the next read is due, or until the job
        watcher sees the job end).
    """
    while True:
        event = await astep(wait, hook, log=log, read_job=read_job, clock=clock)
        if event is not None:
            return event
        now = clock()
        if wait.timed_out(now):
            uuid = wait.cancel_due()
            job = await acancel(hook, uuid, "the maximum wait ran out", log=log) if uuid else None
            return wait.timeout_event(job)
        delay = wait.next_read_in(now)
        await (_apause(hook, wait, read_job, delay, clock) if sleep is None else sleep(delay))
