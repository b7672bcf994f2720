"""Intake under concurrency, end to end (issue 4, DESIGN.md "Ledger and concurrency").

The real server under gunicorn (4 workers x 4 threads, gthread) in the WeChat sandbox, on the
test database (PostgreSQL when TEST_DATABASE_URL is set, else SQLite). Each test creates and
publishes its campaign directly through the services, then starts its own server, so that a
scenario that jams the server cannot spill into the next one. Requests are released together
from a barrier, one ``requests.Session`` per thread:

a) 20 identical once-daily check-ins: exactly one 201, 19 ``409 checkin.already_done``;
b) 20 clean-plate check-ins (cap 2) with distinct Idempotency-Keys: 2 counted, 18 capped at 0;
c) 20 requests with one Idempotency-Key: one record, 20 identical responses;
d) 20 participants at once: all counted, the chain unbroken (``flask ledger verify``, seq 1..N).

After each burst the chain is checked (seq 1..N, prev_hash links, head, ``flask ledger verify``)
and every projection the ledger feeds is recomputed from ``ledger_entries`` and compared. No
reply is ever a 5xx, and the server logs no traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa

from backend.config import SANDBOX_APPID
from backend.extensions import db
from backend.services.campaigns import create_campaign, parse_document, publish_campaign
from backend.wechat import SandboxWeChat
from tests.backend.conftest import example_document
from tests.conftest import test_environ as app_environ_for
from tests.e2e.conftest import REQUEST_TIMEOUT_S, LiveServer, _server_environ, running_server
from tests.support.secrets import REGISTRY

pytestmark = pytest.mark.e2e

WORKERS, THREADS = 4, 4
PARALLEL = 20
BARRIER_TIMEOUT_S = 10.0
# A burst of 20 writes is a few hundred milliseconds of work; a lock wait that hits the
# database's timeout (5 s) shows up here before it shows up as a 503.
BURST_LIMIT_S = 8.0
REPO_ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_TZ = ZoneInfo("Asia/Shanghai")
CLEAN_PLATE_G = 144
CAR_FREE_DAY_G = 3700
METRO_RIDE_G = 52
GENESIS = "0" * 64
ACCESS_LOG_5XX = re.compile(r'"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) [^"]*" 5\d\d ')
# gunicorn's default access log line plus the worker's pid, to see which workers answered.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" worker=%(p)s'
WORKER_OF = re.compile(r'"(\w+) (\S+) HTTP/[\d.]+" (\d{3}) .* worker=<(\d+)>$')
WORKERS_READY_TIMEOUT_S = 30.0


# --- the campaign, the server, the participants ----------------------------------------------


def campaign_today() -> date:
    return datetime.now(CAMPAIGN_TZ).date()


def campaign_document(slug: str) -> dict:
    """The API.md example campaign (as JSON), open from 3 days ago to 30 days ahead, counting
    clean_plate (cap 2), car_free_day and metro_ride among its actions."""
    doc = example_document()
    today = campaign_today()
    doc.update(
        slug=slug, name=f"并发测试 {slug}",
        starts_on=(today - timedelta(days=3)).isoformat(),
        ends_on=(today + timedelta(days=30)).isoformat(),
        actions=[
            {"key": "walk_steps", "daily_cap": 10000, "min_quantity": 1000},
            {"key": "clean_plate", "daily_cap": 2},
            {"key": "car_free_day"},
            {"key": "metro_ride", "factor_g": METRO_RIDE_G, "sources": ["checkin", "partner"]},
        ],
    )
    return doc


@dataclass
class ConcurrencyEnv:
    server: LiveServer
    slug: str
    campaign_id: int
    app_environ: dict[str, str]
    secret_key: str
    today: str

    def api(self, path: str = "") -> str:
        return f"/api/v1/campaigns/{self.slug}{path}"


@pytest.fixture
def env(request, tmp_path_factory, database_url, secret_key, e2e_app):
    """A published campaign created through the services, then a 4 x 4 server on it."""
    slug = "conc-" + request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    with e2e_app.app_context():
        campaign = create_campaign(parse_document(campaign_document(slug)), "e2e-test")
        publish_campaign(campaign, "e2e-test")
        campaign_id = campaign.id
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    app_environ = app_environ_for(
        database_url, SECRET_KEY=secret_key, WECHAT_SANDBOX="1",
        GUNICORN_CMD_ARGS=f"--access-logformat '{ACCESS_LOG_FORMAT}'",
    )
    with running_server(tmp_path_factory, "concurrency", app_environ,
                        workers=WORKERS, threads=THREADS) as server:
        wait_for_every_worker(server)
        yield ConcurrencyEnv(server, slug, campaign_id, app_environ, secret_key,
                             campaign_today().isoformat())
        log = server.log_text()
        assert "Traceback" not in log, f"the server logged a traceback:\n{_tail(server)}"
        assert not ACCESS_LOG_5XX.search(log), f"the server answered a 5xx:\n{_tail(server)}"
        assert "WORKER TIMEOUT" not in log, f"a worker timed out:\n{_tail(server)}"


def _tail(server: LiveServer, lines: int = 60) -> str:
    text = "\n".join(server.log_text().splitlines()[-lines:])
    for value in list(REGISTRY._values):
        text = text.replace(value, "<secret>")
    return text


def served(server: LiveServer, method: str, path_part: str) -> list[tuple[int, int]]:
    """(status, worker pid) of each logged request of ``method`` whose path has ``path_part``."""
    found = []
    for line in server.log_text().splitlines():
        match = WORKER_OF.search(line)
        if match and match[1] == method and path_part in match[2]:
            found.append((int(match[3]), int(match[4])))
    return found


def wait_for_every_worker(server: LiveServer) -> None:
    """/healthz answers once one worker has loaded the app; wait until every worker answered
    one (bursts of fresh connections), so that the bursts meet all 4 x 4 threads."""
    started = time.monotonic()
    deadline = started + WORKERS_READY_TIMEOUT_S

    def ping(_index: int) -> None:
        with contextlib.suppress(requests.RequestException):
            requests.get(server.url("/healthz"), headers={"Connection": "close"}, timeout=2)

    while True:
        workers = {pid for _status, pid in served(server, "GET", "/healthz")}
        if len(workers) >= WORKERS:
            print(f"\nall {WORKERS} workers answered {time.monotonic() - started:.2f} s after "
                  "the first one")
            return
        assert time.monotonic() < deadline, \
            f"only {len(workers)} of {WORKERS} workers answered:\n{_tail(server)}"
        threads = [threading.Thread(target=ping, args=(i,)) for i in range(WORKERS * THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.05)


def join_as(env: ConcurrencyEnv, name: str) -> dict[str, str]:
    """Log in through the server as ``sandbox:<name>``, join the campaign; the auth headers."""
    sandbox = SandboxWeChat(env.secret_key, SANDBOX_APPID, lambda _openid: 0)
    openid, unionid = sandbox.identity(name)
    REGISTRY.add(openid, f"sandbox openid of {name}")
    REGISTRY.add(unionid, f"sandbox unionid of {name}")
    REGISTRY.add(sandbox.session_key(openid, 1), f"sandbox session_key of {name}")
    login = env.server.login(f"sandbox:{name}")
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    REGISTRY.add(token, f"sandbox token of {name}")
    headers = {"Authorization": f"Bearer {token}"}
    joined = env.server.post(env.api("/join"), json={}, headers=headers)
    assert joined.status_code == 201, joined.text
    assert joined.json()["joined_on"] == env.today
    return headers


# --- releasing requests together ---------------------------------------------------------------


@dataclass
class Burst:
    responses: list[requests.Response]
    seconds: float


def release_together(server: LiveServer,
                     request_of: Callable[[requests.Session, int], requests.Response],
                     count: int = PARALLEL) -> Burst:
    """Run ``request_of(session, i)`` in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count + 1)
    responses: list[requests.Response | None] = [None] * count
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with requests.Session() as session:
                barrier.wait(BARRIER_TIMEOUT_S)
                responses[index] = request_of(session, index)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait(BARRIER_TIMEOUT_S)
    started = time.monotonic()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT_S + BARRIER_TIMEOUT_S)
    seconds = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), \
        f"a request thread hung:\n{_tail(server)}"
    if failures:
        raise AssertionError(f"{len(failures)} of {count} requests failed after "
                             f"{time.monotonic() - started:.1f} s, first: {failures[0]!r}\n"
                             f"{_tail(server)}") from failures[0]
    burst = Burst([r for r in responses if r is not None], seconds)
    assert len(burst.responses) == count
    server_errors = [(r.status_code, r.text) for r in burst.responses if r.status_code >= 500]
    assert not server_errors, f"5xx under concurrency: {server_errors}"
    print(f"\n{count} concurrent requests answered in {seconds:.2f} s "
          f"({Counter(r.status_code for r in burst.responses)})")
    assert seconds < BURST_LIMIT_S, f"the burst took {seconds:.1f} s"
    return burst


def post_checkin(env: ConcurrencyEnv, headers: dict[str, str], body: dict,
                 key: str | None = None) -> Callable[[requests.Session, int], requests.Response]:
    """A request maker: POST the check-in ``body``; ``key`` may use ``{i}`` (thread index)."""

    def make(session: requests.Session, index: int) -> requests.Response:
        sent = dict(headers)
        if key is not None:
            sent["Idempotency-Key"] = key.format(i=index)
        return session.post(env.server.url(env.api("/checkins")), json=body, headers=sent,
                            timeout=REQUEST_TIMEOUT_S)

    return make


def print_checkin_workers(env: ConcurrencyEnv) -> None:
    """How many check-ins each worker answered, for the record. A gthread worker accepts
    connections while its threads are busy and queues them, so how a burst spreads over the
    workers is up to the kernel (lowering --worker-connections to force a spread makes
    gunicorn 23's gthread workers hang: benoitc/gunicorn#3407)."""
    workers = Counter(pid for _status, pid in served(env.server, "POST", "/checkins"))
    print(f"check-ins per worker: {sorted(workers.values(), reverse=True)}")


def error_code(response: requests.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def my_campaign(env: ConcurrencyEnv, headers: dict[str, str]) -> dict:
    response = env.server.get(env.api("/me"), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def my_checkins(env: ConcurrencyEnv, headers: dict[str, str], **query: str) -> list[dict]:
    response = env.server.get(env.api("/checkins"), params={"limit": 200, **query},
                              headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


def ledger_rows(e2e_app, campaign_id: int) -> list[dict]:
    """The campaign's ledger entries, in seq order, read straight from ledger_entries."""
    with e2e_app.app_context():
        rows = [dict(row._mapping) for row in db.session.execute(sa.text(
            "SELECT seq, pid, action, reduction_mg, counted_milli, prev_hash, hash "
            "FROM ledger_entries WHERE campaign_id = :campaign ORDER BY seq"),
            {"campaign": campaign_id})]
        db.session.remove()
        db.engine.dispose()
    return rows


def chain_head(e2e_app, campaign_id: int) -> dict:
    with e2e_app.app_context():
        row = dict(db.session.execute(sa.text(
            "SELECT head_seq, head_hash, total_mg, records, participants "
            "FROM campaign_ledgers WHERE campaign_id = :campaign"),
            {"campaign": campaign_id}).one()._mapping)
        db.session.remove()
        db.engine.dispose()
    return row


def _rows(sql: str, campaign_id: int) -> list:
    return list(db.session.execute(sa.text(sql), {"campaign": campaign_id}))


def projection_mismatches(e2e_app, campaign_id: int) -> dict[str, dict]:
    """Each projection the ledger feeds (participant totals and records, participant days and
    weeks, campaign days) next to the same figure recomputed from ledger_entries; only those
    that differ, as {"projected": ..., "ledger": ...}."""
    with e2e_app.app_context():
        entries = _rows("SELECT participation_id, local_date, reduction_mg, source "
                        "FROM ledger_entries WHERE campaign_id = :campaign", campaign_id)
        tables = {
            "participant": _rows("SELECT id, pid, reduction_mg, records FROM participations "
                                 "WHERE campaign_id = :campaign", campaign_id),
            "participant_day": _rows("SELECT participation_id, local_date, reduction_mg "
                                     "FROM participant_days WHERE campaign_id = :campaign",
                                     campaign_id),
            "participant_week": _rows("SELECT participation_id, week_start, reduction_mg "
                                      "FROM participant_weeks WHERE campaign_id = :campaign",
                                      campaign_id),
            "campaign_day": _rows("SELECT local_date, reduction_mg, records FROM campaign_days "
                                  "WHERE campaign_id = :campaign", campaign_id),
        }
        db.session.remove()
        db.engine.dispose()

    def as_date(value) -> date:
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    recomputed: dict[tuple, list[int]] = {}
    for entry in entries:
        day = as_date(entry.local_date)
        week = day - timedelta(days=day.weekday())
        counts = 0 if entry.source == "reversal" else 1
        for key, figures in (
            (("participant", entry.participation_id), (entry.reduction_mg, counts)),
            (("participant_day", entry.participation_id, day), (entry.reduction_mg,)),
            (("participant_week", entry.participation_id, week), (entry.reduction_mg,)),
            (("campaign_day", day), (entry.reduction_mg, counts)),
        ):
            total = recomputed.setdefault(key, [0] * len(figures))
            for index, value in enumerate(figures):
                total[index] += value
    projected: dict[tuple, tuple] = {}
    pid_of = {row.id: row.pid for row in tables["participant"]}
    for row in tables["participant"]:
        projected[("participant", row.id)] = (row.reduction_mg, row.records)
    for name in ("participant_day", "participant_week"):
        for participation_id, start, mg in tables[name]:
            projected[(name, participation_id, as_date(start))] = (mg,)
    for row in tables["campaign_day"]:
        projected[("campaign_day", as_date(row.local_date))] = (row.reduction_mg, row.records)

    mismatches = {}
    for key in sorted(set(projected) | set(recomputed), key=str):
        have = projected.get(key)
        want = tuple(recomputed.get(key, [0] * len(have or ())))
        if have is None or tuple(have) != want:
            kind, *rest = key
            if kind != "campaign_day":
                rest[0] = pid_of.get(rest[0], rest[0])
            label = " ".join([kind, *(str(part) for part in rest)])
            mismatches[label] = {"projected": have, "ledger": want}
    return mismatches


def assert_projections_match_ledger(e2e_app, campaign_id: int) -> None:
    mismatches = projection_mismatches(e2e_app, campaign_id)
    assert not mismatches, f"projections differ from the ledger (mg[, records]): {mismatches}"


def ledger_verify(env: ConcurrencyEnv) -> subprocess.CompletedProcess:
    """``flask --app wsgi ledger verify SLUG`` with the server's environment."""
    flask = Path(sys.executable).parent / "flask"
    return subprocess.run(
        [str(flask), "--app", "wsgi", "ledger", "verify", env.slug],
        cwd=REPO_ROOT, env=_server_environ(env.app_environ), capture_output=True, text=True,
        timeout=60, check=False,
    )


def assert_unbroken_chain(env: ConcurrencyEnv, e2e_app, entries: int,
                          projections: bool = True) -> list[dict]:
    """seq 1..entries without gaps, each prev_hash the hash before, the head and total as
    counted, ``flask ledger verify`` exits 0; and (unless told not to) every projection
    equals what the ledger adds up to."""
    rows = ledger_rows(e2e_app, env.campaign_id)
    assert [row["seq"] for row in rows] == list(range(1, entries + 1))
    assert rows[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"], f"chain broken at seq {after['seq']}"
    head = chain_head(e2e_app, env.campaign_id)
    assert head["head_seq"] == entries
    assert head["head_hash"] == rows[-1]["hash"]
    assert head["total_mg"] == sum(row["reduction_mg"] for row in rows)
    verify = ledger_verify(env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"ok, {entries} entries, head seq {entries}" in verify.stdout, verify.stdout
    if projections:
        assert_projections_match_ledger(e2e_app, env.campaign_id)
    return rows


# --- the scenarios -----------------------------------------------------------------------------


def test_identical_once_daily_checkins_count_once(env, e2e_app):
    headers = join_as(env, "conc-carfree")
    body = {"action": "car_free_day", "date": env.today}

    burst = release_together(env.server, post_checkin(env, headers, body))
    print_checkin_workers(env)

    statuses = Counter(r.status_code for r in burst.responses)
    assert statuses == {201: 1, 409: PARALLEL - 1}, statuses
    refused = [error_code(r) for r in burst.responses if r.status_code == 409]
    assert refused == ["checkin.already_done"] * (PARALLEL - 1)
    created = next(r.json() for r in burst.responses if r.status_code == 201)
    assert created["counted_quantity"] == 1 and created["capped"] is False
    assert created["reduction_g"] == CAR_FREE_DAY_G

    me = my_campaign(env, headers)
    assert me["by_action"] == {"car_free_day": {"reduction_g": CAR_FREE_DAY_G, "records": 1}}
    assert me["reduction_g"] == CAR_FREE_DAY_G
    assert [item["id"] for item in my_checkins(env, headers)] == [created["id"]]
    rows = assert_unbroken_chain(env, e2e_app, entries=1)
    assert rows[0]["action"] == "car_free_day"


def clean_plate_burst(env: ConcurrencyEnv) -> tuple[dict[str, str], list[dict]]:
    """One participant, 20 clean-plate check-ins (cap 2) with distinct keys at once: all 201,
    exactly 2 counted (144 g each), 18 capped at 0. The headers and the 20 replies."""
    headers = join_as(env, "conc-plates")
    body = {"action": "clean_plate", "date": env.today}

    burst = release_together(env.server, post_checkin(env, headers, body, key="plate-{i}"))
    print_checkin_workers(env)

    assert [r.status_code for r in burst.responses] == [201] * PARALLEL, \
        [(r.status_code, r.text) for r in burst.responses if r.status_code != 201]
    replies = [r.json() for r in burst.responses]
    assert len({reply["id"] for reply in replies}) == PARALLEL
    assert Counter(reply["counted_quantity"] for reply in replies) == {1: 2, 0: PARALLEL - 2}
    for reply in replies:
        counted = reply["counted_quantity"] == 1
        assert reply["quantity"] == 1
        assert reply["capped"] is (not counted), reply
        assert reply["reduction_g"] == (CLEAN_PLATE_G if counted else 0), reply
    return headers, replies


def test_clean_plate_cap_holds_under_concurrency(env, e2e_app):
    headers, _replies = clean_plate_burst(env)

    me = my_campaign(env, headers)
    assert me["by_action"]["clean_plate"] == {"reduction_g": 2 * CLEAN_PLATE_G,
                                              "records": PARALLEL}
    assert len(my_checkins(env, headers, action="clean_plate")) == PARALLEL
    # The participant's own total is test_clean_plate_burst_keeps_the_participant_total's.
    rows = assert_unbroken_chain(env, e2e_app, entries=PARALLEL, projections=False)
    assert sorted(row["counted_milli"] for row in rows) == [0] * (PARALLEL - 2) + [1000, 1000]
    assert not {name: figures for name, figures in
                projection_mismatches(e2e_app, env.campaign_id).items()
                if not name.startswith("participant ")}


def test_clean_plate_burst_keeps_the_participant_total(env, e2e_app):
    headers, replies = clean_plate_burst(env)

    assert_projections_match_ledger(e2e_app, env.campaign_id)
    me = my_campaign(env, headers)
    assert me["reduction_g"] == 2 * CLEAN_PLATE_G
    assert me["points"] == 2 * CLEAN_PLATE_G  # points_per_g: 1
    # The reply of the check-in that counted last carries the participant's whole total.
    assert max(reply["total_reduction_g"] for reply in replies) == 2 * CLEAN_PLATE_G


def test_one_idempotency_key_one_record(env, e2e_app):
    headers = join_as(env, "conc-metro")
    body = {"action": "metro_ride", "quantity": 1, "date": env.today}

    burst = release_together(env.server, post_checkin(env, headers, body, key="metro-once"))
    print_checkin_workers(env)

    assert [r.status_code for r in burst.responses] == [201] * PARALLEL, \
        [(r.status_code, r.text) for r in burst.responses if r.status_code != 201]
    bodies = [r.json() for r in burst.responses]
    assert all(reply == bodies[0] for reply in bodies), Counter(r.text for r in burst.responses)
    assert bodies[0]["counted_quantity"] == 1 and bodies[0]["reduction_g"] == METRO_RIDE_G

    items = my_checkins(env, headers)
    assert [item["id"] for item in items] == [bodies[0]["id"]]
    me = my_campaign(env, headers)
    assert me["by_action"] == {"metro_ride": {"reduction_g": METRO_RIDE_G, "records": 1}}
    assert_unbroken_chain(env, e2e_app, entries=1)


def test_many_participants_at_once_keep_the_chain_unbroken(env, e2e_app):
    started = time.monotonic()
    people = [join_as(env, f"conc-crowd-{i:02d}") for i in range(PARALLEL)]
    print(f"\n{PARALLEL} logins and joins took {time.monotonic() - started:.2f} s")
    actions = [  # (body, Idempotency-Key, grams) by thread index modulo 3
        ({"action": "car_free_day", "date": env.today}, None, CAR_FREE_DAY_G),
        ({"action": "clean_plate", "date": env.today}, "crowd-plate", CLEAN_PLATE_G),
        ({"action": "metro_ride", "quantity": 2, "date": env.today}, "crowd-metro",
         2 * METRO_RIDE_G),
    ]

    def make(session: requests.Session, index: int) -> requests.Response:
        body, key, _grams = actions[index % 3]
        return post_checkin(env, people[index], body, key)(session, index)

    burst = release_together(env.server, make)
    print_checkin_workers(env)

    assert [r.status_code for r in burst.responses] == [201] * PARALLEL, \
        [(r.status_code, r.text) for r in burst.responses if r.status_code != 201]
    for index, response in enumerate(burst.responses):
        grams = actions[index % 3][2]
        assert response.json()["reduction_g"] == grams, response.text
        assert response.json()["total_reduction_g"] == grams, response.text
    rows = assert_unbroken_chain(env, e2e_app, entries=PARALLEL)
    assert len({row["pid"] for row in rows}) == PARALLEL
    head = chain_head(e2e_app, env.campaign_id)
    assert head["participants"] == PARALLEL and head["records"] == PARALLEL
    expected_g = sum(actions[i % 3][2] for i in range(PARALLEL))
    assert head["total_mg"] == expected_g * 1000
    campaign = env.server.get(env.api())
    assert campaign.status_code == 200, campaign.text
    assert campaign.json()["reduction_g"] == expected_g
    assert campaign.json()["participants"] == PARALLEL
