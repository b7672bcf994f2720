"""GET and PATCH /me per contract, and the nickname content check."""

from datetime import UTC, datetime

import pytest

from backend.extensions import db
from backend.models import User


def test_get_me_per_contract(client, login):
    alice = login("alice")
    response = client.get("/api/v1/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json == {
        "id": alice.user_id, "nickname": None, "nickname_status": "none", "avatar_url": None,
        "on_leaderboard": True, "campaigns": [],
    }


def test_patch_me_changes_what_was_sent_only(client, login):
    alice = login("alice")
    response = client.patch("/api/v1/me", headers=alice.headers, json={
        "nickname": "  小明 ", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/abc/132",
    })
    assert response.status_code == 200
    assert response.json["nickname"] == "小明"
    assert response.json["nickname_status"] == "pass"
    assert response.json["avatar_url"] == "https://thirdwx.qlogo.cn/mmopen/abc/132"
    hidden = client.patch("/api/v1/me", headers=alice.headers, json={"on_leaderboard": False})
    assert hidden.json["nickname"] == "小明" and hidden.json["on_leaderboard"] is False
    assert client.get("/api/v1/me", headers=alice.headers).json == hidden.json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nickname": "   "}, "nickname"),
        ({"nickname": "x" * 33}, "nickname"),
        ({"nickname": "bad\x07name"}, "nickname"),
        ({"nickname": "two\nlines"}, "nickname"),
        ({"avatar_url": "http://wx.qlogo.cn/a.png"}, "avatar_url"),
        ({"avatar_url": "https://evil.example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "https://wx.qlogo.cn.evil.com/a.png"}, "avatar_url"),
        ({"on_leaderboard": "maybe"}, "on_leaderboard"),
        ({"openid": "x"}, "openid"),
    ],
)
def test_patch_me_rejects_bad_input_naming_the_field(client, login, body, field):
    alice = login("alice")
    response = client.patch("/api/v1/me", headers=alice.headers, json=body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation.failed"
    assert field in response.json["error"]["fields"]
    assert client.get("/api/v1/me", headers=alice.headers).json["nickname"] is None


def test_nickname_shown_publicly_only_after_the_check_passes(app, client, login):
    alice = login("alice")
    response = client.patch("/api/v1/me", headers=alice.headers, json={"nickname": "Al [review]"})
    assert response.json["nickname_status"] == "review"
    with app.app_context():
        assert db.session.get(User, alice.user_id).public_name == "低碳达人"
    client.patch("/api/v1/me", headers=alice.headers, json={"nickname": "Alice"})
    with app.app_context():
        assert db.session.get(User, alice.user_id).public_name == "Alice"


def test_nickname_stays_pending_when_wechat_cannot_check(wechat_app, fake_wechat):
    client = wechat_app.test_client()
    token = client.post("/api/v1/auth/wechat-login", json={"code": "ok-gina"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    fake_wechat.text_verdicts["Gina"] = "risky"
    assert client.patch("/api/v1/me", headers=headers,
                        json={"nickname": "Gina"}).json["nickname_status"] == "risky"
    assert client.patch("/api/v1/me", headers=headers,
                        json={"nickname": "Gigi"}).json["nickname_status"] == "pass"
    assert fake_wechat.requests["/cgi-bin/stable_token"] == 1  # the token is cached
    fake_wechat.stop()
    response = client.patch("/api/v1/me", headers=headers, json={"nickname": "Gina G"})
    assert response.status_code == 200 and response.json["nickname_status"] == "pending"


def test_sandbox_werun_data_decrypts_with_my_session_key(app, client, login):
    from backend.services.logins import session_key_of
    from backend.wechat_crypto import decrypt_open_data

    alice = login("alice")
    response = client.post("/api/v1/sandbox/werun-data", headers=alice.headers, json={
        "days": [{"date": "2026-11-24", "steps": 8000}, {"date": "2026-11-23", "steps": 12000}],
    })
    assert response.status_code == 200
    with app.app_context():
        key = session_key_of(db.session.get(User, alice.user_id))
        data = decrypt_open_data(key, response.json["iv"], response.json["encrypted_data"],
                                 app.config["WECHAT_APPID"])
    # Beijing midnights (16:00 UTC the day before), oldest first
    nov_23, nov_24 = (int(datetime(2026, 11, day, 16, tzinfo=UTC).timestamp()) for day in (22, 23))
    assert data["stepInfoList"] == [
        {"timestamp": nov_23, "step": 12000}, {"timestamp": nov_24, "step": 8000},
    ]
