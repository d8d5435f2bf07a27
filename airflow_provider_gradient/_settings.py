"""
Client settings read from a ``gradient`` Airflow connection, validated once.

Connection fields: password = API token (required), host = API base URL (optional, default
``https://api.digitalocean.com``). Extras (all optional) are listed in
:data:`airflow_provider_gradient._conn_fields.EXTRA_FIELDS`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from airflow_provider_gradient._conn_fields import DEFAULT_BASE_URL, DEFAULT_CONSOLE_URL_TEMPLATE
from airflow_provider_gradient.exceptions import GradientConfigError

__all__ = [
    "ClientSettings",
    "RetryPolicy",
]


@dataclass(frozen=True)
class RetryPolicy:
    """
    How failed calls are retried: exponential backoff with full jitter, within a total budget.

    :param max_retries: Retries after the first attempt (0 disables retries).
    :param base_delay: First backoff ceiling in seconds; doubles each retry.
    :param max_delay: Largest single backoff in seconds (``Retry-After`` may ask for more).
    :param budget: Total seconds a call may spend, waits included; a wait that would overrun it
        is not started and the last error is raised instead.
    """

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    budget: float = 300.0


@dataclass(frozen=True)
class ClientSettings:
    """
    Everything a transport needs, validated. The token is a :class:`~pydantic.SecretStr`, so it
    never shows in a ``repr``.
    """

    base_url: str
    token: SecretStr = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    proxy: str | None = field(default=None, repr=False)
    console_url_template: str = DEFAULT_CONSOLE_URL_TEMPLATE
    requests_per_minute: int = 250
    requests_per_hour: int = 5000

    @cached_property
    def token_key(self) -> str:
        """A stable, non-reversible key for the token (to share clients and rate budgets)."""
        return hashlib.sha256(self.token.get_secret_value().encode()).hexdigest()[:16]

    @property
    def pool_key(self) -> tuple[Any, ...]:
        """Settings that must match for two callers to share one HTTP connection pool."""
        return (self.base_url, self.token_key, self.proxy, self.connect_timeout, self.read_timeout)

    @classmethod
    def from_connection(
        cls, *, conn_id: str, host: str | None, password: str | None, extra: Mapping[str, Any]
    ) -> ClientSettings:
        """
        Build settings from a connection's fields, with clear errors naming the connection.

        :param conn_id: The connection id, for messages.
        :param host: The connection's host: an API base URL, or empty for the DigitalOcean API.
        :param password: The API token.
        :param extra: The connection's extra, already deserialized.
        :raises GradientConfigError: If the token is missing or a field is invalid.
        """
        token = (password or "").strip()
        if not token:
            raise GradientConfigError(
                f"Connection {conn_id!r} has no API token. Put a DigitalOcean token with the scopes "
                "genai:read, genai:create and genai:update in the connection's password field."
            )
        base_url = _base_url(
            conn_id, host, _flag(conn_id, "allow_insecure_http", _extra(extra, "allow_insecure_http", False))
        )
        timeout = _positive(conn_id, "timeout", _extra(extra, "timeout", 30.0))
        connect_timeout = _positive(conn_id, "connect_timeout", _extra(extra, "connect_timeout", 10.0))
        max_retries = int(_positive(conn_id, "max_retries", _extra(extra, "max_retries", 5), allow_zero=True))
        budget = _positive(conn_id, "retry_budget", _extra(extra, "retry_budget", 300.0))
        template = str(_extra(extra, "console_url_template", DEFAULT_CONSOLE_URL_TEMPLATE))
        try:
            template.format(knowledge_base_uuid="kb", indexing_job_uuid="job")
        except (KeyError, IndexError, ValueError) as err:
            raise GradientConfigError(
                f"Connection {conn_id!r}: extra 'console_url_template' may only use "
                f"{{knowledge_base_uuid}} and {{indexing_job_uuid}} ({err!r})."
            ) from None
        proxy = _extra(extra, "proxy", None) or None
        return cls(
            base_url=base_url,
            token=SecretStr(token),
            connect_timeout=connect_timeout,
            read_timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, budget=budget),
            proxy=str(proxy) if proxy else None,
            console_url_template=template,
            requests_per_minute=int(
                _positive(conn_id, "requests_per_minute", _extra(extra, "requests_per_minute", 250))
            ),
            requests_per_hour=int(_positive(conn_id, "requests_per_hour", _extra(extra, "requests_per_hour", 5000))),
        )


def _extra(extra: Mapping[str, Any], name: str, default: Any) -> Any:
    """Read an extra field, accepting the legacy ``extra__gradient__<name>`` spelling too."""
    for key in (name, f"extra__gradient__{name}"):
        value = extra.get(key)
        if value not in (None, ""):
            return value
    return default


def _positive(conn_id: str, name: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or number < 0 or (number == 0 and not allow_zero) or math.isinf(number):
        wanted = "a number >= 0" if allow_zero else "a number > 0"
        raise GradientConfigError(f"Connection {conn_id!r}: extra {name!r} must be {wanted}, got {value!r}.") from None
    return number


def _flag(conn_id: str, name: str, value: Any) -> bool:
    """A boolean extra. Extras from a connection URI are strings: "false" must not read as true."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise GradientConfigError(f"Connection {conn_id!r}: extra {name!r} must be true or false, got {value!r}.")


def _base_url(conn_id: str, host: str | None, allow_insecure_http: bool) -> str:
    raw = (host or "").strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        raw = f"https://{raw}"
    raw = raw.rstrip("/")
    parts = urlsplit(raw)
    try:
        _ = parts.port
    except ValueError:
        parts = parts._replace(scheme="")  # a malformed port: reported below like any other bad host
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GradientConfigError(
            f"Connection {conn_id!r}: host {host!r} is not an API base URL. Use e.g. "
            f"{DEFAULT_BASE_URL!r}, or leave it empty for the DigitalOcean API."
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise GradientConfigError(
            f"Connection {conn_id!r}: refusing to send the API token over plain http:// to "
            f"{parts.hostname!r}. Use https://, or set the extra 'allow_insecure_http': true "
            "if this really is a trusted test endpoint."
        )
    return raw


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
