"""Two server instances, one PostgreSQL and one Redis (issue 9 point 3; DESIGN.md "Scale":
stateless workers that can be multiplied behind a load balancer).

Two gunicorn servers on different ports share the test database and the test Redis database
(TEST_DATABASE_URL, TEST_REDIS_URL; skipped without either). A client spreads requests over
both as a load balancer would: logins (a participant logged in on both), joins, check-ins with
Idempotency-Keys, boards, /me and campaign reads, from four threads; and the same
Idempotency-Key sent to both instances at the same moment, round after round. Then:

- every request was answered 2xx, with no key replayed but the deliberate duplicates;
- each duplicate pair got the same reply, one created and one replayed: counted once;
- the ledger holds exactly the accepted check-ins, each once, and its total is the sum of the
  accepted amounts; ``flask ledger verify`` passes;
- the campaign total, every participant's standing (/me: total, rank, actions, the challenge
  completed at 1 kg) and every board (anonymous and as each participant) are the same from
  both instances, and the board lists the participants' totals from the database.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest
import redis as redis_lib
import requests

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.conftest import test_environ as app_environ_for
from tests.e2e.conftest import LiveServer, running_server
from tests.e2e.fault_helpers import (
    TEAMS,
    Load,
    Outcome,
    Person,
    assert_answered_in_bound,
    assert_ledger_holds_exactly,
    assert_ledger_verifies,
    board_op,
    checkin_op,
    create_live_campaign,
    join,
    ledger_state,
    login,
    login_op,
    me_op,
    mg,
    participant_totals_g,
    read_boards,
    send,
    server_log_problems,
    summary,
)

pytestmark = pytest.mark.e2e

PEOPLE = 6
LOAD_S = 5.0
DUPLICATE_ROUNDS = 12
SETTLE_S = 2.5  # a Redis board may lag the database by 2 s (DESIGN.md "Leaderboards")
BARRIER_TIMEOUT_S = 10.0


@pytest.fixture
def instances(tmp_path_factory, database_url, secret_key):
    """Servers A and B (2 workers x 4 threads each) on the same database and Redis."""
    if not (TEST_DATABASE_URL and TEST_REDIS_URL):
        pytest.skip("TEST_DATABASE_URL and TEST_REDIS_URL are both needed: two instances share "
                    "PostgreSQL and Redis (SQLite and per-process boards are one-server setups)")
    shared_redis = redis_lib.Redis.from_url(TEST_REDIS_URL)
    shared_redis.flushdb()  # no board of an earlier test's campaign with the same id
    app_environ = app_environ_for(database_url, SECRET_KEY=secret_key, WECHAT_SANDBOX="1")
    assert app_environ["REDIS_URL"] == TEST_REDIS_URL
    try:
        with ExitStack() as stack:
            a = stack.enter_context(running_server(tmp_path_factory, "instance-a", app_environ))
            b = stack.enter_context(running_server(tmp_path_factory, "instance-b", app_environ))
            assert a.base_url != b.base_url
            yield a, b, app_environ
    finally:
        shared_redis.flushdb()
        shared_redis.close()


def spread(a: LiveServer, b: LiveServer, make_op, *args):
    """An op that sends its requests to A or B in turn (thread and request number)."""
    on_a, on_b = make_op(a, *args), make_op(b, *args)

    def run(session: requests.Session, thread: int, n: int) -> Outcome:
        return (on_a if (thread + n) % 2 == 0 else on_b)(session, thread, n)

    return run


def same_key_on_both(a: LiveServer, b: LiveServer, slug: str, person: Person, key: str,
                     body: dict) -> tuple[Outcome, Outcome]:
    """POST one check-in with one key to A and to B, released together."""
    barrier = threading.Barrier(2)
    results: dict[str, Outcome] = {}

    def post(name: str, server: LiveServer) -> None:
        with requests.Session() as session:
            barrier.wait(BARRIER_TIMEOUT_S)
            results[name] = send(session, "checkin", 0, "POST",
                                 server.url(f"/api/v1/campaigns/{slug}/checkins"),
                                 person=person, key=key, body=body)

    threads = [threading.Thread(target=post, args=(name, server), daemon=True)
               for name, server in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT_S + 20)
    assert set(results) == {"a", "b"}, "a request of a pair did not finish"
    return results["a"], results["b"]


def standing(server: LiveServer, slug: str, person: Person) -> dict:
    response = server.get(f"/api/v1/campaigns/{slug}/me", headers=person.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"reduction_g": body["reduction_g"], "points": body["points"], "rank": body["rank"],
            "by_action": body["by_action"], "days_active": body["days_active"],
            "challenges": [(c["key"], c["progress"], c["completed_at"])
                           for c in body["challenges"]]}


def test_two_instances_share_everything(instances, secret_key, e2e_app):
    a, b, app_environ = instances
    servers = (a, b)
    slug = "two-instances"
    campaign_id = create_live_campaign(e2e_app, slug)

    # Logins and joins spread over both; one participant logged in on both.
    people = []
    for index in range(PEOPLE):
        name = f"twin-{index}"
        person = login(servers[index % 2], f"sandbox:{name}", name, secret_key)
        join(servers[(index + 1) % 2], slug, person, TEAMS[index % len(TEAMS)])
        people.append(person)
    on_both = login(b, "sandbox:twin-0", "twin-0", secret_key)
    assert a.get("/api/v1/me", headers=on_both.headers).json()["id"] == \
        b.get("/api/v1/me", headers=people[0].headers).json()["id"]

    # A load spread over both instances.
    def ops(thread: int) -> list:
        mine = [spread(a, b, checkin_op, slug, people, "twin"), spread(a, b, board_op, slug),
                spread(a, b, checkin_op, slug, people, "twin-bag", "reusable_bag"),
                spread(a, b, me_op, slug, people), spread(a, b, board_op, slug, people)]
        if thread == 0:
            mine.append(spread(a, b, login_op, lambda t, n: f"sandbox:twin-new-{t}-{n}"))
        return mine

    with Load(ops, threads=4) as load:
        time.sleep(LOAD_S)
        outcomes = load.stop()
    print(f"\nspread over two instances: {summary(outcomes)}")
    assert_answered_in_bound(outcomes)
    assert all(o.ok for o in outcomes), summary([o for o in outcomes if not o.ok])
    assert {o.op for o in outcomes} == {"checkin", "board", "me", "login"}
    accepted = {o.key: o.reply for o in outcomes if o.op == "checkin"}

    # The same key to both instances at once: one check-in, the same reply twice.
    overlapped = 0
    for round_ in range(DUPLICATE_ROUNDS):
        person = people[round_ % PEOPLE]
        key, body = f"both-{round_}", {"action": "metro_ride", "quantity": 1 + round_ % 3}
        first, second = same_key_on_both(a, b, slug, person, key, body)
        assert first.status == second.status == 201, (first.reply, second.reply)
        assert first.reply == second.reply
        assert sorted([first.replayed, second.replayed]) == [False, True], key
        created, replayed = (second, first) if first.replayed else (first, second)
        overlapped += replayed.started < created.started + created.seconds
        accepted[key] = first.reply
    # Released together, the replay mostly starts before the creating request has answered
    # (it waits on the key's unique index in the database, then replays).
    assert overlapped > 0, "no pair of requests ran at the same time"

    state = ledger_state(e2e_app, campaign_id, slug)
    assert_ledger_holds_exactly(state, accepted)
    assert_ledger_verifies(app_environ, slug, state.entries)
    total_g = state.total_mg / 1000
    print(f"{len(accepted)} check-ins ({DUPLICATE_ROUNDS} sent to both at once, {overlapped} "
          f"of the pairs overlapping), "
          f"{state.entries} entries, {total_g:g} g")

    # The same campaign, standings and boards from both instances.
    time.sleep(SETTLE_S)
    campaigns = [server.get(f"/api/v1/campaigns/{slug}").json() for server in servers]
    assert campaigns[0] == campaigns[1]
    assert mg(campaigns[0]["reduction_g"]) == state.total_mg
    assert campaigns[0]["participants"] == PEOPLE
    for person in people:
        mine = [standing(server, slug, person) for server in servers]
        assert mine[0] == mine[1], person.name
        completed = mine[0]["challenges"][0][2] is not None
        assert completed == (mine[0]["reduction_g"] >= 1000), mine[0]
    sources = set()
    for viewer in [None, *people]:
        boards = []
        for server in servers:
            seen, from_ = read_boards(server, slug, viewer)
            boards.append(seen)
            sources |= from_
        assert boards[0] == boards[1], viewer.name if viewer else "anonymous"
    assert [entry["reduction_g"] for entry in boards[0][("individuals", "total")]["entries"]] \
        == participant_totals_g(e2e_app, campaign_id)
    print(f"boards answered from {sorted(sources)} on both instances")

    for server in servers:
        problems = server_log_problems(server)
        assert not problems, f"{server.name} logged a bug:\n" + "\n".join(problems[:20])
