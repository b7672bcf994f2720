"""Projections of the ledger, updated with each entry (under the chain-head lock, so the
read-modify-write below never races within a campaign)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, exists, select, update

from backend.extensions import db
from backend.models import (
    CampaignDay,
    CampaignLedger,
    CampaignWeek,
    LedgerEntry,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    TeamPeriod,
    User,
)
from backend.models.projections import TOTAL_PERIOD_START
from backend.models.reporting import (
    NO_TEAM,
    CampaignAction,
    CampaignActionDay,
    ParticipantAction,
)
from campaigns.calendar import week_start


def _row(model, defaults: dict, **key):
    """The projection row with this primary key, created (zeroed) when missing."""
    row = db.session.get(model, tuple(key.values()) if len(key) > 1 else next(iter(key.values())))
    if row is None:
        row = model(**key, **defaults)
        db.session.add(row)
    return row


def _crossing(before: int, after: int) -> int:
    """+1 when a total becomes active (above 0), -1 when it stops being, else 0."""
    return (after > 0) - (before > 0)


def _raise(row, mg: int, seq: int) -> int:
    """Add mg to a row's total; an increase records the seq (the tie-break). Returns the
    activity crossing of the row."""
    before = row.reduction_mg
    row.reduction_mg = before + mg
    if mg > 0:
        row.reached_seq = seq
    return _crossing(before, row.reduction_mg)


def apply_entry(entry: LedgerEntry, participation: Participation, ledger: CampaignLedger) -> None:
    """Apply one new entry to every projection. Flush is left to the caller."""
    mg, seq, day = entry.reduction_mg, entry.seq, entry.local_date
    counts = 0 if entry.source == "reversal" else 1
    week = week_start(day)
    zero = {"reduction_mg": 0, "reached_seq": 0}

    total_cross = _raise(participation, mg, seq)
    participation.records += counts
    shown = {"campaign_id": entry.campaign_id, "pid": participation.pid,
             "on_board": participation.on_board, **zero}
    day_row = _row(ParticipantDay, shown, participation_id=participation.id, local_date=day)
    day_cross = _raise(day_row, mg, seq)
    week_row = _row(ParticipantWeek, shown, participation_id=participation.id, week_start=week)
    week_cross = _raise(week_row, mg, seq)

    if participation.team_id is not None:
        for period, start, cross in (("total", TOTAL_PERIOD_START, total_cross),
                                     ("day", day, day_cross), ("week", week, week_cross)):
            team_row = _row(TeamPeriod, {**zero, "active_members": 0, "records": 0},
                            team_id=participation.team_id, period=period, period_start=start)
            _raise(team_row, mg, seq)
            team_row.active_members += cross
            team_row.records += counts

    ledger.total_mg += mg
    ledger.records += counts
    ledger.active_participants += total_cross
    _apply_to_actions(entry, participation, counts)
    campaign_day = campaign_day_row(entry.campaign_id, day)
    campaign_day.reduction_mg += mg
    campaign_day.records += counts
    campaign_day.active_participants += day_cross
    _row(CampaignWeek, {"active_participants": 0}, campaign_id=entry.campaign_id,
         week_start=week).active_participants += week_cross


def _apply_to_actions(entry: LedgerEntry, participation: Participation, counts: int) -> None:
    """The reporters' per-action figures: totals, active participants, daily rows per team."""
    mine = _row(ParticipantAction, {"campaign_id": entry.campaign_id, "reduction_mg": 0,
                                    "records": 0},
                participation_id=participation.id, action=entry.action)
    before = mine.reduction_mg
    mine.reduction_mg += entry.reduction_mg
    mine.records += counts
    totals = _row(CampaignAction, {"reduction_mg": 0, "records": 0, "participants": 0},
                  campaign_id=entry.campaign_id, action=entry.action)
    totals.reduction_mg += entry.reduction_mg
    totals.records += counts
    totals.participants += _crossing(before, mine.reduction_mg)
    daily = _row(CampaignActionDay, {"reduction_mg": 0, "records": 0},
                 campaign_id=entry.campaign_id, local_date=entry.local_date, action=entry.action,
                 team_id=participation.team_id or NO_TEAM)
    daily.reduction_mg += entry.reduction_mg
    daily.records += counts


def sync_on_board(participation_ids) -> None:
    """Recompute who the public boards show (not disqualified, on_leaderboard, not erased) for
    these participations (a select of ids) and copy it to their day and week rows."""
    db.session.flush()
    shown = exists().where(User.id == Participation.user_id, User.on_leaderboard.is_(True),
                           User.openid.is_not(None))
    db.session.execute(
        update(Participation).where(Participation.id.in_(participation_ids))
        .values(on_board=and_(Participation.disqualified_dt.is_(None), shown)),
        execution_options={"synchronize_session": False})
    for model in (ParticipantDay, ParticipantWeek):
        db.session.execute(
            update(model).where(model.participation_id.in_(participation_ids))
            .values(on_board=select(Participation.on_board)
                    .where(Participation.id == model.participation_id).scalar_subquery()),
            execution_options={"synchronize_session": False})
    db.session.expire_all()


def campaign_day_row(campaign_id: int, day: date) -> CampaignDay:
    return _row(CampaignDay, {"reduction_mg": 0, "records": 0, "active_participants": 0,
                              "new_participants": 0}, campaign_id=campaign_id, local_date=day)
