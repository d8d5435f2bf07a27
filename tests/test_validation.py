"""Argument checks shared by the operators and the sensor."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from airflow_provider_gradient._validation import (
    is_template,
    optional_seconds,
    optional_uuid,
    seconds,
    uuid_list_or_none,
)
from airflow_provider_gradient.exceptions import GradientConfigError

U1 = "123e4567-e89b-12d3-a456-426614174000"
U2 = "223e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ ti.xcom_pull('a') }}", True),
        ("{% if x %}a{% endif %}", True),
        (U1, False),
        ([U1, "{{ x }}"], True),
        ([U1], False),
        (None, False),
        (5, False),
    ],
)
def test_is_template(value: object, expected: bool) -> None:
    assert is_template(value) is expected


def test_xcomarg_is_a_template() -> None:
    from airflow.sdk import DAG, task

    with DAG("v"):

        @task
        def produce() -> str:
            return U1

        arg = produce()
    assert is_template(arg)


@pytest.mark.parametrize("empty", [None, "", "None", "none", " null "])
def test_optional_uuid_empty_values(empty: object) -> None:
    assert optional_uuid(empty, "indexing_job_uuid") is None
    with pytest.raises(GradientConfigError, match="knowledge_base_uuid is required"):
        optional_uuid(empty, "knowledge_base_uuid", required=True)


def test_optional_uuid_normalises_and_rejects() -> None:
    assert optional_uuid(f" {U1.upper()} ", "x") == U1
    with pytest.raises(GradientConfigError, match="knowledge_base_uuid must be a UUID") as info:
        optional_uuid("my-kb", "knowledge_base_uuid")
    assert "'my-kb'" in str(info.value)
    with pytest.raises(GradientConfigError, match="indexing_job_uuid must be a UUID string"):
        optional_uuid(42, "indexing_job_uuid")


def test_uuid_list() -> None:
    assert uuid_list_or_none(None, "data_source_uuids") is None
    assert uuid_list_or_none([U1, U2, U1], "data_source_uuids") == [U1, U2]
    # What a template renders for a list: JSON or a Python repr.
    assert uuid_list_or_none(f'["{U1}"]', "data_source_uuids") == [U1]
    assert uuid_list_or_none(f"['{U1}', '{U2}']", "data_source_uuids") == [U1, U2]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (U1, r"data_source_uuids must be a list of UUID strings.*Wrap a single uuid in a list"),
        ([], "data_source_uuids must not be empty"),
        ([U1, "nope"], r"data_source_uuids\[1\] must be a UUID"),
        ({"a": U1}, "data_source_uuids must be a list"),
    ],
)
def test_uuid_list_errors(value: object, match: str) -> None:
    with pytest.raises(GradientConfigError, match=match):
        uuid_list_or_none(value, "data_source_uuids")


def test_seconds() -> None:
    assert seconds(5, "poll_interval") == 5.0
    assert seconds(timedelta(minutes=2), "timeout") == 120.0
    assert optional_seconds(None, "timeout") is None
    assert optional_seconds(timedelta(seconds=1), "timeout") == 1.0


@pytest.mark.parametrize("bad", [0, -1, -0.5, timedelta(0), timedelta(seconds=-3)])
def test_seconds_must_be_positive(bad: object) -> None:
    with pytest.raises(GradientConfigError, match="poll_interval must be greater than 0"):
        seconds(bad, "poll_interval")


@pytest.mark.parametrize("bad", [None, "30", True, math.nan, math.inf, [1]])
def test_seconds_must_be_a_number(bad: object) -> None:
    with pytest.raises(GradientConfigError, match="timeout must be seconds"):
        seconds(bad, "timeout")
