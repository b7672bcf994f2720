"""`flask campaigns seed` then `flask ledger verify` and `flask ledger rebuild` (issue 6): the
seeded ledger verifies, a rebuild leaves every projection row as the entry-by-entry path left it
(also after API activity, a hidden and a disqualified participant on top of the seed), and the
boards after the seed equal the brute force."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Campaign, LedgerEntry, Participation, User
from tests.backend.board_helpers import (
    API,
    BOARDS,
    assert_board,
    assert_my_campaign_ranks,
    campaign_document,
    checkin,
    cli,
    create_live_campaign,
    day,
    disqualify,
    install_clock,
    join,
    load_world,
    make_person,
    periods_of,
    pids_of,
    projection_rows,
    set_visible,
    unique,
)

PARTICIPANTS = 300
ENTRIES_EACH = 5


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


def seed(app, slug: str, participants: int = PARTICIPANTS, entries: int = ENTRIES_EACH,
         seed_value: int = 7):
    result = cli(app, "campaigns", "seed", slug, "--participants", str(participants),
                 "--entries-per-participant", str(entries), "--seed", str(seed_value))
    assert f"seeded {participants} participants and {participants * entries} entries" \
        in result.output
    assert "seeding participants" in result.output + (result.stderr or "")  # the progress bar
    return result


def counts(app, slug: str) -> tuple[int, int]:
    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == slug)).one()
        return (db.session.scalar(select(func.count()).select_from(Participation).where(
                    Participation.campaign_id == campaign_id)),
                db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
                    LedgerEntry.campaign_id == campaign_id)))


def assert_rebuild_changes_nothing(app, slug: str) -> dict:
    verified = cli(app, "ledger", "verify", slug)
    assert f"ledger {slug}: ok" in verified.output
    before = projection_rows(app, slug)
    rebuilt = cli(app, "ledger", "rebuild", slug)
    assert "projections rebuilt" in rebuilt.output
    after = projection_rows(app, slug)
    for table, rows in before.items():
        assert after[table] == rows, (table, _difference(rows, after[table]))
    assert cli(app, "ledger", "verify", slug).exit_code == 0
    return after


def _difference(before: list, after: list) -> dict:
    return {"only_before": sorted(set(before) - set(after), key=repr)[:10],
            "only_after": sorted(set(after) - set(before), key=repr)[:10]}


def test_seed_verifies_and_rebuild_leaves_every_projection_unchanged(make_app, clock):
    app = make_app(REDIS_URL="")
    slug = unique("seed")
    create_live_campaign(app, campaign_document(slug, starts_on=day(0), ends_on=day(30),
                                                ranking="average", min_active=2))
    clock.set_day(6, hour=20)
    seed(app, slug)
    assert counts(app, slug) == (PARTICIPANTS, PARTICIPANTS * ENTRIES_EACH)
    with app.app_context():  # synthetic users are real rows
        assert db.session.scalar(select(func.count()).select_from(User).where(
            User.openid.like("seed:%"))) == PARTICIPANTS
    rows = assert_rebuild_changes_nothing(app, slug)
    assert len(rows["participant_days"]) > PARTICIPANTS
    assert {row[1] for row in rows["team_periods"]} == {"total", "day", "week"}
    # a second seed appends onto the same chain (new participants, other pseudonyms)
    seed(app, slug, participants=40, entries=3, seed_value=8)
    assert counts(app, slug) == (PARTICIPANTS + 40, PARTICIPANTS * ENTRIES_EACH + 120)
    assert_rebuild_changes_nothing(app, slug)


def test_rebuild_after_seed_and_api_activity_changes_nothing(make_app, login, admin, clock):
    """Seed, then entries through the API (projections maintained entry by entry), a hidden
    participant, a disqualified real and a disqualified seeded participant: verify passes and a
    rebuild reproduces every row exactly."""
    app = make_app(REDIS_URL="")
    client = app.test_client()
    slug = unique("seed")
    create_live_campaign(app, campaign_document(slug, starts_on=day(0), ends_on=day(30),
                                                ranking="average", min_active=2))
    clock.set_day(3, hour=8)
    seed(app, slug)
    people = [make_person(login, client, "s") for _ in range(4)]
    for person, team in zip(people, ["red", "blue", None, "red"], strict=True):
        join(client, person, slug, team)
    pids = pids_of(app, slug)
    for person in people:
        person.pid = pids[person.user_id]
    for offset in (3, 4):
        clock.set_day(offset, hour=12)
        for person in people:
            for action in ("car_free_day", "clean_plate", "metro_ride"):
                clock.advance(1)
                assert checkin(client, person, slug, action).status_code == 201
    clock.advance(1)
    assert checkin(client, people[1], slug, "reusable_bag", on=day(3)).status_code == 201
    set_visible(client, people[2], False)
    disqualify(client, admin, slug, people[3].pid)
    people[3].extra["disqualified"] = True
    seeded = next(pid for pid in pids.values() if pid not in {p.pid for p in people})
    disqualify(client, admin, slug, seeded)
    rows = assert_rebuild_changes_nothing(app, slug)
    assert any(row[1] == "week" for row in rows["team_periods"])

    world = load_world(app, slug)
    for board in BOARDS:
        for period, on in periods_of([day(0), day(3), day(4), day(5)]):
            assert_board(client, slug, world, board, period, on, None, "sql")
            for person in people:
                assert_board(client, slug, world, board, period, on, person, "sql")
    assert_my_campaign_ranks(client, slug, world, people)
    assert client.get(f"{API}/{slug}/me", headers=people[3].headers).status_code == 403


def test_boards_after_seed_come_from_redis_and_equal_the_brute_force(make_app, redis_url, login,
                                                                     clock):
    """`campaigns seed` writes the Redis boards too; they answer (header redis) and agree with
    the brute force, top 200 and a real participant's me, after `ledger rebuild` as well."""
    app = make_app(REDIS_URL=redis_url)
    client = app.test_client()
    slug = unique("seed")
    create_live_campaign(app, campaign_document(slug, starts_on=day(0), ends_on=day(30)))
    clock.set_day(2, hour=8)
    alice = make_person(login, client, "s")
    join(client, alice, slug, "blue")
    assert checkin(client, alice, slug, "car_free_day").status_code == 201
    clock.advance(5)
    seed(app, slug, participants=150, entries=4)
    clock.advance(5)
    pids = pids_of(app, slug)
    alice.pid = pids[alice.user_id]
    world = load_world(app, slug)
    days = [day(0), day(1), day(2)]
    for rebuilt in (False, True):
        if rebuilt:
            cli(app, "ledger", "rebuild", slug)
        for board in BOARDS:
            for period, on in periods_of(days):
                assert_board(client, slug, world, board, period, on, None, "redis")
                assert_board(client, slug, world, board, period, on, alice, "redis")
