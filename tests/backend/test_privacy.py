"""GET /me/export and DELETE /me (issue 9, API.md): everything held about me, and erasure that
unlinks my pseudonyms while totals and the chain stay as they were."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import CampaignLedger, Participation, User
from tests.backend.board_helpers import (
    API,
    campaign_document,
    checkin,
    create_live_campaign,
    day,
    install_clock,
    join,
    make_person,
    pids_of,
    unique,
)


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def world(app, client, login, clock):
    slug = unique("privacy")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-3), ends_on=day(20)))
    alice, bob = make_person(login, client, "alice"), make_person(login, client, "bob")
    join(client, alice, slug, "red")
    join(client, bob, slug, "blue")
    for person, actions in ((alice, ("clean_plate", "metro_ride")), (bob, ("clean_plate",))):
        for action in actions:
            assert checkin(client, person, slug, action).status_code == 201
    return slug, alice, bob


def chain_head(app, slug):
    with app.app_context():
        from backend.models import Campaign
        campaign = db.session.scalars(select(Campaign).where(Campaign.slug == slug)).one()
        ledger = db.session.get(CampaignLedger, campaign.id)
        return ledger.head_seq, ledger.head_hash, ledger.total_mg


def test_export_holds_my_data_and_only_says_the_wechat_identity_is_held(app, client, world):
    slug, alice, _ = world
    response = client.get("/api/v1/me/export", headers=alice.headers)
    assert response.status_code == 200
    body = response.json
    assert body["wechat"] == {"openid_held": True, "unionid_held": True}
    assert body["profile"]["nickname"] == alice.nickname
    [mine] = body["campaigns"]
    assert mine["campaign"] == slug and mine["team"] == "red"
    assert mine["pseudonym"] == pids_of(app, slug)[alice.user_id]
    assert sorted(c["action"] for c in mine["checkins"]) == ["clean_plate", "metro_ride"]
    assert mine["reduction_g"] == sum(c["reduction_g"] for c in mine["checkins"])
    # The secret scan of the test client fails the test if openid or unionid appear.


def test_delete_me_unlinks_me_and_changes_no_total(app, client, world, login):
    slug, alice, bob = world
    before = chain_head(app, slug)
    progress = client.get(f"{API}/{slug}/progress").json
    board = client.get(f"{API}/{slug}/leaderboards/individuals").json
    assert alice.nickname in [e["name"] for e in board["entries"]]
    alice_pid = pids_of(app, slug)[alice.user_id]

    assert client.delete("/api/v1/me", headers=alice.headers).status_code == 204

    assert chain_head(app, slug) == before
    after = client.get(f"{API}/{slug}/progress").json
    assert (after["reduction_g"], after["participants"]) == (progress["reduction_g"],
                                                              progress["participants"])
    names = [e["name"] for e in client.get(f"{API}/{slug}/leaderboards/individuals")
             .json["entries"]]
    assert alice.nickname not in names and bob.nickname in names
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 401
    with app.app_context():
        participation = db.session.scalars(select(Participation).where(
            Participation.pid == alice_pid)).one()
        assert participation.user_id is None and not participation.on_board
        user = db.session.get(User, alice.user_id)
        assert (user.openid, user.unionid, user.nickname, user.session_key_enc) == \
            (None, None, None, None)
    # Logging in again starts a new account: nothing links it to the old pseudonym.
    again = client.post("/api/v1/auth/wechat-login", json={"code": f"sandbox:{alice.name}"})
    assert again.status_code == 200 and again.json["user"]["is_new"]
    assert again.json["user"]["id"] != alice.user_id
    token = {"Authorization": f"Bearer {again.json['token']}"}
    exported = client.get("/api/v1/me/export", headers=token).json
    assert exported["campaigns"] == [] and alice_pid not in json.dumps(exported)


def test_deleting_twice_needs_a_token_the_first_revoked(client, world):
    _, alice, _ = world
    assert client.delete("/api/v1/me", headers=alice.headers).status_code == 204
    response = client.delete("/api/v1/me", headers=alice.headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "auth.token_invalid"
