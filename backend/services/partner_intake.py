"""Trips and records pushed by partners: matched to a person, credited to exactly one of
their campaigns, each (partner, id) counted once ever, implausible items held."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import Participation, Partner, PartnerItem
from backend.schemas.partners import RecordItemArgs, TripItemArgs
from backend.services.candidates import candidates, joined
from backend.services.crediting import (
    CampaignRules,
    EntryDraft,
    append_drafts,
    credit_units,
    day_total,
    hold_intake,
    signals_for,
)
from backend.services.ledger import lock_person_days
from backend.services.partners import find_person
from campaigns.calendar import local_date
from campaigns.crediting import ACTION_NOT_COUNTED, choose_campaign, trip_action
from campaigns.decimals import DecimalInvalid, parse_milli
from campaigns.document import ActionRule, effective_actions
from campaigns.methodology import kind_rule

SOURCE = "partner"


@dataclass
class Outcome:
    """Per-item results of a batch (API.md partner reply)."""

    accepted: int = 0
    held: int = 0
    duplicates: int = 0
    unmatched: int = 0
    rejected: list[dict] = field(default_factory=list)

    def reject(self, item_id, code: str) -> None:
        self.rejected.append({"id": item_id if isinstance(item_id, str) else None, "code": code})


@dataclass
class Placed:
    """An item matched to a person and a campaign, waiting for the person-day lock."""

    item_id: str
    participation: Participation
    rules: CampaignRules
    rule: ActionRule
    day: date
    quantity_milli: int
    distance_m: int | None = None
    duration_s: int | None = None


def _partner_rules(rules: CampaignRules, day: date) -> dict[str, ActionRule]:
    """The campaign's actions that partners may feed on that day."""
    return {r.key: r for r in effective_actions(rules.doc, rules.methodology, day)
            if SOURCE in r.sources}


def _not_counted(kind: str, item: dict):
    """The rejection code of an item in a campaign on a day (None: the campaign counts it)."""

    def check(rules: CampaignRules, day: date) -> str | None:
        if kind == "trip":
            return trip_action(item["mode"], item.get("distance_m"),
                               _partner_rules(rules, day)).code
        return None if item["action"] in _partner_rules(rules, day) else ACTION_NOT_COUNTED

    return check


def _quantity(rule: ActionRule, raw) -> int | None:
    try:
        milli = parse_milli(raw)
    except DecimalInvalid:
        return None
    if milli <= 0 or (kind_rule(rule.kind).integral and milli % 1000):
        return None
    return milli


def _place(kind: str, item: dict, memberships, now: datetime,
           outcome: Outcome) -> Placed | None:
    """Choose the one campaign that credits the item, or record why none does."""
    instant = item["ended_at"] if kind == "trip" else item["occurred_at"]
    choice = choose_campaign(candidates(
        memberships, now, item_date=lambda rules: local_date(instant, rules.doc.timezone),
        not_counted=_not_counted(kind, item)), source=SOURCE)
    if choice.campaign_id is None:
        outcome.reject(item["id"], choice.code)
        return None
    participation, rules = next(m for m in memberships if m[1].campaign.id == choice.campaign_id)
    day = local_date(instant, rules.doc.timezone)
    if kind == "trip":
        counted_rules = _partner_rules(rules, day)
        mapped = trip_action(item["mode"], item.get("distance_m"), counted_rules)
        rule = counted_rules[mapped.action]
        quantity, distance = mapped.quantity_milli, item.get("distance_m")
        started = item.get("started_at")
        duration = int((instant - started).total_seconds()) if started else None
        return Placed(item["id"], participation, rules, rule, day, quantity, distance, duration)
    rule = _partner_rules(rules, day)[item["action"]]
    quantity = _quantity(rule, item["quantity"])
    if quantity is None:
        outcome.reject(item["id"], "validation.failed")
        return None
    return Placed(item["id"], participation, rules, rule, day, quantity)


def ingest_items(partner: Partner, kind: str, raw_items: list, now: datetime) -> Outcome:
    """Match, place, lock, credit and append a batch of trips or records. Flushes.

    Unmatched and rejected items are not remembered (they may be sent again); accepted and
    held ones are, and a later copy is a duplicate.
    """
    outcome = Outcome()
    schema = TripItemArgs() if kind == "trip" else RecordItemArgs()
    campaign_ids = [c.id for c in partner.campaigns]
    seen: set[str] = set()
    placed: list[Placed] = []
    for raw in raw_items:
        raw_id = raw.get("trip_id" if kind == "trip" else "record_id") \
            if isinstance(raw, dict) else None
        try:
            item = schema.load(raw if isinstance(raw, dict) else {})
        except ValidationError:
            outcome.reject(raw_id, "validation.failed")
            continue
        if item["id"] in seen or _remembered(partner, item["id"]):
            outcome.duplicates += 1
            continue
        user_id = find_person(partner, item.get("unionid"), item.get("member_ref"))
        memberships = joined(user_id, campaign_ids) if user_id is not None else []
        if not memberships:
            outcome.unmatched += 1
            continue
        spot = _place(kind, item, memberships, now, outcome)
        if spot is not None:
            seen.add(item["id"])
            placed.append(spot)
    lock_person_days((p.participation.user_id, p.day) for p in placed)
    drafts = []
    for spot in placed:
        draft = _credit(partner, kind, spot, now, outcome)
        if draft is not None:
            drafts.append(draft)
    append_drafts(drafts, now)
    for draft in drafts:
        draft.item.entry_seq = draft.seq
    return outcome


def _remembered(partner: Partner, item_id: str) -> bool:
    return db.session.scalar(select(PartnerItem.id).where(
        PartnerItem.partner_id == partner.id, PartnerItem.item_id == item_id)) is not None


@dataclass
class ItemDraft(EntryDraft):
    item: PartnerItem | None = None


def _credit(partner: Partner, kind: str, spot: Placed, now: datetime,
            outcome: Outcome) -> ItemDraft | None:
    item = PartnerItem(partner_id=partner.id, item_id=spot.item_id, kind=kind,
                       campaign_id=spot.rules.campaign.id,
                       participation_id=spot.participation.id, action=spot.rule.key,
                       local_date=spot.day, quantity_milli=spot.quantity_milli,
                       status="accepted", created_dt=now)
    try:
        with db.session.begin_nested():
            db.session.add(item)
            db.session.flush()
    except IntegrityError:  # a concurrent batch remembered it first
        outcome.duplicates += 1
        return None
    ref = f"{partner.name}:{spot.item_id}"
    total = day_total(spot.participation, spot.rule.key, SOURCE, spot.day) + spot.quantity_milli
    signals = signals_for(spot.rules, spot.participation, spot.rule, spot.day, SOURCE, total,
                          spot.distance_m, spot.duration_s)
    if signals:
        item.status = "held"
        hold_intake(spot.participation, spot.rule, spot.day, SOURCE, ref, spot.quantity_milli,
                    signals, now)
        outcome.held += 1
        return None
    counted, reduction = credit_units(spot.rules, spot.participation, spot.rule, spot.day,
                                      SOURCE, spot.quantity_milli)
    outcome.accepted += 1
    return ItemDraft(spot.rules.campaign, spot.participation, spot.rule, spot.day,
                     spot.quantity_milli, counted, reduction, SOURCE, ref, item=item)
