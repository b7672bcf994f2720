"""Participant rate limits (issue 9): logins per client address, intake per participant;
429 rate_limited with Retry-After; RATE_LIMITS_ENABLED and TRUSTED_PROXIES honoured. (Staff
login and partner webhook limits: test_staff.py, test_partners.py.)"""

from __future__ import annotations

import uuid

import pytest

from tests.backend.board_helpers import (
    API,
    campaign_document,
    create_live_campaign,
    day,
    install_clock,
    unique,
)

LIMITS = {"RATE_LIMIT_LOGIN": "3 per minute", "RATE_LIMIT_INTAKE": "3 per minute"}


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


def limited(make_app, enabled: str = "1", **environ):
    app = make_app(LIMITS, RATE_LIMITS_ENABLED=enabled, **environ)
    if app.config.get("REDIS_URL"):
        from backend.extensions import limiter

        with app.app_context():
            limiter.reset()  # the shared storage keeps counts between tests
    return app, app.test_client()


def login(client, name: str, **headers):
    return client.post("/api/v1/auth/wechat-login", json={"code": f"sandbox:{name}"},
                       headers=headers)


def assert_limited(response):
    assert response.status_code == 429, response.json
    assert response.json["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0


def test_logins_are_limited_per_address(make_app):
    _, client = limited(make_app)
    for index in range(3):
        assert login(client, unique(f"p{index}")).status_code == 200
    assert_limited(login(client, unique("p3")))


def test_forwarded_addresses_count_only_behind_trusted_proxies(make_app):
    _, client = limited(make_app, TRUSTED_PROXIES="1")
    for index in range(3):
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        assert login(client, unique(f"a{index}"), **forwarded).status_code == 200
    assert_limited(login(client, unique("a3"), **{"X-Forwarded-For": "203.0.113.7"}))
    assert login(client, unique("b"), **{"X-Forwarded-For": "198.51.100.9"}).status_code == 200

    _, untrusting = limited(make_app)  # no trusted proxy: the header is the client's own say
    for index in range(3):
        forwarded = {"X-Forwarded-For": f"198.51.100.{index}"}
        assert login(untrusting, unique(f"c{index}"), **forwarded).status_code == 200
    assert_limited(login(untrusting, unique("c3"), **{"X-Forwarded-For": "198.51.100.99"}))


def test_intake_is_limited_per_participant(make_app, clock):
    app, client = limited(make_app, RATE_LIMIT_LOGIN="100 per minute")
    slug = unique("limits")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-3), ends_on=day(20)))
    tokens = []
    for name in ("x", "y"):
        token = login(client, unique(name)).json["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.post(f"{API}/{slug}/join", headers=headers, json={}).status_code == 201
        tokens.append(headers)

    def ride(headers):
        return client.post(f"{API}/{slug}/checkins", json={"action": "metro_ride"},
                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})

    for _ in range(3):
        assert ride(tokens[0]).status_code == 201
    assert_limited(ride(tokens[0]))
    assert ride(tokens[1]).status_code == 201  # another participant is not slowed down


def test_limits_off_when_disabled(make_app):
    _, client = limited(make_app, enabled="0")
    for index in range(5):
        assert login(client, unique(f"d{index}")).status_code == 200
