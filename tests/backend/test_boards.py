"""Leaderboards (issue 6): the SQL board, the Redis board (updated incrementally and rebuilt)
and a brute-force sort of the stored ledger agree on every rank and every ``me``, for every
period, individuals and teams, ties included; Redis stopped, restarted empty or flushed; no
identities in board responses; the freeze."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.services import boards_sql
from tests.backend.board_helpers import (
    ADMIN_API,
    API,
    BOARDS,
    OwnRedis,
    Person,
    assert_all_boards,
    assert_board,
    assert_my_campaign_ranks,
    campaign_document,
    check_shape,
    checkin,
    cli,
    create_live_campaign,
    day,
    disqualify,
    exact,
    expected_individuals,
    get_board,
    grams,
    install_clock,
    instant_text,
    join,
    load_world,
    make_person,
    periods_of,
    pids_of,
    set_visible,
    unique,
)
from tests.support.secrets import REGISTRY

# car_free_day is once a day and always 3700 g: the ties. metro_ride shares the transport
# credit group with it, so it often appends 0 mg entries (which must not move the tie-break).
ACTIONS = ("car_free_day", "car_free_day", "car_free_day", "clean_plate", "reusable_bag",
           "metro_ride", "online_meeting")
HYPOTHESIS = settings(
    max_examples=15, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large])


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture(params=["ahead-counted", "smaller-side-counted"])
def counting(request, monkeypatch):
    """The SQL rank counts those ahead of me, or (large boards, lower half) the board's size
    minus those behind: every board is made "large" here so that both ways are checked."""
    if request.param == "smaller-side-counted":
        monkeypatch.setattr(boards_sql, "SMALL_BOARD", 1)
        monkeypatch.setattr(boards_sql, "MIDDLE_SECONDS", 0)
    return request.param


@pytest.fixture
def sql_app(make_app):
    """An app without Redis: every board is answered from SQL."""
    return make_app(REDIS_URL="")


@pytest.fixture
def redis_app(make_app, redis_url):
    """An app on the shared test Redis database (TEST_REDIS_URL)."""
    return make_app(REDIS_URL=redis_url)


# --- scenarios --------------------------------------------------------------------------------

@dataclass
class Scenario:
    teams: list[str | None]
    avatars: list[bool]
    ranking: str
    min_active: int
    days: list[list[tuple]]  # per day, events in order


@st.composite
def scenarios(draw) -> Scenario:
    """Several participants, two teams, random check-ins over a few days (some dated the day
    before), visibility changes and exactly one disqualification at random points."""
    n = draw(st.integers(4, 7))
    n_days = draw(st.integers(2, 4))
    teams = draw(st.lists(st.sampled_from([None, "red", "red", "blue", "blue"]),
                          min_size=n, max_size=n))
    avatars = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    one_checkin = st.tuples(st.just("checkin"), st.integers(0, n - 1), st.sampled_from(ACTIONS),
                            st.booleans())
    days = [draw(st.lists(one_checkin, min_size=1, max_size=10)) for _ in range(n_days)]
    changes = draw(st.lists(st.tuples(st.integers(0, n_days - 1), st.integers(0, 10),
                                      st.integers(0, n - 1), st.booleans()),
                            min_size=1, max_size=4))
    if all(visible for *_, visible in changes):
        first = changes[0]
        changes[0] = (first[0], first[1], first[2], False)
    for when, position, who, visible in changes:
        events = days[when]
        events.insert(min(position, len(events)), ("visible", who, visible))
    when, position, who = draw(st.tuples(st.integers(0, n_days - 1), st.integers(0, 10),
                                         st.integers(0, n - 1)))
    days[when].insert(min(position, len(days[when])), ("disqualify", who))
    return Scenario(teams, avatars, draw(st.sampled_from(["total", "average"])),
                    draw(st.integers(1, 3)), days)


FIXED = Scenario(
    teams=["red", "red", "blue", "blue", None, "red"],
    avatars=[True, False, True, False, True, False],
    ranking="average", min_active=2,
    days=[
        [("checkin", 0, "car_free_day", False), ("checkin", 1, "car_free_day", False),
         ("checkin", 2, "car_free_day", False), ("checkin", 3, "clean_plate", False),
         ("checkin", 4, "car_free_day", False), ("visible", 4, False),
         ("checkin", 5, "metro_ride", False), ("checkin", 5, "reusable_bag", False)],
        [("checkin", 2, "car_free_day", True), ("checkin", 1, "car_free_day", False),
         ("checkin", 0, "car_free_day", False), ("checkin", 3, "car_free_day", False),
         ("disqualify", 5), ("checkin", 5, "car_free_day", False),
         ("checkin", 4, "online_meeting", False), ("checkin", 0, "metro_ride", False)],
        [("checkin", 3, "car_free_day", False), ("checkin", 2, "car_free_day", False),
         ("checkin", 1, "clean_plate", True), ("visible", 1, False), ("visible", 1, True),
         ("visible", 0, False), ("visible", 0, True)],
    ],
)


@dataclass
class Played:
    slug: str
    people: list[Person]
    days: list[date]


def play(app, login, admin, clock, scenario: Scenario) -> Played:
    """Make the scenario's ledger through the API of ``app`` (so that its Redis boards, if
    any, are updated after each commit)."""
    client = app.test_client()
    slug = unique("board")
    create_live_campaign(app, campaign_document(
        slug, starts_on=day(0), ends_on=day(20), ranking=scenario.ranking,
        min_active=scenario.min_active))
    clock.set_day(0, hour=8)
    people = [make_person(login, client, "p", avatar) for avatar in scenario.avatars]
    for person, team in zip(people, scenario.teams, strict=True):
        join(client, person, slug, team)
    pids = pids_of(app, slug)
    for person in people:
        person.pid = pids[person.user_id]
    done: set[tuple[int, date]] = set()  # once-daily check-ins made: (person, date)
    for offset, events in enumerate(scenario.days):
        clock.set_day(offset, hour=10)
        for event in events:
            clock.advance(1)
            if event[0] == "checkin":
                _, who, action, back = event
                person = people[who]
                on = day(offset - 1) if back and offset > 0 else day(offset)
                response = checkin(client, person, slug, action, on=on)
                if person.extra.get("disqualified"):
                    assert response.status_code == 403, response.json
                elif action == "car_free_day" and (who, on) in done:
                    assert response.status_code == 409, response.json
                else:
                    assert response.status_code == 201, response.json
                    if action == "car_free_day":
                        done.add((who, on))
            elif event[0] == "visible":
                set_visible(client, people[event[1]], event[2])
            else:
                person = people[event[1]]
                if not person.extra.get("disqualified"):
                    disqualify(client, admin, slug, person.pid)
                    person.extra["disqualified"] = True
    clock.set_day(len(scenario.days) - 1, hour=23)
    return Played(slug, people, [day(i) for i in range(len(scenario.days))])


# --- 1. the three answers agree ---------------------------------------------------------------

@pytest.mark.timeout(1200)
@HYPOTHESIS
@given(scenario=scenarios())
def test_sql_boards_equal_the_brute_force(sql_app, login, admin, clock, counting, scenario):
    played = play(sql_app, login, admin, clock, scenario)
    world = load_world(sql_app, played.slug)
    client = sql_app.test_client()
    assert_all_boards(client, played.slug, world, played.people, played.days, "sql")
    assert_my_campaign_ranks(client, played.slug, world, played.people)


@pytest.mark.timeout(1800)
@HYPOTHESIS
@given(scenario=scenarios())
def test_redis_boards_equal_sql_and_the_brute_force(redis_app, sql_app, login, admin, clock,
                                                     scenario):
    played = play(redis_app, login, admin, clock, scenario)
    world = load_world(sql_app, played.slug)
    slug, people, days = played.slug, played.people, played.days
    redis_client, sql_client = redis_app.test_client(), sql_app.test_client()
    # the boards as the writes left them (after-commit updates, never rebuilt)
    assert_all_boards(redis_client, slug, world, people, days, "redis")
    assert_my_campaign_ranks(redis_client, slug, world, people)
    assert_all_boards(sql_client, slug, world, people, days, "sql")
    assert_my_campaign_ranks(sql_client, slug, world, people)
    cli(redis_app, "leaderboards", "rebuild", slug)
    assert_all_boards(redis_client, slug, world, people, days, "redis")
    assert_my_campaign_ranks(redis_client, slug, world, people)


def test_fixed_scenario_with_ties_on_every_backend(make_app, sql_app, login, admin, clock,
                                                   counting):
    """The hand-written scenario (ties of 3700 g resolved by who got there first, a hidden and
    a disqualified participant, an unranked team) on SQL and, when available, Redis."""
    app = make_app()  # Redis when TEST_REDIS_URL is set
    played = play(app, login, admin, clock, FIXED)
    world = load_world(sql_app, played.slug)
    # the ties really are ties: three participants at 3700 g on day 0
    day0 = [mg for _, mg in expected_individuals(world, "day", day(0))]
    assert day0.count(3_700_000) >= 3
    client = app.test_client()
    assert_all_boards(client, played.slug, world, played.people, played.days, None)
    assert_all_boards(sql_app.test_client(), played.slug, world, played.people, played.days,
                      "sql")
    # who got there first wins a tie: on day 0, p0 checked in before p1 and p2
    body = assert_board(client, played.slug, world, "individuals", "day", day(0), None, None)
    names = [entry["name"] for entry in body["entries"]]
    assert names.index(played.people[0].nickname) < names.index(played.people[1].nickname) \
        < names.index(played.people[2].nickname)
    # hidden (p4) and disqualified (p5) are on no public board; their own rank is still given
    for board in BOARDS:
        for period, on in periods_of(played.days):
            text = get_board(client, played.slug, board, period, on).get_data(as_text=True)
            assert played.people[4].nickname not in text
            assert played.people[5].nickname not in text
    hidden = exact(get_board(client, played.slug, "individuals", "total", None,
                             played.people[4]))["me"]
    assert hidden["rank"] >= 1 and hidden["reduction_g"] > 0


# --- 2. Redis stopped, restarted empty, flushed -----------------------------------------------

@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (skipped only when the binary is missing)."""
    server = OwnRedis(tmp_path).start()
    yield server
    server.kill()


def _answers(client, played, world, source, close=False) -> dict:
    """Every board answer (entries and me), checked against the brute force."""
    answers = {}
    for board in BOARDS:
        for period, on in periods_of(played.days):
            for person in [None, *played.people]:
                body = assert_board(client, played.slug, world, board, period, on, person,
                                    source, close=close)
                answers[(board, period, on, person.pid if person else None)] = (
                    body["entries"], body["me"])
    return answers


def test_redis_down_answers_from_sql_then_redis_again_after_rebuild(make_app, own_redis, login,
                                                                     admin, clock):
    app = make_app(REDIS_URL=own_redis.url)
    client = app.test_client()
    played = play(app, login, admin, clock, FIXED)
    cli(app, "leaderboards", "rebuild", played.slug)
    world = load_world(app, played.slug)
    from_redis = _answers(client, played, world, "redis")

    own_redis.kill()
    clock.advance(10)
    from_sql = _answers(client, played, world, "sql", close=True)
    assert from_sql == from_redis  # the same content, now from SQL
    # writes still work without Redis (and are counted)
    clock.advance(1)
    alice = played.people[0]
    response = checkin(client, alice, played.slug, "online_meeting", on=played.days[-1])
    assert response.status_code == 201, response.json
    set_visible(client, played.people[4], True)
    assert client.get(f"{API}/{played.slug}/me", headers=alice.headers).status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["redis"] == "down"
    clock.advance(10)
    world = load_world(app, played.slug)
    _answers(client, played, world, "sql", close=True)

    own_redis.start()  # back, and empty
    clock.advance(10)
    _answers(client, played, world, "sql")  # nothing replayed yet (responses not closed)
    clock.advance(1)
    response = checkin(client, played.people[2], played.slug, "clean_plate", on=played.days[-1])
    assert response.status_code == 201, response.json
    clock.advance(10)
    world = load_world(app, played.slug)
    _answers(client, played, world, "sql")  # one entry applied, the rest missing: still SQL

    cli(app, "leaderboards", "rebuild", played.slug)
    _answers(client, played, world, "redis")
    clock.advance(1)
    response = checkin(client, played.people[3], played.slug, "reusable_bag", on=played.days[-1])
    assert response.status_code == 201, response.json
    world = load_world(app, played.slug)
    _answers(client, played, world, "redis")  # updated after commit


def test_rebuilt_boards_are_kept_and_no_temporary_key_is_left(make_app, own_redis, login,
                                                               admin, clock):
    import redis as redis_client

    app = make_app(REDIS_URL=own_redis.url)
    played = play(app, login, admin, clock, FIXED)
    cli(app, "leaderboards", "rebuild", played.slug)
    cli(app, "leaderboards", "rebuild", played.slug)  # over existing boards
    store = redis_client.Redis.from_url(own_redis.url)
    keys = [key.decode() for key in store.scan_iter("tanpu:boards:*")]
    assert any(":individuals:total:all" in key for key in keys)
    assert not [key for key in keys if ":rebuild:" in key]
    assert {store.ttl(key) for key in keys} == {-1}  # no expiry left on a live board
    _answers(app.test_client(), played, load_world(app, played.slug), "redis")


def test_redis_restarted_empty_is_replayed_after_an_sql_answer(make_app, own_redis, login, admin,
                                                              clock):
    app = make_app(REDIS_URL=own_redis.url)
    client = app.test_client()
    played = play(app, login, admin, clock, FIXED)
    world = load_world(app, played.slug)
    _answers(client, played, world, "redis")
    own_redis.kill()
    own_redis.start()
    clock.advance(10)
    # the first SQL answer schedules the replay of the missing seqs (run when it closes)
    assert_board(client, played.slug, world, "individuals", "total", None, None, "sql",
                 close=True)
    _answers(client, played, world, "redis")


def test_flushed_redis_next_answers_are_complete_and_right(redis_app, login, admin, clock,
                                                           redis_url):
    client = redis_app.test_client()
    played = play(redis_app, login, admin, clock, FIXED)
    world = load_world(redis_app, played.slug)
    clock.advance(10)
    _answers(client, played, world, "redis")
    redis_lib.Redis.from_url(redis_url).flushdb()
    _answers(client, played, world, "sql")
    assert_board(client, played.slug, world, "teams", "total", None, None, "sql", close=True)
    _answers(client, played, world, "redis")  # replayed after that answer


def test_flush_right_after_the_first_writes_still_answers_completely(redis_app, login, admin,
                                                                      clock, redis_url):
    client = redis_app.test_client()
    slug = unique("flush")
    create_live_campaign(redis_app, campaign_document(slug, starts_on=day(0), ends_on=day(9)))
    clock.set_day(0)
    people = [make_person(login, client, "f") for _ in range(3)]
    for person in people:
        join(client, person, slug, "red")
        assert checkin(client, person, slug, "car_free_day").status_code == 201
    pids = pids_of(redis_app, slug)
    for person in people:
        person.pid = pids[person.user_id]
    redis_lib.Redis.from_url(redis_url).flushdb()  # within 2 s of the writes
    world = load_world(redis_app, slug)
    played = Played(slug, people, [day(0)])
    _answers(client, played, world, None)


# --- 3. no identities in board responses ------------------------------------------------------

def _bump_user_ids(app, start: int) -> None:
    """Make the next users.id values long and distinctive, so that a leak is unmistakable."""
    import sqlalchemy as sa

    from backend.extensions import db
    from backend.models import User

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), :v)"), {"v": start})
        else:
            db.session.add(User(id=start))
        db.session.commit()


@pytest.mark.parametrize("redis_on", [False, True], ids=["sql", "redis-if-available"])
def test_board_responses_carry_no_identities(make_app, login, admin, clock, redis_on):
    app = make_app() if redis_on else make_app(REDIS_URL="")
    _bump_user_ids(app, 7_340_000_001)
    played = play(app, login, admin, clock, FIXED)
    client = app.test_client()
    if redis_on:
        cli(app, "leaderboards", "rebuild", played.slug)
    world = load_world(app, played.slug)
    assert all(person.user_id > 7_340_000_001 for person in played.people)
    forbidden = {}
    for person in played.people:
        forbidden[str(person.user_id)] = f"user id of {person.nickname}"
        forbidden[person.token] = f"token of {person.nickname}"
        forbidden[person.pid] = f"pid of {person.nickname}"
    forbidden[admin.token] = "admin token"
    for board in BOARDS:
        for period, on in periods_of(played.days):
            for person in [None, *played.people]:
                response = get_board(client, played.slug, board, period, on, person)
                assert response.status_code == 200
                text = response.get_data(as_text=True) + "\n" + "\n".join(
                    f"{k}: {v}" for k, v in response.headers.items())
                assert not REGISTRY.leaks_in(text)  # openids, unionids, session keys, tokens
                leaks = [label for value, label in forbidden.items() if value in text]
                assert not leaks, (board, period, leaks)
                check_shape(exact(response), board)
    _answers(client, played, world, None)


# --- 5. the freeze ----------------------------------------------------------------------------

def _put_freeze(client, admin, slug: str, freeze_at: str) -> None:
    doc = client.get(f"{ADMIN_API}/{slug}", headers=admin.headers)
    assert doc.status_code == 200, doc.json
    body = doc.json
    body["leaderboard"] = {"freeze_at": freeze_at}
    response = client.put(f"{ADMIN_API}/{slug}", headers=admin.headers, json=body)
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("redis_on", [False, True], ids=["sql", "redis-if-available"])
def test_after_the_freeze_new_entries_move_me_but_not_the_public_board(make_app, login, admin,
                                                                       clock, redis_on):
    app = make_app() if redis_on else make_app(REDIS_URL="")
    client = app.test_client()
    played = play(app, login, admin, clock, FIXED)
    slug, people = played.slug, played.people
    last = played.days[-1]
    freeze = clock.instant + timedelta(minutes=1)
    _put_freeze(client, admin, slug, instant_text(freeze))
    # before freeze_at + 5 s the boards are live, and entries up to freeze_at count
    clock.advance(30)
    assert checkin(client, people[3], slug, "online_meeting", on=last).status_code == 201
    clock.instant = freeze + timedelta(seconds=2)
    assert checkin(client, people[1], slug, "online_meeting", on=last).status_code == 201
    world = load_world(app, slug)
    live = assert_board(client, slug, world, "individuals", "total", None, None, None)
    assert any(entry["name"] == people[1].nickname for entry in live["entries"])

    clock.instant = freeze + timedelta(seconds=6)  # frozen (and settled)
    before = {(board, period, on, p.pid if p else None): assert_board(
        client, slug, world, board, period, on, p, None, upto=freeze)
        for board in BOARDS for period, on in periods_of(played.days) for p in [None, *people]}
    public = {key[:3]: body["entries"] for key, body in before.items() if key[3] is None}

    # after the freeze: p3 (behind) climbs; p2 (with a team) adds too
    clock.advance(60)
    for action in ("online_meeting", "clean_plate", "reusable_bag"):
        response = checkin(client, people[3], slug, action, on=last)
        assert response.status_code == 201, response.json
    assert checkin(client, people[2], slug, "metro_ride", on=last).status_code == 201
    clock.advance(10)
    world = load_world(app, slug)
    moved = False
    for board in BOARDS:
        for period, on in periods_of(played.days):
            for person in [None, *people]:
                body = assert_board(client, slug, world, board, period, on, person, None,
                                    upto=freeze)
                assert body["entries"] == public[(board, period, on)]  # the board stands still
                old = before[(board, period, on, person.pid if person else None)]
                moved |= body["me"] != old["me"]
    assert moved
    me_before = before[("individuals", "total", None, people[3].pid)]["me"]
    me_now = exact(get_board(client, slug, "individuals", "total", None, people[3]))["me"]
    assert me_now["reduction_g"] > me_before["reduction_g"]
    assert me_now["rank"] <= me_before["rank"]
    assert_my_campaign_ranks(client, slug, world, people, upto=freeze)
    # the frozen board does not list what came after the freeze, even for a newcomer
    newcomer = make_person(login, client, "late")
    join(client, newcomer, slug, "blue")
    assert checkin(client, newcomer, slug, "car_free_day", on=last).status_code == 201
    text = get_board(client, slug, "individuals", "total", None).get_data(as_text=True)
    assert newcomer.nickname not in text
    mine = exact(get_board(client, slug, "individuals", "total", None, newcomer))["me"]
    assert mine["reduction_g"] == grams(3_700_000)


def test_my_rank_reads_my_member_not_the_board(own_redis):
    """/me's rank (limit 0) asks Redis for the watermark and my member only: reading the
    whole board per request was a 1 s /me at 100,000 participants."""
    import redis as redis_client

    from backend.services.boards_redis import RedisBoards, board_key

    boards = RedisBoards(redis_client.Redis.from_url(own_redis.url))
    key = board_key(1, "individuals", "total", "all")
    pipe = boards.client.pipeline(transaction=False)
    for index in range(300):
        boards.set_score(pipe, key, f"p{index:03d}", 1000 + index, index + 1, index + 1)
    pipe.execute()
    boards.client.set("tanpu:boards:1:wm", 300)
    watermark, top, mine = boards.snapshot(1, key, 0, "p123")
    assert (watermark, top) == (300, [])
    assert mine == (300 - 123, 1123, 124)  # rank, metric, seq
    watermark, top, mine = boards.snapshot(1, key, 3, None)
    assert [member for member, _, _ in top] == ["p299", "p298", "p297"] and mine is None


def test_an_older_score_reaching_redis_late_does_not_overwrite_a_newer_one(own_redis):
    """Two writers' after-commit updates may reach Redis in either order: each carries the
    head seq of the state it comes from, and the board keeps the latest state."""
    import redis as redis_client

    from backend.services.boards_redis import RedisBoards, board_key

    boards = RedisBoards(redis_client.Redis.from_url(own_redis.url))
    key = board_key(1, "teams", "total", "all")

    def send(metric, seq, version):
        pipe = boards.client.pipeline(transaction=False)
        boards.set_score(pipe, key, "blue", metric, seq, version)
        boards.set_score(pipe, key, "red", 700, 3, version)
        pipe.execute()
        return boards.snapshot(1, key, 5, "blue")[2]  # (rank, metric, seq) of blue

    assert send(1000, 9, version=9) == (1, 1000, 9)
    assert send(600, 8, version=8) == (1, 1000, 9)  # the update of seq 8 came late
    assert send(0, 0, version=7) == (1, 1000, 9)  # an older removal is ignored too
    assert send(650, 12, version=12) == (2, 650, 12)  # a newer one applies, red now ahead
    assert send(0, 0, version=13) is None  # and a newer removal takes blue off the board
