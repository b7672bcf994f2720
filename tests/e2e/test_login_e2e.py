"""WeChat login end to end: real gunicorn workers, real HTTP, the fake WeChat server or the
sandbox. Every failure answers the contract's status and error code (API.md); a code reaches
WeChat at most once, also under concurrency and after a failed exchange."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from backend.config import SANDBOX_APPID
from backend.wechat import SandboxWeChat
from tests.support.secrets import REGISTRY

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/wechat-login"
DEADLINE_S = 6.0


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    """The response is the contract's error body with that status and code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def assert_retry_after(response: requests.Response) -> None:
    value = response.headers.get("Retry-After")
    assert value is not None and value.isdigit() and int(value) > 0, response.headers


def assert_no_secret(response: requests.Response) -> None:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    leaks = REGISTRY.leaks_in(response.text + "\n" + headers)
    assert not leaks, f"secret(s) in a response: {leaks}"


def assert_unavailable(response: requests.Response) -> None:
    assert_error(response, 503, "wechat.unavailable")
    assert_retry_after(response)


# --- against the fake WeChat server --------------------------------------------------------


def test_login_success_then_me(live_server):
    response = live_server.login("ok-alice")
    assert_no_secret(response)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expires_in", "user"}
    assert isinstance(body["token"], str) and body["token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    user = body["user"]
    assert set(user) >= {"id", "nickname", "avatar_url", "is_new"}
    assert isinstance(user["id"], int)
    assert user["is_new"] is True
    assert user["nickname"] is None or isinstance(user["nickname"], str)
    assert user["avatar_url"] is None or isinstance(user["avatar_url"], str)
    assert live_server.wechat.requests["ok-alice"] == 1
    REGISTRY.add(body["token"], "token of alice")

    me = live_server.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert_no_secret(me)
    assert me.status_code == 200, me.text
    profile = me.json()
    assert profile["id"] == user["id"]
    assert set(profile) >= {"id", "nickname", "avatar_url", "on_leaderboard", "campaigns"}
    assert profile["campaigns"] == []
    for text in (response.text, me.text):
        assert "openid" not in text and "session_key" not in text and "unionid" not in text


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (40029, 401, "auth.code_invalid"),
        (40163, 401, "auth.code_invalid"),
        (45011, 429, "auth.wechat_rate_limited"),
        (40226, 403, "auth.user_blocked"),
        (-1, 503, "wechat.unavailable"),
        (99999, 503, "wechat.unavailable"),
    ],
)
def test_wechat_errcodes(live_server, errcode, status, code):
    js_code = f"err-{errcode}"
    response = live_server.login(js_code)
    assert_error(response, status, code)
    if status in (429, 503):
        assert_retry_after(response)
    assert live_server.wechat.requests[js_code] == 1


@pytest.mark.parametrize("js_code", ["html", "html200", "partial"])
def test_unusable_replies_are_unavailable(live_server, js_code):
    response = live_server.login(js_code)
    assert_unavailable(response)
    assert live_server.wechat.requests[js_code] == 1


@pytest.mark.parametrize("js_code", ["hang", "drip"])
def test_slow_wechat_is_abandoned_at_the_deadline(live_server, js_code):
    started = time.monotonic()
    response = live_server.login(js_code)
    elapsed = time.monotonic() - started
    assert_unavailable(response)
    assert elapsed < DEADLINE_S, f"{js_code}: answered after {elapsed:.1f} s"
    assert live_server.wechat.requests[js_code] == 1


def test_a_repeated_code_never_reaches_wechat_twice(live_server):
    first = live_server.login("ok-bob")
    assert first.status_code == 200, first.text
    REGISTRY.add(first.json()["token"], "token of bob")
    second = live_server.login("ok-bob")
    assert_error(second, 401, "auth.code_invalid")
    assert live_server.wechat.requests["ok-bob"] == 1


def test_concurrent_logins_with_one_code(live_server):
    js_code, attempts = "ok-carol", 10
    barrier = threading.Barrier(attempts)
    responses: list = [None] * attempts  # a Response, or what the attempt raised

    def attempt(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = live_server.login(js_code)
        except BaseException as error:  # reported below, with the other outcomes
            responses[index] = error

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    failures = [r for r in responses if not isinstance(r, requests.Response)]
    assert not failures, failures
    for response in responses:
        if response.status_code == 200:
            REGISTRY.add(response.json()["token"], "token of carol")
    outcomes = Counter(
        (r.status_code, r.json()["error"]["code"] if r.status_code != 200 else None)
        for r in responses
    )
    assert outcomes == {(200, None): 1, (401, "auth.code_invalid"): attempts - 1}, outcomes
    for response in responses:
        if response.status_code != 200:
            assert_error(response, 401, "auth.code_invalid")
    assert live_server.wechat.requests[js_code] == 1


def test_a_code_that_failed_is_refused_without_calling_wechat(live_server):
    js_code = "err--01"  # errcode -1 under a code of its own (requests are counted per code)
    first = live_server.login(js_code)
    assert_unavailable(first)
    retry = live_server.login(js_code)
    assert_error(retry, 401, "auth.code_invalid")
    assert live_server.wechat.requests[js_code] == 1


# --- against the sandbox -------------------------------------------------------------------


def register_sandbox_secrets(secret_key: str, name: str, logins: int) -> None:
    """The openid, unionid and session_keys the sandbox derives for ``name``, for the scans."""
    sandbox = SandboxWeChat(secret_key, SANDBOX_APPID, lambda _openid: 0)
    openid, unionid = sandbox.identity(name)
    REGISTRY.add(openid, f"sandbox openid of {name}")
    REGISTRY.add(unionid, f"sandbox unionid of {name}")
    for number in range(1, logins + 1):
        REGISTRY.add(sandbox.session_key(openid, number), f"sandbox session_key of {name}")


def test_sandbox_login_twice(sandbox_server, secret_key):
    register_sandbox_secrets(secret_key, "alice", logins=2)
    first = sandbox_server.login("sandbox:alice")
    second = sandbox_server.login("sandbox:alice")
    for response in (first, second):
        assert_no_secret(response)
        assert response.status_code == 200, response.text
    for response in (first, second):  # both tokens may be equal: same claims, same second
        REGISTRY.add(response.json()["token"], "sandbox token of alice")
    assert first.json()["user"]["id"] == second.json()["user"]["id"]
    assert first.json()["user"]["is_new"] is True
    assert second.json()["user"]["is_new"] is False
    me = sandbox_server.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {second.json()['token']}"}
    )
    assert_no_secret(me)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == first.json()["user"]["id"]


def test_sandbox_blocked_user(sandbox_server):
    assert_error(sandbox_server.login("sandbox:error:40226"), 403, "auth.user_blocked")


def test_sandbox_refuses_other_codes(sandbox_server):
    assert_error(sandbox_server.login("ok-dave"), 401, "auth.code_invalid")
