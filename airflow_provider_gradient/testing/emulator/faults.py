"""Fault injection: scripted misbehaviour per operation id and call count.

A :class:`Fault` matches calls to one operation (or ``"*"``). It lets the first ``after`` matching
calls through, then fires on the next ``times`` calls (``None`` = forever). Kinds:

``status``
    answer ``status`` with a DigitalOcean error body (``message``, extra ``headers`` optional).
``html``
    answer ``status`` (default 502) with an HTML error page (``text/html``).
``delay``
    sleep ``seconds`` of real time, then answer normally.
``reset``
    send the response headers and part of the body, then drop the connection.
``malformed_json``
    answer 200 with the normal JSON body cut in half.
``missing_fields``
    drop ``fields`` (default ``phase`` and ``status``) from every job in the body.
``unknown_enum``
    set every job's phase/status to ``phase``/``job_status``
    (default ``BATCH_JOB_PHASE_FUTURE`` / ``INDEX_JOB_STATUS_FUTURE``).
``numbers_as_numbers``
    send every uint64 counter as a JSON number instead of a string.
``create_then_fail``
    (``genai_create_indexing_job``) create the job, then answer ``status`` (default 502); with
    ``seconds``, sleep that long and then answer the normal 200 (a client timeout).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_gradient.testing.emulator.jobs import COUNTER_FIELDS

__all__ = ["FAULT_KINDS", "Fault", "FaultInjector", "apply_body_fault"]

FAULT_KINDS = (
    "status",
    "html",
    "delay",
    "reset",
    "malformed_json",
    "missing_fields",
    "unknown_enum",
    "numbers_as_numbers",
    "create_then_fail",
)
#: Kinds that rewrite a successful JSON body instead of replacing the answer.
BODY_KINDS = frozenset({"malformed_json", "missing_fields", "unknown_enum", "numbers_as_numbers"})
_STRING_COUNTERS = frozenset(COUNTER_FIELDS) | {
    "total_tokens",
    "total_items_indexed",
    "total_items_failed",
    "total_items_skipped",
}


@dataclass
class Fault:
    """One scripted fault; see the module docstring for the kinds and their options."""

    kind: str
    operation: str = "*"
    status: int | None = None
    times: int | None = 1
    after: int = 0
    seconds: float | None = None
    fields: list[str] | None = None
    phase: str | None = None
    job_status: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    id: int = 0
    seen: int = 0
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description, including the ``seen`` and ``fired`` counters."""
        return asdict(self)

    @property
    def exhausted(self) -> bool:
        """Whether the fault will not fire again."""
        return self.times is not None and self.fired >= self.times


class FaultInjector:
    """The list of active faults, consulted once per API call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        operation: str = "*",
        kind: str = "status",
        *,
        status: int | None = None,
        times: int | None = 1,
        after: int = 0,
        seconds: float | None = None,
        fields: Sequence[str] | None = None,
        phase: str | None = None,
        job_status: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Register a fault.

        :param operation: operation id (``genai_get_indexing_job``...) or ``"*"`` for all.
        :param kind: one of :data:`FAULT_KINDS`.
        :param status: HTTP status for ``status`` (default 500), ``html`` and ``create_then_fail``
            (default 502).
        :param times: how many matching calls fault; ``None`` = every call from then on.
        :param after: how many matching calls pass untouched first.
        :param seconds: real seconds for ``delay`` and ``create_then_fail``.
        :param fields: fields removed by ``missing_fields``.
        :param phase: phase sent by ``unknown_enum``.
        :param job_status: status sent by ``unknown_enum``.
        :param message: error message for ``status``/``create_then_fail``.
        :param headers: extra response headers for ``status``/``html``/``create_then_fail``.
        :returns: the registered :class:`Fault` (its ``seen``/``fired`` counters update live).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if kind == "delay" and seconds is None:
            raise ValueError("a delay fault needs seconds")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0 or None")
        if after < 0:
            raise ValueError("after must be >= 0")
        fault = Fault(
            kind=kind,
            operation=operation,
            status=status,
            times=times,
            after=after,
            seconds=seconds,
            fields=list(fields) if fields is not None else None,
            phase=phase,
            job_status=job_status,
            message=message,
            headers=dict(headers or {}),
            id=next(self._ids),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def match(self, operation: str) -> Fault | None:
        """Count one call of ``operation`` against every fault and return the one that fires."""
        if not self._faults:
            return None
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if fault.operation not in ("*", operation):
                    continue
                fault.seen += 1
                if chosen is None and fault.seen > fault.after and not fault.exhausted:
                    fault.fired += 1
                    chosen = fault
        return chosen

    def list(self) -> list[Fault]:
        """All registered faults (including exhausted ones)."""
        with self._lock:
            return list(self._faults)

    def remove(self, fault_id: int) -> None:
        """Remove one fault by id.

        :param fault_id: :attr:`Fault.id`.
        """
        with self._lock:
            self._faults = [fault for fault in self._faults if fault.id != fault_id]

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults = []


def _jobs_in(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    job = payload.get("job")
    if isinstance(job, dict):
        yield job
    jobs = payload.get("jobs")
    if isinstance(jobs, list):
        yield from (item for item in jobs if isinstance(item, dict))
    kb = payload.get("knowledge_base")
    if isinstance(kb, dict) and isinstance(kb.get("last_indexing_job"), dict):
        yield kb["last_indexing_job"]


def _counters_as_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: int(item)
            if key in _STRING_COUNTERS and isinstance(item, str) and item.isdigit()
            else _counters_as_numbers(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_counters_as_numbers(item) for item in value]
    return value


def apply_body_fault(fault: Fault, payload: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a successful JSON payload for the body-altering kinds (not ``malformed_json``).

    :param fault: the fault that fired.
    :param payload: the normal response body (modified in place when convenient).
    """
    if fault.kind == "missing_fields":
        fields = fault.fields if fault.fields is not None else ["phase", "status"]
        for job in _jobs_in(payload):
            for name in fields:
                job.pop(name, None)
        for name in fields:
            payload.pop(name, None)
    elif fault.kind == "unknown_enum":
        for job in _jobs_in(payload):
            job["phase"] = fault.phase or "BATCH_JOB_PHASE_FUTURE"
            job["status"] = fault.job_status or "INDEX_JOB_STATUS_FUTURE"
    elif fault.kind == "numbers_as_numbers":
        converted: dict[str, Any] = _counters_as_numbers(payload)
        return converted
    return payload
