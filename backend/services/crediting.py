"""The shared path of every intake (check-in, WeRun, partner item, released hold): day totals
per action and source, caps and minimums, credit groups, plausibility holds, and the entry
drafts that are appended once the chain heads are locked."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, literal_column, select

from backend.extensions import db
from backend.models import Campaign, DayActionTotal, Hold, Participation
from backend.services.campaigns import campaign_doc
from backend.services.challenges import completion_reads, record_completions
from backend.services.ledger import NewEntry, append_entries
from backend.services.statements import dialect_name, run_together, upsert_insert
from campaigns.crediting import checkin_delta
from campaigns.document import ActionRule, CampaignDoc
from campaigns.methodology import Methodology, load_methodology
from campaigns.plausibility import Intake, intake_signals
from campaigns.rules import credit_mg, entry_reduction_mg


@dataclass
class EntryDraft:
    """An entry waiting for its chain head: appended by :func:`append_drafts`."""

    campaign: Campaign
    participation: Participation
    rule: ActionRule
    local_date: date
    quantity_milli: int
    counted_milli: int
    reduction_mg: int
    source: str
    source_ref: str | None
    seq: int | None = None
    day_total_mg: int | None = None  # the participant's day total after the append


@dataclass(frozen=True)
class CampaignRules:
    """What crediting needs of a campaign, loaded once per request."""

    campaign: Campaign
    doc: CampaignDoc
    methodology: Methodology

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignRules:
        doc = campaign_doc(campaign)
        return cls(campaign, doc, load_methodology(doc.methodology))


@dataclass
class DayTotal:
    """A participant's day total of one (action, source): a row of ``day_action_totals``."""

    participation_id: int
    local_date: date
    action: str
    source: str
    user_id: int | None
    campaign_id: int
    total_milli: int = 0
    counted_milli: int = 0
    credit_mg: int = 0


_DAY_TOTAL_COLUMNS = tuple(field.name for field in fields(DayTotal))


@functools.cache
def _day_rows_query():
    table = DayActionTotal.__table__
    return select(*(table.c[name] for name in _DAY_TOTAL_COLUMNS)).where(
        table.c.participation_id == bindparam("participation_id"),
        table.c.local_date.between(bindparam("first"), bindparam("last")))


@functools.cache
def _day_total_upsert(dialect: str):
    table = DayActionTotal.__table__
    return upsert_insert(table, dialect).on_conflict_do_update(
        index_elements=[table.c.participation_id, table.c.local_date, table.c.action,
                        table.c.source],
        set_={name: literal_column(f"excluded.{name}")
              for name in ("total_milli", "counted_milli", "credit_mg")})


class DayRows:
    """A participant's day totals of (action, source) over a window of dates, read in one
    query under the person-day lock (a missing row is a total of 0). Crediting changes them
    here; :meth:`write_calls` gives the upserts that store them (absolute values: the
    person-day lock keeps anyone else from changing them meanwhile)."""

    def __init__(self, rows):
        self.rows: dict[tuple[date, str, str], DayTotal] = {
            (row.local_date, row.action, row.source): DayTotal(*row) for row in rows}
        self.changed: dict[tuple[date, str, str], DayTotal] = {}

    @staticmethod
    def query(participation: Participation, first: date, last: date) -> tuple:
        """The :func:`run_together` call that reads the rows (for a pipeline of one's own)."""
        return (_day_rows_query(),
                {"participation_id": participation.id, "first": first, "last": last})

    @classmethod
    def load(cls, participation: Participation, first: date, last: date) -> DayRows:
        return cls(run_together([cls.query(participation, first, last)])[0])

    def of_day(self, day: date) -> dict[tuple[str, str], DayTotal]:
        return {(action, source): row for (d, action, source), row in self.rows.items()
                if d == day}

    def total(self, day: date, action: str, source: str) -> int:
        row = self.rows.get((day, action, source))
        return row.total_milli if row else 0

    def counted(self, day: date, action: str, source: str) -> int:
        row = self.rows.get((day, action, source))
        return row.counted_milli if row else 0

    def add(self, row: DayTotal) -> None:
        self.rows[(row.local_date, row.action, row.source)] = row

    def mark_changed(self, row: DayTotal) -> None:
        self.changed[(row.local_date, row.action, row.source)] = row

    def write_calls(self) -> list[tuple]:
        """The upserts of the rows changed since the last call."""
        statement = _day_total_upsert(dialect_name())
        calls = [(statement, asdict(row)) for row in self.changed.values()]
        self.changed.clear()
        return calls


def credit_units(rules: CampaignRules, participation: Participation, rule: ActionRule,
                 day: date, source: str, quantity_milli: int,
                 counted_elsewhere_milli: int = 0,
                 day_rows: DayRows | None = None) -> tuple[int, int]:
    """Add ``quantity_milli`` to the participant's day total of (action, source) and return
    (counted_milli, reduction_mg) of this intake: caps and minimums on the day total, what
    other campaigns counted, and the credit groups. Call under the person-day lock. Without
    ``day_rows`` the day's rows are read and the changed one written here; with them the
    caller writes them (``day_rows.write_calls()``), in a round trip of its own."""
    write_now = day_rows is None
    day_rows = day_rows or DayRows.load(participation, day, day)
    credits = day_rows.of_day(day)
    key = (rule.key, source)
    row = credits.get(key)
    if row is None:
        row = DayTotal(participation.id, day, rule.key, source, participation.user_id,
                       participation.campaign_id)
        day_rows.add(row)
        credits[key] = row
    delta = checkin_delta(row.total_milli, quantity_milli, counted_before_milli=row.counted_milli,
                          counted_elsewhere_milli=counted_elsewhere_milli,
                          cap_milli=rule.cap_milli, min_milli=rule.min_milli,
                          factor_milli=rule.factor_milli)
    before = {k: r.credit_mg for k, r in credits.items()}
    row.total_milli += quantity_milli
    row.counted_milli += delta.counted_milli
    row.credit_mg = credit_mg(row.counted_milli, rule.factor_milli)
    after = {k: r.credit_mg for k, r in credits.items()}
    reduction = entry_reduction_mg(before, after, rules.methodology.credit_groups,
                                   car_free_day_max=rules.doc.car_free_day_max)
    day_rows.mark_changed(row)
    if write_now:
        run_together(day_rows.write_calls())
    return delta.counted_milli, reduction


def day_total(participation: Participation, action: str, source: str, day: date) -> int:
    """What was submitted of (action, source) that day (held intakes not included)."""
    # A column read, not the entity: day totals are written by upserts, never through the
    # session, so a loaded entity could be stale.
    return db.session.scalar(select(DayActionTotal.total_milli).where(
        DayActionTotal.participation_id == participation.id, DayActionTotal.local_date == day,
        DayActionTotal.action == action, DayActionTotal.source == source)) or 0


def signals_for(rules: CampaignRules, participation: Participation, rule: ActionRule,
                day: date, source: str, day_total_milli: int, distance_m: int | None = None,
                duration_s: int | None = None,
                day_rows: DayRows | None = None) -> tuple[str, ...]:
    """The methodology's plausibility signals this intake meets (empty: count it).
    ``day_rows``, when given, covers the 7 days before ``day``."""
    over_cap_days = 0
    if rule.cap_milli is not None:
        previous = day - timedelta(days=1)
        while over_cap_days < 7 and (
                day_rows.total(previous, rule.key, source) if day_rows is not None
                else day_total(participation, rule.key, source, previous)) > rule.cap_milli:
            over_cap_days += 1
            previous -= timedelta(days=1)
    return intake_signals(rules.methodology, rule.key, Intake(
        day_total_milli=day_total_milli, cap_milli=rule.cap_milli,
        previous_days_over_cap=over_cap_days, distance_m=distance_m, duration_s=duration_s))


def hold_intake(participation: Participation, rule: ActionRule, day: date, source: str,
                source_ref: str | None, quantity_milli: int, signals: tuple[str, ...],
                now: datetime) -> Hold:
    """Keep an implausible intake out of the ledger until an organiser decides. Flushes."""
    hold = Hold(campaign_id=participation.campaign_id, participation_id=participation.id,
                source=source, source_ref=source_ref, action=rule.key, local_date=day,
                quantity_milli=quantity_milli, signals=list(signals), status="held",
                created_dt=now, updated_dt=now)
    db.session.add(hold)
    db.session.flush()
    return hold


def append_drafts(drafts: list[EntryDraft], now: datetime, writes_first: list = ()) -> None:
    """Lock the chain heads of the drafts' campaigns (ascending id) and append each draft in
    order; sets ``draft.seq``. ``writes_first``: see :func:`append_entries` (sent even when
    there is no draft)."""
    entries = [NewEntry(d.campaign, d.participation, d.rule.key, d.local_date, d.quantity_milli,
                        d.counted_milli, d.rule.factor_milli, d.reduction_mg, d.source,
                        d.source_ref, d.rule.methodology_version) for d in drafts]
    # The challenges' reads go out with the appends' last writes (one round trip less
    # under the chain-head lock).
    participants = list(dict.fromkeys((d.participation, d.campaign) for d in drafts))
    reads = [completion_reads(participation, campaign)
             for participation, campaign in participants]
    read_rows = iter(append_entries(entries, now,
                                    reads_after=[call for calls in reads for call in calls],
                                    writes_first=writes_first))
    for draft, entry in zip(drafts, entries, strict=True):
        draft.seq, draft.day_total_mg = entry.seq, entry.day_total_mg
    for (participation, campaign), calls in zip(participants, reads, strict=True):
        if calls:
            record_completions(participation, campaign, now,
                               [next(read_rows) for _ in calls])
