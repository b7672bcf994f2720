"""What the public sees: published campaigns only, their effective rules, status and progress."""

from __future__ import annotations

from tests.backend.conftest import days_from_today, error_of

PUBLIC = "/api/v1/campaigns"


def test_unpublished_campaigns_are_404_to_the_public(client, make_campaign):
    make_campaign("draft-only")
    assert client.get(PUBLIC).json == {"items": [], "next_cursor": None}
    for path in (f"{PUBLIC}/draft-only", f"{PUBLIC}/draft-only/progress"):
        assert error_of(client.get(path)) == (404, "not_found")
    # The same answer as for a campaign that does not exist.
    assert client.get(f"{PUBLIC}/draft-only").json == client.get(f"{PUBLIC}/nothing").json


def test_publishing_makes_a_campaign_visible(client, admin, make_campaign):
    make_campaign("going-public")
    make_campaign("still-draft")
    assert client.post("/api/v1/admin/campaigns/going-public/publish",
                       headers=admin.headers).status_code == 200
    listed = client.get(PUBLIC)
    assert listed.status_code == 200
    assert [c["slug"] for c in listed.json["items"]] == ["going-public"]
    item = listed.json["items"][0]
    assert item == {"slug": "going-public", "name": "低碳冬奥", "starts_on": "2022-01-04",
                    "ends_on": "2022-03-13", "status": "ended", "target_g": 1500000,
                    "reduction_g": 0, "progress": 0}
    assert client.get(f"{PUBLIC}/going-public").status_code == 200
    progress = client.get(f"{PUBLIC}/going-public/progress")
    assert progress.status_code == 200
    assert set(progress.json) == {"reduction_g", "target_g", "progress", "participants",
                                  "trees", "updated_at"}
    assert progress.json["target_g"] == 1500000 and progress.json["reduction_g"] == 0
    assert progress.json["updated_at"].endswith("Z")
    assert error_of(client.get(f"{PUBLIC}/still-draft")) == (404, "not_found")


def test_detail_lists_the_effective_rules(client, make_campaign):
    make_campaign("rules", publish=True, actions=[
        {"key": "walk_steps", "daily_cap": 8000, "min_quantity": 1000},
        {"key": "clean_plate"},
        {"key": "metro_ride", "factor_g": 60.5, "sources": ["checkin"]},
    ])
    detail = client.get(f"{PUBLIC}/rules")
    assert detail.status_code == 200
    body = detail.json
    assert set(body) == {"slug", "name", "description", "timezone", "starts_on", "ends_on",
                         "status", "target_g", "reduction_g", "participants", "progress",
                         "actions", "challenges", "teams"}
    actions = {a["key"]: a for a in body["actions"]}
    assert list(actions) == ["walk_steps", "clean_plate", "metro_ride"]
    # Overrides win; what is not overridden comes from the methodology (cn-consumer-v1).
    assert actions["walk_steps"] == {
        "key": "walk_steps", "name": "步行", "kind": "steps", "unit": "step",
        "factor_g_per_unit": 0.02, "daily_cap": 8000, "min_quantity": 1000, "sources": ["werun"],
    }
    assert actions["clean_plate"] == {
        "key": "clean_plate", "name": "光盘行动", "kind": "count", "unit": "meal",
        "factor_g_per_unit": 144, "daily_cap": 2, "min_quantity": 0, "sources": ["checkin"],
    }
    assert actions["metro_ride"]["factor_g_per_unit"] == 60.5
    assert actions["metro_ride"]["sources"] == ["checkin"]
    assert actions["metro_ride"]["daily_cap"] == 5
    assert body["teams"] == [{"key": "bjtu", "name": "北京交通大学"}]
    assert body["challenges"] == [
        {"key": "walk-7", "name": "连续7天步行1万步", "kind": "streak", "target": 7},
        {"key": "plates-10", "name": "光盘10次", "kind": "count", "target": 10},
        {"key": "first-kg", "name": "减排1千克", "kind": "total", "target": 1000},
    ]
    assert body["participants"] == 0 and body["timezone"] == "Asia/Shanghai"


def test_participants_who_joined_are_counted(client, make_campaign, login):
    make_campaign("counted", publish=True, starts_on=days_from_today(-2),
                  ends_on=days_from_today(20))
    for name, body in (("ann", {"team": "bjtu"}), ("ben", {})):
        joined = client.post(f"{PUBLIC}/counted/join", headers=login(name).headers, json=body)
        assert joined.status_code == 201, joined.json
    assert client.get(f"{PUBLIC}/counted").json["participants"] == 2
    assert client.get(f"{PUBLIC}/counted/progress").json["participants"] == 2


def test_status_follows_the_campaign_local_dates(client, make_campaign):
    # late_entry_days is 1: intake stays open the day after ends_on.
    cases = {
        "upcoming-one": (days_from_today(3), days_from_today(30), "upcoming"),
        "starts-today": (days_from_today(0), days_from_today(30), "active"),
        "running": (days_from_today(-10), days_from_today(10), "active"),
        "late-entry": (days_from_today(-10), days_from_today(-1), "active"),
        "ended-one": (days_from_today(-30), days_from_today(-2), "ended"),
    }
    for slug, (starts_on, ends_on, _) in cases.items():
        make_campaign(slug, publish=True, starts_on=starts_on, ends_on=ends_on)
    listed = {c["slug"]: c["status"] for c in client.get(PUBLIC).json["items"]}
    assert listed == {slug: status for slug, (_, _, status) in cases.items()}
    for slug, (_, _, status) in cases.items():
        assert client.get(f"{PUBLIC}/{slug}").json["status"] == status


def test_the_list_is_paginated(client, make_campaign):
    for n in range(5):
        make_campaign(f"page-{n}", publish=True)
    seen, cursor = [], None
    while True:
        response = client.get(PUBLIC, query_string={"limit": 2, **({"cursor": cursor}
                                                                  if cursor else {})})
        assert response.status_code == 200 and len(response.json["items"]) <= 2
        seen += [c["slug"] for c in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"page-{n}" for n in reversed(range(5))]
    assert error_of(client.get(PUBLIC, query_string={"cursor": "garbage!"})) == \
        (422, "validation.failed")
