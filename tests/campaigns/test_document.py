"""The campaign document: the API.md example, each invalid variant, canonical dump."""

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from campaigns.document import (
    DocumentInvalid,
    action_rule,
    dump_campaign,
    dump_campaign_json,
    dump_campaign_yaml,
    effective_actions,
    load_campaign_yaml,
    parse_campaign,
    revision_in_force,
)
from campaigns.methodology import load_methodology

EXAMPLE = Path(__file__).parent.parent / "data" / "api-example-campaign.yaml"
M = load_methodology("cn-consumer-v1")


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def test_api_example_parses_unchanged():
    doc = load_campaign_yaml(EXAMPLE.read_text(encoding="utf-8"))
    assert doc.slug == "winter-2022"
    assert doc.name == "低碳冬奥"
    assert (doc.starts_on, doc.ends_on) == (date(2022, 1, 4), date(2022, 3, 13))
    assert doc.target_mg == 1_500_000_000
    assert doc.points_per_g_milli == 1000
    assert doc.teams.mode == "optional" and doc.teams.ranking == "average"
    assert doc.teams.teams[0].name == "北京交通大学"
    assert doc.action_keys == ("walk_steps", "clean_plate", "metro_ride")
    assert [c.kind for c in doc.challenges] == ["streak", "count", "total"]
    assert doc.challenges[2].target_mg == 1_000_000
    assert doc.challenges[0].min_milli == 10_000_000
    # the dump of the example is the example, with nothing but formatting changed
    assert dump_campaign(doc) == json.loads(json.dumps(example(), default=str))


def test_defaults_are_filled():
    doc = parse_campaign({"slug": "tiny", "name": "小", "starts_on": "2024-01-01",
                          "ends_on": "2024-01-31", "target_kg": 0.5,
                          "actions": [{"key": "clean_plate"}]})
    dumped = dump_campaign(doc)
    assert dumped == {
        "slug": "tiny", "name": "小", "description": "", "timezone": "Asia/Shanghai",
        "starts_on": "2024-01-01", "ends_on": "2024-01-31", "target_kg": 0.5,
        "methodology": "cn-consumer-v1", "late_entry_days": 1, "points_per_g": 1,
        "join": {"invite_code": None},
        "teams": {"mode": "none", "ranking": "total", "min_active_members": 1, "list": []},
        "rules": {"car_free_day_max": True}, "dashboard": {"public": False},
        "actions": [{"key": "clean_plate"}], "challenges": [],
        "leaderboard": {"freeze_at": None}, "revisions": [],
    }
    assert doc.target_mg == 500_000


def mutate(path_value):
    """Apply (dotted path, value) pairs to a copy of the example; value DELETE removes."""
    data = example()
    for path, value in path_value:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


INVALID = [
    # (changes, expected field)
    ([("actions.2.key", "teleport")], "actions.2.key"),               # unknown action key
    ([("actions.0.daily_cap", -1)], "actions.0.daily_cap"),           # a cap below 0
    ([("actions.0.min_quantity", -5)], "actions.0.min_quantity"),
    ([("ends_on", date(2022, 1, 3))], "ends_on"),                     # ends_on before starts_on
    ([("timezone", "Mars/Olympus")], "timezone"),                     # unknown time zone
    ([("challenges.0.action", "cycle_km")], "challenges.0.action"),   # not counted here
    ([("actions.2.sources", ["checkin", "werun"])], "actions.2.sources.1"),  # not allowed
    ([("late_entry_days", "1")], "late_entry_days"),                  # wrong types ...
    ([("late_entry_days", 1.5)], "late_entry_days"),
    ([("target_kg", "lots")], "target_kg"),
    ([("actions", "walk_steps")], "actions"),
    ([("teams.list.0.name", 5)], "teams.list.0.name"),
    ([("dashboard.public", "yes")], "dashboard.public"),
    ([("starts_on", "2022-02-30")], "starts_on"),
    ([("starts_on", "04/01/2022")], "starts_on"),
    ([("slug", "Winter 2022")], "slug"),
    ([("slug", "ab")], "slug"),
    ([("methodology", "cn-consumer-v9")], "methodology"),
    ([("colour", "green")], "colour"),                                # unknown field
    ([("actions.1.factor", 3)], "actions.1.factor"),                  # unknown override key
    ([("actions.2.factor_g", 52.0001)], "actions.2.factor_g"),        # 4 decimals
    ([("actions.1.daily_cap", 1.5)], "actions.1.daily_cap"),          # meals are whole
    ([("actions.0.min_quantity", 20000)], "actions.0.min_quantity"),  # above the cap
    ([("actions.2.sources", [])], "actions.2.sources"),
    ([("actions.2.name", "")], "actions.2.name"),
    ([("actions", [{"key": "walk_steps"}, {"key": "clean_plate"}, {"key": "walk_steps"}])],
     "actions.2.key"),                                                # duplicate action
    ([("actions", [])], "actions"),
    ([("teams.list", [{"key": "a", "name": "甲"}, {"key": "a", "name": "乙"}])],
     "teams.list.1.key"),                                             # duplicate team
    ([("teams.mode", "mandatory")], "teams.mode"),
    ([("teams.min_active_members", 0)], "teams.min_active_members"),
    ([("challenges.1.key", "walk-7")], "challenges.1.key"),           # duplicate challenge
    ([("challenges.0.kind", "marathon")], "challenges.0.kind"),
    ([("challenges.0.target", 0)], "challenges.0.target"),
    ([("challenges.2.action", "clean_plate")], "challenges.2.action"),  # total takes none
    ([("challenges.1.per", "week")], "challenges.1.per"),
    ([("challenges.1", "plates")], "challenges.1"),
    ([("timezone", "Europe/London")], "timezone"),                    # steps need Beijing days
    ([("leaderboard.freeze_at", "2022-03-01T00:00:00")], "leaderboard.freeze_at"),  # naive
    ([("revisions", [{"effective_from": "2022-01-04", "actions": [{"key": "clean_plate"}]}])],
     "revisions.0.effective_from"),                                   # not after starts_on
    ([("revisions", [{"effective_from": "2022-02-01", "actions": [{"key": "cycle_km"}]}])],
     "revisions.0.actions.0.key"),                                    # not counted here
    ([("revisions", [{"effective_from": "2022-02-01", "actions": []}])], "revisions.0.actions"),
    ([("join.invite_code", 1234)], "join.invite_code"),
    ([("dashboard.public", 1)], "dashboard.public"),                  # 1 == True in Python
    ([("rules.car_free_day_max", 0.0)], "rules.car_free_day_max"),
    ([("name", None)], "name"),
    ([("slug", None)], "slug"),
]


@pytest.mark.parametrize(("changes", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_variant_names_field(changes, field):
    with pytest.raises(DocumentInvalid) as info:
        parse_campaign(mutate(changes))
    assert set(info.value.fields) == {field}, info.value.fields
    assert all(isinstance(m, str) and m for msgs in info.value.fields.values() for m in msgs)


def test_missing_required_fields():
    with pytest.raises(DocumentInvalid) as info:
        parse_campaign({})
    assert {"slug", "name", "starts_on", "ends_on", "target_kg", "actions"} <= set(
        info.value.fields)


@pytest.mark.parametrize("data", [None, [], "winter", 3])
def test_not_an_object(data):
    with pytest.raises(DocumentInvalid) as info:
        parse_campaign(data)
    assert info.value.fields == {"_schema": ["Invalid input type."]}


def test_bad_yaml_text():
    with pytest.raises(DocumentInvalid) as info:
        load_campaign_yaml("slug: [unclosed")
    assert "_schema" in info.value.fields


def test_json_input_equals_yaml_input():
    from_yaml = parse_campaign(example())
    from_json = parse_campaign(json.loads(json.dumps(example(), default=str)))
    assert from_yaml == from_json


def with_revisions() -> dict:
    data = example()
    data["leaderboard"]["freeze_at"] = "2022-03-06T16:00:00.5+00:00"
    data["revisions"] = [
        {"effective_from": "2022-02-01", "actions": [{"key": "clean_plate", "factor_g": 150}]},
        {"effective_from": "2022-02-15", "actions": [
            {"key": "walk_steps", "daily_cap": 12000, "name": "健步走"},
            {"key": "metro_ride", "sources": ["partner"]}]},
    ]
    return data


def test_effective_actions_with_revisions():
    doc = parse_campaign(with_revisions())
    base = {r.key: r for r in effective_actions(doc, M)}
    assert base["walk_steps"].cap_milli == 10_000_000
    assert base["walk_steps"].min_milli == 1_000_000
    assert base["walk_steps"].factor_milli == 20
    assert base["clean_plate"].factor_milli == 144_000
    assert base["clean_plate"].cap_milli == 2000
    assert base["metro_ride"].factor_milli == 52_000
    assert base["metro_ride"].sources == ("checkin", "partner")
    assert base["walk_steps"].methodology_version == "cn-consumer-v1"

    assert revision_in_force(doc, date(2022, 1, 31)) == 0
    assert revision_in_force(doc, date(2022, 2, 1)) == 1
    feb1 = action_rule(doc, M, "clean_plate", date(2022, 2, 1))
    assert (feb1.factor_milli, feb1.methodology_version) == (150_000, "cn-consumer-v1+r1")
    mar = {r.key: r for r in effective_actions(doc, M, date(2022, 3, 1))}
    assert mar["clean_plate"].factor_milli == 150_000        # revisions accumulate
    assert mar["walk_steps"].cap_milli == 12_000_000
    assert mar["walk_steps"].name == "健步走"
    assert mar["metro_ride"].sources == ("partner",)
    assert {r.methodology_version for r in mar.values()} == {"cn-consumer-v1+r2"}
    with pytest.raises(KeyError):
        action_rule(doc, M, "cycle_km")


def test_revision_dates_must_increase():
    data = with_revisions()
    data["revisions"].reverse()
    with pytest.raises(DocumentInvalid) as info:
        parse_campaign(data)
    assert "revisions.1.effective_from" in info.value.fields


@pytest.mark.parametrize("make", [example, with_revisions])
def test_round_trip_and_stable_export(make):
    doc = parse_campaign(make())
    dumped = dump_campaign(doc)
    assert parse_campaign(copy.deepcopy(dumped)) == doc
    assert parse_campaign(json.loads(dump_campaign_json(doc))) == doc
    assert load_campaign_yaml(dump_campaign_yaml(doc)) == doc
    again = load_campaign_yaml(dump_campaign_yaml(doc))
    assert dump_campaign_yaml(again) == dump_campaign_yaml(doc)
    assert dump_campaign_json(again) == dump_campaign_json(doc)


def test_freeze_at_is_utc():
    doc = parse_campaign(with_revisions())
    assert doc.freeze_at == datetime(2022, 3, 6, 16, 0, 0, 500_000, tzinfo=UTC)
    assert dump_campaign(doc)["leaderboard"]["freeze_at"] == "2022-03-06T16:00:00.500000Z"
    data = example()
    data["leaderboard"]["freeze_at"] = "2022-03-07T00:00:00+08:00"
    assert dump_campaign(parse_campaign(data))["leaderboard"]["freeze_at"] == (
        "2022-03-06T16:00:00Z")


def test_strings_are_stripped():
    data = example()
    data["name"] = "  低碳冬奥 "
    assert parse_campaign(data).name == "低碳冬奥"


def test_effective_actions_wrong_methodology():
    doc = parse_campaign(example())
    other = load_methodology("cn-consumer-v1").__class__(
        version="other", name="x", tree_mg=1, actions={}, credit_groups=M.credit_groups,
        plausibility=())
    with pytest.raises(ValueError):
        effective_actions(doc, other)
