"""The error tree: attributes, messages, pickling; the token never shows."""

from __future__ import annotations

import pickle

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_gradient import exceptions as exc

TOKEN = "dop_v1_test_token_never_logged"


def test_every_error_is_a_gradient_error_and_an_airflow_exception() -> None:
    classes = [getattr(exc, name) for name in exc.__all__ if name != "TRANSIENT_ERRORS"]
    assert len(classes) == len(exc.__all__) - 1
    for cls in classes:
        assert issubclass(cls, exc.GradientError), cls
        assert issubclass(cls, AirflowException), cls


def test_transient_errors_are_the_retryable_api_and_network_failures() -> None:
    assert set(exc.TRANSIENT_ERRORS) == {
        exc.GradientTransportError,
        exc.GradientServerError,
        exc.GradientResponseError,
        exc.GradientRateLimitError,
    }
    assert not any(issubclass(exc.GradientAuthError, cls) for cls in exc.TRANSIENT_ERRORS)


def test_config_error_is_also_a_value_error() -> None:
    assert issubclass(exc.GradientConfigError, ValueError)


@pytest.mark.parametrize(
    "cls",
    [
        exc.GradientAuthError,
        exc.GradientNotFoundError,
        exc.GradientRateLimitError,
        exc.GradientConflictError,
        exc.GradientDatabaseNotReadyError,
        exc.GradientServerError,
    ],
)
def test_api_error_subclasses(cls: type[exc.GradientAPIError]) -> None:
    assert issubclass(cls, exc.GradientAPIError)


def test_api_error_message_and_attributes() -> None:
    err = exc.GradientNotFoundError(
        http_status=404,
        error_id="not_found",
        message="The resource you were accessing could not be found.",
        request_id="req-42",
        operation="GET /v2/gen-ai/indexing_jobs/{uuid}",
        hint="Check the uuid.",
    )
    assert str(err) == (
        "GET /v2/gen-ai/indexing_jobs/{uuid}: HTTP 404 (not_found): The resource you were accessing "
        "could not be found. Check the uuid. [request_id=req-42]"
    )
    assert (err.http_status, err.error_id, err.request_id) == (404, "not_found", "req-42")
    assert err.api_message == "The resource you were accessing could not be found."
    assert err.retry_after is None


def test_api_error_message_without_optional_parts() -> None:
    err = exc.GradientAPIError(http_status=400, error_id=None, message="bad")
    assert str(err) == "HTTP 400: bad"


ERRORS = [
    exc.GradientServerError(
        http_status=503,
        error_id="service_unavailable",
        message="down",
        request_id="r1",
        operation="GET /x",
        retry_after=2.5,
    ),
    exc.GradientRateLimitError(http_status=429, error_id="too_many_requests", message="slow", retry_after=3.0),
    exc.GradientTransportError("GET /x: connection to https://api.example.test failed", request_sent=True),
    exc.GradientTransportError("GET /x: could not connect", request_sent=False),
    exc.GradientResponseError("GET /x: not JSON", http_status=200, request_id="r2"),
    exc.GradientJobError("job failed", indexing_job_uuid="j", phase="BATCH_JOB_PHASE_FAILED", status="S"),
    exc.GradientJobTimeoutError("timed out", indexing_job_uuid="j"),
    exc.GradientAmbiguousStartError("maybe started"),
    exc.GradientConfigError("bad uuid"),
]


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(err: exc.GradientError) -> None:
    clone = pickle.loads(pickle.dumps(err))  # noqa: S301 (our own bytes)
    assert type(clone) is type(err)
    assert str(clone) == str(err)
    assert clone.__dict__ == err.__dict__


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_never_carry_the_token(err: exc.GradientError) -> None:
    for text in (str(err), repr(err), pickle.dumps(err).decode("latin-1")):
        assert TOKEN not in text
