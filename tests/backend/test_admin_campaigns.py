"""Campaign documents through the admin API: create, read, replace, publish, and every invalid
variant of API.md answered 422 naming the field, with nothing written."""

from __future__ import annotations

import pytest
import yaml

from backend.services.campaigns import parse_document
from tests.backend.conftest import (
    ADMIN_API,
    EXAMPLE_YAML,
    as_json,
    campaign_count,
    error_of,
    example_document,
)


def canonical(doc: dict) -> dict:
    """The canonical form of a document: what GET and export return for it."""
    from campaigns.document import dump_campaign

    return dump_campaign(parse_document(doc))


def test_the_api_md_example_imports_unchanged(client, admin):
    body = as_json(yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8")))
    created = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers, json=body)
    assert created.status_code == 201, created.json
    stored = client.get(f"{ADMIN_API}/campaigns/winter-2022", headers=admin.headers)
    assert stored.status_code == 200
    assert stored.json == created.json == canonical(body)
    # Everything the example says is kept as it says it.
    assert stored.json["slug"] == "winter-2022" and stored.json["name"] == "低碳冬奥"
    assert stored.json["starts_on"] == "2022-01-04" and stored.json["ends_on"] == "2022-03-13"
    assert stored.json["target_kg"] == 1500
    assert stored.json["teams"]["list"] == [{"key": "bjtu", "name": "北京交通大学"}]
    assert stored.json["actions"] == body["actions"]
    assert stored.json["challenges"] == [
        {"key": "walk-7", "name": "连续7天步行1万步", "kind": "streak", "action": "walk_steps",
         "min_quantity": 10000, "target": 7},
        {"key": "plates-10", "name": "光盘10次", "kind": "count", "per": "record",
         "action": "clean_plate", "target": 10},
        {"key": "first-kg", "name": "减排1千克", "kind": "total", "target_g": 1000},
    ]


def test_a_minimal_document_is_stored_with_its_defaults(client, admin):
    body = {"slug": "tiny", "name": "小活动", "starts_on": "2030-05-01",
            "ends_on": "2030-05-31", "target_kg": 10, "actions": [{"key": "clean_plate"}]}
    created = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers, json=body)
    assert created.status_code == 201, created.json
    assert created.json["timezone"] == "Asia/Shanghai"
    assert created.json["methodology"] == "cn-consumer-v1"
    assert created.json["teams"] == {"mode": "none", "ranking": "total",
                                     "min_active_members": 1, "list": []}
    assert created.json["revisions"] == [] and created.json["challenges"] == []


def _variant(path: str, value):
    """The example with the value at the dotted ``path`` replaced."""
    doc = example_document()
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


# (what is wrong, the document, the field the 422 names)
INVALID = [
    ("unknown action key", _variant("actions.2.key", "teleport"), "actions.2.key"),
    ("negative cap", _variant("actions.0.daily_cap", -5), "actions.0.daily_cap"),
    ("ends before it starts", _variant("ends_on", "2022-01-03"), "ends_on"),
    ("unknown time zone", _variant("timezone", "Mars/Olympus_Mons"), "timezone"),
    ("challenge on an action not counted",
     _variant("challenges.1.action", "reusable_bag"), "challenges.1.action"),
    ("source the methodology does not allow",
     _variant("actions.1", {"key": "clean_plate", "sources": ["partner"]}),
     "actions.1.sources.0"),
    ("target is a word", _variant("target_kg", "lots"), "target_kg"),
    ("late_entry_days is a string", _variant("late_entry_days", "1"), "late_entry_days"),
    ("dashboard.public is a string", _variant("dashboard.public", "yes"), "dashboard.public"),
    ("actions is not a list", _variant("actions", "walk_steps"), "actions"),
    ("team name is a number", _variant("teams.list.0.name", 5), "teams.list.0.name"),
    ("starts_on is a number", _variant("starts_on", 20220104), "starts_on"),
    ("slug with capitals", _variant("slug", "Winter-2022"), "slug"),
    ("unknown field", {**example_document(), "colour": "green"}, "colour"),
]


@pytest.mark.parametrize(("doc", "field"), [(d, f) for _, d, f in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_an_invalid_document_is_422_naming_the_field_and_writes_nothing(
        app, client, admin, doc, field):
    response = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers, json=doc)
    assert error_of(response) == (422, "validation.failed")
    assert set(response.json["error"]["fields"]) == {field}
    assert all(m for m in response.json["error"]["fields"][field])
    assert campaign_count(app) == 0


def test_a_duplicate_slug_is_422_at_slug(app, client, admin, create_campaign_doc):
    first = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers,
                        json=create_campaign_doc("twice"))
    assert first.status_code == 201
    again = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers,
                        json=create_campaign_doc("twice", name="另一个"))
    assert error_of(again) == (422, "validation.failed")
    assert set(again.json["error"]["fields"]) == {"slug"}
    assert campaign_count(app) == 1
    stored = client.get(f"{ADMIN_API}/campaigns/twice", headers=admin.headers)
    assert stored.json["name"] == "低碳冬奥"


def test_a_body_that_is_not_a_document(client, admin):
    as_list = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers, json=[1, 2])
    assert error_of(as_list) == (422, "validation.failed")
    broken = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers, data="{not json",
                         content_type="application/json")
    assert error_of(broken) == (400, "request.malformed")
    yaml_body = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers,
                            data=EXAMPLE_YAML.read_bytes(), content_type="application/yaml")
    assert error_of(yaml_body) == (415, "request.unsupported_media_type")


def test_put_replaces_the_document(client, admin, make_campaign, create_campaign_doc):
    make_campaign("replace-me")
    new = create_campaign_doc(
        "replace-me", name="新名字", target_kg=2000,
        actions=[{"key": "walk_steps"}, {"key": "clean_plate", "daily_cap": 1}],
        challenges=[{"key": "first-kg", "name": "减排1千克", "kind": "total", "target_g": 1000}],
    )
    replaced = client.put(f"{ADMIN_API}/campaigns/replace-me", headers=admin.headers, json=new)
    assert replaced.status_code == 200, replaced.json
    stored = client.get(f"{ADMIN_API}/campaigns/replace-me", headers=admin.headers).json
    assert stored == replaced.json == canonical(new)
    assert [a["key"] for a in stored["actions"]] == ["walk_steps", "clean_plate"]
    assert stored["name"] == "新名字" and stored["target_kg"] == 2000


def test_put_cannot_change_the_slug(client, admin, make_campaign, create_campaign_doc):
    make_campaign("keep-slug")
    response = client.put(f"{ADMIN_API}/campaigns/keep-slug", headers=admin.headers,
                          json=create_campaign_doc("new-slug"))
    assert error_of(response) == (422, "validation.failed")
    assert set(response.json["error"]["fields"]) == {"slug"}
    assert client.get(f"{ADMIN_API}/campaigns/keep-slug", headers=admin.headers).status_code \
        == 200
    assert client.get(f"{ADMIN_API}/campaigns/new-slug", headers=admin.headers).status_code \
        == 404


@pytest.mark.parametrize(("doc", "field"), [(d, f) for _, d, f in INVALID[:6]],
                         ids=[name for name, _, _ in INVALID[:6]])
def test_an_invalid_put_changes_nothing(client, admin, make_campaign, doc, field):
    before = make_campaign("winter-2022")
    response = client.put(f"{ADMIN_API}/campaigns/winter-2022", headers=admin.headers,
                          json=doc)
    assert error_of(response) == (422, "validation.failed")
    assert set(response.json["error"]["fields"]) == {field}
    assert client.get(f"{ADMIN_API}/campaigns/winter-2022", headers=admin.headers).json == before


def test_put_can_rename_and_add_teams_through_the_document(client, admin, make_campaign,
                                                           create_campaign_doc):
    make_campaign("teamed")
    doc = create_campaign_doc("teamed")
    doc["teams"]["list"] = [{"key": "bjtu", "name": "北交大"}, {"key": "pku", "name": "北京大学"}]
    assert client.put(f"{ADMIN_API}/campaigns/teamed", headers=admin.headers,
                      json=doc).status_code == 200
    teams = client.get(f"{ADMIN_API}/campaigns/teamed/teams", headers=admin.headers).json
    assert [(t["key"], t["name"]) for t in teams["items"]] == [("bjtu", "北交大"),
                                                              ("pku", "北京大学")]


def test_put_cannot_drop_a_team_that_has_members(client, admin, make_campaign, add_member,
                                                 create_campaign_doc):
    make_campaign("members")
    add_member("members", "bjtu")
    doc = create_campaign_doc("members")
    doc["teams"]["list"] = []
    response = client.put(f"{ADMIN_API}/campaigns/members", headers=admin.headers, json=doc)
    assert error_of(response) == (409, "team.conflict")
    teams = client.get(f"{ADMIN_API}/campaigns/members/teams", headers=admin.headers).json
    assert [t["key"] for t in teams["items"]] == ["bjtu"]


def test_publish_is_idempotent_and_keeps_the_document(client, admin, make_campaign):
    created = make_campaign("to-publish")
    first = client.post(f"{ADMIN_API}/campaigns/to-publish/publish", headers=admin.headers)
    second = client.post(f"{ADMIN_API}/campaigns/to-publish/publish", headers=admin.headers)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json == created
    listed = client.get(f"{ADMIN_API}/campaigns", headers=admin.headers).json["items"]
    assert [(c["slug"], c["status"]) for c in listed] == [("to-publish", "published")]


def test_organisers_manage_but_do_not_create(client, staff_token, make_campaign,
                                             create_campaign_doc):
    make_campaign("org-run")
    organiser = staff_token("runner@tanpu.test", "organiser", ["org-run"])
    created = client.post(f"{ADMIN_API}/campaigns", headers=organiser.headers,
                          json=create_campaign_doc("org-new"))
    assert error_of(created) == (403, "auth.forbidden")
    renamed = client.put(f"{ADMIN_API}/campaigns/org-run", headers=organiser.headers,
                         json=create_campaign_doc("org-run", name="组织者改名"))
    assert renamed.status_code == 200 and renamed.json["name"] == "组织者改名"
    published = client.post(f"{ADMIN_API}/campaigns/org-run/publish", headers=organiser.headers)
    assert published.status_code == 200
