"""Joining (invite codes, team modes, campaign-local join day, open window) and the errors of
check-ins (API.md participant endpoints, error codes and the Idempotency-Key convention)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Campaign, Checkin, IdempotencyRecord, LedgerEntry
from tests.backend.intake_helpers import (
    API,
    campaign_document,
    checkin,
    create_live_campaign,
    day,
    error_code,
    install_clock,
    iso,
    join,
    ledger_rows,
)

SLUG = "rules-test"
ACTIONS = [{"key": "clean_plate"}, {"key": "metro_ride"}, {"key": "car_free_day"},
           {"key": "cycle_km"}, {"key": "clothes_recycle"}, {"key": "walk_steps"}]


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


def make(app, slug: str = SLUG, *, starts: int = -5, ends: int = 10, publish: bool = True,
         **fields) -> str:
    create_live_campaign(app, campaign_document(slug, starts_on=day(starts), ends_on=day(ends),
                                                actions=fields.pop("actions", ACTIONS),
                                                **fields), publish=publish)
    return slug


def fields_of(response) -> dict:
    return response.json["error"].get("fields") or {}


def entry_count(app, slug: str = SLUG) -> int:
    return len(ledger_rows(app, slug))


# -- joining -----------------------------------------------------------------------------------

def test_joining_gives_the_campaign_local_day_and_a_pid(app, client, login, clock):
    make(app)
    ann = login("ann")
    response = join(client, ann, SLUG)
    assert response.status_code == 201, response.json
    assert response.json == {"joined_on": iso(0), "team": None}


@pytest.mark.parametrize(("utc", "shanghai_day"), [
    (datetime(2031, 3, 10, 15, 59, tzinfo=UTC), "2031-03-10"),  # 23:59 in Shanghai
    (datetime(2031, 3, 10, 16, 0, tzinfo=UTC), "2031-03-11"),  # 00:00 in Shanghai
])
def test_the_join_day_is_campaign_local(app, client, login, clock, utc, shanghai_day):
    make(app)
    make(app, "rules-utc", timezone="UTC", actions=ACTIONS[:-1])  # no steps outside Beijing
    ann = login("ann")
    clock.instant = utc
    assert join(client, ann, SLUG).json["joined_on"] == shanghai_day
    assert join(client, ann, "rules-utc").json["joined_on"] == "2031-03-10"


def test_the_invite_code_is_required(app, client, login, clock):
    make(app, join={"invite_code": "GREEN-2031"})
    ann = login("ann")
    assert error_code(join(client, ann, SLUG)) == (403, "campaign.join_denied")
    assert error_code(join(client, ann, SLUG, invite_code="green-2031")) == (
        403, "campaign.join_denied")
    assert error_code(join(client, ann, SLUG, invite_code="GREEN-2031x")) == (
        403, "campaign.join_denied")
    assert error_code(checkin(client, ann, SLUG, "car_free_day")) == (409, "campaign.not_joined")
    response = join(client, ann, SLUG, invite_code="GREEN-2031")
    assert response.status_code == 201, response.json
    again = join(client, ann, SLUG, invite_code="GREEN-2031")
    assert (again.status_code, again.json) == (200, response.json)


def test_required_team_mode(app, client, login, clock):
    make(app, teams={"mode": "required", "ranking": "total", "min_active_members": 1,
                     "list": [{"key": "red", "name": "红队"}, {"key": "blue", "name": "蓝队"}]})
    ann = login("ann")
    response = join(client, ann, SLUG)
    assert error_code(response) == (422, "validation.failed")
    assert "team" in fields_of(response)
    response = join(client, ann, SLUG, team="green")
    assert error_code(response) == (422, "validation.failed")
    assert "team" in fields_of(response)
    joined = join(client, ann, SLUG, team="red")
    assert (joined.status_code, joined.json["team"]) == (201, "red")
    again = join(client, ann, SLUG, team="red")
    assert (again.status_code, again.json) == (200, joined.json)
    assert error_code(join(client, ann, SLUG, team="blue")) == (409, "team.conflict")


def test_no_team_mode(app, client, login, clock):
    make(app, teams={"mode": "none", "ranking": "total", "min_active_members": 1, "list": []})
    ann = login("ann")
    response = join(client, ann, SLUG, team="red")
    assert error_code(response) == (422, "validation.failed")
    assert "team" in fields_of(response)
    joined = join(client, ann, SLUG)
    assert (joined.status_code, joined.json["team"]) == (201, None)


def test_optional_team_mode(app, client, login, clock):
    make(app)
    ann, bob = login("ann"), login("bob")
    response = join(client, ann, SLUG, team="nope")
    assert error_code(response) == (422, "validation.failed")
    assert "team" in fields_of(response)
    assert join(client, ann, SLUG).json["team"] is None
    assert error_code(join(client, ann, SLUG, team="red")) == (409, "team.conflict")
    assert join(client, bob, SLUG, team="blue").json["team"] == "blue"
    assert error_code(join(client, bob, SLUG, team="red")) == (409, "team.conflict")


def test_an_unpublished_campaign_is_404(app, client, login, clock):
    make(app, publish=False)
    ann = login("ann")
    assert error_code(join(client, ann, SLUG)) == (404, "not_found")
    assert error_code(checkin(client, ann, SLUG, "car_free_day")) == (404, "not_found")
    assert error_code(client.get(f"{API}/{SLUG}/me", headers=ann.headers)) == (404, "not_found")
    assert error_code(join(client, ann, "no-such-campaign")) == (404, "not_found")


@pytest.mark.parametrize(("starts", "ends", "late", "status"), [
    (1, 10, 1, 409),  # before starts_on
    (0, 10, 1, 201),  # on starts_on
    (-10, -2, 1, 409),  # after ends_on + late_entry_days
    (-10, -1, 1, 201),  # on the last late day
    (-10, -3, 3, 201),
    (-10, 0, 0, 201),  # on ends_on, no late days
    (-10, -1, 0, 409),
])
def test_joining_outside_the_open_window_is_409(app, client, login, clock, starts, ends, late,
                                                 status):
    make(app, starts=starts, ends=ends, late_entry_days=late)
    response = join(client, login("ann"), SLUG)
    if status == 409:
        assert error_code(response) == (409, "campaign.not_active")
    else:
        assert response.status_code == 201, response.json


def test_joining_needs_a_participant_token(app, client, clock):
    make(app)
    response = client.post(f"{API}/{SLUG}/join", json={})
    assert error_code(response) == (401, "auth.token_missing")


# -- check-in errors ---------------------------------------------------------------------------

@pytest.fixture
def joined(app, client, login, clock):
    """ann joined SLUG (late_entry_days 1) on day 0; now is day 0."""
    make(app)
    ann = login("ann")
    assert join(client, ann, SLUG).status_code == 201
    return ann


def test_a_check_in_needs_joining(app, client, login, clock):
    make(app)
    response = checkin(client, login("ann"), SLUG, "clean_plate", 1, None, "k")
    assert error_code(response) == (409, "campaign.not_joined")
    assert entry_count(app) == 0


def test_a_once_daily_action_counts_once_a_day(app, client, joined, clock):
    first = checkin(client, joined, SLUG, "car_free_day")
    assert first.status_code == 201, first.json
    assert first.json["reduction_g"] == 3700
    assert error_code(checkin(client, joined, SLUG, "car_free_day")) == (
        409, "checkin.already_done")
    assert error_code(checkin(client, joined, SLUG, "car_free_day", None, iso(0), "other")) == (
        409, "checkin.already_done")
    assert entry_count(app) == 1
    clock.set_day(1)
    assert checkin(client, joined, SLUG, "car_free_day").status_code == 201


@pytest.mark.parametrize(("now", "on"), [
    (0, 1),  # in the future
    (0, -1),  # before the join day (and late)
    (2, 0),  # more than late_entry_days (1) ago
    (3, 0),
])
def test_dates_out_of_range_are_422(app, client, joined, clock, now, on):
    clock.set_day(now)
    response = checkin(client, joined, SLUG, "clean_plate", 1, iso(on), "k")
    assert error_code(response) == (422, "checkin.date_out_of_range")
    assert entry_count(app) == 0


def test_a_late_entry_within_late_entry_days_counts(app, client, joined, clock):
    clock.set_day(1)
    response = checkin(client, joined, SLUG, "clean_plate", 1, iso(0), "k")
    assert (response.status_code, response.json["date"]) == (201, iso(0))
    assert ledger_rows(app, SLUG)[0].local_date == day(0)


def test_dates_after_ends_on_are_422_while_late_intake_is_open(app, client, login, clock):
    make(app, starts=-5, ends=0, late_entry_days=2)
    ann = login("ann")
    assert join(client, ann, SLUG).status_code == 201
    clock.set_day(1)
    assert error_code(checkin(client, ann, SLUG, "car_free_day")) == (
        422, "checkin.date_out_of_range")
    assert checkin(client, ann, SLUG, "car_free_day", None, iso(0)).status_code == 201
    clock.set_day(3)
    # closed: campaign.not_active comes before any date rule
    assert error_code(checkin(client, ann, SLUG, "car_free_day", None, iso(0))) == (
        409, "campaign.not_active")
    assert error_code(checkin(client, ann, SLUG, "car_free_day", None, iso(9))) == (
        409, "campaign.not_active")


def test_a_malformed_date_is_422(client, joined):
    response = checkin(client, joined, SLUG, "car_free_day", None, "2031-02-30")
    assert error_code(response) == (422, "validation.failed")
    assert "date" in fields_of(response)


def test_steps_cannot_be_self_reported(app, client, joined):
    response = checkin(client, joined, SLUG, "walk_steps", 5000, None, "k")
    assert error_code(response) == (422, "checkin.source_not_allowed")
    assert entry_count(app) == 0


def test_an_action_the_campaign_does_not_count_is_422(client, joined):
    for action in ("e_ticket", "no_such_action"):
        response = checkin(client, joined, SLUG, action, 1, None, "k-" + action)
        assert error_code(response) == (422, "validation.failed")
        assert "action" in fields_of(response)


@pytest.mark.parametrize(("action", "quantity"), [
    ("clean_plate", None), ("clean_plate", 1), ("cycle_km", 2.5), ("clothes_recycle", 1),
])
def test_count_distance_and_weight_need_an_idempotency_key(app, client, joined, action,
                                                           quantity):
    response = checkin(client, joined, SLUG, action, quantity)
    assert error_code(response) == (422, "validation.failed")
    assert "Idempotency-Key" in fields_of(response)
    assert entry_count(app) == 0


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "clé"])
def test_a_malformed_idempotency_key_is_422(client, joined, key):
    response = checkin(client, joined, SLUG, "clean_plate", 1, None, key)
    assert error_code(response) == (422, "validation.failed")
    assert "Idempotency-Key" in fields_of(response)


def test_the_longest_idempotency_key_is_fine(client, joined):
    assert checkin(client, joined, SLUG, "clean_plate", 1, None, "~" * 64).status_code == 201


@pytest.mark.parametrize(("action", "quantity"), [
    ("cycle_km", 1.2345),  # 4 decimals
    ("cycle_km", "1.0001"),
    ("cycle_km", 0),
    ("cycle_km", -1),
    ("cycle_km", None),  # required for distance
    ("clothes_recycle", None),  # required for weight
    ("clothes_recycle", 1e-4),
    ("clothes_recycle", "abc"),
    ("clothes_recycle", True),
    ("clean_plate", 1.5),  # a count is whole
    ("clean_plate", 0),
    ("car_free_day", 2),  # a once-daily action counts 1
    ("cycle_km", 10**7),
])
def test_a_bad_quantity_is_422_at_quantity(app, client, joined, action, quantity):
    body = {"action": action}
    if quantity is not None:
        body["quantity"] = quantity
    response = checkin(client, joined, SLUG, action, key="k", body=body)
    assert error_code(response) == (422, "validation.failed")
    assert "quantity" in fields_of(response)
    assert entry_count(app) == 0


def test_three_decimals_are_exact(app, client, joined):
    response = checkin(client, joined, SLUG, "cycle_km", 2.345, None, "k")
    assert response.status_code == 201, response.json
    assert response.json["quantity"] == 2.345
    assert response.json["reduction_g"] == 110.215  # 2.345 km x 47 g exactly
    row = ledger_rows(app, SLUG)[0]
    assert (row.quantity_milli, row.reduction_mg) == (2345, 110_215)


# -- idempotency -------------------------------------------------------------------------------

def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_the_same_key_and_body_replays_the_first_response(app, client, joined):
    first = checkin(client, joined, SLUG, "clean_plate", 1, None, "same")
    assert first.status_code == 201
    for _ in range(3):
        again = checkin(client, joined, SLUG, "clean_plate", 1, None, "same")
        assert (again.status_code, again.get_data()) == (201, first.get_data())
    # the same body with other key order and spacing is the same request
    raw = client.post(f"{API}/{SLUG}/checkins", data='{ "quantity": 1,  "action": "clean_plate"}',
                      content_type="application/json",
                      headers={**joined.headers, "Idempotency-Key": "same"})
    assert (raw.status_code, raw.get_data()) == (201, first.get_data())
    assert entry_count(app) == 1
    assert _count(app, Checkin) == 1
    listed = client.get(f"{API}/{SLUG}/checkins", headers=joined.headers).json["items"]
    assert [item["id"] for item in listed] == [first.json["id"]]


def test_the_same_key_with_another_body_is_422(app, client, joined):
    first = checkin(client, joined, SLUG, "clean_plate", 1, None, "same")
    assert first.status_code == 201
    for body in ({"action": "clean_plate", "quantity": 2},
                 {"action": "metro_ride", "quantity": 1},
                 {"action": "clean_plate", "quantity": 1, "date": iso(0)}):
        response = checkin(client, joined, SLUG, "", key="same", body=body)
        assert error_code(response) == (422, "idempotency.mismatch")
    assert entry_count(app) == 1
    # the first response is still what the key replays
    again = checkin(client, joined, SLUG, "clean_plate", 1, None, "same")
    assert again.get_data() == first.get_data()


def test_a_once_daily_check_in_with_a_key_replays_too(app, client, joined):
    first = checkin(client, joined, SLUG, "car_free_day", None, None, "cfd")
    again = checkin(client, joined, SLUG, "car_free_day", None, None, "cfd")
    assert (again.status_code, again.get_data()) == (201, first.get_data())
    assert error_code(checkin(client, joined, SLUG, "car_free_day", None, None, "cfd-2")) == (
        409, "checkin.already_done")
    assert entry_count(app) == 1


def test_after_an_error_the_same_key_runs_again(app, client, login, clock):
    make(app)
    ann = login("ann")
    refused = checkin(client, ann, SLUG, "clean_plate", 1, None, "retry")
    assert error_code(refused) == (409, "campaign.not_joined")
    assert join(client, ann, SLUG).status_code == 201
    accepted = checkin(client, ann, SLUG, "clean_plate", 1, None, "retry")
    assert accepted.status_code == 201, accepted.json
    assert entry_count(app) == 1


def test_a_key_is_scoped_to_the_participant_and_the_path(app, client, login, clock):
    make(app)
    make(app, "rules-other")
    ann, bob = login("ann"), login("bob")
    for person in (ann, bob):
        for slug in (SLUG, "rules-other"):
            assert join(client, person, slug).status_code == 201
    responses = [checkin(client, person, slug, "metro_ride", 1, None, "shared")
                 for person in (ann, bob) for slug in (SLUG, "rules-other")]
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json["id"] for r in responses}) == 4
    assert entry_count(app) == entry_count(app, "rules-other") == 2


def test_idempotency_records_are_kept_in_the_database(app, client, joined):
    assert checkin(client, joined, SLUG, "clean_plate", 1, None, "stored").status_code == 201
    with app.app_context():
        keys = list(db.session.scalars(select(IdempotencyRecord.key)))
    assert keys == ["stored"]


# -- the list of my check-ins ------------------------------------------------------------------

def test_my_check_ins_are_listed_newest_first_and_filtered(app, client, joined, clock):
    checkin(client, joined, SLUG, "clean_plate", 1, None, "a")
    checkin(client, joined, SLUG, "car_free_day")
    clock.set_day(1)
    checkin(client, joined, SLUG, "clean_plate", 2, iso(0), "b")  # one over the cap
    checkin(client, joined, SLUG, "metro_ride", 1, None, "c")
    items = client.get(f"{API}/{SLUG}/checkins", headers=joined.headers).json["items"]
    assert [(i["action"], i["date"]) for i in items] == [
        ("metro_ride", iso(1)), ("clean_plate", iso(0)), ("car_free_day", iso(0)),
        ("clean_plate", iso(0))]
    assert (items[1]["quantity"], items[1]["counted_quantity"]) == (2, 1)
    by_date = client.get(f"{API}/{SLUG}/checkins", headers=joined.headers,
                         query_string={"date": iso(0), "action": "clean_plate"}).json["items"]
    assert len(by_date) == 2
    page = client.get(f"{API}/{SLUG}/checkins", headers=joined.headers,
                      query_string={"limit": 3}).json
    rest = client.get(f"{API}/{SLUG}/checkins", headers=joined.headers,
                      query_string={"limit": 3, "cursor": page["next_cursor"]}).json
    assert [i["id"] for i in page["items"] + rest["items"]] == [i["id"] for i in items]
    assert rest["next_cursor"] is None
    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == SLUG)).one()
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.campaign_id == campaign_id)) == 4


@pytest.mark.parametrize(("utc", "local_day"), [
    (datetime(2031, 3, 11, 15, 59, tzinfo=UTC), 1),  # 23:59 in Shanghai on day 1
    (datetime(2031, 3, 11, 16, 0, tzinfo=UTC), 2),  # 00:00 in Shanghai on day 2
])
def test_today_is_campaign_local(app, client, joined, clock, utc, local_day):
    clock.instant = utc
    response = checkin(client, joined, SLUG, "car_free_day")
    assert (response.status_code, response.json["date"]) == (201, iso(local_day))
    # yesterday (campaign-local) is within late_entry_days, the day before is not
    assert checkin(client, joined, SLUG, "clean_plate", 1, iso(local_day - 1),
                   "y").status_code == 201
    assert error_code(checkin(client, joined, SLUG, "metro_ride", 1, iso(local_day - 2),
                              "z")) == (422, "checkin.date_out_of_range")


def test_a_key_is_remembered_for_24_hours(app, client, joined, clock):
    first = checkin(client, joined, SLUG, "clean_plate", 1, iso(0), "day-key")
    assert first.status_code == 201
    sent_at = clock.instant
    clock.instant = sent_at + timedelta(hours=23, minutes=59)  # day 1: day 0 is a late date
    again = checkin(client, joined, SLUG, "clean_plate", 1, iso(0), "day-key")
    assert (again.status_code, again.get_data()) == (201, first.get_data())
    assert entry_count(app) == 1
    clock.instant = sent_at + timedelta(hours=24, seconds=1)
    later = checkin(client, joined, SLUG, "clean_plate", 1, iso(0), "day-key")
    assert later.status_code == 201, later.json  # kept 24 h: a new request now
    assert later.json["id"] != first.json["id"]
    assert entry_count(app) == 2
