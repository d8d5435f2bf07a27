"""
The ``gradient`` connection's fields: defaults, extras and form. Pure data, no imports.

Shared by the settings parser, the provider info (the Airflow 3 connection form) and the docs, so
the three cannot drift.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_CONSOLE_URL_TEMPLATE", "EXTRA_FIELDS", "UI_FIELD_BEHAVIOUR"]

DEFAULT_BASE_URL = "https://api.digitalocean.com"
DEFAULT_CONSOLE_URL_TEMPLATE = "https://cloud.digitalocean.com/gen-ai/knowledge-bases/{knowledge_base_uuid}"

#: Extra fields of the connection: name → (type, default, description). The provider info's
#: ``conn-fields`` and the docs are built from this table, so the three cannot drift.
EXTRA_FIELDS: dict[str, tuple[str, Any, str]] = {
    "timeout": ("number", 30.0, "Read timeout of each HTTP request, in seconds."),
    "connect_timeout": ("number", 10.0, "Connect timeout of each HTTP request, in seconds."),
    "max_retries": (
        "integer",
        5,
        "Retries of a failed read or cancel (connection errors, 429, 500, 502, 503, 504).",
    ),
    "retry_budget": ("number", 300.0, "Total seconds one call may spend retrying, waits included."),
    "proxy": ("string", None, "HTTP(S) proxy URL for API requests."),
    "console_url_template": (
        "string",
        DEFAULT_CONSOLE_URL_TEMPLATE,
        "Link shown as 'View indexing job'; may use {knowledge_base_uuid} and {indexing_job_uuid}.",
    ),
    "requests_per_minute": (
        "integer",
        250,
        "The token's real per-minute API limit; every process using the token shares it.",
    ),
    "requests_per_hour": ("integer", 5000, "The token's per-hour API limit."),
    "allow_insecure_http": (
        "boolean",
        False,
        "Allow sending the token over plain http:// to a non-loopback host (never in production).",
    ),
}


#: How the connection form looks: which standard fields to hide, relabel and prefill.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"host": "API base URL", "password": "API token"},
    "placeholders": {
        "host": f"{DEFAULT_BASE_URL} (leave empty for the DigitalOcean API)",
        "password": "dop_v1_... (scopes genai:read, genai:create, genai:update)",
    },
}
