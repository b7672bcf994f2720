"""Plausibility holds (issue 5): implausible intakes wait outside the ledger, count nowhere, are
listed to the participant and to organisers, and are released (one ``release`` entry with the
original date) or rejected once, both audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.backend.intake_fixtures import (
    encrypt_steps,
    entry_count,
    holds_in,
    local_instant,
    make_partner,
    sandbox_appid,
    session_key_of_user,
    unionid_of,
    utc_iso,
    werun,
)
from tests.backend.intake_helpers import (
    ADMIN_API,
    API,
    campaign_document,
    checkin,
    create_live_campaign,
    day,
    error_code,
    exact,
    grams,
    install_clock,
    join,
    ledger_cli,
    ledger_rows,
    me,
)

SLUG = "holds-main"


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def world(app, client, login, clock):
    """A campaign counting steps (cap 10000, minimum 1000, 0.02 g a step) and cycling from a
    partner, from day -10 to day 10; alice joined on day -5 and it is now day 0."""
    create_live_campaign(app, campaign_document(
        SLUG, starts_on=day(-10), ends_on=day(10),
        actions=[{"key": "walk_steps", "daily_cap": 10000, "min_quantity": 1000},
                 {"key": "cycle_km"}, {"key": "metro_ride"}]))
    alice = login("alice")
    clock.set_day(-5)
    assert join(client, alice, SLUG).status_code == 201
    clock.set_day(0)
    return alice


def sync(app, client, person, days: dict):
    body = encrypt_steps(session_key_of_user(app, person.user_id),
                         {day(offset): steps for offset, steps in days.items()},
                         sandbox_appid(app))
    response = werun(client, person, SLUG, body)
    assert response.status_code == 200, response.json
    return exact(response)


def admin_holds(client, admin, status: str | None = None) -> list[dict]:
    query = f"?status={status}" if status else ""
    response = client.get(f"{ADMIN_API}/{SLUG}/holds{query}", headers=admin.headers)
    assert response.status_code == 200, response.json
    return exact(response)["items"]


def decide(client, admin, hold_id: int, decision: str):
    return client.post(f"{ADMIN_API}/{SLUG}/holds/{hold_id}/{decision}", headers=admin.headers)


def total_g(client):
    return exact(client.get(f"{API}/{SLUG}"))["reduction_g"]


def test_implausible_step_days_are_held_and_count_nowhere(app, client, world, admin, runner):
    alice = world
    body = sync(app, client, alice, {-3: 60000, -2: 66666, -1: 8000, 0: 5000})
    assert [(d["date"], d["steps"], d["status"]) for d in body["days"]] == [
        (day(-3).isoformat(), 60000, "held"), (day(-2).isoformat(), 66666, "held"),
        (day(-1).isoformat(), 8000, "counted"), (day(0).isoformat(), 5000, "counted")]
    held_days = [d for d in body["days"] if d["status"] == "held"]
    assert all(d["counted_steps"] == 0 and d["reduction_g"] == 0 for d in held_days)
    assert body["added_reduction_g"] == grams(13000 * 20)

    # nowhere: not in the ledger, /me, the campaign's total or its progress
    assert [r.local_date for r in ledger_rows(app, SLUG)] == [day(-1), day(0)]
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == grams(13000 * 20) == total_g(client)
    assert mine["by_action"] == {"walk_steps": {"reduction_g": 260, "records": 2}}
    assert mine["days_active"] == 2
    assert exact(client.get(f"{API}/{SLUG}/progress"))["reduction_g"] == 260
    board = client.get(f"{API}/{SLUG}/leaderboards/individuals", headers=alice.headers)
    assert exact(board)["me"]["reduction_g"] == 260
    # listed to me and to organisers
    assert [(h["source"], h["action"], h["date"], h["quantity"]) for h in mine["held"]] == [
        ("werun", "walk_steps", day(-3).isoformat(), 60000),
        ("werun", "walk_steps", day(-2).isoformat(), 66666)]
    assert "steps_over_limit" in mine["held"][0]["signals"]
    assert "steps_repeated_digit" in mine["held"][1]["signals"]
    listed = admin_holds(client, admin)
    assert [(h["source"], h["date"], h["quantity"], h["status"]) for h in listed] == [
        ("werun", day(-3).isoformat(), 60000, "held"),
        ("werun", day(-2).isoformat(), 66666, "held")]
    assert [h["id"] for h in listed] == [h["id"] for h in mine["held"]]
    # a later sync of a held day updates the hold, and it stays out of the ledger
    again = sync(app, client, alice, {-3: 61000, -2: 66666, -1: 8000, 0: 5000})
    assert [d["status"] for d in again["days"]] == ["held", "unchanged", "unchanged",
                                                    "unchanged"]
    assert again["added_reduction_g"] == 0
    assert admin_holds(client, admin)[0]["quantity"] == 61000
    assert entry_count(app, SLUG) == 2
    assert ledger_cli(runner, "verify", SLUG).exit_code == 0


def test_a_release_appends_one_entry_with_the_original_date_and_is_decided_once(
        app, client, world, admin, runner, clock):
    alice = world
    sync(app, client, alice, {-3: 60000, -2: 66666, -1: 8000})
    first, second = admin_holds(client, admin)
    clock.set_day(2)  # decided days later: the entry keeps the intake's own date

    released = decide(client, admin, first["id"], "release")
    assert released.status_code == 200, released.json
    assert released.json["status"] == "released"
    assert released.json["decided_by"] == admin.email
    rows = ledger_rows(app, SLUG)
    assert len(rows) == 2
    entry = rows[-1]
    assert (entry.source, entry.source_ref is not None, entry.action, entry.local_date,
            entry.quantity_milli, entry.counted_milli, entry.reduction_mg) == (
        "release", True, "walk_steps", day(-3), 60_000_000, 10_000_000, 200_000)
    assert released.json["entry_seq"] == entry.seq
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == grams((8000 + 10000) * 20) == total_g(client)
    assert mine["by_action"]["walk_steps"]["records"] == 2
    assert [h["id"] for h in mine["held"]] == [second["id"]]
    assert [h["id"] for h in admin_holds(client, admin, "released")] == [first["id"]]

    for decision in ("release", "reject"):  # decided once
        assert error_code(decide(client, admin, first["id"], decision)) == (
            409, "hold.already_decided")
    assert entry_count(app, SLUG) == 2

    rejected = decide(client, admin, second["id"], "reject")
    assert rejected.status_code == 200, rejected.json
    assert (rejected.json["status"], rejected.json["entry_seq"]) == ("rejected", None)
    assert entry_count(app, SLUG) == 2
    assert me(client, alice, SLUG)["held"] == []
    assert me(client, alice, SLUG)["reduction_g"] == grams(18000 * 20)
    for decision in ("reject", "release"):
        assert error_code(decide(client, admin, second["id"], decision)) == (
            409, "hold.already_decided")
    assert entry_count(app, SLUG) == 2
    assert admin_holds(client, admin) == []
    assert [h["id"] for h in admin_holds(client, admin, "rejected")] == [second["id"]]

    # both decisions are in the audit log, by whom
    audit = client.get(f"{ADMIN_API}/{SLUG}/audit", headers=admin.headers)
    assert audit.status_code == 200, audit.json
    decisions = [(item["action"], item["target"], item["actor"]) for item in audit.json["items"]
                 if item["action"].startswith("hold.")]
    assert sorted(decisions) == sorted([
        ("hold.release", f"hold:{first['id']}", admin.email),
        ("hold.reject", f"hold:{second['id']}", admin.email)])
    assert ledger_cli(runner, "verify", SLUG).exit_code == 0


def test_a_release_after_counted_syncs_of_the_day_counts_once(app, client, world, admin):
    """A day held at 60,000 steps and released counts its capped steps once, whatever was
    synced before."""
    alice = world
    sync(app, client, alice, {-1: 4000})
    sync(app, client, alice, {-1: 60000})  # the rise is implausible: held
    assert me(client, alice, SLUG)["reduction_g"] == 80
    (hold,) = admin_holds(client, admin)
    assert decide(client, admin, hold["id"], "release").status_code == 200
    assert me(client, alice, SLUG)["reduction_g"] == 200  # the day's cap, once
    assert [(r.source, r.local_date) for r in ledger_rows(app, SLUG)] == [
        ("werun", day(-1)), ("release", day(-1))]


def test_unknown_holds_and_holds_of_other_campaigns_are_not_found(app, client, world, admin):
    alice = world
    sync(app, client, alice, {-1: 60000})
    (hold,) = admin_holds(client, admin)
    create_live_campaign(app, campaign_document("holds-other", starts_on=day(-10),
                                                ends_on=day(10),
                                                actions=[{"key": "walk_steps"}]))
    other = client.post(f"{ADMIN_API}/holds-other/holds/{hold['id']}/release",
                        headers=admin.headers)
    assert error_code(other) == (404, "not_found")
    assert error_code(decide(client, admin, hold["id"] + 1000, "release")) == (404, "not_found")
    assert holds_in(app, SLUG)[0][-1] == "held"


def test_organisers_of_other_campaigns_do_not_see_the_holds(app, client, world, staff_token):
    alice = world
    sync(app, client, alice, {-1: 60000})
    create_live_campaign(app, campaign_document("holds-elsewhere", starts_on=day(-10),
                                                ends_on=day(10),
                                                actions=[{"key": "walk_steps"}]))
    stranger = staff_token("org@elsewhere.test", "organiser", ["holds-elsewhere"])
    (hold_id, *_), = holds_in(app, SLUG)
    listed = client.get(f"{ADMIN_API}/{SLUG}/holds", headers=stranger.headers)
    assert error_code(listed) == (404, "not_found")
    assert error_code(decide(client, stranger, hold_id, "release")) == (404, "not_found")
    manager = staff_token("org@holds.test", "organiser", [SLUG])
    assert [h["id"] for h in admin_holds(client, manager)] == [hold_id]
    assert holds_in(app, SLUG)[0][-1] == "held"


def test_participants_cannot_decide_holds(app, client, world):
    alice = world
    sync(app, client, alice, {-1: 60000})
    (hold_id, *_), = holds_in(app, SLUG)
    response = client.post(f"{ADMIN_API}/{SLUG}/holds/{hold_id}/release", headers=alice.headers)
    assert error_code(response) == (403, "auth.forbidden")
    assert holds_in(app, SLUG)[0][-1] == "held"


def test_a_cycling_trip_faster_than_25_kmh_is_held(app, client, world, admin, clock):
    alice = world
    partner = make_partner(app, client, clock, "bikes", [SLUG])
    unionid = unionid_of(app, "alice")
    end = local_instant(day(0), 9)

    def ride(trip_id: str, metres: int, seconds: int) -> dict:
        return {"trip_id": trip_id, "unionid": unionid, "mode": "bike", "distance_m": metres,
                "started_at": utc_iso(end - timedelta(seconds=seconds)),
                "ended_at": utc_iso(end)}

    response = partner.trips(ride("fast", 10_000, 20 * 60),  # 30 km/h
                             ride("exactly-25", 10_000, 24 * 60))  # 25 km/h is plausible
    assert response.json == {"accepted": 1, "held": 1, "duplicates": 0, "unmatched": 0,
                             "rejected": []}
    assert [(r.action, r.quantity_milli, r.reduction_mg) for r in ledger_rows(app, SLUG)] == [
        ("cycle_km", 10_000, 470_000)]
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == 470
    assert [(h["source"], h["action"], h["quantity"], h["signals"]) for h in mine["held"]] == [
        ("partner", "cycle_km", 10, ["cycling_too_fast"])]
    (listed,) = admin_holds(client, admin)
    assert (listed["source"], listed["date"]) == ("partner", day(0).isoformat())
    # held items are remembered like accepted ones
    assert partner.trips(ride("fast", 10_000, 20 * 60)).json["duplicates"] == 1
    # released: one release entry on the trip's day; the day's cycling is 20 km, capped at 15
    clock.set_day(1)
    assert decide(client, admin, listed["id"], "release").status_code == 200
    entry = ledger_rows(app, SLUG)[-1]
    assert (entry.source, entry.local_date, entry.quantity_milli, entry.counted_milli,
            entry.reduction_mg) == ("release", day(0), 10_000, 5_000, 235_000)
    assert me(client, alice, SLUG)["reduction_g"] == 705
    assert partner.trips(ride("fast", 10_000, 20 * 60)).json["duplicates"] == 1


def test_a_rejected_trip_appends_nothing(app, client, world, admin, clock):
    alice = world
    partner = make_partner(app, client, clock, "bikes", [SLUG])
    end = local_instant(day(0), 9)
    trip = {"trip_id": "fast", "unionid": unionid_of(app, "alice"), "mode": "bike",
            "distance_m": 9000, "started_at": utc_iso(end - timedelta(minutes=10)),
            "ended_at": utc_iso(end)}
    assert partner.trips(trip).json["held"] == 1
    (listed,) = admin_holds(client, admin)
    assert decide(client, admin, listed["id"], "reject").status_code == 200
    assert entry_count(app, SLUG) == 0
    assert me(client, alice, SLUG)["reduction_g"] == 0
    assert partner.trips(trip).json["duplicates"] == 1  # still counted once ever: never


def test_a_count_over_the_cap_three_days_running_is_held(app, client, world, admin, clock):
    alice = world
    for offset in (-3, -2):
        clock.set_day(offset)
        body = exact(checkin(client, alice, SLUG, "metro_ride", 6, key=f"metro{offset}"))
        assert (body["held"], body["counted_quantity"], body["capped"]) == (False, 5, True)
    clock.set_day(-1)
    third = exact(checkin(client, alice, SLUG, "metro_ride", 6, key="metro-1"))
    assert (third["held"], third["counted_quantity"], third["reduction_g"]) == (True, 0, 0)
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == 2 * 5 * 52
    assert [(h["source"], h["action"], h["date"], h["quantity"]) for h in mine["held"]] == [
        ("checkin", "metro_ride", day(-1).isoformat(), 6)]
    (listed,) = admin_holds(client, admin)
    assert decide(client, admin, listed["id"], "release").status_code == 200
    entry = ledger_rows(app, SLUG)[-1]
    assert (entry.source, entry.local_date, entry.counted_milli, entry.reduction_mg) == (
        "release", day(-1), 5000, 260_000)
    assert me(client, alice, SLUG)["reduction_g"] == 3 * 5 * 52


def test_a_day_reported_held_is_awaiting_review(app, client, world, admin):
    alice = world
    sync(app, client, alice, {-1: 60000})
    (listed,) = admin_holds(client, admin)
    assert decide(client, admin, listed["id"], "reject").status_code == 200
    later = sync(app, client, alice, {-1: 70000})
    held_dates = {h["date"] for h in me(client, alice, SLUG)["held"]}
    for reported in later["days"]:
        if reported["status"] == "held":
            assert reported["date"] in held_dates, reported
