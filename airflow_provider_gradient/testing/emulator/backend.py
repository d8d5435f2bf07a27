"""The emulator's components bundled together: clock, store, tokens, limiter, faults, request log."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_gradient.testing.emulator.auth import ALL_SCOPES, TokenRegistry
from airflow_provider_gradient.testing.emulator.clock import EmulatedClock
from airflow_provider_gradient.testing.emulator.faults import FaultInjector
from airflow_provider_gradient.testing.emulator.jobs import (
    DEFAULT_PENDING_SECONDS,
    DEFAULT_SECONDS_PER_SOURCE,
    JobScript,
)
from airflow_provider_gradient.testing.emulator.ratelimit import HeaderMode, RateLimiter
from airflow_provider_gradient.testing.emulator.requestlog import RequestLog
from airflow_provider_gradient.testing.emulator.state import ListOrder, Store

__all__ = ["Backend", "build_scripts"]


def build_scripts(
    outcome: str | Sequence[str],
    *,
    duration: float | None = None,
    pending: float | None = None,
    failed_data_sources: Sequence[str] | None = None,
    error_msg: str | None = None,
    error_details: str | None = None,
    failed_item_count: int | None = None,
) -> list[JobScript]:
    """Turn one outcome or a list of outcomes into :class:`JobScript` objects sharing the options."""
    outcomes = [outcome] if isinstance(outcome, str) else list(outcome)
    return [
        JobScript(
            outcome=item,
            duration=duration,
            pending=pending,
            failed_data_sources=tuple(failed_data_sources) if failed_data_sources is not None else None,
            error_msg=error_msg,
            error_details=error_details,
            failed_item_count=failed_item_count,
        )
        for item in outcomes
    ]


class Backend:
    """Everything the HTTP apps (API and control) operate on.

    See :class:`~airflow_provider_gradient.testing.emulator.GradientEmulator` for the parameters.
    """

    def __init__(
        self,
        *,
        token: str,
        seed: int,
        speed: float,
        rate_limit_per_minute: int | None,
        rate_limit_per_hour: int | None,
        rate_limit_headers: HeaderMode = "binding",
        default_pending: float = DEFAULT_PENDING_SECONDS,
        default_per_source: float = DEFAULT_SECONDS_PER_SOURCE,
        conflict_status: int = 409,
        db_not_ready_status: int = 400,
        record_requests: bool = True,
        list_order: ListOrder = "newest",
    ) -> None:
        self.token = token
        self._speed = speed
        self._limits = (rate_limit_per_minute, rate_limit_per_hour, rate_limit_headers)
        self.clock = EmulatedClock(speed)
        self.store = Store(
            self.clock,
            seed,
            default_pending=default_pending,
            default_per_source=default_per_source,
            conflict_status=conflict_status,
            db_not_ready_status=db_not_ready_status,
            list_order=list_order,
        )
        self._list_order = self.store.list_order
        self.tokens = TokenRegistry()
        self.tokens.add(token, ALL_SCOPES)
        self.limiter = RateLimiter(rate_limit_per_minute, rate_limit_per_hour, headers=rate_limit_headers)
        self.faults = FaultInjector()
        self.log = RequestLog(record_requests)
        #: Bumped by :meth:`reset`; requests still in flight from before are then not recorded.
        self.generation = 0

    def reset(self) -> None:
        """Back to the state right after construction (same token, seed, speed and limits)."""
        self.generation += 1
        self.store.reset()
        self.store.list_order = self._list_order
        self.faults.clear()
        self.log.clear()
        self.limiter.reset()
        self.limiter.configure(*self._limits)
        self.clock.reset(self._speed)
        self.tokens.clear()
        self.tokens.add(self.token, ALL_SCOPES)
