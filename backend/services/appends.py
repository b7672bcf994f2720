"""Applying appended entries to the projections, under the chain-head lock: one increment
upsert per row (INSERT ... ON CONFLICT DO UPDATE ... RETURNING, never a read and then a
write), in two pipelined round trips; the totals returned give the activity crossings and the
Redis boards' new scores."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import bindparam, case, insert, literal_column, select, update
from sqlalchemy.orm.attributes import set_committed_value

from backend.errors import ApiError
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
)
from backend.models.projections import TOTAL_PERIOD_START
from backend.models.reporting import (
    NO_TEAM,
    CampaignAction,
    CampaignActionDay,
    ParticipantAction,
)
from backend.services.documents import campaign_doc
from backend.services.projections import team_metric
from backend.services.statements import dialect_name, run_together, upsert_insert
from campaigns.calendar import week_start


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
    version: int  # the campaign's head seq after the append: later versions win in Redis


_MAX_ROWS = 64  # rows of one upsert statement


@functools.cache
def _upsert_statement(model, keys: tuple[str, ...], added: tuple[str, ...],
                      returning: tuple[str, ...], shown: bool, dialect: str,
                      columns: tuple[str, ...] = (), rows: int = 1):
    """INSERT ... ON CONFLICT DO UPDATE of one row given as parameters, built once: the
    ``added`` columns are added to, ``reached_seq`` replaced by a raising entry's; it returns
    ``keys`` and ``returning`` as the row is after it. With ``shown``, ``on_board`` is the
    participation's (parameter ``shown_of``), read after its row was locked. With ``rows``
    above 1, that many rows of ``columns`` in one statement (parameters ``<column>_<row>``):
    their keys must differ."""
    table = model.__table__
    statement = upsert_insert(table, dialect)
    participations = Participation.__table__

    def on_board(suffix: str):
        return select(participations.c.on_board).where(
            participations.c.id == bindparam(f"shown_of{suffix}")).scalar_subquery()

    if rows > 1:
        statement = statement.values([
            {**{name: bindparam(f"{name}_{i}", type_=table.c[name].type) for name in columns},
             **({"on_board": on_board(f"_{i}")} if shown else {})}
            for i in range(rows)])
    elif shown:
        statement = statement.values(on_board=on_board(""))
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
    """The calls of :func:`run_together` that upsert these rows (their keys differ), several
    rows a statement: all of them up to 8, else chunks of a power of two up to _MAX_ROWS (a
    few shapes of statement, each built once)."""
    calls, dialect = [], dialect_name()
    while rows:
        size = len(rows) if len(rows) <= 8 else min(_MAX_ROWS,
                                                    1 << (len(rows).bit_length() - 1))
        chunk, rows = rows[:size], rows[size:]
        if size == 1:
            calls.append((_upsert_statement(model, keys, added, returning, shown, dialect),
                          chunk[0]))
            continue
        columns = tuple(name for name in chunk[0] if name != "shown_of")
        calls.append((_upsert_statement(model, keys, added, returning, shown, dialect,
                                        columns, size),
                      {f"{name}_{i}": value for i, row in enumerate(chunk)
                       for name, value in row.items()}))
    return calls


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
    return update(table).where(table.c.campaign_id == bindparam("ledger_campaign")).values(
        head_seq=bindparam("seq"), head_hash=bindparam("hash"),
        total_mg=table.c.total_mg + bindparam("mg"),
        records=table.c.records + bindparam("added_records"),
        active_participants=table.c.active_participants + bindparam("crossing"))


def _head_update(campaign_id: int, head: tuple[int, str], delta: _Delta,
                 ledger: CampaignLedger | None) -> tuple:
    """Move the locked chain head and add to the campaign's running totals; a loaded
    ``ledger`` is brought up to date."""
    if ledger is not None:
        for name, value in (("head_seq", head[0]), ("head_hash", head[1]),
                            ("total_mg", ledger.total_mg + delta.mg),
                            ("records", ledger.records + delta.records),
                            ("active_participants",
                             ledger.active_participants + delta.crossing)):
            set_committed_value(ledger, name, value)
    return (_head_statement(), {"ledger_campaign": campaign_id, "seq": head[0],
                                "hash": head[1], "mg": delta.mg,
                                "added_records": delta.records, "crossing": delta.crossing})


def _run_groups(*groups: list[tuple]) -> list[list[tuple]]:
    """Run groups of calls in one :func:`run_together`; each group's rows, in order."""
    results = run_together([call for group in groups for call in group])
    rows, start = [], 0
    for group in groups:
        rows.append([row for result in results[start:start + len(group)] for row in result])
        start += len(group)
    return rows


@dataclass
class _Batch:
    """Appended entries added up per participant row, then what the rows returned."""

    entries: list
    participations: dict[int, Participation] = field(default_factory=dict)
    campaigns: dict[int, Campaign] = field(default_factory=dict)  # by participation id
    totals: dict = field(default_factory=lambda: defaultdict(_Delta))  # participation
    days: dict = field(default_factory=lambda: defaultdict(_Delta))  # (participation, date)
    weeks: dict = field(default_factory=lambda: defaultdict(_Delta))  # (participation, week)
    actions: dict = field(default_factory=lambda: defaultdict(_Delta))  # (participation, a)
    # After the first round trip: participation id -> (Standing, team id, team key), and the
    # day and week rows' Standing.
    members: dict = field(default_factory=dict)
    day_after: dict = field(default_factory=dict)
    week_after: dict = field(default_factory=dict)

    @classmethod
    def of(cls, entries) -> _Batch:
        batch = cls(list(entries))
        for entry in batch.entries:
            participation = entry.participation
            batch.participations[participation.id] = participation
            batch.campaigns[participation.id] = entry.campaign
            records = 0 if entry.source == "reversal" else 1
            for deltas, key in ((batch.totals, participation.id),
                                (batch.days, (participation.id, entry.local_date)),
                                (batch.weeks, (participation.id, week_start(entry.local_date))),
                                (batch.actions, (participation.id, entry.action))):
                deltas[key].add(entry.reduction_mg, records, entry.seq)
        return batch

    def team_of(self, participation_id: int) -> int | None:
        return self.members[participation_id][1]


def apply_entries(entries, ledger_rows, ledgers: dict[int, CampaignLedger] | None,
                  heads: dict[int, tuple[int, str]],
                  reads_after: list = ()) -> tuple[list[MemberScores], list[list[tuple]]]:
    """Insert the chained ``ledger_rows`` and apply their ``entries`` (each with
    ``campaign``, ``participation``, ``seq``, ``action``, ``local_date``, ``reduction_mg``,
    ``source``) to every projection with increments, in two round trips, under the
    chain-head locks; ``heads`` are the new (seq, hash) per campaign, ``ledgers`` loaded
    chain heads to keep up to date (or None). Sets each entry's
    ``day_total_mg``; returns the participants' new board scores, and the rows of the
    ``reads_after`` calls, which go out in the second round trip (they see every write)."""
    batch = _Batch.of(entries)
    action_rows = _write_participant_rows(batch, ledger_rows)
    team_rows, *read_rows = _write_campaign_rows(batch, action_rows, ledgers, heads,
                                                 reads_after)
    return _board_scores(batch, team_rows, heads), read_rows


def _write_participant_rows(batch: _Batch, ledger_rows) -> list:
    """First round trip: the ledger entries, then the participations (each row locked
    first), their day, week and action rows. Returns the action rows."""

    def shown(participation_id: int) -> dict:  # the columns day and week rows copy
        participation = batch.participations[participation_id]
        return {"campaign_id": participation.campaign_id, "pid": participation.pid,
                "shown_of": participation_id}

    member_rows, day_rows, week_rows, action_rows = _run_groups(
        [(_ledger_insert(), row) for row in ledger_rows],
        [_raise_participation(p, delta) for p, delta in batch.totals.items()],
        _upsert(ParticipantDay, [
            {"participation_id": p, "local_date": d, **shown(p), "reduction_mg": delta.mg,
             "reached_seq": delta.reached_seq} for (p, d), delta in batch.days.items()],
            ("participation_id", "local_date"), ("reduction_mg",),
            ("reduction_mg", "reached_seq"), shown=True),
        _upsert(ParticipantWeek, [
            {"participation_id": p, "week_start": w, **shown(p), "reduction_mg": delta.mg,
             "reached_seq": delta.reached_seq} for (p, w), delta in batch.weeks.items()],
            ("participation_id", "week_start"), ("reduction_mg",),
            ("reduction_mg", "reached_seq"), shown=True),
        _upsert(ParticipantAction, [
            {"participation_id": p, "action": a,
             "campaign_id": batch.participations[p].campaign_id, "reduction_mg": delta.mg,
             "records": delta.records} for (p, a), delta in batch.actions.items()],
            ("participation_id", "action"), ("reduction_mg", "records"), ("reduction_mg",)),
    )[1:]
    for row in member_rows:
        if row.disqualified_dt is not None and batch.totals[row.id].records:
            # Disqualified by a request that committed while this one waited for the head.
            raise ApiError(403, "campaign.join_denied")
        for name in ("reduction_mg", "records", "reached_seq", "on_board", "team_id"):
            set_committed_value(batch.participations[row.id], name, getattr(row, name))
        batch.members[row.id] = (Standing(row.reduction_mg, row.reached_seq), row.team_id,
                                 row.team_key)
    batch.day_after = {(p, d): Standing(mg, seq) for p, d, mg, seq in day_rows}
    batch.week_after = {(p, w): Standing(mg, seq) for p, w, mg, seq in week_rows}
    for entry in batch.entries:
        entry.day_total_mg = batch.day_after[(entry.participation.id,
                                              entry.local_date)].reduction_mg
    return action_rows


def _write_campaign_rows(batch: _Batch, action_rows, ledgers: dict[int, CampaignLedger] | None,
                         heads: dict[int, tuple[int, str]], reads_after) -> list:
    """Second round trip: team, campaign action, action-day, day and week rows and the chain
    heads, with the activity crossings of the participant rows, then ``reads_after``.
    Returns the team rows, then each read's rows."""
    teams: dict[tuple[int, str, date], _Delta] = defaultdict(_Delta)
    campaign_days: dict[tuple[int, date], _Delta] = defaultdict(_Delta)
    campaign_weeks: dict[tuple[int, date], _Delta] = defaultdict(_Delta)
    campaign_totals: dict[int, _Delta] = defaultdict(_Delta)
    for period, deltas, after, by_campaign in (
            ("total", batch.totals, {p: m[0] for p, m in batch.members.items()},
             campaign_totals),
            ("day", batch.days, batch.day_after, campaign_days),
            ("week", batch.weeks, batch.week_after, campaign_weeks)):
        for key, delta in deltas.items():
            participation_id, start = key if period != "total" else (key, TOTAL_PERIOD_START)
            cross = _crossing(after[key].reduction_mg, delta.mg)
            campaign_id = batch.participations[participation_id].campaign_id
            by_campaign[campaign_id if period == "total" else (campaign_id, start)].merge(
                delta, cross)
            if batch.team_of(participation_id) is not None:
                teams[(batch.team_of(participation_id), period, start)].merge(delta, cross)
    campaign_actions: dict[tuple[int, str], _Delta] = defaultdict(_Delta)
    for participation_id, action, after in action_rows:
        delta = batch.actions[(participation_id, action)]
        campaign_actions[(batch.participations[participation_id].campaign_id, action)].merge(
            delta, _crossing(after, delta.mg))
    action_days: dict[tuple[int, date, str, int], _Delta] = defaultdict(_Delta)
    for entry in batch.entries:
        team_id = batch.team_of(entry.participation.id) or NO_TEAM
        action_days[(entry.campaign.id, entry.local_date, entry.action, team_id)].add(
            entry.reduction_mg, 0 if entry.source == "reversal" else 1, entry.seq)

    written = _run_groups(
        _upsert(TeamPeriod, [
            {"team_id": t, "period": period, "period_start": start, "reduction_mg": delta.mg,
             "reached_seq": delta.reached_seq, "active_members": delta.crossing,
             "records": delta.records} for (t, period, start), delta in teams.items()],
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
        [_head_update(c, heads[c], delta, (ledgers or {}).get(c))
         for c, delta in campaign_totals.items()],
        *([call] for call in reads_after),
    )
    return [written[0], *written[6:]]


def _board_scores(batch: _Batch, team_rows,
                  heads: dict[int, tuple[int, str]]) -> list[MemberScores]:
    """The new board scores of each (participant, day) the entries touched."""
    teams_after = {(t, period, start): Standing(mg, seq, active)
                   for t, period, start, mg, seq, active in team_rows}
    scores = []
    for participation_id, day in dict.fromkeys((e.participation.id, e.local_date)
                                               for e in batch.entries):
        participation = batch.participations[participation_id]
        total, team_id, team_key = batch.members[participation_id]
        week = week_start(day)
        periods = (("total", TOTAL_PERIOD_START, total),
                   ("day", day, batch.day_after[(participation_id, day)]),
                   ("week", week, batch.week_after[(participation_id, week)]))
        individual = {period: (row.reduction_mg if participation.on_board
                               and row.reduction_mg > 0 else 0, row.reached_seq)
                      for period, _start, row in periods}
        team = {}
        if team_id is not None:
            rule = campaign_doc(batch.campaigns[participation_id]).teams
            for period, start, _row in periods:
                row = teams_after[(team_id, period, start)]
                team[period] = (team_metric(row, rule.ranking, rule.min_active_members),
                                row.reached_seq)
        scores.append(MemberScores(participation.campaign_id, day, participation.pid,
                                   individual, team_key, team,
                                   heads[participation.campaign_id][0]))
    return scores
