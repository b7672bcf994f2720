"""Faults under load, end to end (issue 9 point 2; DESIGN.md "Ledger and concurrency", "Trust
and safety"), each on services the test owns, never the shared ones:

a) PostgreSQL cut: the real server reaches the database of TEST_DATABASE_URL only through a TCP
   proxy of the test's own (tests/support/tcp_proxy.py). While three threads send check-ins
   (each with a fresh Idempotency-Key), board reads, /me reads and logins, the proxy is cut for
   10 s (live connections aborted, new ones refused). Every answer is a 2xx or
   ``503 service.unavailable`` with Retry-After, within a bound; the server's readiness says
   the database is down. Once the proxy is back, requests succeed again with no restart (pool
   pre-ping, the same workers). Then every 503'd check-in is sent again with its key: the
   ledger holds exactly the accepted check-ins, each once (one whose commit went through
   before the cut replays its first reply), and the total is the sum of the accepted amounts.
   Last, the sharpest cut, made on purpose: the database commits a check-in and the proxy drops
   its answer and cuts: 503, the check-in is in the ledger once, and the retry with its key
   replays the stored reply. ``flask ledger verify`` passes against the real database.
   PostgreSQL only. A second test lets the database answer a check-in's COMMIT and cuts it at
   the next query (the board update after the commit): the committed check-in is answered
   201 or 503, never 500.
b) Redis stopped: the server's Redis is a redis-server of the test's own, and rate limits are
   on, as in production (their counters live in that Redis). Boards read from Redis, then with
   Redis killed the same boards answer from SQL (``X-Tanpu-Board-Source: sql``) while
   check-ins, logins, /me and boards under load all succeed; Redis started again (empty),
   boards answer from SQL, then from Redis after ``flask leaderboards rebuild``, with the
   same entries, and stay current. Both databases.
c) WeChat unreachable: the server's WECHAT_API_BASE (WECHAT_SANDBOX=0) is a proxy in front of
   the fake WeChat server. Refused, then silent (connections accepted, never answered): logins
   answer ``503 wechat.unavailable`` with Retry-After within the client's deadline, while
   check-ins, /me and boards of the participants already logged in keep working; once WeChat
   is back, logins work again. Both databases.

After each: the ledger holds exactly the accepted check-ins, ``flask ledger verify`` passes, and
the server logged no traceback, no 5xx other than 503 and no worker timeout.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from tests.backend.board_helpers import OwnRedis
from tests.conftest import TEST_DATABASE_URL
from tests.conftest import test_environ as app_environ_for
from tests.e2e.conftest import LiveServer, running_server
from tests.e2e.fault_helpers import (
    TEAMS,
    Load,
    Person,
    assert_answered_in_bound,
    assert_ledger_holds_exactly,
    assert_ledger_verifies,
    assert_only_ok_or_unavailable,
    board_op,
    checkin_op,
    create_live_campaign,
    join,
    ledger_state,
    log_since,
    login,
    login_op,
    me_op,
    mg,
    participant_totals_g,
    read_boards,
    rebuild_boards,
    server_log_problems,
    summary,
    wait_for_board_source,
    worker_boots,
)
from tests.support.fake_wechat import APP_SECRET, APPID, FakeWeChat
from tests.support.tcp_proxy import TcpProxy, port_is_refused

pytestmark = pytest.mark.e2e

WORKERS = 2
CUT_S = 10.0
WARM_S = 2.0
RECOVERY_S = 3.0
# After the proxy is back, a request that starts later than this succeeds (pre-ping).
RECOVERED_AFTER_S = 0.5
# Between requests of the Redis test's load: under the intake limit of 30 a minute each.
PAUSE_S = 0.1
# A Redis board may lag the database by this much (DESIGN.md "Leaderboards": 2 s).
SETTLE_S = 2.5
# The server's WeChat deadline is 5 s; the mini-program gives a login this long.
LOGIN_DEADLINE_S = 8.0
# Requests that need neither the failed service nor a lock: quick even on a busy machine.
QUICK_BOUND_S = 5.0


def people_of(server, slug: str, names: list[str], secret_key: str) -> list:
    """Log each name in through the sandbox and join, alternating the teams."""
    people = []
    for index, name in enumerate(names):
        person = login(server, f"sandbox:{name}", name, secret_key)
        join(server, slug, person, TEAMS[index % len(TEAMS)])
        people.append(person)
    return people


def accepted_checkins(outcomes) -> dict[str, dict]:
    return {o.key: o.reply for o in outcomes if o.op == "checkin" and o.ok}


def assert_clean_log(server) -> None:
    problems = server_log_problems(server)
    assert not problems, "the server logged a bug:\n" + "\n".join(problems[:20])


# --- a) PostgreSQL cut ------------------------------------------------------------------------


@dataclass
class Proxied:
    """A server whose database is reached through ``proxy``, with three participants."""

    server: LiveServer
    proxy: TcpProxy
    people: list[Person]
    slug: str
    campaign_id: int
    direct_environ: dict[str, str]  # the app's environment on the real database (CLI)

    def checkin(self, person: Person, key: str, body: dict):
        return self.server.post(f"/api/v1/campaigns/{self.slug}/checkins", json=body,
                                headers={**person.headers, "Idempotency-Key": key})


@contextmanager
def proxied_server(name: str, tmp_path_factory, tmp_path, database_url, secret_key, e2e_app):
    """Skip without PostgreSQL; else a TcpProxy in front of it, an OwnRedis, the campaign and a
    server (2 workers) whose DATABASE_URL is the proxy's address."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is unset: cutting PostgreSQL needs PostgreSQL "
                    "(the SQLite run has no database connection to cut)")
    real = make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432).start()
    redis = OwnRedis(tmp_path).start()
    proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app_environ = app_environ_for(proxied, SECRET_KEY=secret_key, WECHAT_SANDBOX="1",
                                  REDIS_URL=redis.url)
    slug = f"faults-{name}"
    campaign_id = create_live_campaign(e2e_app, slug)
    try:
        with running_server(tmp_path_factory, name, app_environ, workers=WORKERS) as server:
            people = people_of(server, slug, [f"{name}-a", f"{name}-b", f"{name}-c"],
                               secret_key)
            yield Proxied(server, proxy, people, slug, campaign_id,
                          dict(app_environ, DATABASE_URL=database_url))
    finally:
        proxy.stop()
        redis.kill()


def test_postgresql_cut_answers_503_then_recovers_without_restart(
        tmp_path_factory, tmp_path, database_url, secret_key, e2e_app):
    with proxied_server("pg-cut", tmp_path_factory, tmp_path, database_url, secret_key,
                        e2e_app) as env:
        server, proxy, people, slug = env.server, env.proxy, env.people, env.slug

        def ops(thread: int) -> list:
            mine = [checkin_op(server, slug, people, "cut"), board_op(server, slug),
                    checkin_op(server, slug, people, "cut2"), me_op(server, slug, people)]
            if thread == 0:
                mine.append(login_op(server, lambda t, n: f"sandbox:cut-login-{t}-{n}"))
            return mine

        load = Load(ops, threads=3).start()
        time.sleep(WARM_S)
        cut_at = time.monotonic()
        proxy.cut()
        assert port_is_refused(proxy.port)
        time.sleep(CUT_S / 2)
        ready = server.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "down", ready.text
        time.sleep(CUT_S / 2)
        proxy.restore()
        restored_at = time.monotonic()
        time.sleep(RECOVERY_S)
        outcomes = load.stop()
        print(f"\nPostgreSQL cut {CUT_S:.0f} s: {summary(outcomes)}; proxy aborted "
              f"{proxy.aborted} connections; slowest answer "
              f"{max(o.seconds for o in outcomes):.2f} s")

        assert_answered_in_bound(outcomes)
        assert_only_ok_or_unavailable(outcomes)
        before = [o for o in outcomes if o.started + o.seconds < cut_at]
        during = [o for o in outcomes
                  if o.started > cut_at + 0.2 and o.started + o.seconds < restored_at]
        after = [o for o in outcomes if o.started > restored_at + RECOVERED_AFTER_S]
        assert before and all(o.ok for o in before), summary(before)
        assert any(o.op == "checkin" and o.status == 503 for o in during), summary(during)
        assert {o.op for o in during if o.status == 503} >= {"checkin", "board", "me"}
        assert after and all(o.ok for o in after), summary(after)
        assert {o.op for o in after} >= {"checkin", "board", "me", "login"}
        # Recovered without a restart: the same master and workers.
        assert server.process.poll() is None
        assert worker_boots(server) == WORKERS, "a worker was restarted"
        assert server.get("/readyz").json()["database"] == "ok"

        # Before any retry: the accepted check-ins are in the ledger once each; a 503'd one
        # is absent, unless its commit went through before the cut (then its reply was
        # stored, and the retry below replays it).
        checkins = [o for o in outcomes if o.op == "checkin"]
        accepted = accepted_checkins(outcomes)
        unavailable = [o for o in checkins if o.status == 503]
        state = ledger_state(e2e_app, env.campaign_id, slug)
        committed = {o.key for o in unavailable if o.key in state.stored_keys}
        assert_ledger_holds_exactly(
            state, {**accepted, **{key: state.stored_keys[key] for key in committed}})

        # Every 503'd check-in sent again with its key: created once, or replayed.
        for outcome in unavailable:
            retry = env.checkin(outcome.person, outcome.key, outcome.body)
            assert retry.status_code == 201, retry.text
            replayed = retry.headers.get("Idempotent-Replayed") == "true"
            assert replayed == (outcome.key in committed), outcome.key
            accepted[outcome.key] = retry.json()
        state = ledger_state(e2e_app, env.campaign_id, slug)
        assert_ledger_holds_exactly(state, accepted)
        print(f"{len(unavailable)} check-ins answered 503 were sent again ({len(committed)} "
              f"had been committed)")

        # The sharpest cut: the database commits a check-in, its answer is lost on the way
        # back. 503 (nothing known), and the retry with the key replays the stored reply.
        key, body = "lost-commit", {"action": "metro_ride", "quantity": 2}
        proxy.cut_after_next_commit()
        lost = env.checkin(people[0], key, body)
        assert proxy.struck.is_set() and proxy.state == "cut"
        assert lost.status_code == 503, lost.text
        assert lost.json()["error"]["code"] == "service.unavailable"
        assert lost.headers["Retry-After"].isdigit()
        proxy.restore()
        state = ledger_state(e2e_app, env.campaign_id, slug)
        assert key in state.stored_keys, "the commit did not go through"
        assert_ledger_holds_exactly(state, {**accepted, key: state.stored_keys[key]})
        retry = env.checkin(people[0], key, body)
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert retry.json() == state.stored_keys[key]
        accepted[key] = retry.json()

        state = ledger_state(e2e_app, env.campaign_id, slug)
        assert_ledger_holds_exactly(state, accepted)
        print(f"the ledger holds {state.entries} entries, {state.total_mg / 1000:g} g")
        campaign = server.get(f"/api/v1/campaigns/{slug}")
        assert campaign.status_code == 200
        assert mg(campaign.json()["reduction_g"]) == state.total_mg
        assert_ledger_verifies(env.direct_environ, slug, state.entries)
        assert_clean_log(server)


def test_database_gone_right_after_a_commit_is_not_a_500(
        tmp_path_factory, tmp_path, database_url, secret_key, e2e_app):
    """The database answers a check-in's COMMIT and goes away at once: the reply is a 201 or
    a 503 with Retry-After, never a 500; the check-in is in the ledger once and its retry
    replays it. The Redis board mirror after the commit works from the values the append
    returned, so a request that sends nothing more after its COMMIT must be a 201."""
    with proxied_server("pg-gone", tmp_path_factory, tmp_path, database_url, secret_key,
                        e2e_app) as env:
        key, body = "gone-after-commit", {"action": "metro_ride", "quantity": 3}
        env.proxy.cut_after_next_commit(drop_reply=False)
        gone = env.checkin(env.people[0], key, body)
        struck_within = env.proxy.struck.is_set()
        if not struck_within:
            env.proxy.cut()  # the database goes away now, before anything else is sent
        assert env.checkin(env.people[1], "while-gone", body).status_code == 503
        env.proxy.restore()
        state = ledger_state(e2e_app, env.campaign_id, env.slug)
        assert key in state.stored_keys, "the commit did not go through"
        retry = env.checkin(env.people[0], key, body)
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert retry.json() == state.stored_keys[key]
        assert_ledger_holds_exactly(state, {key: retry.json()})
        assert_ledger_verifies(env.direct_environ, env.slug, state.entries)
        assert gone.status_code == 201 if not struck_within else gone.status_code in (201, 503)
        if gone.status_code == 503:
            assert gone.json()["error"]["code"] == "service.unavailable"
            assert gone.headers["Retry-After"].isdigit()
        assert_clean_log(env.server)


# --- b) Redis stopped -------------------------------------------------------------------------


def test_redis_stopped_boards_answer_from_sql_and_intake_goes_on(
        tmp_path_factory, tmp_path, database_url, secret_key, e2e_app):
    redis = OwnRedis(tmp_path).start()
    # Rate limits on, as in production: their counters live in the same Redis.
    app_environ = app_environ_for(database_url, SECRET_KEY=secret_key, WECHAT_SANDBOX="1",
                                  REDIS_URL=redis.url, RATE_LIMITS_ENABLED="1")
    slug = "faults-redis"
    campaign_id = create_live_campaign(e2e_app, slug)
    try:
        with running_server(tmp_path_factory, "redis-stop", app_environ,
                            workers=WORKERS) as server:
            people = people_of(server, slug, ["red-a", "red-b", "red-c", "red-d"], secret_key)

            def ops_with(label: str):
                def ops(thread: int) -> list:
                    mine = [checkin_op(server, slug, people, label),
                            board_op(server, slug, people), me_op(server, slug, people)]
                    if thread == 0:
                        mine.append(login_op(server, lambda t, n: f"sandbox:{label}-{t}-{n}"))
                    return mine
                return ops

            outcomes = []
            with Load(ops_with("red-up"), threads=2, pause_s=PAUSE_S) as load:  # Redis up
                time.sleep(WARM_S)
                outcomes += load.stop()
            assert_answered_in_bound(outcomes, bound_s=QUICK_BOUND_S)
            assert all(o.ok for o in outcomes), summary(outcomes)
            rebuild_boards(app_environ, slug)
            from_redis = wait_for_board_source(server, slug, "redis")
            assert from_redis[("individuals", "total")]["entries"], "the boards are empty"

            redis.kill()
            from_sql, sources = read_boards(server, slug)
            assert sources == {"sql"} and from_sql == from_redis
            with Load(ops_with("red-down"), threads=2, pause_s=PAUSE_S) as load:  # Redis down
                time.sleep(3.0)
                down = load.stop()
            print(f"\nRedis stopped: {summary(down)}")
            assert_answered_in_bound(down, bound_s=QUICK_BOUND_S)
            assert all(o.ok for o in down), summary(down)
            assert {o.source for o in down if o.op == "board"} == {"sql"}
            assert {o.op for o in down} == {"checkin", "board", "me", "login"}
            ready = server.get("/readyz")
            assert ready.status_code == 200 and ready.json()["redis"] == "down", ready.text
            outcomes += down
            stopped_boards, sources = read_boards(server, slug)
            assert sources == {"sql"}
            assert stopped_boards != from_redis  # the check-ins made while it was down count

            redis.start()  # back, and empty
            restarted_at = len(server.log_text())
            again, sources = read_boards(server, slug)
            assert "sql" in sources and again == stopped_boards
            rebuild_boards(app_environ, slug)
            rebuilt, sources = read_boards(server, slug)
            assert sources == {"redis"} and rebuilt == stopped_boards
            with Load(ops_with("red-again"), threads=2, pause_s=PAUSE_S) as load:  # Redis up again
                time.sleep(WARM_S)
                up = load.stop()
            assert_answered_in_bound(up, bound_s=QUICK_BOUND_S)
            assert all(o.ok for o in up), summary(up)
            assert "redis" in {o.source for o in up if o.op == "board"}
            outcomes += up
            time.sleep(SETTLE_S)  # past the 2 s a Redis board may lag
            settled = wait_for_board_source(server, slug, "redis")
            assert [entry["reduction_g"] for entry in
                    settled[("individuals", "total")]["entries"]] == \
                participant_totals_g(e2e_app, campaign_id)
            assert settled != rebuilt  # kept up to date again
            failures = [line for line in log_since(server, restarted_at).splitlines()
                        if "failed" in line and "HTTP/1.1" not in line]
            assert not failures, f"Redis errors after it was back: {failures[:5]}"

            state = ledger_state(e2e_app, campaign_id, slug)
            assert_ledger_holds_exactly(state, accepted_checkins(outcomes))
            assert_ledger_verifies(app_environ, slug, state.entries)
            assert_clean_log(server)
    finally:
        redis.kill()


# --- c) WeChat unreachable --------------------------------------------------------------------


def test_wechat_unreachable_fails_logins_only(tmp_path_factory, tmp_path, database_url,
                                              secret_key, e2e_app):
    wechat = FakeWeChat().start()
    wechat_port = int(wechat.base_url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", wechat_port).start()
    redis = OwnRedis(tmp_path).start()
    app_environ = app_environ_for(
        database_url, SECRET_KEY=secret_key, WECHAT_SANDBOX="0", WECHAT_APPID=APPID,
        WECHAT_SECRET=APP_SECRET, WECHAT_API_BASE=f"http://127.0.0.1:{proxy.port}",
        REDIS_URL=redis.url)
    slug = "faults-wechat"
    campaign_id = create_live_campaign(e2e_app, slug)
    try:
        with running_server(tmp_path_factory, "wechat-down", app_environ,
                            workers=WORKERS) as server:
            people = []
            for index, name in enumerate(["wx-a", "wx-b", "wx-c"]):
                person = login(server, f"ok-{name}", name)
                join(server, slug, person, TEAMS[index % len(TEAMS)])
                people.append(person)

            def ops_with(label: str):
                def ops(thread: int) -> list:
                    if thread == 0:  # the one who tries to log in
                        return [login_op(server, lambda t, n: f"ok-wx-{label}-{t}-{n}")]
                    return [checkin_op(server, slug, people, label),
                            board_op(server, slug, people), me_op(server, slug, people)]
                return ops

            outcomes = []
            for fault in (proxy.cut, proxy.blackhole):
                fault()
                with Load(ops_with(fault.__name__), threads=3) as load:
                    time.sleep(6.0)
                    seen = load.stop()
                proxy.restore()
                logins = [o for o in seen if o.op == "login"]
                others = [o for o in seen if o.op != "login"]
                print(f"\nWeChat {fault.__name__}: "
                      f"{summary(seen)}; slowest login "
                      f"{max(o.seconds for o in logins):.2f} s")
                assert logins and all(o.status == 503 and o.code == "wechat.unavailable"
                                      and (o.retry_after or "").isdigit() for o in logins), \
                    summary(logins)
                assert_answered_in_bound(logins, bound_s=LOGIN_DEADLINE_S)
                assert others and all(o.ok for o in others), summary(others)
                assert_answered_in_bound(others, bound_s=QUICK_BOUND_S)
                assert {o.op for o in others} == {"checkin", "board", "me"}
                outcomes += seen
            assert proxy.held > 0, "the silent WeChat was never called"

            back = login(server, "ok-wx-back", "wx-back")
            join(server, slug, back)
            assert wechat.requests["ok-wx-back"] == 1
            state = ledger_state(e2e_app, campaign_id, slug)
            assert_ledger_holds_exactly(state, accepted_checkins(outcomes))
            assert_ledger_verifies(app_environ, slug, state.entries)
            assert_clean_log(server)
    finally:
        proxy.stop()
        wechat.stop()
        redis.kill()
