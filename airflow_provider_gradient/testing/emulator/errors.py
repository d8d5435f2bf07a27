"""DigitalOcean-style API errors raised inside the emulator."""

from __future__ import annotations

__all__ = ["ERROR_IDS", "ApiError", "error_id_for"]

#: HTTP status -> DigitalOcean error ``id``.
ERROR_IDS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    412: "precondition_failed",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "server_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def error_id_for(status: int) -> str:
    """Return the DigitalOcean error ``id`` for an HTTP status.

    :param status: the HTTP status code.
    """
    if status in ERROR_IDS:
        return ERROR_IDS[status]
    return "server_error" if status >= 500 else "error"


class ApiError(Exception):
    """An error the emulated API answers with ``{"id", "message", "request_id"}``.

    Also raised by the Python API of :class:`GradientEmulator` (for example for an unknown
    knowledge base).

    :param status: HTTP status code.
    :param message: human-readable message.
    :param error_id: the ``id`` field; derived from ``status`` when omitted.
    """

    def __init__(self, status: int, message: str, error_id: str | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.error_id = error_id or error_id_for(status)
