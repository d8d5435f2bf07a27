"""
Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Imports nothing from Airflow: the providers manager loads it early, and the API server builds the
connection form from it without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_gradient import __version__
from airflow_provider_gradient._conn_fields import EXTRA_FIELDS, UI_FIELD_BEHAVIOUR

__all__ = ["get_provider_info"]


_ACRONYMS = {"url": "URL", "http": "HTTP"}


def _label(name: str) -> str:
    """``allow_insecure_http`` → ``Allow insecure HTTP``."""
    words = [_ACRONYMS.get(word, word) for word in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _conn_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, (kind, default, description) in EXTRA_FIELDS.items():
        schema: dict[str, Any] = {"type": [kind, "null"]}
        if default is not None:
            schema["default"] = default
        fields[name] = {
            "label": _label(name),
            "description": description,
            "schema": schema,
        }
    return fields


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: connection type and form, hooks, operators, sensors, triggers, links."""
    return {
        "package-name": "airflow-provider-gradient",
        "name": "DigitalOcean Gradient",
        "description": "Start, wait for, sense and cancel DigitalOcean Gradient AI knowledge-base indexing jobs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "DigitalOcean Gradient AI",
                "external-doc-url": "https://docs.digitalocean.com/products/gradient-ai-platform/",
                "tags": ["service"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "gradient",
                "hook-class-name": "airflow_provider_gradient.hooks.gradient.GradientHook",
                "hook-name": "DigitalOcean Gradient",
                "ui-field-behaviour": {
                    "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
                    "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
                    "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
                },
                "conn-fields": _conn_fields(),
            }
        ],
        "hooks": [
            {
                "integration-name": "DigitalOcean Gradient AI",
                "python-modules": ["airflow_provider_gradient.hooks.gradient"],
            }
        ],
        "operators": [
            {
                "integration-name": "DigitalOcean Gradient AI",
                "python-modules": ["airflow_provider_gradient.operators.indexing_job"],
            }
        ],
        "sensors": [
            {
                "integration-name": "DigitalOcean Gradient AI",
                "python-modules": ["airflow_provider_gradient.sensors.indexing_job"],
            }
        ],
        "triggers": [
            {
                "integration-name": "DigitalOcean Gradient AI",
                "python-modules": [
                    "airflow_provider_gradient.triggers.indexing_job",
                    "airflow_provider_gradient.triggers.knowledge_base_event",
                ],
            }
        ],
        "extra-links": ["airflow_provider_gradient.links.indexing_job.GradientIndexingJobLink"],
    }
