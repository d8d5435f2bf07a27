"""The record of DigitalOcean-surface requests the emulator received (control calls excluded)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["REDACTED_AUTHORIZATION", "RecordedRequest", "RequestLog"]

#: What every recorded ``Authorization`` header is replaced with.
REDACTED_AUTHORIZATION = "Bearer ***"


@dataclass(frozen=True)
class RecordedRequest:
    """One received request and the status it was answered with.

    :param time: wall-clock epoch seconds when it arrived.
    :param method: HTTP method.
    :param path: URL path.
    :param query: query parameters (last value wins).
    :param json: the parsed JSON body, or ``None``.
    :param body: the raw body as text (``""`` when empty).
    :param headers: lower-cased headers; ``authorization`` is redacted.
    :param status: HTTP status answered (0 if the connection was dropped on purpose).
    :param operation: operation id, ``None`` for unknown routes.
    :param request_id: the ``x-request-id`` answered.
    :param fault: kind of the fault injected into this call, if any.
    :param token_name: the name its (known) token was registered under, if any; never the token.
    """

    time: float
    method: str
    path: str
    query: dict[str, str]
    json: Any
    body: str
    headers: dict[str, str]
    status: int
    operation: str | None
    request_id: str
    fault: str | None = None
    token_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class RequestLog:
    """Thread-safe, append-only list of :class:`RecordedRequest`.

    :param enabled: whether to record at all (benchmarks may turn it off).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []

    def append(self, item: RecordedRequest) -> None:
        """Record one request."""
        if self.enabled:
            with self._lock:
                self._items.append(item)

    def snapshot(self) -> list[RecordedRequest]:
        """A copy of the records, oldest first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._items = []
