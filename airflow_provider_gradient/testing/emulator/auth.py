"""Bearer tokens and their scopes."""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["ALL_SCOPES", "TokenRegistry", "bearer_token"]

#: The scopes the indexing-job operations need.
ALL_SCOPES = frozenset({"genai:read", "genai:create", "genai:update"})


def bearer_token(header: str | None) -> str | None:
    """Extract the token from an ``Authorization: Bearer <token>`` header value.

    :param header: the header value, if any.
    """
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


class TokenRegistry:
    """Known tokens, the scopes each one carries and the name it is recorded under."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, frozenset[str]] = {}
        self._names: dict[str, str] = {}

    def add(self, token: str, scopes: Iterable[str] = ALL_SCOPES, name: str | None = None) -> None:
        """Register (or re-register) a token.

        :param token: the bearer token value.
        :param scopes: its scopes, e.g. ``["genai:read"]``.
        :param name: what the request log records for its requests (never the token itself).
        """
        if not token:
            raise ValueError("token must not be empty")
        with self._lock:
            self._tokens[token] = frozenset(scopes)
            if name is not None:
                self._names[token] = name
            else:
                self._names.pop(token, None)

    def name(self, token: str) -> str | None:
        """The name the token was registered under, ``None`` if it has none.

        :param token: the bearer token value.
        """
        return self._names.get(token)

    def scopes(self, token: str) -> frozenset[str] | None:
        """The token's scopes, ``None`` if the token is unknown.

        :param token: the bearer token value.
        """
        return self._tokens.get(token)

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._tokens.clear()
            self._names.clear()
