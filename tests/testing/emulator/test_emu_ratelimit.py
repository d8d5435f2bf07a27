"""Rolling-window rate limits: the limiter alone (fake time) and over HTTP (small limits)."""

from __future__ import annotations

import math
import time

import pytest
from _emu_helpers import API, Api, assert_error

from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.testing.emulator.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_minute_window_rolls() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_minute=3, per_hour=100, time_fn=clock)
    decisions = [limiter.check("t") for _ in range(3)]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.allowed for d in decisions)
    clock.now += 10
    blocked = limiter.check("t")
    assert not blocked.allowed
    assert blocked.retry_after == 50
    assert blocked.limit == 100
    clock.now += 49.5
    assert limiter.check("t").retry_after == 1
    clock.now += 0.6  # the first three expire together
    assert limiter.check("t").allowed
    # tokens are independent
    assert limiter.check("other").remaining == 2


def test_hour_window_has_no_retry_after_and_reset_points_at_oldest() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_minute=100, per_hour=2, time_fn=clock)
    first = limiter.check("t")
    clock.now += 120
    limiter.check("t")
    clock.now += 120
    blocked = limiter.check("t")
    assert not blocked.allowed
    assert blocked.retry_after is None
    assert "retry-after" not in blocked.headers()
    assert blocked.reset == first.reset  # oldest request + 1 h
    clock.now = 1000.0 + 3600.5
    assert limiter.check("t").allowed


def test_binding_headers_describe_the_window_with_fewer_left() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_minute=3, per_hour=5, time_fn=clock)
    first = limiter.check("t")  # minute: 2 left, hour: 4 left
    assert (first.remaining, first.reset) == (2, math.ceil(1000.0 + 60 + limiter._epoch_offset))
    clock.now += 61
    limiter.check("t")
    clock.now += 1
    third = limiter.check("t")  # minute: 1 left, hour: 2 left
    assert (third.remaining, third.reset) == (1, math.ceil(1061.0 + 60 + limiter._epoch_offset))
    clock.now += 61
    fourth = limiter.check("t")  # minute: 2 left, hour: 1 left: the hour binds now
    assert (fourth.remaining, fourth.reset) == (1, first.reset - 60 + 3600)


def test_hourly_headers_follow_the_documentation() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_minute=2, per_hour=100, time_fn=clock, headers="hourly")
    answers = [limiter.check("t") for _ in range(3)]
    # The minute window is invisible until it is hit; then remaining is 0, with retry-after.
    assert [a.remaining for a in answers] == [99, 98, 0]
    assert {a.reset for a in answers} == {math.ceil(1000.0 + 3600 + limiter._epoch_offset)}
    assert not answers[2].allowed
    assert answers[2].retry_after == 60
    limiter.configure(2, 100, headers="binding")
    assert limiter.headers == "binding"
    with pytest.raises(ValueError, match="headers must be one of"):
        limiter.configure(2, 100, headers="minutely")  # type: ignore[arg-type]


def test_header_mode_over_http(emu: GradientEmulator, api: Api) -> None:
    emu.set_rate_limits(per_minute=3, per_hour=50, headers="hourly")
    answers = [api.get(f"{API}/knowledge_bases") for _ in range(4)]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["49", "48", "47", "0"]
    assert answers[3].status_code == 429
    emu.reset()  # back to the constructor's reading
    assert api.get(f"{API}/knowledge_bases").headers["ratelimit-remaining"] == "249"


def test_zero_limits_block_everything() -> None:
    limiter = RateLimiter(per_minute=0, per_hour=None, time_fn=FakeTime())
    assert limiter.check("t").retry_after == 60
    assert RateLimiter(per_minute=None, per_hour=0).check("t").retry_after is None


def test_rejected_requests_are_not_counted() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_minute=1, per_hour=10, time_fn=clock)
    limiter.check("t")
    for _ in range(50):
        assert not limiter.check("t").allowed
    clock.now += 61
    assert limiter.check("t").remaining == 0  # min(1 - 1, 10 - 2)
    clock.now += 61
    assert limiter.check("t").allowed


def test_burst_limit_over_http(emu: GradientEmulator, api: Api) -> None:
    emu.set_rate_limits(per_minute=3, per_hour=50)
    before = time.time()
    answers = [api.get(f"{API}/knowledge_bases") for _ in range(4)]
    after = time.time()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["ratelimit-limit"] == "50" for a in answers)
    # "remaining" counts the minute window here (it has fewer left), and "reset" is that window's.
    reset = int(answers[0].headers["ratelimit-reset"])
    assert before + 60 - 1 <= reset <= after + 60 + 1  # (an epoch second, rounded up)
    assert answers[3].headers["ratelimit-reset"] == answers[0].headers["ratelimit-reset"]
    body = assert_error(answers[3], 429, "too_many_requests")
    assert body["message"] == "API rate limit exceeded."
    assert 0 < int(answers[3].headers["retry-after"]) <= 60
    # another token has its own windows
    emu.add_token("second")
    assert api.get(f"{API}/knowledge_bases", bearer="second").status_code == 200


def test_hourly_limit_over_http(emu: GradientEmulator, api: Api) -> None:
    emu.set_rate_limits(per_minute=100, per_hour=2)
    statuses = [api.get(f"{API}/knowledge_bases").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    blocked = api.get(f"{API}/knowledge_bases")
    assert "retry-after" not in blocked.headers
    assert blocked.headers["ratelimit-remaining"] == "0"


def test_control_api_is_never_rate_limited(emu: GradientEmulator, api: Api) -> None:
    emu.set_rate_limits(per_minute=0, per_hour=0)
    for _ in range(5):
        assert api.session.get(emu.base_url + "/_emulator/health").status_code == 200


def test_a_token_with_limits_of_its_own() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_minute=5, per_hour=100, time_fn=clock)
    limiter.limit_token("small", per_minute=2, per_hour=10)
    assert [limiter.check("small").allowed for _ in range(3)] == [True, True, False]
    assert limiter.check("small").limit == 10
    # The others keep the shared limits.
    assert [limiter.check("other").allowed for _ in range(6)] == [True] * 5 + [False]
    assert limiter.check("other").limit == 100
    limiter.reset()  # forgets the token's own limits too
    assert [limiter.check("small").allowed for _ in range(3)] == [True, True, True]


def test_token_limits_and_name_over_the_control_api(emu: GradientEmulator, api: Api) -> None:
    emu.set_rate_limits(per_minute=10, per_hour=100)
    control = api.session.post(
        emu.base_url + "/_emulator/tokens",
        json={"token": "dop_v1_team_b", "name": "team-b", "per_minute": 1, "per_hour": 7},
    )
    assert control.status_code == 200, control.text
    answers = [api.get(f"{API}/knowledge_bases", bearer="dop_v1_team_b") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[0].headers["ratelimit-limit"] == "7"
    assert api.get(f"{API}/knowledge_bases").status_code == 200  # the default token: shared limits
    recorded = emu.requests[-3:]
    assert [r.token_name for r in recorded] == ["team-b", "team-b", None]
    assert "dop_v1_team_b" not in repr(recorded)
