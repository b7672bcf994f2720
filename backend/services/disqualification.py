"""Disqualifying a cheater: one reversal entry per entry, never a deletion."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, cast, select
from sqlalchemy.orm import aliased

from backend.errors import ApiError
from backend.extensions import db
from backend.models import Campaign, LedgerEntry, Participation
from backend.services.audit import record_audit
from backend.services.holds import reject_holds_of
from backend.services.ledger import NewEntry, append_entries, lock_ledgers, lock_person_days
from backend.services.projections import sync_on_board


def find_by_pid(campaign: Campaign, pid: str) -> Participation:
    participation = db.session.scalars(
        select(Participation).where(Participation.campaign_id == campaign.id,
                                    Participation.pid == pid)
    ).one_or_none()
    if participation is None:
        raise ApiError(404, "not_found")
    return participation


def disqualify(campaign: Campaign, pid: str, reason: str, actor, now: datetime) -> int:
    """Reverse every entry of the participant once and refuse their later intake.

    Returns the number of reversals appended: 0 when already disqualified. Flushes.
    """
    participation = find_by_pid(campaign, pid)
    reversed_ = aliased(LedgerEntry)
    pending_query = (
        select(LedgerEntry).where(
            LedgerEntry.participation_id == participation.id, LedgerEntry.source != "reversal",
            ~select(reversed_.id).where(
                reversed_.campaign_id == campaign.id, reversed_.source == "reversal",
                reversed_.source_ref == cast(LedgerEntry.seq, String)).exists())
        .order_by(LedgerEntry.seq)
    )
    if participation.user_id is not None:
        dates = db.session.scalars(select(LedgerEntry.local_date).where(
            LedgerEntry.participation_id == participation.id).distinct())
        lock_person_days((participation.user_id, day) for day in dates)
    ledger = lock_ledgers([campaign.id])[campaign.id]
    db.session.refresh(participation)
    if participation.disqualified_dt is not None:
        return 0
    pending = list(db.session.scalars(pending_query))
    append_entries([
        NewEntry(campaign, participation, entry.action, entry.local_date, entry.quantity_milli,
                 entry.counted_milli, entry.factor_milli, -entry.reduction_mg, "reversal",
                 str(entry.seq), entry.methodology_version) for entry in pending],
        now, ledgers={campaign.id: ledger})
    participation.disqualified_dt = now
    participation.disqualified_reason = reason
    sync_on_board([participation.id])
    reject_holds_of(participation, actor, now)
    ledger.participants -= 1
    db.session.flush()
    record_audit(actor, "participant.disqualify", campaign, pid, {"disqualified": False},
                 {"disqualified": True, "reason": reason, "reversals": len(pending)})
    return len(pending)

