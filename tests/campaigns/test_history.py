from datetime import date

import pytest

from campaigns.document import DocumentInvalid, dump_campaign, effective_actions, parse_campaign
from campaigns.history import add_revision, history_conflicts
from campaigns.methodology import load_methodology
from campaigns.presets import load_preset

M = load_methodology("cn-consumer-v1")
BASE = load_preset("winter-2022")


def changed(**changes):
    data = dump_campaign(BASE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    return parse_campaign(data)


def conflicts(new, entries=("walk_steps", "clean_plate"), last=date(2022, 2, 4)):
    return history_conflicts(BASE, new, actions_with_entries=set(entries), last_entry_date=last)


def test_no_entries_anything_goes():
    new = changed(timezone="Asia/Shanghai", starts_on="2022-01-10")
    assert history_conflicts(BASE, new, actions_with_entries=set(), last_entry_date=None) == []


@pytest.mark.parametrize(("changes", "paths"), [
    ({"name": "新名字", "description": "x", "target_kg": 1}, []),
    ({"starts_on": "2022-01-05"}, ["starts_on"]),
    ({"methodology": "cn-consumer-v1"}, []),
    ({"rules__car_free_day_max": False}, ["rules.car_free_day_max"]),
    ({"ends_on": "2022-02-03"}, ["ends_on"]),
    ({"ends_on": "2022-02-04"}, []),
    ({"actions__7__factor_g": 150}, ["actions.7.factor_g"]),      # clean_plate has entries
    ({"actions__8__factor_g": 20}, []),                           # reusable_cup has none
    ({"actions__0__daily_cap": 12000}, ["actions.0.daily_cap"]),
    ({"actions__7__name": "光盘"}, []),                            # names are display only
])
def test_history_conflicts(changes, paths):
    assert conflicts(changed(**changes)) == paths


def test_removing_an_action_with_entries():
    data = dump_campaign(BASE)
    data["actions"] = [a for a in data["actions"] if a["key"] != "e_invoice"]
    assert conflicts(parse_campaign(data), entries=("e_invoice",)) == ["actions"]
    data = dump_campaign(BASE)
    data["actions"] = [a for a in data["actions"] if a["key"] != "reusable_cup"]
    assert conflicts(parse_campaign(data)) == []


def test_add_revision():
    body = {"effective_from": "2022-02-10",
            "actions": [{"key": "clean_plate", "factor_g": 150}]}
    new = add_revision(BASE, body, today=date(2022, 2, 4))
    assert len(new.revisions) == 1
    rule = {r.key: r for r in effective_actions(new, M, date(2022, 2, 10))}["clean_plate"]
    assert (rule.factor_milli, rule.methodology_version) == (150_000, "cn-consumer-v1+r1")
    # the new revision changes nothing up to the last entry: no conflict with entries so far
    assert conflicts(new) == []
    assert conflicts(new, last=date(2022, 2, 10)) == ["actions.7.factor_g"]
    # a PUT that keeps the revision is fine; one that drops it once it is in force is not
    assert history_conflicts(new, new, actions_with_entries={"clean_plate"},
                             last_entry_date=date(2022, 2, 12)) == []
    assert history_conflicts(new, BASE, actions_with_entries={"clean_plate"},
                             last_entry_date=date(2022, 2, 12)) == [
        "revisions.0", "actions.7.factor_g"]
    assert parse_campaign(dump_campaign(new)) == new


@pytest.mark.parametrize(("body", "field"), [
    ({"effective_from": "2022-02-04", "actions": [{"key": "clean_plate"}]}, "effective_from"),
    ({"effective_from": "2022-02-10", "actions": [{"key": "etc_pass"}]}, "actions.0.key"),
    ({"effective_from": "2022-02-10", "actions": [{"key": "clean_plate", "daily_cap": -1}]},
     "actions.0.daily_cap"),
    ({"effective_from": "2022-03-20", "actions": [{"key": "clean_plate"}]}, "effective_from"),
    ({"effective_from": "2022-02-10", "actions": [{"key": "walk_steps", "min_quantity": 20000}]},
     "actions.0.min_quantity"),
    ({"effective_from": "2022-02-10"}, "actions"),
    ({"effective_from": "2022-02-10", "actions": [{"key": "clean_plate"}], "x": 1}, "x"),
])
def test_add_revision_invalid(body, field):
    with pytest.raises(DocumentInvalid) as info:
        add_revision(BASE, body, today=date(2022, 2, 4))
    assert set(info.value.fields) == {field}, info.value.fields
