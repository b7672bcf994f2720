"""Projections of the ledger, updated with each append under the chain-head lock: one
increment upsert per table (INSERT ... ON CONFLICT DO UPDATE), never a read and a write."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, bindparam, case, exists, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from backend.errors import ApiError
from backend.extensions import db
from backend.models import (
    Campaign,
    CampaignDay,
    CampaignLedger,
    CampaignWeek,
    LedgerEntry,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
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
from backend.services.documents import campaign_doc
from backend.services.statements import run_together
from campaigns.calendar import week_start


def _row(model, defaults: dict, **key):
    """The projection row with this primary key, created (zeroed) when missing."""
    row = db.session.get(model, tuple(key.values()) if len(key) > 1 else next(iter(key.values())))
    if row is None:
        row = model(**key, **defaults)
        db.session.add(row)
    return row


def _crossing(after: int, added: int) -> int:
    """+1 when adding ``added`` made a total active (above 0), -1 when it stopped being."""
    return (after > 0) - (after - added > 0)


@dataclass
class _Delta:
    """What a batch of entries adds to one projection row. ``reached_seq`` is the seq of the
    last entry that raised it (0: none did), ``crossing`` the activity change of the member
    rows it sums (participants, members)."""

    mg: int = 0
    records: int = 0
    reached_seq: int = 0
    crossing: int = 0

    def add(self, mg: int, records: int, seq: int) -> None:
        self.mg += mg
        self.records += records
        if mg > 0:
            self.reached_seq = max(self.reached_seq, seq)

    def merge(self, other: _Delta, crossing: int) -> None:
        self.mg += other.mg
        self.records += other.records
        self.reached_seq = max(self.reached_seq, other.reached_seq)
        self.crossing += crossing


@dataclass(frozen=True)
class Standing:
    """A total after the append: what the Redis boards are given (no re-read after commit)."""

    reduction_mg: int
    reached_seq: int
    active_members: int = 0


@dataclass(frozen=True)
class MemberScores:
    """A participant's and their team's board scores after an append, for the day of one of
    its entries: {period: (metric mg, reached seq)}, 0 mg meaning off the board."""

    campaign_id: int
    day: date
    pid: str
    individual: dict[str, tuple[int, int]]
    team_key: str | None
    team: dict[str, tuple[int, int]]


def team_metric(row, ranking: str, min_active: int) -> int:
    """A team's board metric (total or average per active member) from a row with
    ``reduction_mg`` and ``active_members``; 0 (off the board) below the minimum active."""
    if row is None or row.active_members < max(min_active, 1) or row.reduction_mg <= 0:
        return 0
    return row.reduction_mg // row.active_members if ranking == "average" else row.reduction_mg


@functools.cache
def _upsert_statement(model, keys: tuple[str, ...], added: tuple[str, ...],
                      returning: tuple[str, ...], shown: bool, dialect_name: str):
    """INSERT ... ON CONFLICT DO UPDATE of one row given as parameters, built once: the
    ``added`` columns are added to, ``reached_seq`` replaced by a raising entry's; it returns
    ``keys`` and ``returning`` as the row is after it. With ``shown``, ``on_board`` is the
    participation's (parameter ``shown_of``), read after its row was locked."""
    table = model.__table__
    insert = pg_insert if dialect_name == "postgresql" else sqlite_insert
    statement = insert(table)
    if shown:
        participations = Participation.__table__
        statement = statement.values(on_board=select(participations.c.on_board).where(
            participations.c.id == bindparam("shown_of")).scalar_subquery())
    changes = {name: table.c[name] + literal_column(f"excluded.{name}") for name in added}
    if "reached_seq" in table.c:
        raised = literal_column("excluded.reached_seq")
        changes["reached_seq"] = case((raised > 0, raised), else_=table.c.reached_seq)
    statement = statement.on_conflict_do_update(index_elements=[table.c[k] for k in keys],
                                                set_=changes)
    if returning:
        statement = statement.returning(*(table.c[k] for k in keys + returning))
    return statement


def _upsert(model, rows: list[dict], keys: tuple[str, ...], added: tuple[str, ...],
            returning: tuple[str, ...] = (), shown: bool = False) -> list[tuple]:
    """The calls (statement, row) of :func:`run_together` that upsert these rows."""
    if not rows:
        return []
    statement = _upsert_statement(model, keys, added, returning, shown,
                                  db.session.get_bind().dialect.name)
    return [(statement, row) for row in rows]


@functools.cache
def _participation_update():
    table = Participation.__table__
    team_key = select(Team.key).where(Team.id == table.c.team_id).scalar_subquery()
    return (update(table).where(table.c.id == bindparam("participation_id")).values(
        reduction_mg=table.c.reduction_mg + bindparam("mg"),
        records=table.c.records + bindparam("added_records"),
        reached_seq=case((bindparam("raised_seq") > 0, bindparam("raised_seq")),
                         else_=table.c.reached_seq))
        .returning(table.c.id, table.c.reduction_mg, table.c.records, table.c.reached_seq,
                   table.c.on_board, table.c.team_id, table.c.disqualified_dt,
                   team_key.label("team_key")))


def _raise_participation(participation_id: int, delta: _Delta) -> tuple:
    """Add to a participation's campaign total, locking its row first of all the rows an
    append writes (a concurrent visibility or team change is then ordered before or after)."""
    return (_participation_update(), {"participation_id": participation_id, "mg": delta.mg,
                                      "added_records": delta.records,
                                      "raised_seq": delta.reached_seq})


@functools.cache
def _ledger_insert():
    return insert(LedgerEntry.__table__)


@functools.cache
def _head_statement():
    table = CampaignLedger.__table__
    return update(table).where(table.c.campaign_id == bindparam("ledger_campaign"))


def _head_update(ledger: CampaignLedger, head: tuple[int, str], delta: _Delta) -> tuple:
    """Move the locked chain head and add to the campaign's running totals; the loaded
    ``ledger`` is brought up to date."""
    values = {"head_seq": head[0], "head_hash": head[1],
              "total_mg": ledger.total_mg + delta.mg, "records": ledger.records + delta.records,
              "active_participants": ledger.active_participants + delta.crossing}
    for name, value in values.items():
        set_committed_value(ledger, name, value)
    return (_head_statement(), {**values, "ledger_campaign": ledger.campaign_id})


def _run_groups(*groups: list[tuple]) -> list[list[tuple]]:
    """Run groups of calls in one :func:`run_together`; each group's rows, in order."""
    results = run_together([call for group in groups for call in group])
    rows, start = [], 0
    for group in groups:
        rows.append([row for result in results[start:start + len(group)] for row in result])
        start += len(group)
    return rows


def apply_entries(entries, ledger_rows, ledgers: dict[int, CampaignLedger],
                  heads: dict[int, tuple[int, str]]) -> list[MemberScores]:
    """Insert the chained ``ledger_rows`` and apply their ``entries`` (each with
    ``campaign``, ``participation``, ``seq``, ``action``, ``local_date``, ``reduction_mg``,
    ``source``) to every projection with increments, in two round trips, under the
    chain-head locks; ``heads`` are the new (seq, hash) per campaign. Returns the
    participants' new board scores."""
    participations: dict[int, Participation] = {}
    campaigns: dict[int, Campaign] = {}
    totals: dict[int, _Delta] = defaultdict(_Delta)
    days: dict[tuple[int, date], _Delta] = defaultdict(_Delta)
    weeks: dict[tuple[int, date], _Delta] = defaultdict(_Delta)
    actions: dict[tuple[int, str], _Delta] = defaultdict(_Delta)
    for entry in entries:
        participation = entry.participation
        participations[participation.id] = participation
        campaigns[participation.id] = entry.campaign
        records = 0 if entry.source == "reversal" else 1
        for deltas, key in ((totals, participation.id),
                            (days, (participation.id, entry.local_date)),
                            (weeks, (participation.id, week_start(entry.local_date))),
                            (actions, (participation.id, entry.action))):
            deltas[key].add(entry.reduction_mg, records, entry.seq)

    def shown(participation_id: int) -> dict:  # the columns day and week rows copy
        participation = participations[participation_id]
        return {"campaign_id": participation.campaign_id, "pid": participation.pid,
                "shown_of": participation_id}

    member_rows, day_rows, week_rows, action_rows = _run_groups(
        [(_ledger_insert(), row) for row in ledger_rows],
        [_raise_participation(p, delta) for p, delta in totals.items()],
        _upsert(ParticipantDay, [
            {"participation_id": p, "local_date": d, **shown(p), "reduction_mg": delta.mg,
             "reached_seq": delta.reached_seq} for (p, d), delta in days.items()],
            ("participation_id", "local_date"), ("reduction_mg",),
            ("reduction_mg", "reached_seq"), shown=True),
        _upsert(ParticipantWeek, [
            {"participation_id": p, "week_start": w, **shown(p), "reduction_mg": delta.mg,
             "reached_seq": delta.reached_seq} for (p, w), delta in weeks.items()],
            ("participation_id", "week_start"), ("reduction_mg",),
            ("reduction_mg", "reached_seq"), shown=True),
        _upsert(ParticipantAction, [
            {"participation_id": p, "action": a, "campaign_id": participations[p].campaign_id,
             "reduction_mg": delta.mg, "records": delta.records}
            for (p, a), delta in actions.items()],
            ("participation_id", "action"), ("reduction_mg", "records"), ("reduction_mg",)),
    )[1:]
    members = {}
    for row in member_rows:
        if row.disqualified_dt is not None and totals[row.id].records:
            # Disqualified by a request that committed while this one waited for the head.
            raise ApiError(403, "campaign.join_denied")
        for name in ("reduction_mg", "records", "reached_seq", "on_board", "team_id"):
            set_committed_value(participations[row.id], name, getattr(row, name))
        members[row.id] = (Standing(row.reduction_mg, row.reached_seq), row.team_id,
                           row.team_key)
    day_after = {(p, d): Standing(mg, seq) for p, d, mg, seq in day_rows}
    for entry in entries:
        entry.day_total_mg = day_after[(entry.participation.id, entry.local_date)].reduction_mg
    week_after = {(p, w): Standing(mg, seq) for p, w, mg, seq in week_rows}

    team_deltas: dict[tuple[int, str, date], _Delta] = defaultdict(_Delta)
    campaign_actions: dict[tuple[int, str], _Delta] = defaultdict(_Delta)
    campaign_days: dict[tuple[int, date], _Delta] = defaultdict(_Delta)
    campaign_weeks: dict[tuple[int, date], _Delta] = defaultdict(_Delta)
    campaign_totals: dict[int, _Delta] = defaultdict(_Delta)
    for period, deltas, after, by_campaign in (
            ("total", totals, {p: m[0] for p, m in members.items()}, campaign_totals),
            ("day", days, day_after, campaign_days),
            ("week", weeks, week_after, campaign_weeks)):
        for key, delta in deltas.items():
            participation_id, start = key if period != "total" else (key, TOTAL_PERIOD_START)
            cross = _crossing(after[key].reduction_mg, delta.mg)
            campaign_id = participations[participation_id].campaign_id
            by_campaign[campaign_id if period == "total" else (campaign_id, start)].merge(
                delta, cross)
            team_id = members[participation_id][1]
            if team_id is not None:
                team_deltas[(team_id, period, start)].merge(delta, cross)
    for participation_id, action, after in action_rows:
        delta = actions[(participation_id, action)]
        campaign_actions[(participations[participation_id].campaign_id, action)].merge(
            delta, _crossing(after, delta.mg))
    action_days: dict[tuple[int, date, str, int], _Delta] = defaultdict(_Delta)
    for entry in entries:
        team_id = members[entry.participation.id][1]
        action_days[(entry.campaign.id, entry.local_date, entry.action, team_id or NO_TEAM)].add(
            entry.reduction_mg, 0 if entry.source == "reversal" else 1, entry.seq)

    team_rows = _run_groups(
        _upsert(TeamPeriod, [
            {"team_id": t, "period": period, "period_start": start, "reduction_mg": delta.mg,
             "reached_seq": delta.reached_seq, "active_members": delta.crossing,
             "records": delta.records} for (t, period, start), delta in team_deltas.items()],
            ("team_id", "period", "period_start"), ("reduction_mg", "active_members", "records"),
            ("reduction_mg", "reached_seq", "active_members")),
        _upsert(CampaignAction, [
            {"campaign_id": c, "action": a, "reduction_mg": delta.mg, "records": delta.records,
             "participants": delta.crossing} for (c, a), delta in campaign_actions.items()],
            ("campaign_id", "action"), ("reduction_mg", "records", "participants")),
        _upsert(CampaignActionDay, [
            {"campaign_id": c, "local_date": d, "action": a, "team_id": t,
             "reduction_mg": delta.mg, "records": delta.records}
            for (c, d, a, t), delta in action_days.items()],
            ("campaign_id", "local_date", "action", "team_id"), ("reduction_mg", "records")),
        _upsert(CampaignDay, [
            {"campaign_id": c, "local_date": d, "reduction_mg": delta.mg,
             "records": delta.records, "active_participants": delta.crossing,
             "new_participants": 0} for (c, d), delta in campaign_days.items()],
            ("campaign_id", "local_date"), ("reduction_mg", "records", "active_participants")),
        _upsert(CampaignWeek, [
            {"campaign_id": c, "week_start": w, "active_participants": delta.crossing}
            for (c, w), delta in campaign_weeks.items()],
            ("campaign_id", "week_start"), ("active_participants",)),
        [_head_update(ledgers[c], heads[c], delta) for c, delta in campaign_totals.items()],
    )[0]
    teams_after = {(t, period, start): Standing(mg, seq, active)
                   for t, period, start, mg, seq, active in team_rows}
    scores = []
    for participation_id, day in dict.fromkeys((e.participation.id, e.local_date)
                                               for e in entries):
        participation = participations[participation_id]
        total, team_id, team_key = members[participation_id]
        periods = (("total", TOTAL_PERIOD_START, total),
                   ("day", day, day_after[(participation_id, day)]),
                   ("week", week_start(day), week_after[(participation_id, week_start(day))]))
        individual = {period: (row.reduction_mg if participation.on_board
                               and row.reduction_mg > 0 else 0, row.reached_seq)
                      for period, _start, row in periods}
        team = {}
        if team_id is not None:
            rule = campaign_doc(campaigns[participation_id]).teams
            for period, start, _row in periods:
                row = teams_after[(team_id, period, start)]
                team[period] = (team_metric(row, rule.ranking, rule.min_active_members),
                                row.reached_seq)
        scores.append(MemberScores(participation.campaign_id, day, participation.pid,
                                   individual, team_key, team))
    return scores


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
