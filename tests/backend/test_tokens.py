"""Participant and staff tokens: missing, tampered, expired, revoked, wrong type, wrong alg."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from backend.auth import issue_token
from backend.extensions import db
from backend.models import User


def error_code(response):
    return response.status_code, response.json["error"]["code"]


def test_missing_token_is_401_token_missing(client):
    assert error_code(client.get("/api/v1/me")) == (401, "auth.token_missing")


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer not.a.jwt", "Token x"])
def test_garbage_is_401_token_invalid(client, header):
    assert error_code(client.get("/api/v1/me", headers={"Authorization": header})) == (
        401, "auth.token_invalid")


def test_tampered_token_is_401_token_invalid(client, login):
    alice = login("alice")
    head, payload, signature = alice.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(int(claims["sub"]) + 1)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    forged_token = f"{head}.{forged}.{signature}"
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged_token}"})
    assert error_code(response) == (401, "auth.token_invalid")


def test_expired_token_is_401_token_expired(app, client, login):
    alice = login("alice")
    with app.test_request_context():
        old = issue_token("participant", alice.user_id, 1,
                          now=datetime.now(UTC) - timedelta(days=30)).token
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert error_code(response) == (401, "auth.token_expired")


def test_algorithm_swap_is_refused(app, client, login, secret_key):
    alice = login("alice")
    claims = {"typ": "participant", "sub": str(alice.user_id), "ver": 1,
              "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}
    for token in (
        jwt.encode(claims, secret_key, algorithm="HS512"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert error_code(response) == (401, "auth.token_invalid")


def test_token_signed_with_another_key_is_invalid(client, login):
    alice = login("alice")
    claims = {"typ": "participant", "sub": str(alice.user_id), "ver": 1,
              "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}
    token = jwt.encode(claims, "another-key-of-32-bytes-or-more-x", algorithm="HS256")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert error_code(response) == (401, "auth.token_invalid")


def test_a_version_that_is_not_an_integer_is_invalid(client, login, secret_key):
    alice = login("alice")
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    for version in (True, "1", 1.0):
        claims = {"typ": "participant", "sub": str(alice.user_id), "ver": version, "exp": exp}
        token = jwt.encode(claims, secret_key, algorithm="HS256")
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert error_code(response) == (401, "auth.token_invalid"), version


def test_raising_the_version_revokes_old_tokens(app, client, login):
    alice = login("alice")
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 200
    with app.app_context():
        db.session.get(User, alice.user_id).token_version += 1
        db.session.commit()
    assert error_code(client.get("/api/v1/me", headers=alice.headers)) == (
        401, "auth.token_invalid")
