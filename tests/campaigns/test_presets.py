from datetime import date, timedelta

import pytest

from campaigns.document import (
    dump_campaign,
    dump_campaign_json,
    dump_campaign_yaml,
    effective_actions,
    load_campaign_yaml,
    parse_campaign,
)
from campaigns.methodology import load_methodology
from campaigns.presets import (
    DEMO_PRESET,
    UnknownPreset,
    available_presets,
    load_preset,
    shift_document,
)


def test_presets_shipped():
    assert set(available_presets()) >= {"winter-2022", "company-steps"}
    assert DEMO_PRESET in available_presets()


@pytest.mark.parametrize("name", ["winter-2022", "company-steps"])
def test_preset_round_trip_is_identical(name):
    doc = load_preset(name)
    assert parse_campaign(dump_campaign(doc)) == doc
    exported = dump_campaign_yaml(doc)
    assert dump_campaign_yaml(load_campaign_yaml(exported)) == exported
    assert dump_campaign_json(load_campaign_yaml(dump_campaign_json(doc))) == \
        dump_campaign_json(doc)


def test_winter_preset():
    doc = load_preset("winter-2022")
    assert (doc.starts_on, doc.ends_on) == (date(2022, 1, 4), date(2022, 3, 13))
    assert 10 <= len(doc.actions) <= 14
    assert 3 <= len(doc.challenges) <= 4
    assert 4 <= len(doc.teams.teams) <= 6
    assert (doc.teams.mode, doc.teams.ranking) == ("optional", "average")
    assert doc.timezone == "Asia/Shanghai"
    assert all(r.factor_milli > 0 for r in effective_actions(doc, load_methodology(
        doc.methodology)))


def test_company_preset():
    doc = load_preset("company-steps")
    assert (doc.teams.mode, doc.teams.ranking) == ("required", "average")
    assert "walk_steps" in doc.action_keys
    assert doc.timezone == "Asia/Shanghai"


@pytest.mark.parametrize("name", ["winter-3000", "../presets/winter-2022", "", "Winter-2022"])
def test_unknown_preset(name):
    with pytest.raises(UnknownPreset):
        load_preset(name)


def test_shift_makes_today_the_eighth_day():
    data = dump_campaign(load_preset("winter-2022"))
    data["revisions"] = [{"effective_from": "2022-02-01",
                          "actions": [{"key": "clean_plate", "factor_g": 150}]}]
    doc = parse_campaign(data)
    today = date(2025, 6, 10)
    shifted = shift_document(doc, today)
    delta = shifted.starts_on - doc.starts_on
    assert shifted.starts_on == today - timedelta(days=7)
    assert (today - shifted.starts_on).days + 1 == 8
    assert shifted.ends_on == doc.ends_on + delta
    assert shifted.revisions[0].effective_from == date(2022, 2, 1) + delta
    assert shifted.freeze_at == doc.freeze_at + delta
    assert shifted.freeze_at.time() == doc.freeze_at.time()
    assert shifted.actions == doc.actions and shifted.teams == doc.teams
    # still a valid document, and shifting again to the same today changes nothing
    assert parse_campaign(dump_campaign(shifted)) == shifted
    assert shift_document(shifted, today) == shifted


def test_shift_without_freeze():
    doc = load_preset("company-steps")
    assert shift_document(doc, date(2024, 4, 8)) == doc  # 2024-04-01 + 7 days
