"""Reporter endpoints and the big screen's data (issue 7): scope of keys and staff, and figures
that agree with each other and with the ledger to the milligram."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import case, delete, func, select, update

from backend.extensions import db
from backend.models import Campaign, CampaignLedger, LedgerEntry, Participation, Team
from tests.backend.board_helpers import (
    ADMIN_API,
    INDIVIDUAL_KEYS,
    TEAM_KEYS,
    campaign_document,
    checkin,
    cli,
    create_live_campaign,
    day,
    disqualify,
    exact,
    grams,
    install_clock,
    join,
    make_person,
    parse_instant,
    pids_of,
    set_visible,
    unique,
)

REPORTS = "/api/v1/reports/campaigns"
ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_ledger.py"
# Every reporter route, as a reporter would call it.
ROUTES = ("summary", "timeseries", "breakdown?by=action", "breakdown?by=team", "export.csv",
          "ledger.jsonl", "ledger/verify")
MEDIA_TYPES = {"export.csv": "text/csv", "ledger.jsonl": "application/x-ndjson"}
CHAIN_KEYS = {"seq", "campaign", "participant", "action", "local_date", "quantity",
              "counted_quantity", "factor_g_per_unit", "reduction_mg", "source", "source_ref",
              "methodology_version", "created_dt", "prev_hash", "hash"}
CSV_HEADER = ["date", "action", "action_name", "team", "team_name", "records", "reduction_g"]
GENESIS = "0" * 64


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


def new_key(client, admin, slug: str, kind: str = "api-keys") -> str:
    response = client.post(f"{ADMIN_API}/{slug}/{kind}", headers=admin.headers,
                           json={"label": "press"})
    assert response.status_code == 201, response.json
    return response.json["key"]


def campaign_id_of(slug: str) -> int:
    return db.session.scalars(select(Campaign.id).where(Campaign.slug == slug)).one()


def ledger_sum(app, slug: str) -> tuple[int, int]:
    with app.app_context():
        campaign_id = campaign_id_of(slug)
        mg, records = db.session.execute(
            select(func.coalesce(func.sum(LedgerEntry.reduction_mg), 0),
                   func.count().filter(LedgerEntry.source != "reversal"))
            .where(LedgerEntry.campaign_id == campaign_id)).one()
        return int(mg), int(records)


def head_of(app, slug: str) -> tuple[int, str]:
    with app.app_context():
        ledger = db.session.get(CampaignLedger, campaign_id_of(slug))
        return ledger.head_seq, ledger.head_hash


def error(response) -> tuple[int, str]:
    return response.status_code, response.json["error"]["code"]


def csv_rows(response) -> list[dict]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff"), text[:20]
    reader = csv.reader(io.StringIO(text[1:]))
    assert next(reader) == CSV_HEADER
    return [dict(zip(CSV_HEADER, row, strict=True)) for row in reader]


def jsonl_lines(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


@pytest.fixture
def active_campaign(app, client, login, admin, clock):
    """A campaign with two teams, people in each and one without, a week of check-ins and one
    disqualified participant."""
    slug = unique("report")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-6), ends_on=day(20)))
    people = [make_person(login, client, f"p{i}") for i in range(6)]
    for index, person in enumerate(people):
        join(client, person, slug, ("red", "blue", None)[index % 3])
    for index, person in enumerate(people):
        for action in ("clean_plate", "metro_ride", "reusable_cup")[: 1 + index % 3]:
            assert checkin(client, person, slug, action, day(0)).status_code == 201
    disqualify(client, admin, slug, pids_of(app, slug)[people[1].user_id])
    return slug, people


def test_figures_agree_with_each_other_and_the_ledger(app, client, admin, active_campaign):
    slug, _ = active_campaign
    mg, records = ledger_sum(app, slug)
    headers = {"X-Api-Key": new_key(client, admin, slug)}
    summary = exact(client.get(f"{REPORTS}/{slug}/summary", headers=headers))
    assert summary["reduction_g"] == grams(mg) and summary["records"] == records
    assert sum(Decimal(str(a["reduction_g"])) for a in summary["by_action"]) == grams(mg)
    series = exact(client.get(f"{REPORTS}/{slug}/timeseries", headers=headers))["rows"]
    assert series[-1]["cumulative_g"] == grams(mg)
    assert sum(r["reduction_g"] for r in series) == grams(mg)
    for by in ("action", "team"):
        rows = exact(client.get(f"{REPORTS}/{slug}/breakdown?by={by}", headers=headers))["rows"]
        assert sum(r["reduction_g"] for r in rows) == grams(mg), by
        assert sum(r["records"] for r in rows) == records, by
    exported = client.get(f"{REPORTS}/{slug}/export.csv", headers=headers)
    text = exported.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert sum(Decimal(r["reduction_g"]) for r in rows) == grams(mg)
    assert sum(int(r["records"]) for r in rows) == records
    lines = client.get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers)
    parsed = [json.loads(line) for line in lines.get_data(as_text=True).splitlines()]
    assert sum(p["reduction_mg"] for p in parsed) == mg
    assert lines.headers["X-Tanpu-Head-Seq"] == str(parsed[-1]["seq"])
    assert lines.headers["X-Tanpu-Head-Hash"] == parsed[-1]["hash"]
    verified = client.get(f"{REPORTS}/{slug}/ledger/verify", headers=headers).json
    assert verified["ok"] and verified["head_hash"] == parsed[-1]["hash"]
    dashboard = client.get(f"/api/v1/campaigns/{slug}/dashboard",
                           headers={"Authorization": "Bearer "
                                    + new_key(client, admin, slug, "dashboard-tokens")})
    assert dashboard.status_code == 200, dashboard.json
    assert exact(dashboard)["summary"]["reduction_g"] == grams(mg)


# --- scope -----------------------------------------------------------------------------------

@pytest.fixture
def two_campaigns(app, client, login, admin, staff_token, clock):
    """Campaigns A and B with an entry each, and every kind of credential a caller may hold."""
    slugs = unique("scope-a"), unique("scope-b")
    for slug in slugs:
        create_live_campaign(app, campaign_document(slug, starts_on=day(-6), ends_on=day(20)))
    person = make_person(login, client, "scope")
    for slug in slugs:
        join(client, person, slug, "red")
        assert checkin(client, person, slug, "clean_plate").status_code == 201
    a, b = slugs
    revoked = client.post(f"{ADMIN_API}/{a}/api-keys", headers=admin.headers,
                          json={"label": "old"})
    assert revoked.status_code == 201
    gone = client.delete(f"{ADMIN_API}/{a}/api-keys/{revoked.json['id']}",
                         headers=admin.headers)
    assert gone.status_code == 204
    return {
        "a": a, "b": b, "person": person, "admin": admin,
        "key_a": new_key(client, admin, a), "key_b": new_key(client, admin, b),
        "revoked_a": revoked.json["key"],
        "dashboard_a": new_key(client, admin, a, "dashboard-tokens"),
        "organiser_a": staff_token("org-a@tanpu.test", "organiser", [a]),
        "organiser_b": staff_token("org-b@tanpu.test", "organiser", [b]),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("route", ROUTES)
def test_each_route_answers_only_whom_the_campaign_lets_in(client, two_campaigns, route):
    world = two_campaigns
    a, b = world["a"], world["b"]

    def get(slug: str, headers: dict):
        return client.get(f"{REPORTS}/{slug}/{route}", headers=headers)

    allowed = {
        "the campaign's API key": {"X-Api-Key": world["key_a"]},
        "its organiser": world["organiser_a"].headers,
        "an admin": world["admin"].headers,
    }
    for who, headers in allowed.items():
        response = get(a, headers)
        assert response.status_code == 200, (who, response.get_data(as_text=True)[:300])
        assert response.mimetype == MEDIA_TYPES.get(route.split("?")[0], "application/json")
        assert response.get_data(), who
    refused = {
        "another campaign's API key": ({"X-Api-Key": world["key_b"]}, (404, "not_found")),
        "another campaign's organiser": (world["organiser_b"].headers, (404, "not_found")),
        "a revoked key": ({"X-Api-Key": world["revoked_a"]}, (401, "auth.token_invalid")),
        "an unknown key": ({"X-Api-Key": "tpk-nothing-like-it"}, (401, "auth.token_invalid")),
        "no credential": ({}, (401, "auth.token_missing")),
        "a participant token": (world["person"].headers, (403, "auth.forbidden")),
        "the dashboard token as bearer": (bearer(world["dashboard_a"]),
                                          (401, "auth.token_invalid")),
        "the dashboard token as API key": ({"X-Api-Key": world["dashboard_a"]},
                                           (401, "auth.token_invalid")),
    }
    for who, (headers, expected) in refused.items():
        response = get(a, headers)
        assert error(response) == expected, (who, response.get_data(as_text=True)[:300])
    # the keys and the organiser of B do open B, so the 404s above are about scope
    assert get(b, {"X-Api-Key": world["key_b"]}).status_code == 200
    assert get(b, world["organiser_b"].headers).status_code == 200
    assert error(get("no-such-campaign", world["admin"].headers)) == (404, "not_found")
    assert error(get("no-such-campaign", {"X-Api-Key": world["key_a"]})) == (404, "not_found")


@pytest.mark.parametrize(("route", "field"), [
    ("breakdown?by=x", "by"),
    ("breakdown", "by"),
    ("timeseries?granularity=month", "granularity"),
    ("ledger.jsonl?upto_seq=-1", "upto_seq"),
    ("ledger.jsonl?upto_seq=three", "upto_seq"),
])
def test_bad_query_is_422_naming_the_parameter(client, two_campaigns, route, field):
    response = client.get(f"{REPORTS}/{two_campaigns['a']}/{route}",
                          headers={"X-Api-Key": two_campaigns["key_a"]})
    assert error(response) == (422, "validation.failed")
    assert list(response.json["error"]["fields"]) == [field]


# --- the big screen --------------------------------------------------------------------------

def dashboard_of(client, slug: str, headers: dict | None = None):
    return client.get(f"/api/v1/campaigns/{slug}/dashboard", headers=headers or {})


def create_draft_campaign(app, doc: dict) -> None:
    from backend.services.campaigns import create_campaign, parse_document

    with app.app_context():
        create_campaign(parse_document(doc), "cli")
        db.session.commit()


def test_public_dashboard_needs_no_credential_and_a_draft_has_none(app, client, admin, clock):
    public, draft = unique("screen-pub"), unique("screen-draft")
    for slug in (public, draft):
        doc = campaign_document(slug, starts_on=day(-6), ends_on=day(20))
        doc["dashboard"] = {"public": True}
        (create_live_campaign if slug == public else create_draft_campaign)(app, doc)
    response = dashboard_of(client, public)
    assert response.status_code == 200, response.json
    assert response.json["campaign"]["slug"] == public
    token = new_key(client, admin, draft, "dashboard-tokens")
    assert error(dashboard_of(client, draft)) == (404, "not_found")
    assert error(dashboard_of(client, draft, bearer(token))) == (404, "not_found")
    assert error(dashboard_of(client, "no-such-screen")) == (404, "not_found")


def test_private_dashboard_opens_only_with_its_own_token(app, client, admin, two_campaigns):
    a, b = two_campaigns["a"], two_campaigns["b"]
    own = two_campaigns["dashboard_a"]
    other = new_key(client, admin, b, "dashboard-tokens")
    refused = {
        "nothing": {},
        "a wrong token": bearer("not-a-token"),
        "B's dashboard token": bearer(other),
        "A's API key as bearer": bearer(two_campaigns["key_a"]),
        "A's API key as API key": {"X-Api-Key": two_campaigns["key_a"]},
        "an admin's staff token": two_campaigns["admin"].headers,
        "a malformed header": {"Authorization": "Basic abc"},
    }
    for who, headers in refused.items():
        assert error(dashboard_of(client, a, headers)) == (404, "not_found"), who
    assert dashboard_of(client, a, bearer(own)).status_code == 200
    assert dashboard_of(client, b, bearer(other)).status_code == 200
    revoked = client.get(f"{ADMIN_API}/{a}/dashboard-tokens", headers=admin.headers).json
    for item in revoked["items"]:
        assert client.delete(f"{ADMIN_API}/{a}/dashboard-tokens/{item['id']}",
                             headers=admin.headers).status_code == 204
    assert error(dashboard_of(client, a, bearer(own))) == (404, "not_found")


def test_dashboard_shows_public_board_entries_only(app, client, login, admin, clock):
    """The top individuals are the public board: names, no ids; a hidden and a disqualified
    participant, though they lead, are not on it; the figures equal the reporter's."""
    slug = unique("screen")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-6), ends_on=day(20)))
    people = [make_person(login, client, f"d{i}") for i in range(4)]
    for person, team in zip(people, ["red", "blue", "red", None], strict=True):
        join(client, person, slug, team)
    hidden, cheat, plain, loner = people
    for person, plates in ((hidden, 2), (cheat, 2), (plain, 1), (loner, 1)):
        assert checkin(client, person, slug, "clean_plate", quantity=plates).status_code == 201
    for person in (hidden, cheat):  # they lead by far
        assert checkin(client, person, slug, "car_free_day").status_code == 201
    set_visible(client, hidden, False)
    disqualify(client, admin, slug, pids_of(app, slug)[cheat.user_id])
    token = new_key(client, admin, slug, "dashboard-tokens")
    response = dashboard_of(client, slug, bearer(token))
    assert response.status_code == 200, response.json
    body = exact(response)
    assert set(body) == {"campaign", "summary", "timeseries", "by_action", "top_teams",
                         "top_individuals", "as_of"}
    names = [entry["name"] for entry in body["top_individuals"]]
    assert sorted(names) == sorted([plain.nickname, loner.nickname])
    for entry in body["top_individuals"]:
        assert set(entry) == INDIVIDUAL_KEYS, entry
    for entry in body["top_teams"]:
        assert set(entry) == TEAM_KEYS, entry
    raw = response.get_data(as_text=True)
    assert "user_id" not in raw and "openid" not in raw and "pid" not in raw
    key = {"X-Api-Key": new_key(client, admin, slug)}
    summary = exact(client.get(f"{REPORTS}/{slug}/summary", headers=key))
    assert {k: v for k, v in body["summary"].items() if k != "as_of"} == \
        {k: v for k, v in summary.items() if k != "as_of"}
    by_action = exact(client.get(f"{REPORTS}/{slug}/breakdown?by=action", headers=key))
    assert body["by_action"] == by_action["rows"]
    series = exact(client.get(f"{REPORTS}/{slug}/timeseries", headers=key))
    assert body["timeseries"] == series["rows"]
    mg, _ = ledger_sum(app, slug)
    assert body["summary"]["reduction_g"] == grams(mg)
    assert body["summary"]["participants"] == 3  # the disqualified one no longer counts


# --- agreement at scale ----------------------------------------------------------------------

SCALE_ACTIONS = ("car_free_day", "clean_plate", "reusable_cup", "metro_ride", "bus_ride",
                 "cycle_km", "clothes_recycle", "online_meeting")
SCALE_ACTIONS_DOC = [{"key": key} for key in SCALE_ACTIONS]
KIND = {"car_free_day": "once", "cycle_km": "decimal", "clothes_recycle": "decimal"}
SEEDED = 10_000


def quantity_for(action: str, rng: random.Random):
    kind = KIND.get(action, "count")
    if kind == "once":
        return None
    if kind == "count":
        return rng.randint(1, 4)  # past several daily caps now and then
    return rng.randint(200, 25_000) / 1000  # 0.2 to 25 km or kg, 3 decimals


def random_checkins(client, rng: random.Random, people, slug: str, on: date | None = None,
                    actions=SCALE_ACTIONS) -> int:
    """Each person checks in 0 to 3 distinct actions (``on`` or today); returns how many."""
    sent = 0
    for person in people:
        for action in rng.sample(actions, rng.randint(0, 3)):
            response = checkin(client, person, slug, action, on, quantity_for(action, rng))
            assert response.status_code == 201, response.json
            sent += 1
    return sent


def ledger_facts(app, slug: str) -> dict:
    """Every figure a reporter reads, computed straight from ledger_entries (GROUP BY) and the
    participations, not from any projection."""
    records = func.sum(case((LedgerEntry.source == "reversal", 0), else_=1))
    team_key = func.coalesce(Team.key, "")

    with app.app_context():
        campaign_id = campaign_id_of(slug)

        def grouped(*keys) -> dict:
            query = (select(*keys, func.sum(LedgerEntry.reduction_mg), records)
                     .select_from(LedgerEntry)
                     .join(Participation, Participation.id == LedgerEntry.participation_id)
                     .outerjoin(Team, Team.id == Participation.team_id)
                     .where(LedgerEntry.campaign_id == campaign_id).group_by(*keys))
            return {tuple(row[:-2]) if len(keys) > 1 else row[0]: (int(row[-2]), int(row[-1]))
                    for row in db.session.execute(query)}

        facts = {
            "total": grouped(LedgerEntry.campaign_id)[campaign_id],
            "by_action": grouped(LedgerEntry.action),
            "by_team": grouped(team_key),
            "by_day": grouped(LedgerEntry.local_date),
            "cells": grouped(LedgerEntry.local_date, LedgerEntry.action, team_key),
            "per_action": grouped(LedgerEntry.participation_id, LedgerEntry.action),
            "per_day": grouped(LedgerEntry.participation_id, LedgerEntry.local_date),
            "per_member": grouped(LedgerEntry.participation_id, team_key),
        }
        facts["joined"] = Counter(db.session.scalars(select(Participation.joined_on).where(
            Participation.campaign_id == campaign_id)))
        facts["participants"] = db.session.scalar(select(func.count()).where(
            Participation.campaign_id == campaign_id, Participation.disqualified_dt.is_(None)))
        facts["entries"] = [tuple(row) for row in db.session.execute(
            select(LedgerEntry.seq, LedgerEntry.pid, LedgerEntry.action, LedgerEntry.local_date,
                   LedgerEntry.reduction_mg, LedgerEntry.hash)
            .where(LedgerEntry.campaign_id == campaign_id).order_by(LedgerEntry.seq))]
    return facts


def active_count(net: dict, index: int) -> Counter:
    """How many keys (participation, x) have a net above 0, per x."""
    counts = Counter()
    for key, (mg, _) in net.items():
        if mg > 0:
            counts[key[index]] += 1
    return counts


def assert_reports_equal_the_ledger(client, slug: str, headers: dict, facts: dict,
                                    first: date, today: date) -> None:
    total_mg, total_records = facts["total"]
    summary = exact(client.get(f"{REPORTS}/{slug}/summary", headers=headers))
    assert summary["reduction_g"] == grams(total_mg)
    assert summary["records"] == total_records
    assert summary["participants"] == facts["participants"]
    active_per_day = active_count(facts["per_day"], 1)
    assert summary["active_today"] == active_per_day[today]

    # per action: the summary, the breakdown and the ledger grouped by action
    participants_per_action = active_count(facts["per_action"], 1)
    expected_actions = {action: (grams(mg), records, participants_per_action[action])
                        for action, (mg, records) in facts["by_action"].items()}
    for action in SCALE_ACTIONS:
        expected_actions.setdefault(action, (Decimal(0), 0, 0))
    rows = exact(client.get(f"{REPORTS}/{slug}/breakdown?by=action", headers=headers))["rows"]
    assert {r["action"]: (r["reduction_g"], r["records"], r["participants"]) for r in rows} \
        == expected_actions
    assert [(a["action"], a["reduction_g"], a["records"]) for a in summary["by_action"]] == \
        [(r["action"], r["reduction_g"], r["records"]) for r in rows]

    # per team (and the participants without one): the ledger grouped by the member's team
    members_active = active_count(facts["per_member"], 1)
    expected_teams = {team or None: (grams(mg), records, members_active[team])
                      for team, (mg, records) in facts["by_team"].items()}
    rows = exact(client.get(f"{REPORTS}/{slug}/breakdown?by=team", headers=headers))["rows"]
    assert {r["team"]: (r["reduction_g"], r["records"], r["participants"]) for r in rows} \
        == expected_teams

    # the day series, from the first day to today, with the running total
    series = exact(client.get(f"{REPORTS}/{slug}/timeseries", headers=headers))["rows"]
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    cumulative, expected_series = 0, []
    for each in days:
        mg = facts["by_day"].get(each, (0, 0))[0]
        cumulative += mg
        expected_series.append({"date": each.isoformat(), "reduction_g": grams(mg),
                                "cumulative_g": grams(cumulative),
                                "active_participants": active_per_day[each],
                                "new_participants": facts["joined"][each]})
    assert series == expected_series
    assert cumulative == total_mg

    # the CSV: one row per day, action and team, as the ledger groups them
    exported = csv_rows(client.get(f"{REPORTS}/{slug}/export.csv", headers=headers))
    cells = {(r["date"], r["action"], r["team"]): (int(r["records"]), Decimal(r["reduction_g"]))
             for r in exported}
    assert len(cells) == len(exported)
    assert cells == {(d.isoformat(), action, team): (records, grams(mg))
                     for (d, action, team), (mg, records) in facts["cells"].items()}

    # the chain itself: every entry once, in seq order
    ledger = client.get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers)
    lines = jsonl_lines(ledger)
    assert [(p["seq"], p["participant"], p["action"], p["local_date"], p["reduction_mg"],
             p["hash"]) for p in lines] == \
        [(seq, pid, action, d.isoformat(), mg, digest)
         for seq, pid, action, d, mg, digest in facts["entries"]]
    assert sum(p["reduction_mg"] for p in lines) == total_mg
    assert ledger.headers["X-Tanpu-Head-Seq"] == str(len(lines))


@pytest.mark.timeout(900)
def test_reports_agree_with_the_ledger_at_ten_thousand_participants(
        app, client, login, admin, clock):
    """10,000 seeded participants (3 entries each) and a random workload through the API
    before and after the seed (teams or none, several actions and quantities, caps, late
    entries, a disqualified real and a disqualified seeded participant): every report equals
    the ledger grouped directly, to the milligram."""
    rng = random.Random(20330507)
    slug = unique("scale")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-6), ends_on=day(20),
                                                actions=SCALE_ACTIONS_DOC))
    clock.set_day(-3, hour=9)
    people = [make_person(login, client, f"w{i}") for i in range(24)]
    for person in people:
        join(client, person, slug, rng.choice(["red", "blue", None]))
    sent = 0
    for offset in (-3, -2, -1):
        clock.set_day(offset, hour=10)
        sent += random_checkins(client, rng, people, slug)
    clock.set_day(0, hour=8)
    cli(app, "campaigns", "seed", slug, "--participants", str(SEEDED),
        "--entries-per-participant", "3", "--seed", "5")
    clock.set_day(0, hour=12)
    sent += random_checkins(client, rng, people, slug)
    late = [a for a in SCALE_ACTIONS if a != "car_free_day"]
    sent += random_checkins(client, rng, people[:8], slug, day(-1), late)
    pids = pids_of(app, slug)
    real = {pids[p.user_id] for p in people}
    disqualify(client, admin, slug, pids[people[0].user_id])
    disqualify(client, admin, slug, next(pid for pid in sorted(pids.values())
                                        if pid not in real))
    assert sent > 60

    facts = ledger_facts(app, slug)
    assert len(facts["entries"]) >= SEEDED * 3 + sent
    assert facts["total"] == ledger_sum(app, slug)
    assert min(mg for mg, _ in facts["by_action"].values()) >= 0
    headers = {"X-Api-Key": new_key(client, admin, slug)}
    assert_reports_equal_the_ledger(client, slug, headers, facts, day(-6), day(0))

    # an entry appended while the chain streams out is not in that download
    stream = FlaskClient(app).get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers,
                                  buffered=False)
    chunks = iter(stream.response)
    first_chunk = next(chunks)
    head = int(stream.headers["X-Tanpu-Head-Seq"])
    assert checkin(client, people[1], slug, "metro_ride", quantity=1).status_code == 201
    body = (first_chunk + b"".join(chunks)).decode()
    stream.close()
    lines = [json.loads(line) for line in body.splitlines()]
    assert [p["seq"] for p in lines] == list(range(1, head + 1))
    assert lines[-1]["hash"] == stream.headers["X-Tanpu-Head-Hash"]
    assert head_of(app, slug)[0] == head + 1


# --- the CSV ---------------------------------------------------------------------------------

FORMULA_TEAMS = [("zh", "北京交通大学"), ("eq", '=HYPERLINK("x")'), ("at", "@SUM(1)"),
                 ("plus", "+1"), ("-2", "-2")]


def test_csv_is_spreadsheet_safe_sorted_and_keeps_chinese(app, client, login, admin, clock):
    slug = unique("csv")
    doc = campaign_document(slug, starts_on=day(-6), ends_on=day(20))
    doc["teams"]["list"] = [{"key": key, "name": name} for key, name in FORMULA_TEAMS]
    create_live_campaign(app, doc)
    clock.set_day(-1)
    people = [make_person(login, client, f"c{i}") for i in range(len(FORMULA_TEAMS) + 1)]
    for person, team in zip(people, [key for key, _ in FORMULA_TEAMS] + [None], strict=True):
        join(client, person, slug, team)
    for offset in (-1, 0):
        clock.set_day(offset)
        for person in reversed(people):
            for action in ("metro_ride", "clean_plate"):
                assert checkin(client, person, slug, action).status_code == 201
    response = client.get(f"{REPORTS}/{slug}/export.csv",
                          headers={"X-Api-Key": new_key(client, admin, slug)})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.mimetype_params.get("charset") == "utf-8"
    assert response.get_data().startswith(b"\xef\xbb\xbfdate,action,action_name,team,")
    rows = csv_rows(response)
    assert len(rows) == 2 * 2 * len(people)
    detail = client.get(f"/api/v1/campaigns/{slug}").json
    names = {a["key"]: a["name"] for a in detail["actions"]}
    assert {(r["team"], r["team_name"]) for r in rows} == {
        ("zh", "北京交通大学"), ("eq", "'=HYPERLINK(\"x\")"), ("at", "'@SUM(1)"),
        ("plus", "'+1"), ("'-2", "'-2"), ("", "")}
    for row in rows:
        assert row["action_name"] == names[row["action"]]
        assert row["records"] == "1"
    assert {r["action_name"] for r in rows} == {"地铁出行", names["clean_plate"]}
    # sorted by date, then action, then team in the campaign's order (no team first)
    team_order = {"": -1, **{team["key"]: i for i, team in enumerate(detail["teams"])}}
    keys = [(r["date"], r["action"], team_order[r["team"].removeprefix("'")]) for r in rows]
    assert keys == sorted(keys)
    assert [r["date"] for r in rows[:2]] == [day(-1).isoformat()] * 2


# --- the chain -------------------------------------------------------------------------------

@pytest.fixture
def chain_campaign(app, client, login, admin, clock):
    """A campaign whose chain holds check-ins of two days, 0 mg entries and reversals; returns
    (slug, reporter headers, people)."""
    slug = unique("chain")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-6), ends_on=day(20)))
    clock.set_day(-1)
    people = [make_person(login, client, f"l{i}") for i in range(3)]
    for person, team in zip(people, ["red", None, "blue"], strict=True):
        join(client, person, slug, team)
    for offset in (-1, 0):
        clock.set_day(offset)
        for person in people:
            # after a car-free day the ride adds 0 mg, and so does a plate past the cap
            for action, quantity in (("car_free_day", None), ("metro_ride", 3),
                                     ("clean_plate", 3), ("clean_plate", 1)):
                assert checkin(client, person, slug, action, quantity=quantity).status_code == 201
    disqualify(client, admin, slug, pids_of(app, slug)[people[2].user_id])
    return slug, {"X-Api-Key": new_key(client, admin, slug)}, people


def run_verifier(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(VERIFIER), str(path), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_ledger_download_is_the_whole_chain_in_order(app, client, chain_campaign):
    slug, headers, _ = chain_campaign
    head_seq, head_hash = head_of(app, slug)
    response = client.get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = jsonl_lines(response)
    assert [line["seq"] for line in lines] == list(range(1, head_seq + 1))
    for line in lines:
        assert set(line) == CHAIN_KEYS, line
        assert line["campaign"] == slug
    assert lines[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))
    assert {line["source"] for line in lines} == {"checkin", "reversal"}
    reversals = [line for line in lines if line["source"] == "reversal"]
    assert all(line["reduction_mg"] <= 0 and line["source_ref"] for line in reversals)
    assert sum(line["reduction_mg"] for line in reversals) < 0
    assert any(line["reduction_mg"] == 0 for line in lines)  # over the cap still appends
    assert response.headers["X-Tanpu-Head-Seq"] == str(head_seq) == str(lines[-1]["seq"])
    assert response.headers["X-Tanpu-Head-Hash"] == head_hash == lines[-1]["hash"]
    assert sum(line["reduction_mg"] for line in lines) == ledger_sum(app, slug)[0]


def test_upto_seq_stops_there_with_that_entrys_head(app, client, chain_campaign):
    slug, headers, _ = chain_campaign
    head_seq, head_hash = head_of(app, slug)
    full = jsonl_lines(client.get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers))
    middle = head_seq // 2
    cut = client.get(f"{REPORTS}/{slug}/ledger.jsonl?upto_seq={middle}", headers=headers)
    assert jsonl_lines(cut) == full[:middle]
    assert cut.headers["X-Tanpu-Head-Seq"] == str(middle)
    assert cut.headers["X-Tanpu-Head-Hash"] == full[middle - 1]["hash"]
    empty = client.get(f"{REPORTS}/{slug}/ledger.jsonl?upto_seq=0", headers=headers)
    assert empty.status_code == 200 and empty.get_data() == b""
    assert (empty.headers["X-Tanpu-Head-Seq"], empty.headers["X-Tanpu-Head-Hash"]) == \
        ("0", GENESIS)
    beyond = client.get(f"{REPORTS}/{slug}/ledger.jsonl?upto_seq={head_seq + 5}",
                        headers=headers)
    assert jsonl_lines(beyond) == full
    assert (beyond.headers["X-Tanpu-Head-Seq"], beyond.headers["X-Tanpu-Head-Hash"]) == \
        (str(head_seq), head_hash)


def test_outside_verifier_accepts_the_download_and_names_a_changed_line(
        app, client, chain_campaign, tmp_path):
    slug, headers, _ = chain_campaign
    head_seq, _ = head_of(app, slug)
    verified = client.get(f"{REPORTS}/{slug}/ledger/verify", headers=headers).json
    assert verified["ok"] and verified["head_seq"] == head_seq
    download = client.get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers)
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(download.get_data())
    result = run_verifier(path, "--expect-head", verified["head_hash"],
                          "--expect-seq", download.headers["X-Tanpu-Head-Seq"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"head seq {head_seq}, head hash {verified['head_hash']}" in result.stdout
    assert f"({ledger_sum(app, slug)[0]} mg)" in result.stdout

    # a download cut short verifies as a chain, but not against the published head
    cut = client.get(f"{REPORTS}/{slug}/ledger.jsonl?upto_seq={head_seq - 2}", headers=headers)
    short = tmp_path / "short.jsonl"
    short.write_bytes(cut.get_data())
    assert run_verifier(short).returncode == 0
    assert run_verifier(short, "--expect-head", verified["head_hash"]).returncode == 1

    lines = path.read_text(encoding="utf-8").splitlines()
    changed = 4
    line = json.loads(lines[changed - 1])
    assert line["seq"] == changed
    line["reduction_mg"] += 1000
    lines[changed - 1] = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
    altered = tmp_path / "altered.jsonl"
    altered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_verifier(altered, "--expect-head", verified["head_hash"])
    assert result.returncode == 1, result.stdout
    assert f"first bad seq {changed} " in result.stdout


# --- ledger/verify ---------------------------------------------------------------------------

def verification(client, slug: str, headers: dict) -> dict:
    response = client.get(f"{REPORTS}/{slug}/ledger/verify", headers=headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"entries", "head_seq", "head_hash", "ok", "first_bad_seq",
                         "verified_at", "full_verified_at"}
    return body


def tamper(app, slug: str, seq: int, **values) -> None:
    """Change the stored entry at ``seq`` behind the server's back."""
    with app.app_context():
        done = db.session.execute(update(LedgerEntry).where(
            LedgerEntry.campaign_id == campaign_id_of(slug), LedgerEntry.seq == seq)
            .values(**values))
        assert done.rowcount == 1
        db.session.commit()


def stored_mg(app, slug: str, seq: int) -> int:
    with app.app_context():
        return db.session.scalar(select(LedgerEntry.reduction_mg).where(
            LedgerEntry.campaign_id == campaign_id_of(slug), LedgerEntry.seq == seq))


def test_verification_runs_at_most_once_a_minute_and_fully_every_hour(
        app, client, clock, chain_campaign):
    slug, headers, people = chain_campaign
    head_seq, head_hash = head_of(app, slug)
    first = verification(client, slug, headers)
    assert first["ok"] and first["first_bad_seq"] is None
    assert (first["entries"], first["head_seq"], first["head_hash"]) == \
        (head_seq, head_seq, head_hash)
    assert first["verified_at"] is not None
    assert first["full_verified_at"] == first["verified_at"]

    clock.advance(30)
    assert checkin(client, people[0], slug, "reusable_cup").status_code == 201
    again = verification(client, slug, headers)
    assert again == first  # within the minute: the stored result, nothing re-run

    clock.advance(31)
    moved = verification(client, slug, headers)
    assert moved["ok"] and moved["head_seq"] == moved["entries"] == head_seq + 1
    assert moved["head_hash"] == head_of(app, slug)[1]
    assert parse_instant(moved["verified_at"]) > parse_instant(first["verified_at"])
    assert moved["full_verified_at"] == first["full_verified_at"]  # an incremental run

    clock.advance(61 * 60)
    hourly = verification(client, slug, headers)
    assert hourly["ok"] and hourly["head_seq"] == head_seq + 1
    assert hourly["full_verified_at"] == hourly["verified_at"]
    assert parse_instant(hourly["full_verified_at"]) > parse_instant(first["full_verified_at"])


def test_verification_catches_a_changed_entry_after_the_verified_head(
        app, client, clock, chain_campaign):
    slug, headers, people = chain_campaign
    verified = verification(client, slug, headers)
    for action in ("reusable_cup", "reusable_bag"):
        assert checkin(client, people[0], slug, action).status_code == 201
    changed = verified["head_seq"] + 1
    original = stored_mg(app, slug, changed)
    tamper(app, slug, changed, reduction_mg=original + 1)
    clock.advance(61)
    bad = verification(client, slug, headers)
    assert not bad["ok"] and bad["first_bad_seq"] == changed
    assert bad["head_seq"] == verified["head_seq"]  # the last good point is kept
    clock.advance(61)
    assert verification(client, slug, headers)["first_bad_seq"] == changed  # found again

    tamper(app, slug, changed, reduction_mg=original)  # put back: whole again
    clock.advance(61)
    healed = verification(client, slug, headers)
    assert healed["ok"] and healed["head_seq"] == head_of(app, slug)[0]


def test_verification_catches_a_rewritten_hash_at_the_verified_head(
        app, client, clock, chain_campaign):
    slug, headers, people = chain_campaign
    verified = verification(client, slug, headers)
    assert checkin(client, people[0], slug, "reusable_cup").status_code == 201
    tamper(app, slug, verified["head_seq"], hash="f" * 64)
    clock.advance(61)
    bad = verification(client, slug, headers)
    assert not bad["ok"] and bad["first_bad_seq"] == verified["head_seq"]


def tamper_before_the_verified_head(app, client, clock, chain_campaign) -> tuple[str, dict, int]:
    """Verify, append, then change an entry that the last run already verified."""
    slug, headers, people = chain_campaign
    assert verification(client, slug, headers)["ok"]
    assert checkin(client, people[0], slug, "reusable_cup").status_code == 201
    changed = 3
    tamper(app, slug, changed, reduction_mg=stored_mg(app, slug, changed) + 1000)
    return slug, headers, changed


def test_a_changed_entry_before_the_verified_head_is_caught_by_the_hourly_full_run(
        app, client, clock, chain_campaign):
    slug, headers, changed = tamper_before_the_verified_head(app, client, clock, chain_campaign)
    clock.advance(61 * 60)
    bad = verification(client, slug, headers)
    assert not bad["ok"] and bad["first_bad_seq"] == changed, bad


def test_a_changed_entry_before_the_verified_head_is_caught_within_the_minute(
        app, client, clock, chain_campaign):
    slug, headers, changed = tamper_before_the_verified_head(app, client, clock, chain_campaign)
    clock.advance(61)
    bad = verification(client, slug, headers)
    assert not bad["ok"] and bad["first_bad_seq"] == changed, bad


def test_verification_catches_a_deleted_tail(app, client, clock, chain_campaign):
    slug, headers, _ = chain_campaign
    verified = verification(client, slug, headers)
    head_seq = verified["head_seq"]
    with app.app_context():
        db.session.execute(delete(LedgerEntry).where(
            LedgerEntry.campaign_id == campaign_id_of(slug), LedgerEntry.seq > head_seq - 2))
        db.session.commit()
    clock.advance(61)
    bad = verification(client, slug, headers)
    assert not bad["ok"] and bad["first_bad_seq"] == head_seq - 1


def test_cli_verification_is_recorded_and_reported(app, client, clock, chain_campaign):
    slug, headers, _ = chain_campaign
    head_seq, head_hash = head_of(app, slug)
    clock.advance(5)
    before = clock.instant
    result = cli(app, "ledger", "verify", slug)
    assert f"ledger {slug}: ok, {head_seq} entries" in result.output
    clock.advance(20)
    reported = verification(client, slug, headers)
    assert reported["ok"] and (reported["head_seq"], reported["head_hash"]) == \
        (head_seq, head_hash)
    at = parse_instant(reported["verified_at"])
    assert before <= at < before + timedelta(seconds=1)  # the CLI's run, not a new one
    assert reported["full_verified_at"] == reported["verified_at"]

    tamper(app, slug, 2, reduction_mg=stored_mg(app, slug, 2) + 1)
    failed = app.test_cli_runner().invoke(args=["ledger", "verify", slug])
    assert failed.exit_code == 1
    assert "BAD at seq 2" in failed.output
    clock.advance(5)
    reported = verification(client, slug, headers)  # within the minute: the CLI's verdict
    assert not reported["ok"] and reported["first_bad_seq"] == 2
