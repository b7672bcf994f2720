"""Appending to a campaign's hash chain, and the locks intake takes (DESIGN.md order:
idempotency record, person-day rows, then chain heads in ascending campaign id)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from flask import g, has_request_context
from sqlalchemy import bindparam, select
from sqlalchemy.orm.util import identity_key

from backend.extensions import db
from backend.models import Campaign, CampaignLedger, Participation, PersonDay
from backend.services.appends import apply_entries
from backend.services.statements import dialect_name, run_together, upsert_insert
from campaigns.ledger import GENESIS, make_line


def new_ledger(campaign: Campaign) -> CampaignLedger:
    """The empty chain of a new campaign."""
    ledger = CampaignLedger(campaign_id=campaign.id, head_seq=0, head_hash=GENESIS, total_mg=0,
                            records=0, participants=0, active_participants=0,
                            verified_seq=0)
    db.session.add(ledger)
    return ledger


def person_days_lock(days: Iterable[tuple[int, date]]):
    """The statement that locks (creating when missing) one row per (user, date), in
    ascending order, so that concurrent intakes for the same person and day run one after
    the other: an upsert that "updates" an existing row takes its lock, row by row in
    VALUES order."""
    wanted = sorted(set(days))
    statement = upsert_insert(PersonDay.__table__).values(
        [{"user_id": u, "local_date": d} for u, d in wanted])
    return statement.on_conflict_do_update(
        index_elements=[PersonDay.user_id, PersonDay.local_date],
        set_={"user_id": statement.excluded.user_id})


@functools.cache
def _person_day_lock(dialect: str):
    table = PersonDay.__table__
    statement = upsert_insert(table, dialect)
    return statement.on_conflict_do_update(index_elements=[table.c.user_id, table.c.local_date],
                                           set_={"user_id": statement.excluded.user_id})


def person_day_lock(user_id: int, day: date) -> tuple:
    """:func:`person_days_lock` of one day, as a :func:`run_together` call built once."""
    return (_person_day_lock(dialect_name()),
            {"user_id": user_id, "local_date": day})


def lock_person_days(days: Iterable[tuple[int, date]]) -> None:
    """Lock the person-day rows of these (user, date) now (see :func:`person_days_lock`)."""
    days = list(days)
    if days:
        db.session.execute(person_days_lock(days))


def lock_ledgers(campaign_ids: Iterable[int]) -> dict[int, CampaignLedger]:
    """Lock the chain heads of these campaigns in ascending id (after the person-day locks)."""
    ledgers = {}
    for campaign_id in sorted(set(campaign_ids)):
        ledgers[campaign_id] = db.session.scalars(
            select(CampaignLedger).where(CampaignLedger.campaign_id == campaign_id)
            .with_for_update().execution_options(populate_existing=True)
        ).one()
    return ledgers


@functools.cache
def _head_lock():
    table = CampaignLedger.__table__
    return (select(table.c.campaign_id, table.c.head_seq, table.c.head_hash)
            .where(table.c.campaign_id == bindparam("campaign_id")).with_for_update())


def lock_heads(campaign_ids: Iterable[int],
               writes_first: list = ()) -> dict[int, tuple[int, str]]:
    """:func:`lock_ledgers` for appends: the (seq, hash) of each locked head, read as rows
    (one round trip, after ``writes_first``: calls of :func:`run_together` whose rows are
    not needed)."""
    locks = [(_head_lock(), {"campaign_id": campaign_id})
             for campaign_id in sorted(set(campaign_ids))]
    rows = run_together([*writes_first, *locks])[len(writes_first):]
    return {row.campaign_id: (row.head_seq, row.head_hash) for (row,) in rows}


@dataclass
class NewEntry:
    """An entry to chain: ``seq`` is set once appended."""

    campaign: Campaign
    participation: Participation
    action: str
    local_date: date
    quantity_milli: int
    counted_milli: int
    factor_milli: int
    reduction_mg: int
    source: str
    source_ref: str | None
    methodology_version: str
    seq: int | None = None
    day_total_mg: int | None = None  # the participant's day total after the append


def append_entries(entries: list[NewEntry], now: datetime,
                   ledgers: dict[int, CampaignLedger] | None = None,
                   reads_after: list = (), writes_first: list = ()) -> list[list[tuple]]:
    """Chain these entries in order onto their campaigns' heads (locked here in ascending
    campaign id unless ``ledgers`` are given, already locked), insert them in one statement
    and update the projections. Sets each ``entry.seq``. ``reads_after``: Core reads sent
    with the last writes (they see them); their rows are returned. ``writes_first``: the
    request's writes that come before the heads' locks, sent in their round trip."""
    if not entries:
        run_together(list(writes_first))
        return []
    if ledgers is None:
        heads = lock_heads((entry.campaign.id for entry in entries), writes_first)
        for campaign_id in heads:  # a head loaded earlier in the session is read again
            loaded = db.session.identity_map.get(identity_key(CampaignLedger, campaign_id))
            if loaded is not None:
                db.session.expire(loaded)
    else:
        run_together(list(writes_first))
        heads = {campaign_id: (ledger.head_seq, ledger.head_hash)
                 for campaign_id, ledger in ledgers.items()}
    rows = []
    for entry in entries:
        seq = heads[entry.campaign.id][0] + 1
        line = make_line(
            heads[entry.campaign.id][1], seq=seq, campaign=entry.campaign.slug,
            participant=entry.participation.pid, action=entry.action,
            local_date=entry.local_date, quantity_milli=entry.quantity_milli,
            counted_milli=entry.counted_milli, factor_milli=entry.factor_milli,
            reduction_mg=entry.reduction_mg, source=entry.source, source_ref=entry.source_ref,
            methodology_version=entry.methodology_version, created_dt=now,
        )
        heads[entry.campaign.id] = (seq, line["hash"])
        entry.seq = seq
        rows.append({
            "campaign_id": entry.campaign.id, "seq": seq,
            "participation_id": entry.participation.id, "pid": entry.participation.pid,
            "action": entry.action, "local_date": entry.local_date,
            "quantity_milli": entry.quantity_milli, "counted_milli": entry.counted_milli,
            "factor_milli": entry.factor_milli, "reduction_mg": entry.reduction_mg,
            "source": entry.source, "source_ref": entry.source_ref,
            "methodology_version": entry.methodology_version, "created_dt": now,
            "prev_hash": line["prev_hash"], "hash": line["hash"]})
    scores, read_rows = apply_entries(entries, rows, ledgers, heads, reads_after)
    if has_request_context():  # mirrored on the Redis boards after the request commits
        g.setdefault("tanpu_appended", []).append(
            (scores, [(entry.campaign.id, entry.seq) for entry in entries]))
    return read_rows
