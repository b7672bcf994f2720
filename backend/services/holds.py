"""Deciding plausibility holds: a release appends one ``release`` entry with the intake's own
date; a rejection appends nothing. Each hold is decided once, both are audited."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import bindparam, func, select, update

from backend.errors import ApiError
from backend.extensions import db
from backend.models import (
    Campaign,
    Checkin,
    DayActionTotal,
    Hold,
    Participation,
    PartnerItem,
    WerunDay,
)
from backend.services.audit import record_audit
from backend.services.crediting import CampaignRules, EntryDraft, append_drafts, credit_units
from backend.services.ledger import lock_person_days
from campaigns.document import action_rule


def find_hold(campaign: Campaign, hold_id: int) -> Hold:
    hold = db.session.get(Hold, hold_id)
    if hold is None or hold.campaign_id != campaign.id:
        raise ApiError(404, "not_found")
    return hold


def _decide(hold: Hold, status: str, actor, now: datetime) -> None:
    """Leave ``held`` exactly once: a conditional update, so two decisions cannot both win."""
    changed = db.session.execute(
        update(Hold).where(Hold.id == hold.id, Hold.status == "held")
        .values(status=status, decided_by=getattr(actor, "email", str(actor)), decided_dt=now,
                updated_dt=now)
    ).rowcount
    if not changed:
        raise ApiError(409, "hold.already_decided")
    db.session.refresh(hold)


def _counted_elsewhere(participation: Participation, hold: Hold) -> int:
    if participation.user_id is None:
        return 0
    total = db.session.scalar(
        select(func.coalesce(func.sum(DayActionTotal.counted_milli), 0))
        .join(Participation, Participation.id == DayActionTotal.participation_id)
        .where(Participation.disqualified_dt.is_(None),
               DayActionTotal.user_id == participation.user_id,
               DayActionTotal.local_date == hold.local_date,
               DayActionTotal.action == hold.action,
               DayActionTotal.campaign_id != hold.campaign_id))
    return int(total)  # PostgreSQL sums bigints as numeric


def release_hold(campaign: Campaign, hold_id: int, actor, now: datetime) -> Hold:
    """Count a held intake now, under its original date and source. Flushes."""
    hold = find_hold(campaign, hold_id)
    participation = db.session.get(Participation, hold.participation_id)
    if participation.user_id is not None:
        lock_person_days([(participation.user_id, hold.local_date)])
    _decide(hold, "released", actor, now)
    rules = CampaignRules.of(campaign)
    rule = action_rule(rules.doc, rules.methodology, hold.action, hold.local_date)
    quantity, elsewhere = hold.quantity_milli, 0
    werun_day = None
    if hold.source == "werun":
        werun_day = db.session.get(WerunDay, (participation.user_id, hold.local_date))
        quantity -= werun_day.counted_steps * 1000 if werun_day else 0
    elif hold.source == "checkin":
        elsewhere = _counted_elsewhere(participation, hold)
    counted, reduction = credit_units(rules, participation, rule, hold.local_date, hold.source,
                                      max(quantity, 0), elsewhere)
    draft = EntryDraft(campaign, participation, rule, hold.local_date, max(quantity, 0), counted,
                       reduction, "release", f"hold:{hold.id}")
    append_drafts([draft], now)
    hold.entry_seq = draft.seq
    if hold.source == "werun":
        if werun_day is not None:
            werun_day.counted_steps = hold.quantity_milli // 1000
    elif hold.source == "checkin":
        checkin = db.session.get(Checkin, int(hold.source_ref))
        checkin.counted_milli, checkin.reduction_mg = counted, reduction
        checkin.entry_seq = draft.seq
    else:
        db.session.execute(update(PartnerItem).where(
            PartnerItem.campaign_id == campaign.id,
            PartnerItem.item_id == hold.source_ref.split(":", 1)[1],
            PartnerItem.participation_id == participation.id).values(
                status="accepted", entry_seq=draft.seq))
    record_audit(actor, "hold.release", campaign, f"hold:{hold.id}", {"status": "held"},
                 {"status": "released", "seq": draft.seq, "reduction_mg": reduction})
    return hold


def reject_hold(campaign: Campaign, hold_id: int, actor, now: datetime) -> Hold:
    """Refuse a held intake: nothing is appended. Flushes."""
    hold = find_hold(campaign, hold_id)
    _decide(hold, "rejected", actor, now)
    record_audit(actor, "hold.reject", campaign, f"hold:{hold.id}", {"status": "held"},
                 {"status": "rejected"})
    return hold


def reject_holds_of(participation: Participation, actor, now: datetime) -> int:
    """A disqualified participant's pending holds are rejected with them."""
    return db.session.execute(
        update(Hold).where(Hold.participation_id == participation.id, Hold.status == "held")
        .values(status="rejected", decided_by=getattr(actor, "email", str(actor)),
                decided_dt=now, updated_dt=now)
    ).rowcount


@functools.cache
def _held_statement():
    return (select(Hold.id, Hold.source, Hold.action, Hold.local_date, Hold.quantity_milli,
                   Hold.signals, Hold.created_dt)
            .where(Hold.participation_id == bindparam("participation_id"),
                   Hold.status == "held")
            .order_by(Hold.id))


def held_query(participation_id: int | None) -> tuple:
    """The participant's intakes waiting for an organiser, oldest first (a call of
    :func:`run_together`, built once)."""
    return (_held_statement(), {"participation_id": participation_id})
