"""Challenges (issue 6) through GET /campaigns/{slug}/me: progress of streak, count per record,
count per day and total challenges, completion recorded once with its instant, one badge each;
concurrent completing check-ins (in-process threads; the real server: tests/e2e)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import ChallengeCompletion, LedgerEntry, Participation
from tests.backend.board_helpers import (
    API,
    campaign_document,
    checkin,
    create_live_campaign,
    day,
    disqualify,
    exact,
    install_clock,
    join,
    make_person,
    parse_instant,
    pids_of,
    unique,
)
from tests.backend.conftest import shanghai_today

CHALLENGES = [
    {"key": "bags-streak", "name": "连续3天自带购物袋", "kind": "streak",
     "action": "reusable_bag", "min_quantity": 2, "target": 3},
    {"key": "plates-3", "name": "光盘3次", "kind": "count", "per": "record",
     "action": "clean_plate", "target": 3},
    {"key": "cups-2-days", "name": "自带杯2天", "kind": "count", "per": "day",
     "action": "reusable_cup", "target": 2},
    {"key": "five-kg", "name": "减排5千克", "kind": "total", "target_g": 5000},
]


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


def my_challenges(client, person, slug) -> tuple[dict, list]:
    response = client.get(f"{API}/{slug}/me", headers=person.headers)
    assert response.status_code == 200, response.json
    body = exact(response)
    return {c["key"]: c for c in body["challenges"]}, body["badges"], body


def progress(client, person, slug) -> dict:
    return {key: c["progress"] for key, c in my_challenges(client, person, slug)[0].items()}


def completed(client, person, slug) -> dict:
    return {key: c["completed_at"] for key, c in my_challenges(client, person, slug)[0].items()}


def ok(response) -> dict:
    assert response.status_code == 201, response.json
    return response.json


def completions(app, person) -> list[tuple[str, object]]:
    with app.app_context():
        return sorted(db.session.execute(
            select(ChallengeCompletion.challenge_key, ChallengeCompletion.completed_dt)
            .join(Participation, Participation.id == ChallengeCompletion.participation_id)
            .where(Participation.user_id == person.user_id)).all())


def test_progress_of_every_kind_and_completion_recorded_once(app, client, login, clock):
    slug = unique("chal")
    create_live_campaign(app, campaign_document(slug, starts_on=day(0), ends_on=day(20),
                                                challenges=CHALLENGES))
    clock.set_day(0, hour=9)
    alice = make_person(login, client, "c")
    join(client, alice, slug)
    listed, badges, body = my_challenges(client, alice, slug)
    assert [c["key"] for c in body["challenges"]] == [c["key"] for c in CHALLENGES]
    assert {key: (c["name"], c["progress"], c["target"], c["completed_at"])
            for key, c in listed.items()} == {
        "bags-streak": ("连续3天自带购物袋", 0, 3, None),
        "plates-3": ("光盘3次", 0, 3, None),
        "cups-2-days": ("自带杯2天", 0, 2, None),
        "five-kg": ("减排5千克", 0, 5000, None),
    }
    assert badges == []

    # day 0: 2 bags (the streak's minimum), 3 plates (the third over the cap of 2 counts no
    # record), 3 cups (one day), a car-free day
    for action in ("reusable_bag", "reusable_bag", "clean_plate", "clean_plate", "clean_plate",
                   "reusable_cup", "reusable_cup", "reusable_cup"):
        ok(checkin(client, alice, slug, action))
    last = ok(checkin(client, alice, slug, "car_free_day"))
    total = Decimal(str(last["total_reduction_g"]))
    assert total == Decimal(2 * 15 + 2 * 144 + 3 * 16 + 3700)
    assert progress(client, alice, slug) == {"bags-streak": 1, "plates-3": 2, "cups-2-days": 1,
                                             "five-kg": total}

    # day 1: one bag is below the per-day minimum; the second makes the streak 2; one plate
    # completes plates-3 and one cup completes cups-2-days, each at this request's instant
    clock.set_day(1, hour=9)
    ok(checkin(client, alice, slug, "reusable_bag"))
    assert progress(client, alice, slug)["bags-streak"] == 1
    ok(checkin(client, alice, slug, "reusable_bag"))
    assert progress(client, alice, slug)["bags-streak"] == 2
    clock.advance(60)
    plates_at = clock.instant
    ok(checkin(client, alice, slug, "clean_plate"))
    clock.advance(60)
    cups_at = clock.instant
    ok(checkin(client, alice, slug, "reusable_cup"))
    listed, badges, _ = my_challenges(client, alice, slug)
    assert listed["plates-3"]["progress"] == 3 and listed["cups-2-days"]["progress"] == 2
    done_plates = parse_instant(listed["plates-3"]["completed_at"])
    done_cups = parse_instant(listed["cups-2-days"]["completed_at"])
    # instants are served to the second
    assert plates_at <= done_plates < plates_at + timedelta(seconds=1)
    assert cups_at <= done_cups < cups_at + timedelta(seconds=1)
    assert listed["bags-streak"]["completed_at"] is None
    assert listed["five-kg"]["completed_at"] is None
    assert [(b["key"], b["name"], b["awarded_at"]) for b in badges] == [
        ("plates-3", "光盘3次", listed["plates-3"]["completed_at"]),
        ("cups-2-days", "自带杯2天", listed["cups-2-days"]["completed_at"]),
    ]

    # day 2: nothing; the streak still holds (yesterday counts); day 3: broken
    clock.set_day(2, hour=9)
    assert progress(client, alice, slug)["bags-streak"] == 2
    clock.set_day(3, hour=9)
    assert progress(client, alice, slug)["bags-streak"] == 0
    ok(checkin(client, alice, slug, "reusable_bag", quantity=2))
    assert progress(client, alice, slug)["bags-streak"] == 1
    # more plates and cups after completion: completed_at does not move, progress stays capped
    before = completed(client, alice, slug)
    for action in ("clean_plate", "reusable_cup"):
        ok(checkin(client, alice, slug, action))
    after = my_challenges(client, alice, slug)[0]
    assert after["plates-3"]["progress"] == 3 and after["cups-2-days"]["progress"] == 2
    assert {k: c["completed_at"] for k, c in after.items()} == before

    clock.set_day(4, hour=9)
    ok(checkin(client, alice, slug, "reusable_bag", quantity=2))
    assert progress(client, alice, slug)["bags-streak"] == 2
    clock.set_day(5, hour=9)
    streak_at = clock.instant
    ok(checkin(client, alice, slug, "reusable_bag", quantity=2))
    clock.advance(60)
    kg_at = clock.instant
    total = Decimal(str(ok(checkin(client, alice, slug, "car_free_day"))["total_reduction_g"]))
    assert total >= 5000
    listed, badges, _ = my_challenges(client, alice, slug)
    assert {k: c["progress"] for k, c in listed.items()} == {
        "bags-streak": 3, "plates-3": 3, "cups-2-days": 2, "five-kg": 5000}
    assert streak_at <= parse_instant(listed["bags-streak"]["completed_at"]) < kg_at
    assert kg_at <= parse_instant(listed["five-kg"]["completed_at"]) < kg_at + timedelta(seconds=1)
    assert [b["key"] for b in badges] == ["plates-3", "cups-2-days", "bags-streak", "five-kg"]
    assert all(b["awarded_at"] == listed[b["key"]]["completed_at"] for b in badges)

    # the streak breaks later: the completed challenge stays complete, at the same instant
    clock.set_day(9, hour=9)
    final = my_challenges(client, alice, slug)[0]
    assert final["bags-streak"]["progress"] == 3
    assert {k: c["completed_at"] for k, c in final.items()} == \
        {k: c["completed_at"] for k, c in listed.items()}
    rows = completions(app, alice)
    assert [key for key, _ in rows] == sorted(c["key"] for c in CHALLENGES)
    assert all(parse_instant(listed[key]["completed_at"]) == dt.replace(microsecond=0)
               for key, dt in rows)


def test_progress_is_per_participant_and_a_disqualified_one_completes_nothing(
        app, client, login, admin, clock):
    slug = unique("chal")
    create_live_campaign(app, campaign_document(slug, starts_on=day(0), ends_on=day(20),
                                                challenges=CHALLENGES))
    clock.set_day(0, hour=9)
    alice, bob = make_person(login, client, "c"), make_person(login, client, "c")
    join(client, alice, slug)
    join(client, bob, slug)
    ok(checkin(client, alice, slug, "clean_plate"))
    ok(checkin(client, bob, slug, "reusable_cup"))
    assert progress(client, alice, slug)["plates-3"] == 1
    assert progress(client, alice, slug)["cups-2-days"] == 0
    assert progress(client, bob, slug)["plates-3"] == 0
    assert progress(client, bob, slug)["cups-2-days"] == 1
    disqualify(client, admin, slug, pids_of(app, slug)[bob.user_id])
    assert checkin(client, bob, slug, "reusable_cup").status_code == 403
    assert completions(app, bob) == []


def test_twenty_concurrent_completing_checkins_record_one_completion_and_one_badge(
        make_app, login):
    """Threads, each with its own test client of one app, real clock: every check-in alone
    completes first-gram; exactly one completion and one badge result."""
    app = make_app()
    client = app.test_client()
    slug = unique("race")
    today = shanghai_today()
    create_live_campaign(app, campaign_document(
        slug, starts_on=today - timedelta(days=1), ends_on=today + timedelta(days=5),
        challenges=[{"key": "first-gram", "name": "第一克", "kind": "total", "target_g": 1},
                    {"key": "invoices-100", "name": "电子发票100张", "kind": "count",
                     "per": "record", "action": "e_invoice", "target": 100}]))
    alice = make_person(login, client, "race")
    join(client, alice, slug)
    actions = ["e_invoice", "reusable_bag", "reusable_cup", "clean_plate", "online_meeting",
               "e_ticket", "metro_ride"]
    barrier = threading.Barrier(20)

    def one(index: int):
        own = app.test_client()
        barrier.wait(timeout=30)
        response = checkin(own, alice, slug, actions[index % len(actions)])
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert [status for status, _ in results] == [201] * 20, results
    listed, badges, _ = my_challenges(client, alice, slug)
    assert [b["key"] for b in badges] == ["first-gram"]
    assert listed["first-gram"]["completed_at"] == badges[0]["awarded_at"]
    assert listed["invoices-100"]["completed_at"] is None
    assert listed["invoices-100"]["progress"] == 3  # requests 0, 7 and 14 were e_invoice
    with app.app_context():
        participation_id = db.session.scalars(select(Participation.id).where(
            Participation.user_id == alice.user_id)).one()
        assert db.session.scalar(select(func.count()).select_from(ChallengeCompletion).where(
            ChallengeCompletion.participation_id == participation_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.participation_id == participation_id)) == 20
