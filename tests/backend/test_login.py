"""WeChat login through the API: sandbox and a fake WeChat server over HTTP."""

from backend.extensions import db
from backend.models import User
from backend.services.logins import session_key_of


def login(client, code):
    return client.post("/api/v1/auth/wechat-login", json={"code": code})


def test_sandbox_login_twice_is_the_same_user(client):
    first, second = login(client, "sandbox:alice"), login(client, "sandbox:alice")
    assert first.status_code == second.status_code == 200
    assert first.json["user"]["id"] == second.json["user"]["id"]
    assert first.json["user"]["is_new"] is True and second.json["user"]["is_new"] is False
    assert set(first.json) == {"token", "expires_in", "user"}
    assert set(first.json["user"]) == {"id", "nickname", "avatar_url", "is_new"}
    assert first.json["expires_in"] > 0


def test_sandbox_names_are_different_people(client):
    alice, bob = login(client, "sandbox:alice"), login(client, "sandbox:bob")
    assert alice.json["user"]["id"] != bob.json["user"]["id"]


def test_each_sandbox_login_rotates_the_session_key(app, client):
    keys = []
    for _ in range(3):
        user_id = login(client, "sandbox:carol").json["user"]["id"]
        with app.app_context():
            keys.append(session_key_of(db.session.get(User, user_id)))
    assert len(set(keys)) == 3


def test_sandbox_error_codes_give_the_contract_errors(client):
    expected = {
        "40029": (401, "auth.code_invalid"), "40163": (401, "auth.code_invalid"),
        "45011": (429, "auth.wechat_rate_limited"), "40226": (403, "auth.user_blocked"),
        "-1": (503, "wechat.unavailable"), "12345": (503, "wechat.unavailable"),
    }
    for errcode, (status, code) in expected.items():
        response = login(client, f"sandbox:error:{errcode}")
        assert (response.status_code, response.json["error"]["code"]) == (status, code)
        if status in (429, 503):
            assert int(response.headers["Retry-After"]) > 0


def test_other_codes_are_invalid_in_the_sandbox(client):
    for code in ("real-looking-code", "sandbox:", "sandbox:" + "x" * 33, "sandbox:a b"):
        response = login(client, code)
        assert (response.status_code, response.json["error"]["code"]) == (401, "auth.code_invalid")


def test_session_keys_and_openids_are_kept_server_side_only(app, client, secret_scan):
    response = login(client, "sandbox:dave")
    with app.app_context():
        user = db.session.get(User, response.json["user"]["id"])
        assert user.openid and user.unionid
        assert session_key_of(user) not in (user.session_key_enc or "")
        for value in (user.openid, user.unionid, session_key_of(user)):
            assert value not in response.get_data(as_text=True)


def test_fake_wechat_login_stores_the_newest_session_key(wechat_app, fake_wechat):
    client = wechat_app.test_client()
    first = login(client, "ok-erin")
    second = login(client, "ok-erin2")
    assert first.status_code == second.status_code == 200
    with wechat_app.app_context():
        user = db.session.get(User, first.json["user"]["id"])
        openid = fake_wechat.identity("erin")[0]
        assert session_key_of(user) == fake_wechat.session_keys[openid]
        assert user.unionid == fake_wechat.identity("erin")[1]


def test_a_code_reaches_wechat_once(wechat_app, fake_wechat):
    client = wechat_app.test_client()
    assert login(client, "ok-frank").status_code == 200
    again = login(client, "ok-frank")
    assert (again.status_code, again.json["error"]["code"]) == (401, "auth.code_invalid")
    assert fake_wechat.requests["ok-frank"] == 1


def test_a_code_that_failed_is_not_sent_again(wechat_app, fake_wechat):
    client = wechat_app.test_client()
    assert login(client, "err--1").status_code == 503
    retry = login(client, "err--1")
    assert (retry.status_code, retry.json["error"]["code"]) == (401, "auth.code_invalid")
    assert fake_wechat.requests["err--1"] == 1


def test_reply_without_session_key_is_unavailable(wechat_app):
    response = login(wechat_app.test_client(), "partial")
    assert (response.status_code, response.json["error"]["code"]) == (503, "wechat.unavailable")


def test_unreachable_wechat_is_retried_once_then_503(make_app):
    import socket

    with socket.socket() as sock:  # a port with nobody listening: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(WECHAT_SANDBOX="0", WECHAT_APPID="wx1", WECHAT_SECRET="s" * 16,
                   WECHAT_API_BASE=f"http://127.0.0.1:{port}")
    response = login(app.test_client(), "any-code")
    assert (response.status_code, response.json["error"]["code"]) == (503, "wechat.unavailable")
    assert response.headers["Retry-After"]
