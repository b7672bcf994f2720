"""Helpers for the leaderboard, challenge and seed tests (issue 6): a fake clock, campaigns
made through the services, participants acting through the API, a brute-force ranking computed
from the stored ledger rows, board reads, projection snapshots and a private redis-server.

Not a conftest: test modules import what they use.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
from sqlalchemy import select

import backend.clock
from backend.extensions import db
from backend.models import (
    Campaign,
    CampaignAction,
    CampaignActionDay,
    CampaignDay,
    CampaignLedger,
    CampaignWeek,
    DayActionTotal,
    LedgerEntry,
    ParticipantAction,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
    User,
)
from backend.schemas.boards import LeaderboardSchema
from campaigns.calendar import week_start

SHANGHAI = ZoneInfo("Asia/Shanghai")
API = "/api/v1/campaigns"
ADMIN_API = "/api/v1/admin/campaigns"
# Day 0 of the simulated calendar: a Saturday far from the real today, so that a few days cross
# a week boundary (Monday start) and no test depends on the date it runs.
BASE_DAY = date(2033, 5, 7)
# The login service keeps the real clock: tokens are issued and checked against real time.
_KEEP_REAL_CLOCK = frozenset({"backend.services.logins"})
# Microseconds added to every reading, process-wide, so that no two readings are ever equal.
_TICKS = itertools.count(1)
_NAMES = itertools.count(1)
INDIVIDUAL_KEYS = {"rank", "name", "avatar_url", "reduction_g"}
TEAM_KEYS = INDIVIDUAL_KEYS | {"key", "total_g", "active_members"}
BOARD_KEYS = {"period", "date", "as_of", "entries", "me"}
ME_KEYS = {"rank", "reduction_g"}
BOARDS = ("individuals", "teams")
FALLBACK_NAME = User.PUBLIC_NICKNAME_FALLBACK


# --- time -------------------------------------------------------------------------------------

class FakeClock:
    """Callable stand-in for backend.clock.utcnow: a set instant plus a growing microsecond."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def __call__(self) -> datetime:
        return self.instant + timedelta(microseconds=next(_TICKS))

    def set_day(self, offset: int, hour: int = 12, minute: int = 0) -> date:
        """Make "now" hour:minute (Shanghai) of BASE_DAY + offset; returns that day."""
        day = BASE_DAY + timedelta(days=offset)
        self.instant = datetime.combine(day, clock_time(hour, minute),
                                        tzinfo=SHANGHAI).astimezone(UTC)
        return day

    def advance(self, seconds: float) -> None:
        self.instant += timedelta(seconds=seconds)


def install_clock(monkeypatch, offset: int = 0) -> FakeClock:
    """Replace utcnow in backend.clock and in every backend module that imported it by name."""
    clock = FakeClock(datetime.now(UTC))
    clock.set_day(offset)
    original = backend.clock.utcnow
    for name, module in list(sys.modules.items()):
        if (name == "backend" or name.startswith("backend.")) and name not in _KEEP_REAL_CLOCK \
                and getattr(module, "utcnow", None) is original:
            monkeypatch.setattr(module, "utcnow", clock)
    return clock


def day(offset: int) -> date:
    return BASE_DAY + timedelta(days=offset)


def instant_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- campaigns and people ---------------------------------------------------------------------

def unique(prefix: str) -> str:
    return f"{prefix}-{next(_NAMES)}-{uuid.uuid4().hex[:6]}"


def campaign_document(slug: str, *, starts_on: date, ends_on: date, actions=None,
                      ranking: str = "total", min_active: int = 1, challenges=(),
                      late_entry_days: int = 1, freeze_at: str | None = None) -> dict:
    """A valid campaign document (JSON form) with two teams."""
    if actions is None:
        actions = [{"key": key} for key in (
            "car_free_day", "clean_plate", "reusable_bag", "reusable_cup", "metro_ride",
            "online_meeting", "e_invoice", "e_ticket")]
    return {
        "slug": slug, "name": f"活动 {slug}", "description": "排行榜测试",
        "timezone": "Asia/Shanghai", "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat(), "target_kg": 100, "methodology": "cn-consumer-v1",
        "late_entry_days": late_entry_days, "points_per_g": 1, "join": {"invite_code": None},
        "teams": {"mode": "optional", "ranking": ranking, "min_active_members": min_active,
                  "list": [{"key": "red", "name": "红队"}, {"key": "blue", "name": "蓝队"}]},
        "rules": {"car_free_day_max": True}, "dashboard": {"public": False},
        "actions": actions, "challenges": list(challenges),
        "leaderboard": {"freeze_at": freeze_at}, "revisions": [],
    }


def create_live_campaign(app, doc: dict) -> int:
    """Create and publish a campaign through the services; returns its id."""
    from backend.services.campaigns import create_campaign, parse_document, publish_campaign

    with app.app_context():
        campaign = create_campaign(parse_document(doc), "cli")
        publish_campaign(campaign, "cli")
        db.session.commit()
        return campaign.id


@dataclass
class Person:
    """A participant logged in through the sandbox, with a unique public nickname."""

    name: str
    user_id: int
    token: str
    nickname: str
    avatar_url: str | None = None
    pid: str | None = None
    team: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_person(login, client, label: str, avatar: bool = False) -> Person:
    """Log in (sandbox) and set a nickname (and maybe an avatar) through PATCH /me."""
    name = unique(label)
    who = login(name)
    nickname = f"跑者{name.split('-')[1]}"
    body: dict = {"nickname": nickname}
    avatar_url = f"https://thirdwx.qlogo.cn/mmopen/{name}/132" if avatar else None
    if avatar_url:
        body["avatar_url"] = avatar_url
    response = client.patch("/api/v1/me", headers={"Authorization": f"Bearer {who.token}"},
                            json=body)
    assert response.status_code == 200, response.json
    assert response.json["nickname_status"] == "pass"
    return Person(name, who.user_id, who.token, nickname, avatar_url)


def join(client, person: Person, slug: str, team: str | None = None) -> None:
    body = {"team": team} if team else {}
    response = client.post(f"{API}/{slug}/join", headers=person.headers, json=body)
    assert response.status_code in (200, 201), response.json
    person.team = team


def checkin(client, person: Person, slug: str, action: str, on: date | None = None,
            quantity=None):
    """POST a check-in (an Idempotency-Key always: count actions need one)."""
    body: dict = {"action": action}
    if on is not None:
        body["date"] = on.isoformat()
    if quantity is not None:
        body["quantity"] = quantity
    headers = {**person.headers, "Idempotency-Key": uuid.uuid4().hex}
    return client.post(f"{API}/{slug}/checkins", headers=headers, json=body)


def set_visible(client, person: Person, visible: bool) -> None:
    response = client.patch("/api/v1/me", headers=person.headers,
                            json={"on_leaderboard": visible})
    assert response.status_code == 200, response.json


def disqualify(client, admin, slug: str, pid: str) -> None:
    response = client.post(f"{ADMIN_API}/{slug}/participants/{pid}/disqualify",
                           headers=admin.headers, json={"reason": "测试：作弊"})
    assert response.status_code == 200, response.json


def pids_of(app, slug: str) -> dict[int, str]:
    """{user id: pid} of a campaign's participants."""
    with app.app_context():
        return dict(db.session.execute(
            select(Participation.user_id, Participation.pid)
            .join(Campaign, Campaign.id == Participation.campaign_id)
            .where(Campaign.slug == slug)).all())


def exact(response):
    """The response body with every non-integer JSON number read as an exact Decimal."""
    return json.loads(response.get_data(as_text=True), parse_float=Decimal)


def grams(mg: int) -> Decimal:
    return Decimal(mg).scaleb(-3)


def cli(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


# --- the brute force --------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    pid: str
    user_id: int | None
    team: str | None
    visible: bool
    name: str
    avatar_url: str | None


@dataclass(frozen=True)
class Entry:
    seq: int
    pid: str
    local_date: date
    reduction_mg: int
    created_dt: datetime


@dataclass
class World:
    """What the brute force reads: the stored ledger rows and who is who."""

    entries: list[Entry]
    members: dict[str, Member]
    team_names: dict[str, str]
    ranking: str
    min_active: int

    @property
    def by_user(self) -> dict[int, Member]:
        return {m.user_id: m for m in self.members.values() if m.user_id is not None}


def load_world(app, slug: str) -> World:
    from backend.services.campaigns import campaign_doc

    with app.app_context():
        campaign = db.session.scalars(select(Campaign).where(Campaign.slug == slug)).one()
        doc = campaign_doc(campaign)
        teams = {team.id: (team.key, team.name) for team in db.session.scalars(
            select(Team).where(Team.campaign_id == campaign.id))}
        members = {}
        for participation, user in db.session.execute(
                select(Participation, User).join(User, User.id == Participation.user_id)
                .where(Participation.campaign_id == campaign.id)):
            name = (user.nickname if user.nickname and user.nickname_status == "pass"
                    else FALLBACK_NAME)
            members[participation.pid] = Member(
                participation.pid, user.id,
                teams[participation.team_id][0] if participation.team_id else None,
                bool(user.on_leaderboard and participation.disqualified_dt is None
                     and user.openid is not None),
                name, user.avatar_url)
        entries = [Entry(e.seq, e.pid, e.local_date, e.reduction_mg, e.created_dt)
                   for e in db.session.scalars(select(LedgerEntry).where(
                       LedgerEntry.campaign_id == campaign.id).order_by(LedgerEntry.seq))]
        return World(entries, members, {key: name for key, name in teams.values()},
                     doc.teams.ranking, doc.teams.min_active_members)


def in_period(period: str, start: date | None, local_date: date) -> bool:
    if period == "total":
        return True
    if period == "day":
        return local_date == start
    return week_start(local_date) == start


def standings(world: World, period: str, start: date | None,
              upto: datetime | None = None) -> dict[str, tuple[int, int]]:
    """{pid: (mg, seq of the last positive entry)} in the period, for every participant."""
    result = {pid: [0, 0] for pid in world.members}
    for entry in world.entries:
        if upto is not None and entry.created_dt > upto:
            continue
        if not in_period(period, start, entry.local_date):
            continue
        cell = result[entry.pid]
        cell[0] += entry.reduction_mg
        if entry.reduction_mg > 0:
            cell[1] = max(cell[1], entry.seq)
    return {pid: (mg, seq) for pid, (mg, seq) in result.items()}


def _order(mg: int, seq: int, member: str) -> tuple:
    return (-mg, seq, member)


def expected_individuals(world: World, period: str, start: date | None,
                         upto: datetime | None = None) -> list[tuple[str, int]]:
    """[(pid, mg)] of the public board, in order."""
    table = standings(world, period, start, upto)
    public = [(pid, mg, seq) for pid, (mg, seq) in table.items()
              if world.members[pid].visible and mg > 0]
    public.sort(key=lambda row: _order(row[1], row[2], row[0]))
    return [(pid, mg) for pid, mg, _ in public]


def expected_individual_me(world: World, period: str, start: date | None, pid: str,
                           live: dict | None = None, upto: datetime | None = None) -> dict:
    """{rank, mg}: 1 + the visible participants ahead (visible or not myself). ``live`` gives
    my own live standing against a board as of ``upto`` (the freeze)."""
    table = standings(world, period, start, upto)
    mine_mg, mine_seq = (live or standings(world, period, start))[pid]
    mine = _order(mine_mg, mine_seq, pid)
    ahead = sum(1 for other, (mg, seq) in table.items()
                if other != pid and world.members[other].visible and mg > 0
                and _order(mg, seq, other) < mine)
    return {"rank": ahead + 1, "mg": mine_mg}


def expected_teams(world: World, period: str, start: date | None,
                   upto: datetime | None = None) -> list[dict]:
    """Ranked teams in order: {key, metric, total, active, seq}."""
    table = standings(world, period, start, upto)
    teams: dict[str, dict] = {}
    for pid, (mg, seq) in table.items():
        team = world.members[pid].team
        if team is None:
            continue
        cell = teams.setdefault(team, {"key": team, "total": 0, "active": 0, "seq": 0})
        cell["total"] += mg
        cell["active"] += 1 if mg > 0 else 0
        cell["seq"] = max(cell["seq"], seq)
    ranked = []
    for cell in teams.values():
        if cell["active"] < max(world.min_active, 1) or cell["total"] <= 0:
            continue
        cell["metric"] = (cell["total"] // cell["active"] if world.ranking == "average"
                          else cell["total"])
        ranked.append(cell)
    ranked.sort(key=lambda c: _order(c["metric"], c["seq"], c["key"]))
    return ranked


def expected_body(world: World, board: str, period: str, start: date | None,
                  pid: str | None, upto: datetime | None = None) -> dict:
    """The expected ``entries`` and ``me`` of a board answer (me for ``pid``, else None)."""
    if board == "individuals":
        entries = []
        for rank, (member_pid, mg) in enumerate(
                expected_individuals(world, period, start, upto), start=1):
            member = world.members[member_pid]
            entries.append({"rank": rank, "name": member.name, "avatar_url": member.avatar_url,
                            "reduction_g": grams(mg)})
        me = None
        if pid is not None:
            mine = expected_individual_me(world, period, start, pid, upto=upto)
            me = {"rank": mine["rank"], "reduction_g": grams(mine["mg"])}
        return {"entries": entries, "me": me}
    ranked = expected_teams(world, period, start, upto)
    entries = [{"rank": rank, "key": c["key"], "name": world.team_names[c["key"]],
                "avatar_url": None, "reduction_g": grams(c["metric"]),
                "total_g": grams(c["total"]), "active_members": c["active"]}
               for rank, c in enumerate(ranked, start=1)]
    me = None
    if pid is not None and world.members[pid].team is not None:
        live = expected_teams(world, period, start)
        mine = next((c for c in live if c["key"] == world.members[pid].team), None)
        if mine is not None:
            frozen = [c for c in ranked if c["key"] != mine["key"]]
            ahead = sum(1 for c in frozen if _order(c["metric"], c["seq"], c["key"])
                        < _order(mine["metric"], mine["seq"], mine["key"]))
            me = {"rank": ahead + 1, "reduction_g": grams(mine["metric"])}
    return {"entries": entries, "me": me}


def periods_of(days: list[date]) -> list[tuple[str, date | None]]:
    """total, each day, and each week (asked with a day of it, not always its Monday)."""
    result: list[tuple[str, date | None]] = [("total", None)]
    result += [("day", d) for d in days]
    weeks: dict[date, date] = {}
    for d in days:
        weeks.setdefault(week_start(d), d)
    result += [("week", d) for d in weeks.values()]
    return result


# --- reading boards ---------------------------------------------------------------------------

def get_board(client, slug: str, board: str, period: str, on: date | None,
              person: Person | None = None, limit: int = 200):
    query = f"period={period}&limit={limit}"
    if on is not None:
        query += f"&date={on.isoformat()}"
    headers = person.headers if person is not None else {}
    return client.get(f"{API}/{slug}/leaderboards/{board}?{query}", headers=headers)


def check_shape(body: dict, board: str) -> None:
    """Exactly the documented keys (no openid, unionid, user id or token can ride along), and
    the body the view writes directly agrees with the documented schema."""
    assert set(body) == BOARD_KEYS, body
    assert LeaderboardSchema().validate(body) == {}, body
    keys = INDIVIDUAL_KEYS if board == "individuals" else TEAM_KEYS
    for entry in body["entries"]:
        assert set(entry) == keys, entry
    if body["me"] is not None:
        assert set(body["me"]) == ME_KEYS, body["me"]


def assert_board(client, slug: str, world: World, board: str, period: str, on: date | None,
                 person: Person | None, source: str | None, *,
                 upto: datetime | None = None, close: bool = False, limit: int = 200) -> dict:
    """One board answer (its top ``limit``) equals the brute force; the header names
    ``source`` (when given)."""
    response = get_board(client, slug, board, period, on, person, limit)
    try:
        assert response.status_code == 200, response.get_data(as_text=True)
        header = response.headers.get("X-Tanpu-Board-Source")
        assert header in ("redis", "sql")
        if source is not None:
            assert header == source, (board, period, on, header)
        body = exact(response)
    finally:
        if close:
            response.close()
    check_shape(body, board)
    start = None if period == "total" else (on if period == "day" else week_start(on))
    assert body["period"] == period
    assert body["date"] == (start.isoformat() if start else None)
    pid = person.pid if person is not None else None
    expected = expected_body(world, board, period, start, pid, upto)
    context = (board, period, start, person.nickname if person else None, header)
    assert body["entries"] == expected["entries"][:limit], context
    assert body["me"] == expected["me"], context
    return body


def assert_all_boards(client, slug: str, world: World, people: list[Person], days: list[date],
                      source: str | None, *, upto: datetime | None = None,
                      close: bool = False) -> None:
    """Every board, every period, anonymous and as each participant (hidden and disqualified
    ones too)."""
    for board in BOARDS:
        for period, on in periods_of(days):
            assert_board(client, slug, world, board, period, on, None, source, upto=upto,
                         close=close)
            assert_board(client, slug, world, board, period, on, people[-1], source,
                         upto=upto, close=close, limit=2)  # the top N only, me still given
            for person in people:
                assert_board(client, slug, world, board, period, on, person, source,
                             upto=upto, close=close)


def assert_my_campaign_ranks(client, slug: str, world: World, people: list[Person],
                             upto: datetime | None = None) -> None:
    """GET .../me ``rank`` is my rank on the total board (not for the disqualified)."""
    live = standings(world, "total", None)
    for person in people:
        if person.extra.get("disqualified"):
            continue
        response = client.get(f"{API}/{slug}/me", headers=person.headers)
        assert response.status_code == 200, response.json
        expected = expected_individual_me(world, "total", None, person.pid, live=live,
                                          upto=upto)
        assert response.json["rank"] == expected["rank"], person.nickname
        assert exact(response)["reduction_g"] == grams(expected["mg"])


# --- projections ------------------------------------------------------------------------------

def projection_rows(app, slug: str) -> dict[str, list[tuple]]:
    """Every row (all columns) of every projection table of a campaign, sorted."""

    def rows(model, *where) -> list[tuple]:
        columns = [c for c in model.__table__.columns]
        query = select(*columns).where(*where)
        return sorted((tuple(row) for row in db.session.execute(query)), key=repr)

    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == slug)).one()
        team_ids = select(Team.id).where(Team.campaign_id == campaign_id)
        participation_ids = select(Participation.id).where(
            Participation.campaign_id == campaign_id)
        return {
            "participations": rows(Participation, Participation.campaign_id == campaign_id),
            "participant_days": rows(ParticipantDay, ParticipantDay.campaign_id == campaign_id),
            "participant_weeks": rows(ParticipantWeek,
                                      ParticipantWeek.campaign_id == campaign_id),
            "team_periods": rows(TeamPeriod, TeamPeriod.team_id.in_(team_ids)),
            "campaign_days": rows(CampaignDay, CampaignDay.campaign_id == campaign_id),
            "campaign_weeks": rows(CampaignWeek, CampaignWeek.campaign_id == campaign_id),
            "campaign_ledgers": rows(CampaignLedger, CampaignLedger.campaign_id == campaign_id),
            "day_action_totals": rows(
                DayActionTotal, DayActionTotal.participation_id.in_(participation_ids)),
            "participant_actions": rows(ParticipantAction,
                                        ParticipantAction.campaign_id == campaign_id),
            "campaign_actions": rows(CampaignAction, CampaignAction.campaign_id == campaign_id),
            "campaign_action_days": rows(CampaignActionDay,
                                         CampaignActionDay.campaign_id == campaign_id),
        }


# --- a private redis-server -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server of the test's own (never the shared one), on a free port, no
    persistence; can be killed and started again (empty) on the same port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("the redis-server binary is missing")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except redis_lib.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(10)
        self.process = None

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis(port=self.port)
