"""The shipped methodology equals the shared Markdown table, row by row."""

from pathlib import Path

import pytest

from campaigns.decimals import format_milli
from campaigns.methodology import (
    ACTION_KINDS,
    UnknownAction,
    UnknownKind,
    UnknownMethodology,
    available_methodologies,
    kind_rule,
    load_methodology,
    parse_methodology,
)

TABLE = Path(__file__).parent.parent / "data" / "methodology-cn-consumer-v1.md"


def table_rows() -> list[list[str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| key "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def number(cell: str) -> str:
    """'10,000 steps' -> '10000'; '26.9' -> '26.9'."""
    return cell.split()[0].replace(",", "")


def test_table_has_every_row():
    rows = table_rows()
    methodology = load_methodology("cn-consumer-v1")
    assert len(rows) == 16
    assert [r[0] for r in rows] == list(methodology.actions)


@pytest.mark.parametrize("row", table_rows(), ids=lambda r: r[0])
def test_yaml_matches_table_row(row):
    key, kind, unit, factor, cap, minimum, sources, status_source = row
    spec = load_methodology("cn-consumer-v1").action(key)
    status, citation = status_source.split(": ", 1)
    assert spec.kind == kind
    assert spec.unit == unit
    assert format_milli(spec.factor_milli) == number(factor)
    assert format_milli(spec.cap_milli) == number(cap)
    assert format_milli(spec.min_milli) == number(minimum)
    assert spec.sources == tuple(s.strip() for s in sources.split(","))
    assert spec.status == status
    assert spec.citation == citation
    assert spec.name  # a Chinese display name


def test_methodology_extras():
    m = load_methodology("cn-consumer-v1")
    assert m.version == "cn-consumer-v1"
    assert m.tree_mg == 17_900_000
    assert m.credit_groups.mode_actions("bus") == ("bus_ride", "bus_km")
    assert m.credit_groups.mode_of("metro_km") == "metro"
    assert m.credit_groups.mode_of("clean_plate") is None
    assert m.credit_groups.alternative == "car_free_day"
    signals = {s.key: s for s in m.plausibility}
    assert signals["steps_over_limit"].params["threshold_milli"] == 50_000_000
    assert signals["steps_repeated_digit"].params["min_digits"] == 5
    assert signals["cycling_too_fast"].params["max_km_per_h_milli"] == 25_000
    assert signals["count_over_cap_streak"].params["days"] == 3
    assert m.action("walk_steps").factor_milli == 20
    assert m.action("bus_km").factor_milli == 26_900


def test_unknown_version_kind_action_raise():
    assert "cn-consumer-v1" in available_methodologies()
    for bad in ("cn-consumer-v9", "../cn-consumer-v1", "", None):
        with pytest.raises(UnknownMethodology):
            load_methodology(bad)
    with pytest.raises(UnknownKind):
        kind_rule("teleport")
    with pytest.raises(UnknownAction):
        load_methodology("cn-consumer-v1").action("teleport")


def test_action_kinds_table():
    assert set(ACTION_KINDS) == {"steps", "once_daily", "count", "distance", "weight"}
    assert ACTION_KINDS["count"].default_quantity_milli == 1000
    assert ACTION_KINDS["distance"].default_quantity_milli is None
    assert ACTION_KINDS["once_daily"].once_daily


def _minimal(**action):
    row = {"key": "a", "name": "甲", "kind": "count", "unit": "use", "factor_g_per_unit": "1",
           "daily_cap": "1", "min_quantity": "0", "sources": ["checkin"], "status": "C",
           "citation": "x"}
    row.update(action)
    return {"version": "t", "name": "t", "tree_g": "1", "actions": [row],
            "credit_groups": {"modes": {}, "transport": {"alternative": None, "modes": []}},
            "plausibility": []}


def test_parse_rejects_bad_rows():
    assert parse_methodology(_minimal()).action("a").cap_milli == 1000
    with pytest.raises(UnknownKind):
        parse_methodology(_minimal(kind="teleport"))
    for bad in ({"factor_g_per_unit": 1.5}, {"sources": ["fax"]}, {"status": "B"},
                {"daily_cap": "1.5"}, {"extra": 1}):
        with pytest.raises(ValueError):
            parse_methodology(_minimal(**bad))
