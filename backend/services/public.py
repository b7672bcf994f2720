"""What the public sees of a campaign: its rules, status and progress."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import BigInteger, BindParameter, and_, bindparam, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.visitors import replacement_traverse

from backend.clock import utcnow
from backend.errors import ApiError
from backend.extensions import db
from backend.models import Campaign, CampaignLedger, Participation, Team, User
from backend.services.campaigns import campaign_doc, find_campaign
from backend.services.statements import run_together
from campaigns.calendar import local_today
from campaigns.decimals import mg_to_g, milli_to_number
from campaigns.document import effective_actions
from campaigns.methodology import load_methodology
from campaigns.rules import progress, trees


def published_campaign(slug: str) -> Campaign:
    """A published campaign; 404 for unknown and unpublished ones alike."""
    campaign = find_campaign(slug)
    if campaign is None or campaign.status != "published":
        raise ApiError(404, "not_found")
    return campaign


class CampaignRef(NamedTuple):
    """What the read views need of a campaign row (its document: :func:`campaign_doc`)."""

    id: int
    slug: str
    status: str
    doc_version: int


class ParticipationRef(NamedTuple):
    """A participation row as read (every column), and its team's key."""

    id: int
    campaign_id: int
    user_id: int | None
    pid: str
    team_id: int | None
    joined_on: date
    joined_dt: datetime
    disqualified_dt: datetime | None
    disqualified_reason: str | None
    reduction_mg: int
    records: int
    reached_seq: int
    on_board: bool
    team_key: str | None


def participation_entity(row: ParticipationRef) -> Participation:
    """The row as a Participation of the session, without reading it again (intake writes
    its totals through the entity)."""
    fields = row._asdict()
    del fields["team_key"]
    participation = Participation(**fields)
    make_transient_to_detached(participation)
    db.session.add(participation)
    return participation


class ReadContext(NamedTuple):
    campaign: CampaignRef
    head_seq: int
    participation: ParticipationRef | None
    token_version: int | None  # of the user (None: no such user, or erased)


@functools.cache
def _read_context_query():
    campaigns, ledgers = Campaign.__table__, CampaignLedger.__table__
    participations, users, teams = Participation.__table__, User.__table__, Team.__table__
    user_id = bindparam("user_id", type_=BigInteger)
    return (select(*(campaigns.c[name] for name in CampaignRef._fields), ledgers.c.head_seq,
                   *(participations.c[name].label(f"p_{name}")
                     for name in ParticipationRef._fields if name != "team_key"),
                   teams.c.key.label("team_key"), users.c.token_version,
                   users.c.openid.is_not(None).label("has_openid"))
            .join(ledgers, ledgers.c.campaign_id == campaigns.c.id)
            .outerjoin(participations, and_(participations.c.campaign_id == campaigns.c.id,
                                            participations.c.user_id == user_id))
            .outerjoin(teams, teams.c.id == participations.c.team_id)
            .outerjoin(users, users.c.id == user_id)
            .where(campaigns.c.slug == bindparam("slug")))


def read_context(slug: str, user_id: int | None,
                 also: list = ()) -> tuple[ReadContext | None, list]:
    """A published campaign (a ``CampaignRef``), its chain head, ``user_id``'s participation
    (None when not joined) and that user's token version, as plain rows (no ORM entities):
    one statement, compiled once; None for unknown and unpublished campaigns alike.
    ``also``: calls of :func:`run_together` sent in the same round trip, whose rows come
    second (each call's)."""
    rows, *also_rows = run_together([(_read_context_query(),
                                      {"slug": slug, "user_id": user_id}), *also])
    if not rows or rows[0].status != "published":
        return None, also_rows
    row = rows[0]
    campaign = CampaignRef(*row[:len(CampaignRef._fields)])
    participation = None
    if row.p_id is not None:
        start = len(CampaignRef._fields) + 1
        participation = ParticipationRef(*row[start:start + len(ParticipationRef._fields)])
    token_version = row.token_version if row.has_openid else None
    return ReadContext(campaign, row.head_seq, participation, token_version), also_rows


@functools.cache
def _participation_of_slug_and_user():
    participations, campaigns = Participation.__table__, Campaign.__table__
    return (select(participations.c.id)
            .join(campaigns, campaigns.c.id == participations.c.campaign_id)
            .where(campaigns.c.slug == bindparam("slug"),
                   participations.c.user_id == bindparam("user_id", type_=BigInteger))
            .scalar_subquery())


@functools.cache
def _by_slug_and_user(statement):
    def replace(element):
        if isinstance(element, BindParameter) and element.key == "participation_id":
            return _participation_of_slug_and_user()
        return None

    return replacement_traverse(statement, {}, replace)


def of_slug_and_user(calls: list, slug: str, user_id: int) -> list:
    """Calls of :func:`run_together` whose only parameter is ``participation_id``, turned into
    calls that find the participation of ``user_id`` in the campaign of ``slug`` themselves:
    they can go out in the round trip that reads the request's context (their rows are
    those of no participation when there is none)."""
    return [(_by_slug_and_user(statement), {"slug": slug, "user_id": user_id})
            for statement, _params in calls]


def campaign_status(campaign: Campaign, now: datetime | None = None) -> str:
    """``upcoming`` before starts_on, ``active`` while intake is open, then ``ended``."""
    doc = campaign_doc(campaign)
    today = local_today(now or utcnow(), doc.timezone)
    if today < doc.starts_on:
        return "upcoming"
    if (today - doc.ends_on).days <= doc.late_entry_days:
        return "active"
    return "ended"


def campaign_figures(campaign: Campaign, ledger: CampaignLedger | None = None) -> dict:
    """Reduction so far (grams), participants (not disqualified) and progress to the target,
    from the campaign's running totals (never a sum over the ledger)."""
    ledger = ledger or db.session.get(CampaignLedger, campaign.id)
    reduction_mg = ledger.total_mg
    return {
        "reduction_g": mg_to_g(reduction_mg),
        "target_g": mg_to_g(campaign.target_mg),
        "progress": progress(reduction_mg, campaign.target_mg),
        "participants": ledger.participants,
        "trees": trees(reduction_mg, load_methodology(campaign_doc(campaign).methodology).tree_mg),
    }


def campaign_detail(campaign: Campaign, now: datetime | None = None) -> dict:
    """GET /campaigns/{slug}: the effective rules of today, teams, challenges and figures."""
    doc = campaign_doc(campaign)
    today = local_today(now or utcnow(), doc.timezone)
    rules = effective_actions(doc, load_methodology(doc.methodology), today)
    figures = campaign_figures(campaign)
    return {
        "slug": campaign.slug, "name": doc.name, "description": doc.description,
        "timezone": doc.timezone, "starts_on": doc.starts_on, "ends_on": doc.ends_on,
        "status": campaign_status(campaign, now),
        "target_g": figures["target_g"], "reduction_g": figures["reduction_g"],
        "participants": figures["participants"], "progress": figures["progress"],
        "actions": [{
            "key": rule.key, "name": rule.name, "kind": rule.kind, "unit": rule.unit,
            "factor_g_per_unit": milli_to_number(rule.factor_milli),
            "daily_cap": None if rule.cap_milli is None else milli_to_number(rule.cap_milli),
            "min_quantity": milli_to_number(rule.min_milli), "sources": list(rule.sources),
        } for rule in rules],
        "challenges": [{
            "key": c.key, "name": c.name, "kind": c.kind,
            "target": mg_to_g(c.target_mg) if c.kind == "total" else c.target,
        } for c in doc.challenges],
        "teams": [{"key": t.key, "name": t.name} for t in doc.teams.teams],
    }
