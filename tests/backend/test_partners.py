"""Partners (issue 5): signed webhooks (HMAC over timestamp, nonce and raw body; 300 s; nonces
once), trips and records matched by unionid or a linked member_ref, each (partner, id) counted
once, rejection codes, the credit group of a self-reported and a partner ride, link codes, and
`flask partners create`."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import Partner
from tests.backend.intake_fixtures import (
    PartnerClient,
    entry_count,
    hmac_signature,
    link_member,
    local_instant,
    make_partner,
    unionid_of,
    utc_iso,
)
from tests.backend.intake_helpers import (
    campaign_document,
    checkin,
    cli_text,
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
    pid_of,
)
from tests.support.secrets import REGISTRY

SLUG = "partner-main"
OTHER = "partner-other"  # a campaign the partner does not feed
ACTIONS = [
    {"key": "metro_ride", "factor_g": 52, "sources": ["checkin", "partner"]},
    {"key": "bus_ride"},
    {"key": "cycle_km"},
    {"key": "e_invoice"},
    {"key": "e_ticket"},
    {"key": "online_meeting"},
    {"key": "clothes_recycle"},
    {"key": "clean_plate"},
    {"key": "car_free_day"},
]


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def world(app, client, login, clock):
    """A campaign from day -10 to day 10 (late entries one day back) fed by partner ``metro``,
    another one it does not feed; alice and bob joined on day -5, carol joined nothing."""
    create_live_campaign(app, campaign_document(SLUG, starts_on=day(-10), ends_on=day(10),
                                                actions=ACTIONS, late_entry_days=1))
    create_live_campaign(app, campaign_document(OTHER, starts_on=day(-10), ends_on=day(10),
                                                actions=ACTIONS, late_entry_days=1))
    partner = make_partner(app, client, clock, "metro", [SLUG])
    people = {name: login(name) for name in ("alice", "bob", "carol")}
    clock.set_day(-5)
    for name in ("alice", "bob"):
        assert join(client, people[name], SLUG).status_code == 201
    clock.set_day(0)
    unionids = {name: unionid_of(app, name) for name in people}
    return partner, people, unionids


def trip(trip_id: str, unionid: str | None = None, *, mode: str = "metro", on: int = 0,
         member_ref: str | None = None, **extra) -> dict:
    item = {"trip_id": trip_id, "mode": mode, "ended_at": utc_iso(local_instant(day(on))),
            **extra}
    item.update({"unionid": unionid} if member_ref is None else {"member_ref": member_ref})
    return item


def record(record_id: str, unionid: str, action: str, quantity, on: int = 0) -> dict:
    return {"record_id": record_id, "unionid": unionid, "action": action, "quantity": quantity,
            "occurred_at": utc_iso(local_instant(day(on)))}


def result(accepted=0, held=0, duplicates=0, unmatched=0, rejected=()) -> dict:
    return {"accepted": accepted, "held": held, "duplicates": duplicates,
            "unmatched": unmatched, "rejected": list(rejected)}


# -- signatures --------------------------------------------------------------------------------

def test_a_correctly_signed_request_is_accepted(world, app):
    partner, _, unionids = world
    response = partner.trips(trip("t1", unionids["alice"]))
    assert response.status_code == 200, response.json
    assert response.json == result(accepted=1)
    assert entry_count(app, SLUG) == 1


def test_a_bad_signature_is_refused(world, app):
    partner, _, unionids = world
    body = {"trips": [trip("t1", unionids["alice"])]}
    stamp = partner.timestamp()
    good = hmac_signature(partner.secret, stamp, "n-1", b'{"trips": []}')  # another body
    flipped = hmac_signature(partner.secret, stamp, "n-2", b"x")
    cases = [
        {"signature": good, "nonce": "n-1"},
        {"signature": ("0" if flipped[0] != "0" else "1") + flipped[1:], "nonce": "n-2"},
        {"signature": "", "nonce": "n-3"},
        {"secret": "not-the-secret-" + "x" * 30},
        {"name": "no-such-partner"},
    ]
    for options in cases:
        response = partner.post("trips", body, **options)
        assert error_code(response) == (401, "partner.signature_invalid"), options
    upper = partner.post("trips", body, nonce="n-upper",
                         signature=hmac_signature(partner.secret, stamp, "n-upper",
                                                  _raw(body)).upper(), timestamp=stamp)
    assert error_code(upper) == (401, "partner.signature_invalid")  # lowercase hex only
    for missing in ("X-Tanpu-Timestamp", "X-Tanpu-Nonce", "X-Tanpu-Signature"):
        response = _post_without(partner, body, missing)
        assert error_code(response) == (401, "partner.signature_invalid"), missing
    assert entry_count(app, SLUG) == 0


def _raw(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _post_without(partner: PartnerClient, payload, header: str):
    raw, stamp, nonce = _raw(payload), partner.timestamp(), "nonce-" + header
    headers = {"Content-Type": "application/json", "X-Tanpu-Timestamp": stamp,
               "X-Tanpu-Nonce": nonce,
               "X-Tanpu-Signature": hmac_signature(partner.secret, stamp, nonce, raw)}
    del headers[header]
    return partner.client.post(f"/api/v1/partners/{partner.name}/trips", data=raw,
                               headers=headers)


def test_a_timestamp_more_than_300_s_off_is_refused(world, app):
    partner, _, unionids = world
    for offset in (-301, 301, -3600):
        response = partner.trips(trip(f"t{offset}", unionids["alice"]), offset_s=offset)
        assert error_code(response) == (401, "partner.signature_invalid"), offset
    assert entry_count(app, SLUG) == 0
    for offset in (-299, 299):
        response = partner.trips(trip(f"t{offset}", unionids["alice"]), offset_s=offset)
        assert response.status_code == 200, (offset, response.json)
    for stamp in ("", "abc", "1e9", "-5"):
        response = partner.trips(trip("t-bad", unionids["alice"]), timestamp=stamp)
        assert error_code(response) == (401, "partner.signature_invalid"), stamp


def test_a_reused_nonce_is_refused(world, app, client, clock):
    partner, _, unionids = world
    first = partner.trips(trip("t1", unionids["alice"]), nonce="once-only")
    assert first.status_code == 200
    # the same nonce, a validly signed other body, even minutes later: refused
    clock.instant += timedelta(minutes=3)
    again = partner.trips(trip("t2", unionids["alice"]), nonce="once-only")
    assert error_code(again) == (401, "partner.signature_invalid")
    assert [r.source_ref for r in ledger_rows(app, SLUG)] == ["metro:t1"]
    # a nonce is per partner: another partner may use it
    other = make_partner(app, client, clock, "bus-co", [SLUG])
    assert other.trips(trip("t1", unionids["alice"]), nonce="once-only").status_code == 200
    # a refused request does not use up its nonce
    bad = partner.trips(trip("t3", unionids["alice"]), nonce="fresh", signature="0" * 64)
    assert error_code(bad) == (401, "partner.signature_invalid")
    assert partner.trips(trip("t3", unionids["alice"]), nonce="fresh").status_code == 200


def test_the_nonce_is_used_up_before_the_body_is_read(world):
    partner, _, unionids = world
    invalid = partner.post("trips", {"trips": []}, nonce="committed-first")
    assert error_code(invalid) == (422, "validation.failed")
    again = partner.trips(trip("t1", unionids["alice"]), nonce="committed-first")
    assert error_code(again) == (401, "partner.signature_invalid")


def test_an_idempotency_key_with_another_body_is_a_mismatch(world, app):
    partner, _, unionids = world
    assert partner.trips(trip("t1", unionids["alice"]), key="k-1").status_code == 200
    other = partner.trips(trip("t2", unionids["alice"]), key="k-1")
    assert error_code(other) == (422, "idempotency.mismatch")
    assert entry_count(app, SLUG) == 1


# -- trips -------------------------------------------------------------------------------------

def test_the_same_trip_twice_counts_once(world, app, client):
    partner, people, unionids = world
    item = trip("t1", unionids["alice"])
    assert partner.trips(item).json == result(accepted=1)
    assert partner.trips(item).json == result(duplicates=1)
    assert partner.trips(trip("t2", unionids["alice"]), trip("t2", unionids["alice"])
                         ).json == result(accepted=1, duplicates=1)
    # the same trip id for another person is still the same trip of this partner
    assert partner.trips(trip("t1", unionids["bob"])).json == result(duplicates=1)
    assert entry_count(app, SLUG) == 2
    assert me(client, people["alice"], SLUG)["reduction_g"] == 104
    assert me(client, people["bob"], SLUG)["reduction_g"] == 0
    # the same Idempotency-Key and body: the first reply again, nothing new
    first = partner.trips(trip("t3", unionids["alice"]), key="batch-3")
    replay = partner.trips(trip("t3", unionids["alice"]), key="batch-3")
    assert replay.status_code == 200 and replay.get_data() == first.get_data()
    assert first.json == result(accepted=1)
    assert entry_count(app, SLUG) == 3


def test_unmatched_people_are_not_remembered(world, app, client):
    partner, people, unionids = world
    items = [trip("t1", "u-nobody"), trip("t2", member_ref="never-linked"),
             trip("t3", unionids["carol"])]
    assert partner.trips(*items).json == result(unmatched=3)
    # joined only a campaign this partner does not feed: still unmatched
    join(client, people["carol"], OTHER)
    assert partner.trips(items[2]).json == result(unmatched=1)
    join(client, people["carol"], SLUG)
    assert partner.trips(items[2]).json == result(accepted=1)
    assert me(client, people["carol"], SLUG)["reduction_g"] == 52
    assert me(client, people["carol"], OTHER)["reduction_g"] == 0
    assert entry_count(app, SLUG) == 1 and entry_count(app, OTHER) == 0


def test_items_that_cannot_count_are_rejected_with_their_codes(world, app, client, clock):
    partner, people, unionids = world
    alice = unionids["alice"]
    response = partner.trips(
        trip("ferry", alice, mode="ferry"),
        trip("bike-no-distance", alice, mode="bike"),
        trip("too-old", alice, on=-2),  # late entries reach one day back only
        trip("future", alice, on=1),
        trip("before-join", alice, on=-6),
        trip("no-end", alice, ended_at=None),
        {"trip_id": "both", "unionid": alice, "member_ref": "m", "mode": "metro",
         "ended_at": utc_iso(local_instant(day(0)))},
        trip("bad-distance", alice, mode="bike", distance_m="12"),
        trip("ok", alice, on=-1),
    )
    assert response.status_code == 200, response.json
    assert response.json == result(accepted=1, rejected=[
        {"id": "ferry", "code": "trip.mode_not_counted"},
        {"id": "bike-no-distance", "code": "trip.distance_required"},
        {"id": "too-old", "code": "partner.date_out_of_range"},
        {"id": "future", "code": "partner.date_out_of_range"},
        {"id": "before-join", "code": "partner.date_out_of_range"},
        {"id": "no-end", "code": "validation.failed"},
        {"id": "both", "code": "validation.failed"},
        {"id": "bad-distance", "code": "validation.failed"},
    ])
    records = partner.records(
        record("plate", alice, "clean_plate", 1),  # self-reported only
        record("etc", alice, "etc_pass", 1),  # not counted by this campaign
        record("half-invoice", alice, "e_invoice", 1.5),  # a count is whole
        record("zero", alice, "e_invoice", 0),
        record("text", alice, "e_invoice", "two"),
    )
    assert records.json == result(rejected=[
        {"id": "plate", "code": "record.action_not_counted"},
        {"id": "etc", "code": "record.action_not_counted"},
        {"id": "half-invoice", "code": "validation.failed"},
        {"id": "zero", "code": "validation.failed"},
        {"id": "text", "code": "validation.failed"},
    ])
    assert entry_count(app, SLUG) == 1
    # rejected items are not remembered: sent again correctly, they count
    fixed = partner.trips(trip("bike-no-distance", alice, mode="bike", distance_m=3000),
                          trip("no-end", alice))
    assert fixed.json == result(accepted=2)
    # a bus ride where the partner's campaign does not count buses
    create_live_campaign(app, campaign_document("metro-only", starts_on=day(-10),
                                                ends_on=day(10), actions=ACTIONS[:1]))
    only_metro = make_partner(app, client, clock, "metro-only-co", ["metro-only"])
    join(client, people["alice"], "metro-only")
    assert only_metro.trips(trip("bus", alice, mode="bus"),
                            trip("bike", alice, mode="bike", distance_m=2000)).json == result(
        rejected=[{"id": "bus", "code": "trip.mode_not_counted"},
                  {"id": "bike", "code": "trip.mode_not_counted"}])


def test_items_of_a_disqualified_participant_are_refused(world, app, client, admin):
    partner, people, unionids = world
    assert partner.trips(trip("t1", unionids["alice"])).json == result(accepted=1)
    pid = pid_of(app, SLUG, people["alice"].user_id)
    response = client.post(f"/api/v1/admin/campaigns/{SLUG}/participants/{pid}/disqualify",
                           headers=admin.headers, json={"reason": "bot"})
    assert response.status_code == 200, response.json
    entries = entry_count(app, SLUG)
    assert partner.trips(trip("t2", unionids["alice"])).json == result(
        rejected=[{"id": "t2", "code": "campaign.join_denied"}])
    assert entry_count(app, SLUG) == entries


def test_a_trip_day_is_the_campaign_local_date_of_its_end(world, app):
    partner, _, unionids = world
    alice = unionids["alice"]
    # 23:59:59 in Shanghai two days back is out of range; one second later it is yesterday
    late = local_instant(day(-2), 23, 59, 59)
    response = partner.trips(trip("late", alice, ended_at=utc_iso(late)),
                             trip("midnight", alice,
                                  ended_at=utc_iso(late + timedelta(seconds=1))))
    assert response.json == result(accepted=1, rejected=[
        {"id": "late", "code": "partner.date_out_of_range"}])
    assert [r.local_date for r in ledger_rows(app, SLUG)] == [day(-1)]


def test_trips_map_to_actions_by_mode(world, app):
    partner, _, unionids = world
    alice = unionids["alice"]
    response = partner.trips(
        trip("metro", alice, distance_m=8000),  # no metro_km here: a ride
        trip("bus", alice, mode="bus", distance_m=5000),  # no bus_km here: a ride
        trip("bike", alice, mode="bike", distance_m=3250),
    )
    assert response.json == result(accepted=3)
    rows = ledger_rows(app, SLUG)
    assert [(r.action, r.quantity_milli, r.reduction_mg, r.source, r.source_ref)
            for r in rows] == [
        ("metro_ride", 1000, 52_000, "partner", "metro:metro"),
        ("bus_ride", 1000, 80_000, "partner", "metro:bus"),
        ("cycle_km", 3250, 152_750, "partner", "metro:bike"),
    ]


def test_a_self_reported_and_a_partner_ride_give_the_larger_credit_never_the_sum(
        world, app, client):
    partner, people, unionids = world
    alice, bob = people["alice"], people["bob"]
    # alice reports 2 metro rides (104 g), the operator then pushes 3 (156 g): 156 g
    reported = checkin(client, alice, SLUG, "metro_ride", 2, key="alice-metro")
    assert exact(reported)["reduction_g"] == 104
    pushed = partner.trips(*[trip(f"a{i}", unionids["alice"]) for i in range(3)])
    assert pushed.json == result(accepted=3)
    assert [r.reduction_mg for r in ledger_rows(app, SLUG)] == [104_000, 0, 0, 52_000]
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == 156
    assert mine["by_action"] == {"metro_ride": {"reduction_g": 156, "records": 4}}
    # bob: the operator first (2 rides, 104 g), then he reports 1 ride: still 104 g
    assert partner.trips(trip("b1", unionids["bob"]), trip("b2", unionids["bob"])
                         ).json == result(accepted=2)
    late_report = exact(checkin(client, bob, SLUG, "metro_ride", 1, key="bob-metro"))
    assert (late_report["reduction_g"], late_report["day_reduction_g"]) == (0, 104)
    assert me(client, bob, SLUG)["reduction_g"] == 104
    # and when he reports more than the operator pushed, the larger is his
    more = exact(checkin(client, bob, SLUG, "metro_ride", 2, key="bob-metro-2"))
    assert (more["reduction_g"], more["day_reduction_g"]) == (52, 156)
    assert me(client, bob, SLUG)["reduction_g"] == 156
    # another day is another day
    yesterday = exact(checkin(client, bob, SLUG, "metro_ride", 1, on=day(-1).isoformat(),
                              key="bob-metro-3"))
    assert yesterday["reduction_g"] == 52
    assert ledger_cli(app.test_cli_runner(), "verify", SLUG).exit_code == 0


# -- records -----------------------------------------------------------------------------------

def test_records_feed_the_other_partner_actions(world, app, client):
    partner, people, unionids = world
    alice = unionids["alice"]
    response = partner.records(
        record("inv-1", alice, "e_invoice", 3),
        record("inv-2", alice, "e_invoice", 4),  # 5 a day: 2 of these 4 count
        record("ticket", alice, "e_ticket", 1),
        record("meeting", alice, "online_meeting", 1, on=-1),
        record("clothes", alice, "clothes_recycle", 2.5),
        record("inv-1", alice, "e_invoice", 3),
    )
    assert response.json == result(accepted=5, duplicates=1)
    rows = ledger_rows(app, SLUG)
    assert [(r.action, r.local_date, r.quantity_milli, r.counted_milli, r.factor_milli,
             r.reduction_mg, r.source, r.source_ref) for r in rows] == [
        ("e_invoice", day(0), 3000, 3000, 5000, 15_000, "partner", "metro:inv-1"),
        ("e_invoice", day(0), 4000, 2000, 5000, 10_000, "partner", "metro:inv-2"),
        ("e_ticket", day(0), 1000, 1000, 136_000, 136_000, "partner", "metro:ticket"),
        ("online_meeting", day(-1), 1000, 1000, 400_000, 400_000, "partner",
         "metro:meeting"),
        ("clothes_recycle", day(0), 2500, 2500, 1_280_000, 3_200_000, "partner",
         "metro:clothes"),
    ]
    mine = me(client, people["alice"], SLUG)
    assert mine["reduction_g"] == grams(15_000 + 10_000 + 136_000 + 400_000 + 3_200_000)
    assert mine["by_action"]["e_invoice"] == {"reduction_g": 25, "records": 2}
    assert mine["days_active"] == 2
    assert partner.records(record("inv-2", alice, "e_invoice", 4)).json == result(duplicates=1)


# -- link codes --------------------------------------------------------------------------------

def test_a_link_code_works_once_for_one_user(world, app, client, clock):
    partner, people, _ = world
    alice, bob = people["alice"], people["bob"]
    linked = link_member(client, partner, alice, "member-42", "LINK-0001")
    assert linked.status_code == 201, linked.json
    assert linked.json["partner"] == "metro"
    for person in (alice, bob):  # used: refused for anyone
        again = client.post("/api/v1/me/partner-links", headers=person.headers,
                            json={"partner": "metro", "link_code": "LINK-0001"})
        assert error_code(again) == (422, "validation.failed")
        assert "link_code" in again.json["error"]["fields"]
    # the member's records reach alice
    assert partner.trips(trip("m1", member_ref="member-42")).json == result(accepted=1)
    assert me(client, alice, SLUG)["reduction_g"] == 52
    # bob with a new code for the same member: the account is alice's
    conflict = link_member(client, partner, bob, "member-42", "LINK-0002")
    assert error_code(conflict) == (409, "partner.link_conflict")
    # alice linking the same member again is fine (and not a second link)
    assert link_member(client, partner, alice, "member-42", "LINK-0003").status_code == 200
    # bob's conflicting code stayed unused, but it cannot take the account
    retry = client.post("/api/v1/me/partner-links", headers=bob.headers,
                        json={"partner": "metro", "link_code": "LINK-0002"})
    assert error_code(retry) == (409, "partner.link_conflict")
    assert partner.trips(trip("m2", member_ref="member-42")).json == result(accepted=1)
    assert me(client, bob, SLUG)["reduction_g"] == 0
    assert me(client, alice, SLUG)["reduction_g"] == 104
    # unknown codes, unknown partners and expired codes
    for body in ({"partner": "metro", "link_code": "NO-SUCH"},
                 {"partner": "nobody", "link_code": "LINK-0002"}):
        response = client.post("/api/v1/me/partner-links", headers=bob.headers, json=body)
        assert error_code(response) == (422, "validation.failed"), body
    assert partner.link_code("member-7", "LINK-0004").status_code == 201
    clock.instant += timedelta(minutes=10, seconds=1)
    expired = client.post("/api/v1/me/partner-links", headers=bob.headers,
                          json={"partner": "metro", "link_code": "LINK-0004"})
    assert error_code(expired) == (422, "validation.failed")


def test_registering_a_link_code_needs_a_signature(world):
    partner, _, _ = world
    response = partner.link_code("member-1", "LINK-9999", signature="f" * 64)
    assert error_code(response) == (401, "partner.signature_invalid")
    assert error_code(partner.link_code("member-1", "no")) == (422, "validation.failed")


# -- the command line --------------------------------------------------------------------------

def test_partners_create_prints_the_secret_once_and_stores_it_encrypted(world, app, runner,
                                                                       client, clock):
    _, _, unionids = world
    result_ = runner.invoke(args=["partners", "create", "recycler", "--campaign", SLUG,
                                  "--campaign", OTHER])
    assert result_.exit_code == 0, result_.output
    match = re.search(r"secret \(shown once\): (\S+)", result_.output)
    assert match, result_.output
    secret = match.group(1)
    REGISTRY.add(secret, "secret of partner recycler")
    assert result_.output.count(secret) == 1
    assert len(secret) >= 43  # 32 random bytes
    with app.app_context():
        partner = db.session.scalars(select(Partner).where(Partner.name == "recycler")).one()
        stored = {column.name: getattr(partner, column.name)
                  for column in Partner.__table__.columns}
        assert sorted(c.slug for c in partner.campaigns) == sorted([SLUG, OTHER])
    assert not any(secret in str(value) for value in stored.values()), stored.keys()
    # the printed secret signs the partner's requests
    recycler = PartnerClient(client, "recycler", secret, clock)
    assert recycler.records(record("r1", unionids["alice"], "clothes_recycle", 1)).json == \
        {"accepted": 1, "held": 0, "duplicates": 0, "unmatched": 0, "rejected": []}
    # a second partner gets another secret; a name taken or an unknown campaign fails
    second = runner.invoke(args=["partners", "create", "recycler-2", "--campaign", SLUG])
    assert second.exit_code == 0
    assert secret not in second.output
    REGISTRY.add(re.search(r"secret \(shown once\): (\S+)", second.output).group(1),
                 "secret of partner recycler-2")
    for args in (["recycler", "--campaign", SLUG], ["new-one", "--campaign", "no-such"]):
        failed = runner.invoke(args=["partners", "create", *args])
        assert failed.exit_code == 1, args
        assert "validation.failed" in cli_text(failed)
