"""The error tree: attributes, messages, pickling; the token never shows."""

from __future__ import annotations

import json
import pickle
import socket
import traceback

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_gradient import _api
from airflow_provider_gradient import exceptions as exc
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.testing.emulator import GradientEmulator

KB = "79ca9798-cf7d-11ef-bf8f-4e013e2ddde4"


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


def _texts(err: BaseException) -> list[str]:
    """Every form an error reaches a log, XCom or another process in."""
    return [
        str(err),
        repr(err),
        "".join(traceback.format_exception(type(err), err, err.__traceback__)),
        pickle.dumps(err).decode("latin-1"),
        repr(vars(err)),
    ]


def _failure(host: str, monkeypatch: pytest.MonkeyPatch, token: str, **extra: object) -> Exception:
    monkeypatch.setenv(
        "AIRFLOW_CONN_GRADIENT_DEFAULT",
        json.dumps({"conn_type": "gradient", "host": host, "password": token, "extra": extra}),
    )
    hook = GradientHook()
    try:
        hook.get_knowledge_base(KB)
    except Exception as err:
        return err
    finally:
        hook.close()
    raise AssertionError("the call did not fail")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong token", exc.GradientAuthError),
        ("server echoes the header", exc.GradientServerError),
        ("server echoes the token", exc.GradientAPIError),
        ("refused connection", exc.GradientTransportError),
    ],
)
def test_errors_from_real_failures_never_carry_the_token(
    gradient_emulator: GradientEmulator, monkeypatch: pytest.MonkeyPatch, case: str, expected: type[Exception]
) -> None:
    """
    Each failure is produced by the hook against the emulator with the token on the wire, and the
    API's own text may contain it (a gateway echoing the ``Authorization`` header). No form of the
    error holds the token. Putting the server's message into the error unredacted (dropping
    ``_api.redact``) turns the echo cases red.
    """
    token = "dop_v1_" + "5f" * 32
    gradient_emulator.add_token(token)
    echo = f"rejected header Authorization: Bearer {token}"
    if case == "wrong token":
        token = "dop_v1_" + "0e" * 32
    elif case == "server echoes the header":
        gradient_emulator.faults.add("genai_get_knowledge_base", status=500, message=echo)
    elif case == "server echoes the token":
        gradient_emulator.faults.add("genai_get_knowledge_base", status=400, message=f"bad token {token}")
    host = gradient_emulator.base_url
    if case == "refused connection":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sock.close()
    err = _failure(host, monkeypatch, token, max_retries=0)
    assert isinstance(err, expected), err
    for text in _texts(err):
        assert token not in text
    # The request carried the token (the refused connection never got that far).
    reached = [r for r in gradient_emulator.requests if r.operation == "genai_get_knowledge_base"]
    assert len(reached) == (0 if case == "refused connection" else 1)


@pytest.mark.parametrize("text", ["Authorization: Bearer abc.def-ghi", "token dop_v1_abc123 is revoked", "BEARER xyz"])
def test_redact_removes_what_looks_like_a_token(text: str) -> None:
    """A server's text loses anything that looks like a token (a pass-through ``redact`` turns this red)."""
    redacted = _api.redact(text)
    assert "[redacted]" in redacted
    for secret in ("abc.def-ghi", "dop_v1_abc123", "xyz"):
        assert secret not in redacted


def test_redact_keeps_ordinary_messages() -> None:
    message = "Failed to get db creds: the database is not ready. Try again later."
    assert _api.redact(message) == message
