"""Appending to a campaign's hash chain, and the locks intake takes (DESIGN.md order:
idempotency record, person-day rows, then chain heads in ascending campaign id)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.extensions import db
from backend.models import Campaign, CampaignLedger, LedgerEntry, Participation, PersonDay
from backend.services.projections import apply_entry
from campaigns.ledger import GENESIS, make_line


def new_ledger(campaign: Campaign) -> CampaignLedger:
    """The empty chain of a new campaign."""
    ledger = CampaignLedger(campaign_id=campaign.id, head_seq=0, head_hash=GENESIS, total_mg=0,
                            records=0, participants=0, active_participants=0,
                            verified_seq=0)
    db.session.add(ledger)
    return ledger


def lock_person_days(days: Iterable[tuple[int, date]]) -> None:
    """Lock (creating when missing) one row per (user, date), in ascending order, so that
    concurrent intakes for the same person and day run one after the other."""
    wanted = sorted(set(days))
    if not wanted:
        return
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(PersonDay).values([{"user_id": u, "local_date": d} for u, d in wanted])
        .on_conflict_do_nothing()
    )
    for user_id, day in wanted:
        db.session.execute(
            select(PersonDay.user_id).where(PersonDay.user_id == user_id,
                                            PersonDay.local_date == day).with_for_update()
        )


def lock_ledgers(campaign_ids: Iterable[int]) -> dict[int, CampaignLedger]:
    """Lock the chain heads of these campaigns in ascending id (after the person-day locks)."""
    ledgers = {}
    for campaign_id in sorted(set(campaign_ids)):
        ledgers[campaign_id] = db.session.scalars(
            select(CampaignLedger).where(CampaignLedger.campaign_id == campaign_id)
            .with_for_update().execution_options(populate_existing=True)
        ).one()
    return ledgers


def append_entry(
    ledger: CampaignLedger, campaign: Campaign, participation: Participation, *, action: str,
    local_date: date, quantity_milli: int, counted_milli: int, factor_milli: int,
    reduction_mg: int, source: str, source_ref: str | None, methodology_version: str,
    now: datetime,
) -> LedgerEntry:
    """Chain one entry onto the locked ``ledger`` and update the projections. Flushes."""
    seq = ledger.head_seq + 1
    line = make_line(
        ledger.head_hash, seq=seq, campaign=campaign.slug, participant=participation.pid,
        action=action, local_date=local_date, quantity_milli=quantity_milli,
        counted_milli=counted_milli, factor_milli=factor_milli, reduction_mg=reduction_mg,
        source=source, source_ref=source_ref, methodology_version=methodology_version,
        created_dt=now,
    )
    entry = LedgerEntry(
        campaign_id=campaign.id, seq=seq, participation_id=participation.id,
        pid=participation.pid, action=action, local_date=local_date,
        quantity_milli=quantity_milli, counted_milli=counted_milli, factor_milli=factor_milli,
        reduction_mg=reduction_mg, source=source, source_ref=source_ref,
        methodology_version=methodology_version, created_dt=now,
        prev_hash=line["prev_hash"], hash=line["hash"],
    )
    db.session.add(entry)
    ledger.head_seq = seq
    ledger.head_hash = line["hash"]
    apply_entry(entry, participation, ledger)
    db.session.flush()
    if has_request_context():  # mirrored on the Redis boards after the request commits
        g.setdefault("tanpu_appended", []).append(
            (campaign.id, participation.id, local_date, seq))
    return entry
