"""Helpers of the fault and two-instance tests (issue 9, points 2 and 3): a campaign made
through the services, participants logged in through a real server, a small load of
requests from a few threads that records every answer, the ledger read straight from the
database, and the ``flask`` CLI run against the real database."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa

from backend.config import SANDBOX_APPID
from backend.extensions import db
from backend.services.campaigns import create_campaign, parse_document, publish_campaign
from backend.wechat import SandboxWeChat
from tests.backend.conftest import example_document
from tests.e2e.conftest import LiveServer, _server_environ
from tests.support.secrets import REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_TZ = ZoneInfo("Asia/Shanghai")
METRO_RIDE_G = 52
TEAMS = ("north", "south")
# The client waits this long for any answer; an answer later than HANG_BOUND_S is a hang
# (the server's own bounds: lock 5 s, pool 5 s, connect 3 s, WeChat deadline 5 s).
CLIENT_TIMEOUT_S = 15.0
HANG_BOUND_S = 8.0
# An answer logged with a 5xx other than 503 is a bug (503 is the documented fault answer).
ACCESS_LOG_SERVER_ERROR = re.compile(
    r'"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) [^"]*" 5(?!03)\d\d ')
BOARD_QUERIES = (("individuals", "total"), ("individuals", "day"), ("individuals", "week"),
                 ("teams", "total"), ("teams", "day"), ("teams", "week"))


def campaign_today() -> date:
    return datetime.now(CAMPAIGN_TZ).date()


def campaign_document(slug: str) -> dict:
    """The API.md example campaign, open from 3 days ago to 30 days ahead, counting metro rides
    (52 g) and reusable bags (15 g) with caps high enough that a load never reaches them, so
    that every accepted check-in adds its full amount; two teams ranked by total."""
    doc = example_document()
    today = campaign_today()
    doc.update(
        slug=slug, name=f"故障测试 {slug}",
        starts_on=(today - timedelta(days=3)).isoformat(),
        ends_on=(today + timedelta(days=30)).isoformat(),
        teams={"mode": "optional", "ranking": "total", "min_active_members": 1,
               "list": [{"key": key, "name": f"队伍 {key}"} for key in TEAMS]},
        actions=[
            {"key": "metro_ride", "factor_g": METRO_RIDE_G, "daily_cap": 100000,
             "sources": ["checkin", "partner"]},
            {"key": "reusable_bag", "daily_cap": 100000},
        ],
        challenges=[{"key": "first-kg", "name": "减排1千克", "kind": "total",
                     "target_g": 1000}],
    )
    return doc


def create_live_campaign(e2e_app, slug: str) -> int:
    """Create and publish the campaign through the services (directly on the database); its id."""
    with e2e_app.app_context():
        campaign = create_campaign(parse_document(campaign_document(slug)), "e2e-test")
        publish_campaign(campaign, "e2e-test")
        campaign_id = campaign.id
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return campaign_id


# --- participants -----------------------------------------------------------------------------


@dataclass
class Person:
    name: str
    token: str
    team: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register_sandbox_secrets(secret_key: str, name: str) -> None:
    """The sandbox's openid, unionid and first session_key of ``name`` join the secret scan."""
    sandbox = SandboxWeChat(secret_key, SANDBOX_APPID, lambda _openid: 0)
    openid, unionid = sandbox.identity(name)
    REGISTRY.add(openid, f"sandbox openid of {name}")
    REGISTRY.add(unionid, f"sandbox unionid of {name}")
    for number in (1, 2, 3):
        REGISTRY.add(sandbox.session_key(openid, number), f"sandbox session_key of {name}")


def login(server: LiveServer, code: str, name: str, secret_key: str | None = None) -> Person:
    """Log in with ``code`` (``sandbox:<name>`` when ``secret_key`` is given, else a fake
    WeChat code); the token joins the secret scan."""
    if secret_key is not None:
        register_sandbox_secrets(secret_key, name)
    response = server.login(code)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    REGISTRY.add(token, f"token of {name}")
    return Person(name, token)


def join(server: LiveServer, slug: str, person: Person, team: str | None = None) -> None:
    body = {"team": team} if team else {}
    response = server.post(f"/api/v1/campaigns/{slug}/join", json=body, headers=person.headers)
    assert response.status_code == 201, response.text
    person.team = team


# --- a load that records every answer --------------------------------------------------------


@dataclass
class Outcome:
    """One request of a load and what came back (status None: no HTTP answer at all)."""

    op: str
    thread: int
    started: float
    seconds: float
    status: int | None
    code: str | None = None
    retry_after: str | None = None
    replayed: bool = False
    reply: dict | None = None
    source: str | None = None
    key: str | None = None
    body: dict | None = None
    person: Person | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _error_code(response: requests.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def send(session: requests.Session, op: str, thread: int, method: str, url: str, *,
         person: Person | None = None, key: str | None = None, body: dict | None = None,
         timeout: float = CLIENT_TIMEOUT_S) -> Outcome:
    """Send one request and record its outcome (never raises on HTTP or network errors)."""
    headers = dict(person.headers) if person else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    started = time.monotonic()
    try:
        response = session.request(method, url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as error:
        return Outcome(op, thread, started, time.monotonic() - started, None, key=key, body=body,
                       person=person, failure=repr(error))
    seconds = time.monotonic() - started
    reply = None
    if response.headers.get("Content-Type", "").startswith("application/json"):
        try:
            reply = response.json()
        except ValueError:
            reply = None
    return Outcome(
        op, thread, started, seconds, response.status_code,
        code=_error_code(response) if response.status_code >= 400 else None,
        retry_after=response.headers.get("Retry-After"),
        replayed=response.headers.get("Idempotent-Replayed") == "true",
        reply=reply, source=response.headers.get("X-Tanpu-Board-Source"),
        key=key, body=body, person=person)


Op = Callable[[requests.Session, int, int], Outcome]


def checkin_op(server: LiveServer, slug: str, people: list[Person], label: str,
               action: str = "metro_ride") -> Op:
    """A check-in of 1-3 units with a fresh Idempotency-Key, by each participant in turn (so
    that a few threads stay under the per-participant intake limit)."""

    def run(session: requests.Session, thread: int, n: int) -> Outcome:
        person = people[(thread + n) % len(people)]
        body = {"action": action, "quantity": 1 + n % 3}
        return send(session, "checkin", thread, "POST",
                    server.url(f"/api/v1/campaigns/{slug}/checkins"),
                    person=person, key=f"{label}-{thread}-{n}", body=body)

    return run


def board_op(server: LiveServer, slug: str, people: list[Person] | None = None) -> Op:
    """A board read (the six boards in turn), anonymous or as the thread's participant."""

    def run(session: requests.Session, thread: int, n: int) -> Outcome:
        board, period = BOARD_QUERIES[n % len(BOARD_QUERIES)]
        person = people[thread % len(people)] if people else None
        return send(session, "board", thread, "GET", server.url(
            f"/api/v1/campaigns/{slug}/leaderboards/{board}?period={period}"), person=person)

    return run


def me_op(server: LiveServer, slug: str, people: list[Person]) -> Op:
    """/me and the campaign's /me, in turn, as the thread's participant."""

    def run(session: requests.Session, thread: int, n: int) -> Outcome:
        path = "/api/v1/me" if n % 2 else f"/api/v1/campaigns/{slug}/me"
        return send(session, "me", thread, "GET", server.url(path),
                    person=people[thread % len(people)])

    return run


def login_op(server: LiveServer, code_of: Callable[[int, int], str]) -> Op:
    """A login with ``code_of(thread, n)``; a token it returns joins the secret scan."""

    def run(session: requests.Session, thread: int, n: int) -> Outcome:
        outcome = send(session, "login", thread, "POST",
                       server.url("/api/v1/auth/wechat-login"), body={"code": code_of(thread, n)})
        if outcome.ok and outcome.reply:
            REGISTRY.add(outcome.reply.get("token"), "token of a load login")
        return outcome

    return run


class Load:
    """``threads`` threads, each running the ops in turn (``ops_of(thread)``) until stopped,
    with a short pause between requests and a longer one after a 503 (a client backing off,
    if not for the whole Retry-After); every outcome is kept, in order of starting."""

    def __init__(self, ops_of: Callable[[int], list[Op]], threads: int = 3,
                 pause_s: float = 0.03, backoff_s: float = 0.5) -> None:
        self.ops_of = ops_of
        self.threads = threads
        self.pause_s = pause_s
        self.backoff_s = backoff_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def _run(self, thread: int) -> None:
        ops = self.ops_of(thread)
        try:
            with requests.Session() as session:
                for n in itertools.count():
                    if self._stop.is_set():
                        return
                    outcome = ops[n % len(ops)](session, thread, n // len(ops))
                    with self._lock:
                        self.outcomes.append(outcome)
                    self._stop.wait(self.backoff_s if outcome.status == 503 else self.pause_s)
        except BaseException as error:  # reported by stop()
            self._errors.append(error)

    def start(self) -> Load:
        for thread in range(self.threads):
            worker = threading.Thread(target=self._run, args=(thread,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for worker in self._workers:
            worker.join(CLIENT_TIMEOUT_S + 5)
        assert not any(worker.is_alive() for worker in self._workers), "a load thread hung"
        if self._errors:
            raise self._errors[0]
        return sorted(self.outcomes, key=lambda outcome: outcome.started)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        if not self._stop.is_set():
            self._stop.set()
            for worker in self._workers:
                worker.join(CLIENT_TIMEOUT_S + 5)


def summary(outcomes: list[Outcome]) -> str:
    """``op status[/code]: count`` lines, for messages and the printed record."""
    counts = Counter((o.op, o.status, o.code) for o in outcomes)
    return ", ".join(f"{op} {status}{'/' + code if code else ''}: {count}"
                     for (op, status, code), count in sorted(counts.items(), key=str))


def assert_no_replay(outcomes: list[Outcome]) -> None:
    """No check-in of a load was answered as a replay (each had a fresh key)."""
    replayed = [o.key for o in outcomes if o.replayed]
    assert not replayed, f"fresh keys answered as replays: {replayed[:10]}"


def assert_answered_in_bound(outcomes: list[Outcome], bound_s: float = HANG_BOUND_S) -> None:
    """Every request got an HTTP answer, within ``bound_s``; no fresh key was replayed."""
    assert_no_replay(outcomes)
    unanswered = [(o.op, o.failure) for o in outcomes if o.status is None]
    assert not unanswered, f"requests without an answer: {unanswered[:5]}"
    slow = [(o.op, o.status, round(o.seconds, 2)) for o in outcomes if o.seconds > bound_s]
    assert not slow, f"answers slower than {bound_s} s: {slow[:10]}"


def assert_only_ok_or_unavailable(outcomes: list[Outcome], code: str = "service.unavailable"
                                  ) -> None:
    """Each answer is a 2xx, or a 503 with ``code`` and a Retry-After of whole seconds."""
    wrong = [(o.op, o.status, o.code, o.retry_after) for o in outcomes
             if not o.ok and not (o.status == 503 and o.code == code
                                  and (o.retry_after or "").isdigit())]
    assert not wrong, f"answers other than 2xx or 503 {code} with Retry-After: {wrong[:10]}"


def mg(grams: float) -> int:
    """Exact milligrams of a reply's ``reduction_g`` (at most 3 decimals)."""
    return round(grams * 1000)


# --- the database, read directly -------------------------------------------------------------


@dataclass
class LedgerState:
    entries: int
    total_mg: int
    seqs: list[int]
    head_seq: int
    head_total_mg: int
    checkins: dict[int, tuple[int | None, int]] = field(default_factory=dict)  # id: (seq, mg)
    entry_mg: dict[int, int] = field(default_factory=dict)  # seq: reduction_mg
    stored_keys: dict[str, dict] = field(default_factory=dict)  # Idempotency-Key: stored reply


def ledger_state(e2e_app, campaign_id: int, slug: str) -> LedgerState:
    """The campaign's ledger, chain head, check-ins and stored check-in replies."""
    path = f"/api/v1/campaigns/{slug}/checkins"
    with e2e_app.app_context():
        session = db.session
        entries = list(session.execute(sa.text(
            "SELECT seq, reduction_mg FROM ledger_entries WHERE campaign_id = :c ORDER BY seq"),
            {"c": campaign_id}))
        head = session.execute(sa.text(
            "SELECT head_seq, total_mg FROM campaign_ledgers WHERE campaign_id = :c"),
            {"c": campaign_id}).one()
        checkins = {row.id: (row.entry_seq, row.reduction_mg) for row in session.execute(
            sa.text("SELECT id, entry_seq, reduction_mg FROM checkins WHERE campaign_id = :c"),
            {"c": campaign_id})}
        stored = {row.key: json.loads(row.response_body) for row in session.execute(sa.text(
            "SELECT key, response_body FROM idempotency_records "
            "WHERE path = :p AND method = 'POST' AND response_body IS NOT NULL"), {"p": path})}
        session.remove()
        db.engine.dispose()
    return LedgerState(
        entries=len(entries), total_mg=sum(row.reduction_mg for row in entries),
        seqs=[row.seq for row in entries], head_seq=head.head_seq, head_total_mg=head.total_mg,
        checkins=checkins, entry_mg={row.seq: row.reduction_mg for row in entries},
        stored_keys=stored)


def assert_ledger_holds_exactly(state: LedgerState, accepted: dict[str, dict]) -> None:
    """``accepted`` (Idempotency-Key: the 2xx check-in reply) is the whole ledger: each
    reply's check-in has its own entry with the reply's amount, nothing else is in it, the
    seqs run 1..N and the head agrees."""
    assert state.seqs == list(range(1, state.entries + 1)), "the chain has gaps"
    assert state.head_seq == state.entries and state.head_total_mg == state.total_mg
    ids = {reply["id"] for reply in accepted.values()}
    assert len(ids) == len(accepted), "two keys were answered with the same check-in"
    assert set(state.checkins) == ids, (
        f"check-ins without an accepted reply: {sorted(set(state.checkins) - ids)[:10]}, "
        f"accepted replies without a check-in: {sorted(ids - set(state.checkins))[:10]}")
    seqs = [seq for seq, _mg in state.checkins.values()]
    assert None not in seqs and len(set(seqs)) == len(seqs) == state.entries, \
        "a check-in without its own ledger entry, or an entry counted twice"
    for reply in accepted.values():
        seq, checkin_mg = state.checkins[reply["id"]]
        assert checkin_mg == state.entry_mg[seq] == mg(reply["reduction_g"]), reply
    assert state.total_mg == sum(mg(reply["reduction_g"]) for reply in accepted.values())


def participant_totals_g(e2e_app, campaign_id: int) -> list[float]:
    """Every participant's total above 0 in grams, largest first: what the individuals' total
    board lists when everyone is visible."""
    with e2e_app.app_context():
        totals = [row.reduction_mg for row in db.session.execute(sa.text(
            "SELECT reduction_mg FROM participations WHERE campaign_id = :c "
            "AND reduction_mg > 0 ORDER BY reduction_mg DESC"), {"c": campaign_id})]
        db.session.remove()
        db.engine.dispose()
    return [mg_total / 1000 for mg_total in totals]


# --- the CLI ----------------------------------------------------------------------------------


def flask_cli(app_environ: dict[str, str], *args: str, timeout: float = 60
              ) -> subprocess.CompletedProcess:
    """``flask --app wsgi ARGS`` with the given app environment (as the server would see it)."""
    flask = Path(sys.executable).parent / "flask"
    return subprocess.run(
        [str(flask), "--app", "wsgi", *args], cwd=REPO_ROOT, env=_server_environ(app_environ),
        capture_output=True, text=True, timeout=timeout, check=False)


def assert_ledger_verifies(app_environ: dict[str, str], slug: str, entries: int) -> None:
    verify = flask_cli(app_environ, "ledger", "verify", slug)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"ok, {entries} entries, head seq {entries}" in verify.stdout, verify.stdout


def rebuild_boards(app_environ: dict[str, str], slug: str) -> None:
    rebuilt = flask_cli(app_environ, "leaderboards", "rebuild", slug)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "members written" in rebuilt.stdout, rebuilt.stdout


# --- boards and logs --------------------------------------------------------------------------


def read_boards(server: LiveServer, slug: str, person: Person | None = None
                ) -> tuple[dict[tuple[str, str], dict], set[str]]:
    """Every board of BOARD_QUERIES: {(board, period): {entries, me}} and the sources seen."""
    boards, sources = {}, set()
    for board, period in BOARD_QUERIES:
        response = server.get(f"/api/v1/campaigns/{slug}/leaderboards/{board}?period={period}",
                              headers=person.headers if person else {})
        assert response.status_code == 200, response.text
        sources.add(response.headers["X-Tanpu-Board-Source"])
        body = response.json()
        boards[(board, period)] = {"entries": body["entries"], "me": body["me"]}
    return boards, sources


def wait_for_board_source(server: LiveServer, slug: str, source: str, timeout: float = 10.0
                          ) -> dict[tuple[str, str], dict]:
    """Read every board until all answer from ``source``; the boards read then."""
    deadline = time.monotonic() + timeout
    while True:
        boards, sources = read_boards(server, slug)
        if sources == {source}:
            return boards
        assert time.monotonic() < deadline, f"boards still answer from {sources}"
        time.sleep(0.3)


GUNICORN_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d ")
ACCESS_LINE = re.compile(r'"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) [^"]*" \d{3} ')


def _masked(line: str) -> str:
    for value in list(REGISTRY._values):
        line = line.replace(value, "<secret>")
    return line


def _blocks(text: str) -> list[list[str]]:
    """The log cut into blocks: a gunicorn line (with the traceback that follows it) or any
    other single line."""
    blocks: list[list[str]] = []
    in_traceback = False
    for line in text.splitlines():
        starts_block = GUNICORN_LINE.match(line) or ACCESS_LINE.search(line)
        if in_traceback and not starts_block:
            blocks[-1].append(line)
            continue
        blocks.append([line])
        in_traceback = bool(GUNICORN_LINE.match(line) and "[ERROR]" in line)
    return blocks


def server_log_problems(server: LiveServer) -> list[str]:
    """Lines of the server's log that show a bug: a traceback, an unhandled exception, a 5xx
    other than 503, a worker timeout."""
    problems = []
    for block in _blocks(server.log_text()):
        for line in block:
            if ("Traceback" in line or "unhandled " in line or "WORKER TIMEOUT" in line
                    or ACCESS_LOG_SERVER_ERROR.search(line)):
                problems.append(_masked(line))
    return problems


def log_since(server: LiveServer, offset: int) -> str:
    """The server's log after ``offset`` characters (``len(server.log_text())`` taken before)."""
    return server.log_text()[offset:]


def worker_boots(server: LiveServer) -> int:
    """How many workers gunicorn booted (more than it was told to start means a restart)."""
    return server.log_text().count("Booting worker with pid")
