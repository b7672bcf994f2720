"""The WeChat client against a fake WeChat server over HTTP."""

import time

import pytest

from backend import wechat
from backend.errors import ApiError
from tests.support.fake_wechat import APP_SECRET, APPID


def test_a_slow_reply_frees_its_thread_at_the_deadline(fake_wechat, monkeypatch):
    monkeypatch.setattr(wechat, "DEADLINE_S", 1.0)
    client = wechat.WeChatClient(fake_wechat.base_url, APPID, APP_SECRET, max_workers=1)
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        client.code2session("drip")
    assert caught.value.code == "wechat.unavailable"
    assert time.monotonic() - started < 2.0
    # With one worker thread, this login works only if the dripping request let go of it.
    session = client.code2session("ok-zed")
    assert session.openid == fake_wechat.identity("zed")[0]
    assert time.monotonic() - started < 3.0


def test_a_silent_server_is_abandoned_at_the_deadline(fake_wechat, monkeypatch):
    monkeypatch.setattr(wechat, "DEADLINE_S", 1.0)
    client = wechat.WeChatClient(fake_wechat.base_url, APPID, APP_SECRET, max_workers=1)
    started = time.monotonic()
    with pytest.raises(ApiError):
        client.code2session("hang")
    assert client.code2session("ok-yan").openid == fake_wechat.identity("yan")[0]
    assert time.monotonic() - started < 3.0


def test_session_repr_hides_the_secrets(fake_wechat):
    client = wechat.WeChatClient(fake_wechat.base_url, APPID, APP_SECRET)
    session = client.code2session("ok-xia")
    assert session.openid not in repr(session) and session.session_key not in repr(session)
