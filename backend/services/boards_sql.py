"""Leaderboards answered from the SQL projections (DESIGN.md "Leaderboards").

Order on every board: metric desc, then the seq that last raised it asc (who got there
first), then pid (teams: key). Public boards list visible participants with a metric above 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import func, literal, literal_column, select, tuple_

from backend.extensions import db
from backend.models import (
    Campaign,
    CampaignDay,
    CampaignLedger,
    CampaignWeek,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
)
from backend.models.projections import TOTAL_PERIOD_START

# Boards smaller than this are counted from the top, without looking for their middle.
SMALL_BOARD = 2000
MIDDLE_SECONDS = 30


@dataclass(frozen=True)
class Standing:
    """One row of a board: who (pid or team key), the metric, and the tie-break seq."""

    member: str
    metric_mg: int
    seq: int
    name: str = ""
    avatar_url: str | None = None
    total_mg: int | None = None  # teams: the total behind an average
    active_members: int | None = None

    @property
    def order(self) -> tuple:
        return (-self.metric_mg, self.seq, self.member)


def _board_rows(campaign: Campaign, period: str, start: date):
    """The projection an individual board ranks, and the filter of its shown rows: visible
    (on_board) with a metric above 0, spelled with literals so that the board's partial index
    applies also to prepared (generic) plans."""
    if period == "total":
        model, extra = Participation, ()
    elif period == "day":
        model, extra = ParticipantDay, (ParticipantDay.local_date == start,)
    else:
        model, extra = ParticipantWeek, (ParticipantWeek.week_start == start,)
    shown = (model.campaign_id == campaign.id, *extra, model.on_board,
             model.reduction_mg > literal_column("0"))
    return model, shown


def _board_order(model):
    """Board order as one ascending tuple: metric desc, seq asc, pid asc (the index's)."""
    return (-model.reduction_mg, model.reached_seq, model.pid)


def individual_top(campaign: Campaign, period: str, start: date, limit: int) -> list[Standing]:
    """The top ``limit`` visible participants with a metric above 0 (first rows of the board's
    index)."""
    model, shown = _board_rows(campaign, period, start)
    rows = db.session.execute(
        select(model.pid, model.reduction_mg, model.reached_seq).where(*shown)
        .order_by(*_board_order(model)).limit(limit))
    return [Standing(pid, mg, seq) for pid, mg, seq in rows]


def my_standing(period: str, start: date, participation: Participation) -> tuple[int, int]:
    """(metric mg, seq) of a participant on an individual board."""
    if period == "total":
        return participation.reduction_mg, participation.reached_seq
    model = ParticipantDay if period == "day" else ParticipantWeek
    row = db.session.get(model, (participation.id, start))
    return (row.reduction_mg, row.reached_seq) if row else (0, 0)


def _board_size(campaign: Campaign, period: str, start: date):
    """The number of rows a board shows, exactly, without counting them: participants above
    0 mg in the period (kept with each entry) minus the few that boards hide."""
    if period == "total":
        active = select(CampaignLedger.active_participants).where(
            CampaignLedger.campaign_id == campaign.id)
    elif period == "day":
        active = select(CampaignDay.active_participants).where(
            CampaignDay.campaign_id == campaign.id, CampaignDay.local_date == start)
    else:
        active = select(CampaignWeek.active_participants).where(
            CampaignWeek.campaign_id == campaign.id, CampaignWeek.week_start == start)
    model, shown = _board_rows(campaign, period, start)
    hidden = select(func.count()).select_from(model).where(
        *shown[:-2], ~model.on_board, model.reduction_mg > literal_column("0"))
    return func.coalesce(active.scalar_subquery(), 0) - hidden.scalar_subquery()


def _in_upper_half(campaign: Campaign, period: str, start: date, mine: tuple) -> bool:
    """Whether (-mg, seq, pid) sorts before the board's middle row, as of a few seconds ago
    (cached per process): it only chooses which side of me is counted, never the answer."""
    cache = current_app.extensions.setdefault("tanpu_board_middles", {})
    key = (campaign.id, period, start)
    now = time.monotonic()
    hit = cache.get(key)
    if hit is None or hit[0] <= now:
        size = db.session.scalar(select(_board_size(campaign, period, start)))
        middle = None
        if size >= SMALL_BOARD:
            model, shown = _board_rows(campaign, period, start)
            row = db.session.execute(
                select(-model.reduction_mg, model.reached_seq, model.pid).where(*shown)
                .order_by(*_board_order(model)).offset(size // 2).limit(1)).first()
            middle = tuple(row) if row is not None else None
        if len(cache) > 10_000:
            cache.clear()
        hit = cache[key] = (now + MIDDLE_SECONDS, middle)
    return hit[1] is None or mine <= hit[1]


def individual_me(campaign: Campaign, period: str, start: date,
                  participation: Participation) -> tuple[int, int]:
    """(rank, metric) of a participant: 1 + the visible participants ahead of them, whether
    or not they are visible themselves. One range of the board's index is counted, on the
    smaller side of me: those ahead, or the board's size minus those behind."""
    mine_mg, mine_seq = my_standing(period, start, participation)
    model, shown = _board_rows(campaign, period, start)
    position = tuple_(*_board_order(model))
    mine = (-mine_mg, mine_seq, participation.pid)
    me = tuple_(*(literal(value) for value in mine))
    if _in_upper_half(campaign, period, start, mine):
        ahead = db.session.scalar(select(func.count()).select_from(model).where(
            *shown, position < me))
    else:
        behind = select(func.count()).select_from(model).where(*shown, position > me)
        counted_self = 1 if participation.on_board and mine_mg > 0 else 0
        ahead = db.session.scalar(select(_board_size(campaign, period, start)
                                         - behind.scalar_subquery())) - counted_self
    return ahead + 1, mine_mg


def team_standings(campaign: Campaign, period: str, start: date, ranking: str,
                   min_active: int) -> list[Standing]:
    """Every ranked team, in board order: total or floor(mg / active members); teams below
    min_active_members are not ranked."""
    period_start = TOTAL_PERIOD_START if period == "total" else start
    rows = db.session.execute(
        select(Team.key, Team.name, TeamPeriod.reduction_mg, TeamPeriod.reached_seq,
               TeamPeriod.active_members)
        .join(TeamPeriod, TeamPeriod.team_id == Team.id)
        .where(Team.campaign_id == campaign.id, TeamPeriod.period == period,
               TeamPeriod.period_start == period_start))
    standings = []
    for key, name, mg, seq, active in rows:
        if active < max(min_active, 1) or mg <= 0:
            continue
        metric = mg // active if ranking == "average" else mg
        standings.append(Standing(key, metric, seq, name, None, mg, active))
    return sorted(standings, key=lambda s: s.order)
