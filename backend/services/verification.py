"""Verifying a campaign's chain (`flask ledger verify`, GET .../ledger/verify).

A run re-hashes the entries after a trusted point (the last verified seq, whose stored hash is
checked again first; seq 0 for a full run), checks that each entry's participation is the one
its pid names, and that the head seq and the sum of reduction_mg equal the campaign's running
totals, so that a deleted tail is caught too. The result is stored on the chain head; a failed
run keeps the last good point, so every later run finds the fault again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from backend.extensions import db
from backend.models import Campaign, CampaignLedger, LedgerEntry, Participation
from campaigns.ledger import GENESIS, ChainVerifier, entry_fields

BATCH = 5000
INCREMENTAL_EVERY = timedelta(minutes=1)
FULL_EVERY = timedelta(hours=1)

LINE_COLUMNS = (LedgerEntry.seq, LedgerEntry.pid, LedgerEntry.action, LedgerEntry.local_date,
                LedgerEntry.quantity_milli, LedgerEntry.counted_milli, LedgerEntry.factor_milli,
                LedgerEntry.reduction_mg, LedgerEntry.source, LedgerEntry.source_ref,
                LedgerEntry.methodology_version, LedgerEntry.created_dt, LedgerEntry.prev_hash,
                LedgerEntry.hash)


@dataclass(frozen=True)
class Verification:
    ok: bool
    first_bad_seq: int | None
    entries: int
    head_seq: int
    head_hash: str


def line_of(row, campaign_slug: str) -> dict:
    """A stored entry (a LedgerEntry, or a row of LINE_COLUMNS) as its chain line (API.md
    "Ledger chain"), with the hashes as stored: what a verifier must be able to recompute."""
    return {**entry_fields(
        seq=row.seq, campaign=campaign_slug, participant=row.pid, action=row.action,
        local_date=row.local_date, quantity_milli=row.quantity_milli,
        counted_milli=row.counted_milli, factor_milli=row.factor_milli,
        reduction_mg=row.reduction_mg, source=row.source, source_ref=row.source_ref,
        methodology_version=row.methodology_version, created_dt=row.created_dt),
        "prev_hash": row.prev_hash, "hash": row.hash}


def entry_rows(campaign_id: int, after_seq: int, upto_seq: int, *extra, batch: int = BATCH,
               release=None) -> Iterator:
    """Entries after_seq < seq <= upto_seq in chain order, read in keyset batches. Entries are
    never updated, so the batches together are one consistent snapshot whatever is appended
    meanwhile. ``release`` runs after each batch (to end a read transaction early)."""
    while after_seq < upto_seq:
        rows = db.session.execute(
            select(*LINE_COLUMNS, *extra)
            .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.seq > after_seq,
                   LedgerEntry.seq <= upto_seq)
            .order_by(LedgerEntry.seq).limit(batch)).all()
        if release is not None:
            release()
        if not rows:
            return
        yield from rows
        after_seq = rows[-1].seq


def _check(campaign: Campaign, ledger: CampaignLedger, after_seq: int,
           after_hash: str) -> Verification:
    """Re-hash the entries after (after_seq, after_hash) up to the head read in ``ledger``, and
    compare the head and the sum of reduction_mg of every entry up to it with the running
    totals (a changed amount anywhere, or a deleted tail, shows there)."""
    verifier = ChainVerifier(after_seq, after_hash)
    misattributed = None
    owner = select(Participation.pid).where(
        Participation.id == LedgerEntry.participation_id).scalar_subquery().label("owner_pid")
    for row in entry_rows(campaign.id, after_seq, ledger.head_seq, owner):
        verifier.feed(line_of(row, campaign.slug))
        # Whom the projections credit (participation_id) must be whom the hash names (pid).
        if misattributed is None and row.owner_pid != row.pid:
            misattributed = row.seq
    verdict = verifier.verdict()
    first_bad = verdict.first_bad_seq
    if misattributed is not None and (first_bad is None or misattributed < first_bad):
        first_bad = misattributed
    total_mg = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.reduction_mg), 0))
                                 .where(LedgerEntry.campaign_id == campaign.id,
                                        LedgerEntry.seq <= ledger.head_seq))
    if first_bad is None and (verdict.head_seq != ledger.head_seq
                              or verdict.head_hash != ledger.head_hash
                              or int(total_mg) != ledger.total_mg):
        # The chain is whole but shorter (or other) than what was counted: the first entry
        # that should follow the verified head is missing, or an amount changed before it.
        first_bad = min(verdict.head_seq, ledger.head_seq) + 1
    return Verification(first_bad is None, first_bad, after_seq + verifier.entries,
                        verdict.head_seq, verdict.head_hash)


def _stored_hash_holds(campaign: Campaign, ledger: CampaignLedger) -> bool:
    if ledger.verified_seq == 0:
        return True
    stored = db.session.scalar(select(LedgerEntry.hash).where(
        LedgerEntry.campaign_id == campaign.id, LedgerEntry.seq == ledger.verified_seq))
    return stored is not None and stored == ledger.verified_hash


def run_verification(campaign: Campaign, now: datetime, *, full: bool) -> Verification:
    """Verify (all of the chain, or what follows the last verified seq) and record the result.
    Commits."""
    ledger = db.session.get(CampaignLedger, campaign.id, populate_existing=True)
    full = full or ledger.verified_seq == 0 or ledger.first_bad_seq is not None
    if not full and not _stored_hash_holds(campaign, ledger):
        full = True  # an already verified entry changed: only a full run can say where
    if not full:
        result = _check(campaign, ledger, ledger.verified_seq, ledger.verified_hash)
        # A fault the incremental run sees (a sum that no longer adds up may come from before
        # the verified seq) is located by a full run.
        full = not result.ok
    if full:
        result = _check(campaign, ledger, 0, GENESIS)
    values = {"verified_dt": now, "first_bad_seq": result.first_bad_seq}
    if full:
        values["full_verified_dt"] = now
    if result.ok:
        values.update(verified_seq=result.head_seq, verified_hash=result.head_hash)
    db.session.rollback()  # end the reading transaction before writing the head row
    db.session.execute(update(CampaignLedger).where(
        CampaignLedger.campaign_id == campaign.id).values(**values))
    db.session.commit()
    return result


def verify_ledger(campaign: Campaign, now: datetime) -> Verification:
    """A full verification (the CLI), recorded."""
    return run_verification(campaign, now, full=True)


def latest_verification(campaign: Campaign, now: datetime) -> dict:
    """GET .../ledger/verify: the stored result, refreshed at most once a minute (incremental;
    a full re-hash when the last full one is an hour old). Concurrent requests that find a
    run due let one of them run it (a conditional claim on verified_dt)."""
    ledger = db.session.get(CampaignLedger, campaign.id)
    last = ledger.verified_dt
    if last is None or now - last >= INCREMENTAL_EVERY:
        full_due = ledger.full_verified_dt is None or now - ledger.full_verified_dt >= FULL_EVERY
        db.session.rollback()
        claim = update(CampaignLedger).where(CampaignLedger.campaign_id == campaign.id)
        claim = claim.where(CampaignLedger.verified_dt.is_(None) if last is None
                            else CampaignLedger.verified_dt == last)
        claimed = db.session.execute(claim.values(verified_dt=now)).rowcount == 1
        db.session.commit()
        if claimed:
            run_verification(campaign, now, full=full_due)
    ledger = db.session.get(CampaignLedger, campaign.id, populate_existing=True)
    return {
        "entries": ledger.verified_seq if ledger.first_bad_seq is None else ledger.head_seq,
        "head_seq": ledger.verified_seq, "head_hash": ledger.verified_hash or GENESIS,
        "ok": ledger.first_bad_seq is None, "first_bad_seq": ledger.first_bad_seq,
        "verified_at": ledger.verified_dt, "full_verified_at": ledger.full_verified_dt,
    }
