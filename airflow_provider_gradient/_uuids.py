"""
UUID argument checks, in a module light enough to import when a DAG file is parsed.

The operators and the sensor validate literal uuids at parse time; this module needs only the
standard library and the exception tree, not the API core (tenacity, the pydantic models).
"""

from __future__ import annotations

import functools
import uuid as uuid_lib
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_gradient.exceptions import GradientConfigError

__all__ = ["validate_uuid", "validate_uuid_list"]


def validate_uuid(value: Any, param: str) -> str:
    """
    Check that ``value`` is a UUID string and return it normalised (lower case, stripped).

    :param value: The value to check.
    :param param: The parameter name, for the error message.
    :raises GradientConfigError: If it is not a UUID. Nothing has been sent.
    """
    if not isinstance(value, str):
        raise GradientConfigError(
            f"{param} must be a UUID string such as '123e4567-e89b-12d3-a456-426614174000', "
            f"got {type(value).__name__} {value!r}."
        )
    return _normalised(value, param)


@functools.lru_cache(maxsize=4096)
def _normalised(value: str, param: str) -> str:
    """A UUID string checked and normalised; cached, as a wait checks its uuid on every read."""
    text = value.strip().strip("'\"")
    try:
        parsed = uuid_lib.UUID(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 36:
        raise GradientConfigError(
            f"{param} must be a UUID such as '123e4567-e89b-12d3-a456-426614174000', got {value!r}. "
            "Copy it from the Gradient console or the API (a knowledge base, data source or job uuid)."
        )
    return str(parsed)


def validate_uuid_list(values: Any, param: str) -> list[str]:
    """
    Check a list of UUIDs (not a single string, not empty) and return it normalised, deduplicated.

    :param values: The value to check.
    :param param: The parameter name, for the error message.
    :raises GradientConfigError: If it is not a non-empty list of UUIDs.
    """
    if isinstance(values, str) or not isinstance(values, Iterable) or isinstance(values, Mapping):
        raise GradientConfigError(
            f"{param} must be a list of UUID strings, got {type(values).__name__} {values!r}. "
            f"Wrap a single uuid in a list: {param}=[{values!r}]."
        )
    items = list(values)
    if not items:
        raise GradientConfigError(f"{param} must not be empty. Pass None (or leave it out) to index every data source.")
    result: list[str] = []
    for index, item in enumerate(items):
        normalised = validate_uuid(item, f"{param}[{index}]")
        if normalised not in result:
            result.append(normalised)
    return result
