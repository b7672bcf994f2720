"""Reporter API keys and dashboard tokens (shown once, stored hashed, revocable) and the audit
log of every staff change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from backend.extensions import db
from tests.backend.conftest import ADMIN_API, error_of
from tests.support.secrets import REGISTRY

CAMPAIGN = f"{ADMIN_API}/campaigns/keys"
KINDS = ["api-keys", "dashboard-tokens"]


@pytest.fixture
def campaign(make_campaign):
    return make_campaign("keys")


def _issue(client, headers, kind, label="大屏"):
    response = client.post(f"{CAMPAIGN}/{kind}", headers=headers, json={"label": label})
    assert response.status_code == 201, response.json
    REGISTRY.add(response.json["key"], f"{kind} {label}")
    return response.json


def _raw_rows(app) -> list[dict]:
    with app.app_context():
        rows = db.session.execute(sa.text("SELECT * FROM campaign_credentials")).mappings()
        return [dict(row) for row in rows]


@pytest.mark.parametrize("kind", KINDS)
def test_a_secret_is_shown_once_and_listed_without_it(app, client, admin, campaign, kind):
    before = datetime.now(UTC) - timedelta(seconds=2)
    issued = _issue(client, admin.headers, kind, label="  报告系统 ")
    assert set(issued) == {"id", "label", "key", "created_at"}
    assert issued["label"] == "报告系统"
    assert len(issued["key"]) >= 32
    created = datetime.fromisoformat(issued["created_at"].replace("Z", "+00:00"))
    assert issued["created_at"].endswith("Z")
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=2)
    second = _issue(client, admin.headers, kind, label="另一个")
    assert second["key"] != issued["key"]

    # From here on the secret is registered: any response carrying it fails the test.
    listed = client.get(f"{CAMPAIGN}/{kind}", headers=admin.headers)
    assert listed.status_code == 200
    assert listed.json["items"] == [
        {"id": issued["id"], "label": "报告系统", "created_at": issued["created_at"],
         "revoked_at": None},
        {"id": second["id"], "label": "另一个", "created_at": second["created_at"],
         "revoked_at": None},
    ]
    for path in ("", "/audit", f"/{kind}"):
        assert issued["key"] not in client.get(CAMPAIGN + path, headers=admin.headers).text


@pytest.mark.parametrize("kind", KINDS)
def test_the_secret_is_stored_only_as_a_hash(app, client, admin, campaign, kind):
    issued = _issue(client, admin.headers, kind)
    rows = _raw_rows(app)
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert issued["key"] not in stored
    # Not a fragment of it either (a prefix or the random part alone).
    assert issued["key"][-24:] not in stored and issued["key"][:24] not in stored


@pytest.mark.parametrize("kind", KINDS)
def test_delete_revokes(app, client, admin, campaign, kind):
    kept = _issue(client, admin.headers, kind, label="留着")
    gone = _issue(client, admin.headers, kind, label="撤销")
    response = client.delete(f"{CAMPAIGN}/{kind}/{gone['id']}", headers=admin.headers)
    assert response.status_code == 204
    items = {i["id"]: i for i in client.get(f"{CAMPAIGN}/{kind}", headers=admin.headers)
             .json["items"]}
    assert items[gone["id"]]["revoked_at"] is not None
    assert items[gone["id"]]["revoked_at"].endswith("Z")
    assert items[kept["id"]]["revoked_at"] is None
    revoked = {row["id"]: row["revoked_dt"] for row in _raw_rows(app)}
    assert revoked[gone["id"]] is not None and revoked[kept["id"]] is None
    # Revoking again changes nothing; an unknown id is 404.
    again = client.delete(f"{CAMPAIGN}/{kind}/{gone['id']}", headers=admin.headers)
    assert again.status_code == 204
    assert error_of(client.delete(f"{CAMPAIGN}/{kind}/999999", headers=admin.headers)) == \
        (404, "not_found")


def test_a_credential_of_another_kind_or_campaign_is_404(client, admin, campaign,
                                                        make_campaign):
    key = _issue(client, admin.headers, "api-keys")
    make_campaign("elsewhere")
    for path in (f"{CAMPAIGN}/dashboard-tokens/{key['id']}",
                 f"{ADMIN_API}/campaigns/elsewhere/api-keys/{key['id']}"):
        assert error_of(client.delete(path, headers=admin.headers)) == (404, "not_found")
    listed = client.get(f"{CAMPAIGN}/api-keys", headers=admin.headers).json["items"]
    assert listed[0]["revoked_at"] is None
    assert client.get(f"{ADMIN_API}/campaigns/elsewhere/api-keys",
                      headers=admin.headers).json["items"] == []
    assert client.get(f"{CAMPAIGN}/dashboard-tokens", headers=admin.headers).json["items"] == []


@pytest.mark.parametrize("body", [{}, {"label": ""}, {"label": "   "}, {"label": "x" * 101},
                                  {"label": "a\u0007b"}, {"label": "ok", "scope": "all"}])
def test_a_bad_label_is_422(client, admin, campaign, body):
    response = client.post(f"{CAMPAIGN}/api-keys", headers=admin.headers, json=body)
    assert error_of(response) == (422, "validation.failed")
    assert client.get(f"{CAMPAIGN}/api-keys", headers=admin.headers).json["items"] == []


def _audit(client, headers, **query):
    response = client.get(f"{CAMPAIGN}/audit", headers=headers, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def test_every_staff_change_is_in_the_audit_log(client, admin, campaign, create_campaign_doc,
                                                staff_token):
    start = datetime.now(UTC) - timedelta(seconds=2)
    organiser = staff_token("org-audit@tanpu.test", "organiser", ["keys"])
    client.put(CAMPAIGN, headers=admin.headers, json=create_campaign_doc("keys", name="改名"))
    client.post(f"{CAMPAIGN}/publish", headers=admin.headers)
    client.post(f"{CAMPAIGN}/teams", headers=organiser.headers,
                json=[{"key": "pku", "name": "北京大学"}])
    assert client.delete(f"{CAMPAIGN}/teams/pku", headers=organiser.headers).status_code == 204
    key = _issue(client, admin.headers, "api-keys", label="报告")
    client.delete(f"{CAMPAIGN}/api-keys/{key['id']}", headers=admin.headers)
    token = _issue(client, organiser.headers, "dashboard-tokens", label="大屏")
    client.delete(f"{CAMPAIGN}/dashboard-tokens/{token['id']}", headers=organiser.headers)

    items = _audit(client, admin.headers)["items"]
    assert [(i["action"], i["actor"]) for i in items] == [
        ("dashboard_token.revoke", organiser.email),
        ("dashboard_token.create", organiser.email),
        ("api_key.revoke", admin.email),
        ("api_key.create", admin.email),
        ("team.delete", organiser.email),
        ("teams.import", organiser.email),
        ("campaign.publish", admin.email),
        ("campaign.update", admin.email),
        ("campaign.create", admin.email),
    ]
    for item in items:
        assert set(item) == {"id", "actor", "action", "target", "before", "after", "at"}
        at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
        assert item["at"].endswith("Z") and start <= at <= datetime.now(UTC) + timedelta(seconds=2)
    by_action = {i["action"]: i for i in items}
    create, update = by_action["campaign.create"], by_action["campaign.update"]
    assert create["before"] is None and create["after"] == campaign
    assert update["before"]["name"] == "低碳冬奥" and update["after"]["name"] == "改名"
    assert by_action["campaign.publish"]["before"] == {"status": "draft"}
    assert by_action["campaign.publish"]["after"] == {"status": "published"}
    teams = by_action["teams.import"]
    assert teams["before"] == [{"key": "bjtu", "name": "北京交通大学"}]
    assert teams["after"] == [{"key": "bjtu", "name": "北京交通大学"},
                              {"key": "pku", "name": "北京大学"}]
    assert by_action["team.delete"]["before"] == {"key": "pku", "name": "北京大学"}
    assert by_action["team.delete"]["after"] is None
    assert by_action["api_key.create"]["after"]["label"] == "报告"
    assert by_action["api_key.revoke"]["after"] == {"revoked": True}


def test_failed_changes_leave_no_audit_entry(client, admin, campaign, create_campaign_doc):
    client.put(CAMPAIGN, headers=admin.headers,
               json=create_campaign_doc("keys", ends_on="2000-01-01"))
    client.post(f"{CAMPAIGN}/teams", headers=admin.headers, json=[{"key": "x", "name": ""}])
    client.delete(f"{CAMPAIGN}/teams/none", headers=admin.headers)
    assert [i["action"] for i in _audit(client, admin.headers)["items"]] == ["campaign.create"]


def test_the_audit_log_is_paginated_and_per_campaign(client, admin, campaign, make_campaign):
    make_campaign("quiet")
    for n in range(6):
        client.post(f"{CAMPAIGN}/teams", headers=admin.headers,
                    json=[{"key": f"t{n}", "name": f"队{n}"}])
    everything = _audit(client, admin.headers, limit=200)
    assert len(everything["items"]) == 7 and everything["next_cursor"] is None
    pages, cursor = [], None
    while True:
        page = _audit(client, admin.headers, limit=3, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 3
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == everything["items"]
    ids = [i["id"] for i in everything["items"]]
    assert ids == sorted(ids, reverse=True)
    quiet = client.get(f"{ADMIN_API}/campaigns/quiet/audit", headers=admin.headers).json
    assert [i["action"] for i in quiet["items"]] == ["campaign.create"]


@pytest.mark.parametrize("query", [{"cursor": "not-a-cursor"}, {"cursor": "WyJ4Il0"},
                                   {"limit": 0}, {"limit": 201}, {"limit": "many"}])
def test_a_bad_page_request_is_422(client, admin, campaign, query):
    response = client.get(f"{CAMPAIGN}/audit", headers=admin.headers, query_string=query)
    assert error_of(response) == (422, "validation.failed")
    assert set(response.json["error"]["fields"]) == set(query)
