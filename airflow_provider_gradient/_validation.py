"""
Argument checks shared by the operators and the sensor: clear errors, before any request.

Literal values are checked when the DAG is parsed; templated values (Jinja strings, XComArgs)
after rendering, before the first request.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
from datetime import timedelta
from typing import Any

from airflow_provider_gradient._uuids import validate_uuid, validate_uuid_list
from airflow_provider_gradient.exceptions import GradientConfigError

__all__ = [
    "is_template",
    "knowledge_base_name",
    "one_knowledge_base",
    "optional_seconds",
    "optional_uuid",
    "seconds",
    "uuid_list_or_none",
]

#: What an empty XCom renders to in a template: treated as "no value", not as a bad uuid.
_EMPTY = frozenset({"", "none", "null"})


def is_template(value: Any) -> bool:
    """Whether ``value`` is only known after rendering (a Jinja string or an XComArg-like object)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(is_template(item) for item in value)
    return hasattr(value, "resolve") or type(value).__name__ in ("XComArg", "PlainXComArg", "ArgNotSet")


def optional_uuid(value: Any, param: str, *, required: bool = False) -> str | None:
    """
    A rendered uuid argument: ``None`` for an empty value (e.g. the XCom of a task that never ran),
    else the validated uuid.

    :raises GradientConfigError: For a value that is not a uuid, or an empty one when ``required``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in _EMPTY):
        if required:
            raise GradientConfigError(
                f"{param} is required, got {value!r}. Pass the uuid of the knowledge base to index "
                "(from the Gradient console or the API)."
            )
        return None
    return validate_uuid(value, param)


def one_knowledge_base(owner: str, uuid: Any, name: Any, *, required: bool = True) -> None:
    """
    Check that exactly one of ``knowledge_base_uuid`` and ``knowledge_base_name`` was given (at
    DAG parse, before any request); a literal name is checked too.

    :param owner: The class, for the error message.
    :param uuid: The ``knowledge_base_uuid`` argument.
    :param name: The ``knowledge_base_name`` argument.
    :param required: Whether one of them must be given (``False`` where a job uuid may stand in).
    :raises GradientConfigError: Both, or neither when ``required``.
    """
    if uuid is not None and name is not None:
        raise GradientConfigError(
            f"{owner} takes knowledge_base_uuid or knowledge_base_name, not both "
            f"(got {uuid!r} and {name!r}). Keep one of them."
        )
    if uuid is None and name is None and required:
        raise GradientConfigError(
            f"{owner} needs knowledge_base_uuid or knowledge_base_name (the knowledge base's name in the console)."
        )
    if name is not None and not is_template(name):
        knowledge_base_name(name)


def knowledge_base_name(value: Any) -> str:
    """
    A rendered ``knowledge_base_name``: a non-empty string.

    :raises GradientConfigError: For anything else.
    """
    if not isinstance(value, str) or not value.strip() or value.strip().lower() in _EMPTY:
        raise GradientConfigError(
            f"knowledge_base_name must be a knowledge base's name as the console shows it, got {value!r}."
        )
    return value


def uuid_list_or_none(value: Any, param: str) -> list[str] | None:
    """
    A rendered list-of-uuids argument. ``None`` means "all"; a string that renders a list
    (``"['a', 'b']"`` from a template) is accepted; a bare string is an error.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                value = json.loads(text)
            except ValueError:
                with contextlib.suppress(ValueError, SyntaxError):
                    value = ast.literal_eval(text)
    return validate_uuid_list(value, param)


def optional_seconds(value: Any, param: str) -> float | None:
    """Like :func:`seconds`, but ``None`` (no limit) is allowed."""
    return None if value is None else seconds(value, param)


def seconds(value: Any, param: str) -> float:
    """
    A duration argument in seconds (a number or a ``timedelta``), which must be > 0.

    :raises GradientConfigError: For a missing, zero, negative, non-numeric or infinite value.
    """
    number = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number) or math.isinf(number):
        raise GradientConfigError(f"{param} must be seconds (a number > 0) or a timedelta, got {value!r}.")
    if number <= 0:
        raise GradientConfigError(f"{param} must be greater than 0, got {value!r}.")
    return float(number)
