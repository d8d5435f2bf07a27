"""Connection → ClientSettings: token, base URL, extras, and clear errors naming the connection."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gradient._conn_fields import DEFAULT_BASE_URL, DEFAULT_CONSOLE_URL_TEMPLATE, EXTRA_FIELDS
from airflow_provider_gradient._settings import ClientSettings, RetryPolicy
from airflow_provider_gradient.exceptions import GradientConfigError
from airflow_provider_gradient.hooks.gradient import GradientHook

TOKEN = "dop_v1_test_token_never_logged"


def build(host: str | None = None, password: str | None = TOKEN, **extra: Any) -> ClientSettings:
    return ClientSettings.from_connection(conn_id="my_gradient", host=host, password=password, extra=extra)


# --------------------------------------------------------------------------------------------
# Token
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "", "   "])
def test_missing_token_names_the_connection(password: str | None) -> None:
    with pytest.raises(GradientConfigError, match=r"Connection 'my_gradient' has no API token") as info:
        build(password=password)
    assert "password" in str(info.value)
    assert "genai:read" in str(info.value)


def test_token_is_stripped_and_secret() -> None:
    settings = build(password=f"  {TOKEN}\n")
    assert settings.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in repr(settings.pool_key)


def test_token_key_is_stable_and_differs_per_token() -> None:
    assert build().token_key == build().token_key
    assert build().token_key != build(password="dop_v1_other").token_key
    assert TOKEN not in build().token_key


# --------------------------------------------------------------------------------------------
# Base URL
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, DEFAULT_BASE_URL),
        ("", DEFAULT_BASE_URL),
        ("  ", DEFAULT_BASE_URL),
        ("https://api.example.test", "https://api.example.test"),
        ("https://api.example.test/", "https://api.example.test"),
        ("api.example.test", "https://api.example.test"),
        ("https://api.example.test:8443", "https://api.example.test:8443"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
        ("http://emulator.localhost", "http://emulator.localhost"),
    ],
)
def test_base_url(host: str | None, expected: str) -> None:
    assert build(host=host).base_url == expected


@pytest.mark.parametrize("host", ["http://api.example.test", "http://10.0.0.5:8080", "http://localhost.evil.test"])
def test_plain_http_to_non_loopback_is_refused(host: str) -> None:
    with pytest.raises(GradientConfigError, match=r"'my_gradient'.*plain http://") as info:
        build(host=host)
    assert "allow_insecure_http" in str(info.value)


@pytest.mark.parametrize("flag", [True, "true", "True", 1, "1", "yes"])
def test_plain_http_allowed_when_asked(flag: object) -> None:
    assert build(host="http://api.example.test", allow_insecure_http=flag).base_url == "http://api.example.test"


@pytest.mark.parametrize("flag", [False, "false", "False", "0", 0, "no", "off"])
def test_allow_insecure_http_false_spellings_still_refuse(flag: object) -> None:
    # Extras from a connection URI arrive as strings: "false" must not be read as true.
    with pytest.raises(GradientConfigError, match="plain http://"):
        build(host="http://api.example.test", allow_insecure_http=flag)


def test_allow_insecure_http_garbage_is_named() -> None:
    with pytest.raises(GradientConfigError, match=r"'my_gradient'.*'allow_insecure_http'"):
        build(host="http://api.example.test", allow_insecure_http="maybe")


@pytest.mark.parametrize(
    "host", ["ftp://api.example.test", "https://", "https:///path", "https://api.example.test:99999999"]
)
def test_host_that_is_not_a_url(host: str) -> None:
    with pytest.raises(GradientConfigError, match=r"'my_gradient': host .* is not an API base URL"):
        build(host=host)


# --------------------------------------------------------------------------------------------
# Extras
# --------------------------------------------------------------------------------------------


def test_defaults_match_the_extras_table() -> None:
    settings = build()
    assert settings.read_timeout == EXTRA_FIELDS["timeout"][1]
    assert settings.connect_timeout == EXTRA_FIELDS["connect_timeout"][1]
    assert settings.retry.max_retries == EXTRA_FIELDS["max_retries"][1]
    assert settings.retry.budget == EXTRA_FIELDS["retry_budget"][1]
    assert settings.proxy is None
    assert settings.console_url_template == EXTRA_FIELDS["console_url_template"][1] == DEFAULT_CONSOLE_URL_TEMPLATE
    assert settings.requests_per_minute == EXTRA_FIELDS["requests_per_minute"][1]
    assert settings.requests_per_hour == EXTRA_FIELDS["requests_per_hour"][1]
    assert settings.retry == RetryPolicy(max_retries=5, budget=300.0)


def test_extras_are_read() -> None:
    settings = build(
        timeout="12.5",
        connect_timeout=3,
        max_retries="0",
        retry_budget=42,
        proxy="http://proxy.internal:3128",
        console_url_template="https://console.test/{knowledge_base_uuid}/{indexing_job_uuid}",
        requests_per_minute=100,
        requests_per_hour="1000",
    )
    assert settings.read_timeout == 12.5
    assert settings.connect_timeout == 3.0
    assert settings.retry.max_retries == 0
    assert settings.retry.budget == 42.0
    assert settings.proxy == "http://proxy.internal:3128"
    assert settings.console_url_template == "https://console.test/{knowledge_base_uuid}/{indexing_job_uuid}"
    assert (settings.requests_per_minute, settings.requests_per_hour) == (100, 1000)


def test_legacy_extra_spelling_is_accepted() -> None:
    settings = build(extra__gradient__timeout="7", extra__gradient__max_retries=2)
    assert settings.read_timeout == 7.0
    assert settings.retry.max_retries == 2


def test_new_spelling_wins_over_legacy() -> None:
    assert build(timeout=5, extra__gradient__timeout=7).read_timeout == 5.0


def test_empty_extra_means_default() -> None:
    assert build(timeout="", proxy="").read_timeout == 30.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", "fast"),
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", "nan"),
        ("timeout", "inf"),
        ("connect_timeout", [1]),
        ("max_retries", -1),
        ("retry_budget", 0),
        ("requests_per_minute", "lots"),
        ("requests_per_hour", 0),
        ("extra__gradient__timeout", "x"),
    ],
)
def test_invalid_extra_is_named(name: str, value: object) -> None:
    shown = name.removeprefix("extra__gradient__")
    with pytest.raises(GradientConfigError, match=rf"Connection 'my_gradient': extra '{shown}' must be"):
        build(**{name: value})


def test_max_retries_zero_is_allowed() -> None:
    assert build(max_retries=0).retry.max_retries == 0


@pytest.mark.parametrize("template", ["https://x/{unknown}", "https://x/{0}", "https://x/{"])
def test_bad_console_template_is_named(template: str) -> None:
    with pytest.raises(GradientConfigError, match="console_url_template"):
        build(console_url_template=template)


def test_pool_key_separates_what_must_not_share_a_pool() -> None:
    base = build(host="https://a.test")
    assert base.pool_key == build(host="https://a.test").pool_key
    assert base.pool_key != build(host="https://b.test").pool_key
    assert base.pool_key != build(host="https://a.test", password="dop_v1_other").pool_key
    assert base.pool_key != build(host="https://a.test", timeout=5).pool_key
    assert base.pool_key != build(host="https://a.test", proxy="http://p:1").pool_key


# --------------------------------------------------------------------------------------------
# Through the hook: the Airflow connection's fields
# --------------------------------------------------------------------------------------------


def test_hook_reads_json_connection(mock_conn: Any) -> None:
    hook = GradientHook()
    assert hook.settings.base_url == mock_conn.base_url
    assert hook.settings.token.get_secret_value() == mock_conn.token
    assert mock_conn.token not in repr(hook)


def test_hook_missing_token_names_the_connection(make_conn: Any) -> None:
    make_conn("gradient_no_token", password=None)
    with pytest.raises(GradientConfigError, match="'gradient_no_token' has no API token"):
        _ = GradientHook("gradient_no_token").settings


def test_hook_extras_from_the_connection(make_conn: Any) -> None:
    make_conn("gradient_x", extra={"extra__gradient__timeout": "9", "retry_budget": 1})
    settings = GradientHook("gradient_x").settings
    assert settings.read_timeout == 9.0
    assert settings.retry.budget == 1.0


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gradient://:tok_abcdef@api.example.test", "https://api.example.test"),
        ("gradient://:tok_abcdef@api.example.test:8443", "https://api.example.test:8443"),
        ("gradient://:tok_abcdef@localhost:8765/http", "http://localhost:8765"),
        ("gradient://:tok_abcdef@localhost:8765", "https://localhost:8765"),
        ("gradient://:tok_abcdef@", DEFAULT_BASE_URL),
    ],
)
def test_hook_reads_uri_connection(monkeypatch: pytest.MonkeyPatch, uri: str, expected: str) -> None:
    # host, port and schema ("http"/"https") of a URI-style connection make the base URL.
    monkeypatch.setenv("AIRFLOW_CONN_GRADIENT_URI", uri)
    assert GradientHook("gradient_uri").settings.base_url == expected


def test_hook_console_url(make_conn: Any) -> None:
    make_conn("gradient_c", extra={"console_url_template": "https://c.test/{knowledge_base_uuid}/{indexing_job_uuid}"})
    assert GradientHook("gradient_c").console_url("kb", "job") == "https://c.test/kb/job"
    assert GradientHook("gradient_c").console_url(None, None) == "https://c.test//"


def test_malformed_port_is_a_config_error() -> None:
    with pytest.raises(GradientConfigError, match="is not an API base URL"):
        build(host="https://api.example.test:notaport")
