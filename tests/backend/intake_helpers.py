"""Helpers for the intake tests (issue 4): a fake clock that fixes "now" for the backend,
campaigns created and published through the services, check-ins over HTTP, exact reading of
JSON numbers, the ledger rows as stored and the ledger CLI.

Not a conftest: test modules import what they use and wrap ``install_clock`` in a fixture.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

import backend.clock
from backend.extensions import db
from backend.models import Campaign, LedgerEntry, Participation
from backend.schemas.intake import CheckinSchema, MyCampaignSchema

SHANGHAI = ZoneInfo("Asia/Shanghai")
API = "/api/v1/campaigns"
ADMIN_API = "/api/v1/admin/campaigns"
# Day 0 of the simulated calendar (a Monday far from the real today, so that no test depends on
# the date it runs; tokens use the real clock and stay valid).
BASE_DAY = date(2031, 3, 10)
# Modules that read "now" for campaign-local days, idempotency records, revisions and the CLI.
# The login service is left on the real clock: tokens are checked against real time.
_KEEP_REAL_CLOCK = frozenset({"backend.services.logins"})
# Microseconds added to every reading, process-wide, so that no two readings are ever equal
# (the campaign document cache is keyed by the campaign's updated_dt).
_TICKS = itertools.count(1)


class FakeClock:
    """Callable stand-in for backend.clock.utcnow: a set instant plus a growing microsecond."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def __call__(self) -> datetime:
        return self.instant + timedelta(microseconds=next(_TICKS))

    def set_local(self, day: date, hour: int = 12, tz: ZoneInfo = SHANGHAI) -> None:
        """Make "now" ``hour``:00 campaign-local on ``day``."""
        self.instant = datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)

    def set_day(self, offset: int, hour: int = 12) -> date:
        """Make "now" noon (Shanghai) of BASE_DAY + offset; returns that day."""
        day = BASE_DAY + timedelta(days=offset)
        self.set_local(day, hour)
        return day


def install_clock(monkeypatch, offset: int = 0) -> FakeClock:
    """Replace utcnow in backend.clock and in every backend module that imported it by name."""
    clock = FakeClock(datetime.combine(BASE_DAY, time(12), tzinfo=SHANGHAI).astimezone(UTC))
    clock.set_day(offset)
    original = backend.clock.utcnow
    for name, module in list(sys.modules.items()):
        if (name == "backend" or name.startswith("backend.")) and name not in _KEEP_REAL_CLOCK \
                and getattr(module, "utcnow", None) is original:
            monkeypatch.setattr(module, "utcnow", clock)
    return clock


def day(offset: int) -> date:
    return BASE_DAY + timedelta(days=offset)


def iso(offset: int) -> str:
    return day(offset).isoformat()


def campaign_document(slug: str, *, starts_on: date, ends_on: date, actions: list[dict],
                      **fields) -> dict:
    """A valid campaign document (JSON form) with these dates and actions."""
    doc = {
        "slug": slug, "name": f"活动 {slug}", "description": "测试", "timezone": "Asia/Shanghai",
        "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat(), "target_kg": 100,
        "methodology": "cn-consumer-v1", "late_entry_days": 1, "points_per_g": 1,
        "join": {"invite_code": None},
        "teams": {"mode": "optional", "ranking": "total", "min_active_members": 1,
                  "list": [{"key": "red", "name": "红队"}, {"key": "blue", "name": "蓝队"}]},
        "rules": {"car_free_day_max": True}, "dashboard": {"public": False},
        "actions": actions, "challenges": [], "leaderboard": {"freeze_at": None},
        "revisions": [],
    }
    doc.update(fields)
    return doc


def create_live_campaign(app, doc: dict, publish: bool = True) -> int:
    """Create (and publish) a campaign through the services; returns its id."""
    from backend.services.campaigns import create_campaign, parse_document, publish_campaign

    with app.app_context():
        campaign = create_campaign(parse_document(doc), "cli")
        if publish:
            publish_campaign(campaign, "cli")
        db.session.commit()
        return campaign.id


def join(client, person, slug: str, **body):
    return client.post(f"{API}/{slug}/join", headers=person.headers, json=body)


def checkin(client, person, slug: str, action: str, quantity=None, on: str | None = None,
            key: str | None = None, body: dict | None = None):
    """POST a check-in; ``body`` replaces the built body when given."""
    if body is None:
        body = {"action": action}
        if quantity is not None:
            body["quantity"] = quantity
        if on is not None:
            body["date"] = on
    headers = dict(person.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    response = client.post(f"{API}/{slug}/checkins", headers=headers, json=body)
    if response.status_code == 201:  # written directly: still what its schema documents
        assert CheckinSchema().validate(response.json) == {}, response.json
    return response


def me(client, person, slug: str) -> dict:
    response = client.get(f"{API}/{slug}/me", headers=person.headers)
    assert response.status_code == 200, response.json
    # Written directly, not dumped by its schema: it must still be what the schema documents.
    assert MyCampaignSchema().validate(response.json) == {}, response.json
    return exact(response)


def exact(response):
    """The response body with every non-integer JSON number read as an exact Decimal."""
    return json.loads(response.get_data(as_text=True), parse_float=Decimal)


def grams(mg: int) -> Decimal:
    """Milligrams as the exact gram value a ``reduction_g`` must equal."""
    return Decimal(mg).scaleb(-3)


def error_code(response) -> tuple[int, str]:
    return response.status_code, response.json["error"]["code"]


@dataclass(frozen=True)
class Row:
    seq: int
    pid: str
    participation_id: int
    action: str
    local_date: date
    quantity_milli: int
    counted_milli: int
    factor_milli: int
    reduction_mg: int
    source: str
    source_ref: str | None
    methodology_version: str


def ledger_rows(app, slug: str) -> list[Row]:
    """The campaign's ledger entries in seq order, as stored."""
    with app.app_context():
        entries = db.session.scalars(
            select(LedgerEntry).join(Campaign, Campaign.id == LedgerEntry.campaign_id)
            .where(Campaign.slug == slug).order_by(LedgerEntry.seq))
        return [Row(e.seq, e.pid, e.participation_id, e.action, e.local_date, e.quantity_milli,
                    e.counted_milli, e.factor_milli, e.reduction_mg, e.source, e.source_ref,
                    e.methodology_version) for e in entries]


def pid_of(app, slug: str, user_id: int) -> str:
    with app.app_context():
        return db.session.scalars(
            select(Participation.pid).join(Campaign, Campaign.id == Participation.campaign_id)
            .where(Campaign.slug == slug, Participation.user_id == user_id)).one()


def ledger_cli(runner, command: str, slug: str):
    return runner.invoke(args=["ledger", command, slug])


def cli_text(result) -> str:
    """Everything the command printed (stdout and stderr)."""
    return result.output + (getattr(result, "stderr", "") or "")


def projection_snapshot(app, slug: str) -> dict:
    """Every projection row of a campaign, as plain tuples; rows whose figures are all zero are
    left out (whether such a row exists is not a figure)."""
    from backend.models import (
        CampaignDay,
        CampaignLedger,
        ParticipantDay,
        ParticipantWeek,
        Team,
        TeamPeriod,
    )

    def rows(query, keys: int) -> list[tuple]:
        return sorted(tuple(row) for row in db.session.execute(query)
                      if any(value for value in tuple(row)[keys:]))

    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == slug)).one()
        ledger = db.session.get(CampaignLedger, campaign_id)
        return {
            "ledger": (ledger.head_seq, ledger.head_hash, ledger.total_mg, ledger.records,
                       ledger.participants),
            "participations": rows(select(
                Participation.pid, Participation.reduction_mg, Participation.records,
                Participation.reached_seq).where(Participation.campaign_id == campaign_id), 1),
            "participant_days": rows(select(
                ParticipantDay.participation_id, ParticipantDay.local_date,
                ParticipantDay.reduction_mg, ParticipantDay.reached_seq)
                .where(ParticipantDay.campaign_id == campaign_id), 2),
            "participant_weeks": rows(select(
                ParticipantWeek.participation_id, ParticipantWeek.week_start,
                ParticipantWeek.reduction_mg, ParticipantWeek.reached_seq)
                .where(ParticipantWeek.campaign_id == campaign_id), 2),
            "team_periods": rows(select(
                TeamPeriod.team_id, TeamPeriod.period, TeamPeriod.period_start,
                TeamPeriod.reduction_mg, TeamPeriod.reached_seq, TeamPeriod.active_members)
                .join(Team, Team.id == TeamPeriod.team_id)
                .where(Team.campaign_id == campaign_id), 3),
            "campaign_days": rows(select(
                CampaignDay.local_date, CampaignDay.reduction_mg, CampaignDay.records,
                CampaignDay.active_participants, CampaignDay.new_participants)
                .where(CampaignDay.campaign_id == campaign_id), 1),
        }
