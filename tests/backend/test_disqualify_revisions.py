"""Disqualification by reversal entries, the history lock on PUT, and revisions that apply new
factors from a future date (API.md staff endpoints; DESIGN.md "Ledger and concurrency")."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import Campaign, LedgerEntry
from tests.backend.intake_helpers import (
    ADMIN_API,
    campaign_document,
    checkin,
    cli_text,
    create_live_campaign,
    day,
    error_code,
    exact,
    grams,
    install_clock,
    iso,
    join,
    ledger_cli,
    ledger_rows,
    me,
    pid_of,
    projection_snapshot,
)

SLUG = "dq-test"
ACTIONS = [{"key": "clean_plate"}, {"key": "metro_ride"}, {"key": "car_free_day"},
           {"key": "cycle_km"}, {"key": "clothes_recycle"}]


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def running(app, client, login, clock):
    """SLUG from day -5 to day 10 with entries of ann (6, some at 0 mg, over two days) and
    bob (1). Returns (ann, bob)."""
    create_live_campaign(app, campaign_document(SLUG, starts_on=day(-5), ends_on=day(10),
                                                actions=ACTIONS))
    ann, bob = login("ann"), login("bob")
    assert join(client, ann, SLUG, team="red").status_code == 201
    assert join(client, bob, SLUG, team="red").status_code == 201
    for person, action, quantity, key in [
        (ann, "clean_plate", 3, "a1"),  # capped at 2
        (ann, "metro_ride", 2, "a2"),
        (ann, "car_free_day", None, None),
        (ann, "clean_plate", 1, "a3"),  # over the cap: 0 mg
        (bob, "clean_plate", 1, "b1"),
    ]:
        assert checkin(client, person, SLUG, action, quantity, None, key).status_code == 201
    clock.set_day(1)
    assert checkin(client, ann, SLUG, "cycle_km", 2.5, None, "a4").status_code == 201
    assert checkin(client, ann, SLUG, "clothes_recycle", 1, iso(0), "a5").status_code == 201
    return ann, bob


def disqualify(client, admin, pid: str, reason: str = "刷量作弊"):
    return client.post(f"{ADMIN_API}/{SLUG}/participants/{pid}/disqualify",
                       headers=admin.headers, json={"reason": reason})


def participants(client, admin, **query) -> list[dict]:
    response = client.get(f"{ADMIN_API}/{SLUG}/participants", headers=admin.headers,
                          query_string=query)
    assert response.status_code == 200, response.json
    return exact(response)["items"]


def verify_ok(runner, slug: str = SLUG) -> None:
    result = ledger_cli(runner, "verify", slug)
    assert result.exit_code == 0, cli_text(result)


# -- disqualification --------------------------------------------------------------------------

def test_disqualification_appends_one_reversal_per_entry(app, client, runner, admin, running):
    ann, bob = running
    ann_pid, bob_pid = pid_of(app, SLUG, ann.user_id), pid_of(app, SLUG, bob.user_id)
    before = ledger_rows(app, SLUG)
    ann_entries = [row for row in before if row.pid == ann_pid]
    assert len(ann_entries) == 6
    bob_total = sum(row.reduction_mg for row in before if row.pid == bob_pid)

    response = disqualify(client, admin, ann_pid)
    assert response.status_code == 200, response.json
    assert (response.json["pid"], response.json["reversals"]) == (ann_pid, 6)
    assert response.json["disqualified_at"].endswith("Z")

    after = ledger_rows(app, SLUG)
    assert after[:len(before)] == before  # nothing rewritten
    reversals = after[len(before):]
    assert [row.seq for row in reversals] == list(range(len(before) + 1, len(after) + 1))
    assert sorted(int(row.source_ref) for row in reversals) == [row.seq for row in ann_entries]
    originals = {row.seq: row for row in ann_entries}
    for reversal in reversals:
        original = originals[int(reversal.source_ref)]
        assert reversal.source == "reversal"
        assert reversal.pid == ann_pid
        assert reversal.reduction_mg == -original.reduction_mg
        assert (reversal.action, reversal.local_date, reversal.quantity_milli,
                reversal.counted_milli, reversal.factor_milli, reversal.methodology_version) == (
            original.action, original.local_date, original.quantity_milli,
            original.counted_milli, original.factor_milli, original.methodology_version)
    assert sum(row.reduction_mg for row in after if row.pid == ann_pid) == 0
    assert sum(row.reduction_mg for row in after) == bob_total

    listed = {item["pid"]: item for item in participants(client, admin)}
    assert listed[ann_pid]["reduction_g"] == 0
    assert listed[ann_pid]["flags"] == ["disqualified"]
    assert listed[ann_pid]["disqualified_reason"] == "刷量作弊"
    assert listed[ann_pid]["records"] == 6  # reversals are not records
    assert listed[bob_pid]["flags"] == []
    assert listed[bob_pid]["reduction_g"] == grams(bob_total)
    assert [item["pid"] for item in participants(client, admin, flagged="true")] == [ann_pid]
    assert [item["pid"] for item in participants(client, admin, flagged="false")] == [bob_pid]
    verify_ok(runner)


def test_a_second_disqualification_appends_nothing(app, client, runner, admin, running):
    ann, _ = running
    pid = pid_of(app, SLUG, ann.user_id)
    first = disqualify(client, admin, pid)
    assert first.status_code == 200
    rows = ledger_rows(app, SLUG)
    again = disqualify(client, admin, pid, "again")
    assert again.status_code == 200, again.json
    assert again.json["reversals"] == 0
    assert again.json["disqualified_at"] == first.json["disqualified_at"]
    assert ledger_rows(app, SLUG) == rows
    verify_ok(runner)


def test_later_intake_and_joins_of_a_disqualified_participant_are_refused(
        app, client, runner, admin, running, clock):
    ann, bob = running
    assert disqualify(client, admin, pid_of(app, SLUG, ann.user_id)).status_code == 200
    rows = ledger_rows(app, SLUG)
    assert error_code(checkin(client, ann, SLUG, "clean_plate", 1, None, "late-1")) == (
        403, "campaign.join_denied")
    assert error_code(checkin(client, ann, SLUG, "car_free_day")) == (
        403, "campaign.join_denied")
    assert error_code(join(client, ann, SLUG)) == (403, "campaign.join_denied")
    assert error_code(join(client, ann, SLUG, team="red")) == (403, "campaign.join_denied")
    clock.set_day(2)
    assert error_code(checkin(client, ann, SLUG, "metro_ride", 1, None, "late-2")) == (
        403, "campaign.join_denied")
    assert ledger_rows(app, SLUG) == rows
    # others go on
    assert checkin(client, bob, SLUG, "metro_ride", 1, None, "bob-2").status_code == 201
    verify_ok(runner)


def test_rebuild_after_a_disqualification_keeps_the_reversals(app, client, runner, admin,
                                                              running):
    ann, bob = running
    ann_pid = pid_of(app, SLUG, ann.user_id)
    assert disqualify(client, admin, ann_pid).status_code == 200
    bob_before = me(client, bob, SLUG)
    listed_before = participants(client, admin)
    kept = projection_snapshot(app, SLUG)
    assert kept["ledger"][4] == 1  # one participant left
    result = ledger_cli(runner, "rebuild", SLUG)
    assert result.exit_code == 0, cli_text(result)
    assert projection_snapshot(app, SLUG) == kept
    assert participants(client, admin) == listed_before
    assert me(client, bob, SLUG)["reduction_g"] == bob_before["reduction_g"]
    verify_ok(runner)


def test_disqualifying_someone_without_entries_appends_nothing(app, client, runner, admin,
                                                                running, login):
    carol = login("carol")
    assert join(client, carol, SLUG).status_code == 201
    pid = pid_of(app, SLUG, carol.user_id)
    rows = ledger_rows(app, SLUG)
    response = disqualify(client, admin, pid)
    assert (response.status_code, response.json["reversals"]) == (200, 0)
    assert ledger_rows(app, SLUG) == rows
    assert error_code(checkin(client, carol, SLUG, "car_free_day")) == (
        403, "campaign.join_denied")
    verify_ok(runner)


def test_units_reversed_in_one_campaign_may_count_in_another(app, client, admin, login, clock):
    for slug in ("dq-first", "dq-second"):
        create_live_campaign(app, campaign_document(slug, starts_on=day(-3), ends_on=day(5),
                                                    actions=ACTIONS))
    ann = login("ann")
    for slug in ("dq-first", "dq-second"):
        assert join(client, ann, slug).status_code == 201
    assert checkin(client, ann, "dq-first", "car_free_day").status_code == 201
    assert checkin(client, ann, "dq-first", "clean_plate", 2, None, "k1").status_code == 201
    response = client.post(
        f"{ADMIN_API}/dq-first/participants/{pid_of(app, 'dq-first', ann.user_id)}/disqualify",
        headers=admin.headers, json={"reason": "作弊"})
    assert (response.status_code, response.json["reversals"]) == (200, 2)
    # nothing of ann's counts in dq-first any more: the units are free to count in dq-second
    car_free = checkin(client, ann, "dq-second", "car_free_day")
    plates = checkin(client, ann, "dq-second", "clean_plate", 2, None, "k2")
    assert (car_free.json["counted_quantity"], car_free.json["claimed_by"]) == (1, None)
    assert (plates.json["counted_quantity"], plates.json["claimed_by"]) == (2, None)
    assert me(client, ann, "dq-second")["reduction_g"] == 3700 + 288


def test_disqualifying_an_unknown_pid_is_404(client, admin, running):
    response = disqualify(client, admin, "0000000000000000")
    assert error_code(response) == (404, "not_found")


def test_disqualify_needs_a_reason(app, client, admin, running):
    ann, _ = running
    pid = pid_of(app, SLUG, ann.user_id)
    response = client.post(f"{ADMIN_API}/{SLUG}/participants/{pid}/disqualify",
                           headers=admin.headers, json={})
    assert error_code(response) == (422, "validation.failed")
    assert "reason" in response.json["error"]["fields"]


def test_the_database_refuses_a_second_reversal_and_a_negative_non_reversal(app, client, admin,
                                                                            running):
    ann, _ = running
    assert disqualify(client, admin, pid_of(app, SLUG, ann.user_id)).status_code == 200
    with app.app_context():
        reversal = db.session.scalars(select(LedgerEntry).join(Campaign).where(
            Campaign.slug == SLUG, LedgerEntry.source == "reversal",
            LedgerEntry.reduction_mg < 0)
            .order_by(LedgerEntry.seq)).first()
        head = db.session.scalars(select(LedgerEntry.seq).join(Campaign).where(
            Campaign.slug == SLUG).order_by(LedgerEntry.seq.desc())).first()
        fields = {column.key: getattr(reversal, column.key)
                  for column in LedgerEntry.__table__.columns if column.key != "id"}
        for changes in ({"seq": head + 1},  # the same source_ref reversed twice
                        {"seq": head + 1, "source": "checkin", "source_ref": "x"}):
            db.session.add(LedgerEntry(**{**fields, **changes}))
            with pytest.raises(IntegrityError):
                db.session.flush()
            db.session.rollback()


# -- history lock ------------------------------------------------------------------------------

def document(client, admin, slug: str = SLUG) -> dict:
    response = client.get(f"{ADMIN_API}/{slug}", headers=admin.headers)
    assert response.status_code == 200, response.json
    return response.json


def put(client, admin, doc: dict, slug: str = SLUG):
    return client.put(f"{ADMIN_API}/{slug}", headers=admin.headers, json=doc)


def _action(doc: dict, key: str) -> dict:
    return next(action for action in doc["actions"] if action["key"] == key)


def _set_factor(doc, key="clean_plate", factor=150):
    _action(doc, key)["factor_g"] = factor


def _set_cap(doc, key="clean_plate", cap=5):
    _action(doc, key)["daily_cap"] = cap


def _set_minimum(doc, key="metro_ride", minimum=1):
    _action(doc, key)["min_quantity"] = minimum


def _set_sources(doc, key="metro_ride"):
    _action(doc, key)["sources"] = ["partner"]


def _remove_counted(doc):
    doc["actions"] = [a for a in doc["actions"] if a["key"] != "clean_plate"]


LOCKED_CHANGES = {
    "factor": _set_factor,
    "factor_of_another_counted_action": lambda doc: _set_factor(doc, "clothes_recycle", 1300),
    "cap": _set_cap,
    "minimum": _set_minimum,
    "sources": _set_sources,
    "removing_a_counted_action": _remove_counted,
    "timezone": lambda doc: doc.update(timezone="Asia/Tokyo"),
    "starts_on": lambda doc: doc.update(starts_on=iso(-6)),
    "starts_on_later": lambda doc: doc.update(starts_on=iso(-1)),
    "ends_on_before_the_last_entry": lambda doc: doc.update(ends_on=iso(-1)),
    "rules": lambda doc: doc.update(rules={"car_free_day_max": False}),
    "a_revision_in_the_past": lambda doc: doc["revisions"].append(
        {"effective_from": iso(0), "actions": [{"key": "clean_plate", "factor_g": 150}]}),
}
FREE_CHANGES = {
    "name": lambda doc: doc.update(name="新名字"),
    "description": lambda doc: doc.update(description="新的描述"),
    "ends_on_later": lambda doc: doc.update(ends_on=iso(20)),
    "ends_on_on_the_last_entry": lambda doc: doc.update(ends_on=iso(1)),
    "target": lambda doc: doc.update(target_kg=5000),
    "adding_an_action": lambda doc: doc["actions"].append({"key": "e_invoice"}),
    "factor_of_an_action_without_entries": lambda doc: doc["actions"].append(
        {"key": "reusable_cup", "factor_g": 20}),
    "late_entry_days": lambda doc: doc.update(late_entry_days=2),
    "name_of_a_counted_action": lambda doc: _action(doc, "clean_plate").update(name="光盘"),
}


@pytest.mark.parametrize("change", sorted(LOCKED_CHANGES))
def test_a_put_that_rewrites_counted_history_is_409(app, client, admin, running, change):
    before = document(client, admin)
    rows = ledger_rows(app, SLUG)
    doc = copy.deepcopy(before)
    LOCKED_CHANGES[change](doc)
    response = put(client, admin, doc)
    assert error_code(response) == (409, "campaign.history_locked")
    assert document(client, admin) == before
    assert ledger_rows(app, SLUG) == rows


@pytest.mark.parametrize("change", sorted(FREE_CHANGES))
def test_a_put_that_keeps_counted_history_is_fine(client, admin, running, change):
    doc = document(client, admin)
    FREE_CHANGES[change](doc)
    response = put(client, admin, doc)
    assert response.status_code == 200, response.json
    assert response.json == document(client, admin)


def test_an_action_without_entries_may_be_removed_or_changed(client, admin, login, app,
                                                             clock):
    create_live_campaign(app, campaign_document(
        "lock-partial", starts_on=day(-5), ends_on=day(10),
        actions=[{"key": "clean_plate"}, {"key": "metro_ride"}]))
    ann = login("ann")
    assert join(client, ann, "lock-partial").status_code == 201
    assert checkin(client, ann, "lock-partial", "clean_plate", 1, None, "k").status_code == 201
    doc = document(client, admin, "lock-partial")
    _set_factor(doc, "metro_ride", 60)
    assert put(client, admin, doc, "lock-partial").status_code == 200
    doc["actions"] = [{"key": "clean_plate"}]
    assert put(client, admin, doc, "lock-partial").status_code == 200


def test_before_any_entry_everything_may_change(app, client, admin, login, clock):
    create_live_campaign(app, campaign_document("lock-empty", starts_on=day(-5),
                                                ends_on=day(10), actions=ACTIONS))
    assert join(client, login("ann"), "lock-empty").status_code == 201  # joined, no entries
    doc = document(client, admin, "lock-empty")
    for change in ("factor", "timezone", "removing_a_counted_action", "rules"):
        LOCKED_CHANGES[change](doc)
    response = put(client, admin, doc, "lock-empty")
    assert response.status_code == 200, response.json


# -- revisions ---------------------------------------------------------------------------------

def revise(client, admin, body: dict, slug: str = SLUG):
    return client.post(f"{ADMIN_API}/{slug}/revisions", headers=admin.headers, json=body)


def test_a_revision_applies_the_new_factor_from_its_date(app, client, runner, admin, running,
                                                          clock):
    ann, bob = running  # now: day 1
    locked = document(client, admin)
    _set_factor(locked)
    assert error_code(put(client, admin, locked)) == (409, "campaign.history_locked")

    response = revise(client, admin, {"effective_from": iso(2),
                                      "actions": [{"key": "clean_plate", "factor_g": 150}]})
    assert response.status_code == 201, response.json
    assert response.json["revisions"] == [
        {"effective_from": iso(2), "actions": [{"key": "clean_plate", "factor_g": 150}]}]
    assert document(client, admin)["revisions"] == response.json["revisions"]
    rows_before = ledger_rows(app, SLUG)

    # today (day 1) and a late entry for day 0 keep the old factor
    today = checkin(client, bob, SLUG, "clean_plate", 1, None, "t1")
    assert (today.status_code, today.json["reduction_g"]) == (201, 144)
    late = checkin(client, bob, SLUG, "clean_plate", 1, iso(0), "t2")
    assert (late.status_code, late.json["reduction_g"]) == (201, 144)

    clock.set_day(2)
    new = checkin(client, bob, SLUG, "clean_plate", 1, None, "t3")
    assert (new.status_code, new.json["reduction_g"]) == (201, 150)
    # a late entry dated before the revision, sent after it, still uses the old factor
    old = checkin(client, ann, SLUG, "clean_plate", 1, iso(1), "t4")
    assert (old.status_code, old.json["reduction_g"]) == (201, 144)
    clock.set_day(3)
    later = checkin(client, bob, SLUG, "clean_plate", 2, iso(2), "t5")  # day 2 total 3, cap 2
    assert (later.status_code, later.json["reduction_g"], later.json["counted_quantity"]) == (
        201, 150, 1)

    rows = ledger_rows(app, SLUG)
    assert rows[:len(rows_before)] == rows_before  # nothing re-credited
    added = rows[len(rows_before):]
    assert [(row.local_date, row.factor_milli, row.methodology_version, row.reduction_mg)
            for row in added] == [
        (day(1), 144_000, "cn-consumer-v1", 144_000),
        (day(0), 144_000, "cn-consumer-v1", 144_000),
        (day(2), 150_000, "cn-consumer-v1+r1", 150_000),
        (day(1), 144_000, "cn-consumer-v1", 144_000),
        (day(2), 150_000, "cn-consumer-v1+r1", 150_000),
    ]
    # other actions on the revision's days carry its version with their unchanged factors
    metro = checkin(client, bob, SLUG, "metro_ride", 1, None, "t6")
    assert metro.status_code == 201
    last = ledger_rows(app, SLUG)[-1]
    assert (last.factor_milli, last.methodology_version) == (52_000, "cn-consumer-v1+r1")
    verify_ok(runner)


def test_a_second_revision_numbers_on(app, client, admin, running, clock):
    _, bob = running  # now: day 1
    assert revise(client, admin, {"effective_from": iso(2), "actions": [
        {"key": "clean_plate", "factor_g": 150}]}).status_code == 201
    second = revise(client, admin, {"effective_from": iso(3), "actions": [
        {"key": "clean_plate", "daily_cap": 3}]})
    assert second.status_code == 201, second.json
    clock.set_day(3)
    response = checkin(client, bob, SLUG, "clean_plate", 3, None, "r2")
    assert (response.json["counted_quantity"], response.json["reduction_g"]) == (3, 450)
    last = ledger_rows(app, SLUG)[-1]
    assert (last.factor_milli, last.counted_milli, last.methodology_version) == (
        150_000, 3000, "cn-consumer-v1+r2")


@pytest.mark.parametrize("offset", [1, 0, -3])  # day 1 is today
def test_a_revision_from_today_or_earlier_is_422(client, admin, running, offset):
    before = document(client, admin)
    response = revise(client, admin, {"effective_from": iso(offset),
                                      "actions": [{"key": "clean_plate", "factor_g": 150}]})
    assert error_code(response) == (422, "validation.failed")
    assert "effective_from" in response.json["error"]["fields"]
    assert document(client, admin) == before


def test_a_put_may_not_rewrite_a_revision_in_force(client, admin, running, clock):
    assert revise(client, admin, {"effective_from": iso(2), "actions": [
        {"key": "clean_plate", "factor_g": 150}]}).status_code == 201
    _, bob = running
    clock.set_day(2)
    assert checkin(client, bob, SLUG, "clean_plate", 1, None, "after").status_code == 201
    doc = document(client, admin)
    doc["revisions"][0]["actions"][0]["factor_g"] = 160
    assert error_code(put(client, admin, doc)) == (409, "campaign.history_locked")
    doc["revisions"] = []
    assert error_code(put(client, admin, doc)) == (409, "campaign.history_locked")


@pytest.mark.parametrize(("utc_hour", "accepted"), [
    (15, True),  # 23:00 in Shanghai on day 1: day 2 is tomorrow
    (16, False),  # 00:00 in Shanghai on day 2 (still day 1 in UTC): day 2 is today
])
def test_tomorrow_is_campaign_local(client, admin, running, clock, utc_hour, accepted):
    clock.instant = datetime.combine(day(1), time(utc_hour), tzinfo=UTC)
    response = revise(client, admin, {"effective_from": iso(2),
                                      "actions": [{"key": "clean_plate", "factor_g": 150}]})
    if accepted:
        assert response.status_code == 201, response.json
    else:
        assert error_code(response) == (422, "validation.failed")
        assert "effective_from" in response.json["error"]["fields"]


def test_revision_of_an_action_the_campaign_does_not_count_is_422(client, admin, running):
    response = revise(client, admin, {"effective_from": iso(5),
                                      "actions": [{"key": "e_ticket", "factor_g": 150}]})
    assert error_code(response) == (422, "validation.failed")
    assert any(path.startswith("actions") for path in response.json["error"]["fields"])


def test_revisions_follow_each_other_in_time(client, admin, running):
    assert revise(client, admin, {"effective_from": iso(4), "actions": [
        {"key": "clean_plate", "factor_g": 150}]}).status_code == 201
    for offset in (4, 3):  # on or before the last revision's date
        response = revise(client, admin, {"effective_from": iso(offset), "actions": [
            {"key": "clean_plate", "factor_g": 160}]})
        assert error_code(response) == (422, "validation.failed")
        assert "effective_from" in response.json["error"]["fields"]
    assert len(document(client, admin)["revisions"]) == 1


@pytest.mark.parametrize("body", [
    {"actions": [{"key": "clean_plate", "factor_g": 150}]},
    {"effective_from": "tomorrow", "actions": [{"key": "clean_plate", "factor_g": 150}]},
    {"effective_from": "2031-03-15", "actions": [{"key": "clean_plate", "factor": 150}]},
    {"effective_from": "2031-03-15", "actions": [{"key": "clean_plate", "daily_cap": -1}]},
    {"effective_from": "2031-03-15", "actions": [{"key": "walk_steps", "sources": ["checkin"]}]},
])
def test_a_malformed_revision_is_422(client, admin, running, body):
    before = document(client, admin)
    response = revise(client, admin, body)
    assert error_code(response) == (422, "validation.failed")
    assert response.json["error"]["fields"]
    assert document(client, admin) == before


def test_participants_are_found_by_pid_prefix(app, client, admin, running):
    ann, _ = running
    pid = pid_of(app, SLUG, ann.user_id)
    assert [item["pid"] for item in participants(client, admin, q=pid[:6])] == [pid]
