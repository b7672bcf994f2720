"""A model of self-reported check-ins, written from DESIGN.md ("Counting rules", including
"Plausibility holds") and the methodology table alone, to compare the server with.

It deliberately imports nothing from ``campaigns`` or ``backend`` (test_checkin_model.py checks
this): factors, caps and minimums are copied from methodology-cn-consumer-v1.md, and every rule
is re-stated here in plain integer arithmetic.

Units: quantities and factors in thousandths (``_milli``), amounts in milligrams (``_mg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

METHODOLOGY_VERSION = "cn-consumer-v1"


@dataclass(frozen=True)
class Rule:
    kind: str  # once_daily | count | distance | weight | steps
    factor_milli: int  # thousandths of a gram CO2e per unit
    cap_milli: int  # daily cap, thousandths of a unit
    min_milli: int  # minimum day total, thousandths of a unit
    sources: tuple[str, ...]


def milli(value) -> int:
    """An exact decimal with at most 3 decimals (int, str or a float's shortest repr) as an
    integer number of thousandths."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    scaled = number.scaleb(3)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than 3 decimals")
    return int(scaled)


# From methodology-cn-consumer-v1.md: kind, g CO2e per unit, daily cap, minimum, sources.
METHODOLOGY: dict[str, Rule] = {
    "walk_steps": Rule("steps", milli("0.02"), milli(10000), milli(1000), ("werun",)),
    "cycle_km": Rule("distance", milli(47), milli(15), 0, ("partner", "checkin")),
    "bus_ride": Rule("count", milli(80), milli(6), 0, ("partner", "checkin")),
    "bus_km": Rule("distance", milli("26.9"), milli(40), 0, ("partner",)),
    "metro_ride": Rule("count", milli(52), milli(5), 0, ("partner", "checkin")),
    "metro_km": Rule("distance", milli("46.8"), milli(60), 0, ("partner",)),
    "car_free_day": Rule("once_daily", milli(3700), milli(1), 0, ("checkin",)),
    "clean_plate": Rule("count", milli(144), milli(2), 0, ("checkin",)),
    "reusable_bag": Rule("count", milli(15), milli(3), 0, ("checkin",)),
    "reusable_cup": Rule("count", milli(16), milli(3), 0, ("checkin",)),
    "e_invoice": Rule("count", milli(5), milli(5), 0, ("checkin", "partner")),
    "e_ticket": Rule("count", milli(136), milli(2), 0, ("checkin", "partner")),
    "online_meeting": Rule("count", milli(400), milli(2), 0, ("checkin", "partner")),
    "clothes_recycle": Rule("weight", milli(1280), milli(20), 0, ("partner", "checkin")),
    "electronics_recycle": Rule("weight", milli(1000), milli(10), 0, ("partner",)),
    "etc_pass": Rule("count", milli(68), milli(4), 0, ("partner",)),
}

# Credit groups (DESIGN.md): each trip mode is credited the larger of its self-reported and
# its partner credit; with car_free_day_max the day's transport credit is the larger of the
# car-free-day credit and the sum of the mode credits.
MODES: dict[str, tuple[str, ...]] = {
    "bus": ("bus_ride", "bus_km"),
    "metro": ("metro_ride", "metro_km"),
    "bike": ("cycle_km",),
}
CAR_FREE_DAY = "car_free_day"
GROUPED = {action for actions in MODES.values() for action in actions} | {CAR_FREE_DAY}
# Plausibility signal of the methodology that applies to check-ins: more than the daily cap of a
# count action three days in a row (this day and the two before it) holds the intake.
OVER_CAP_DAYS_IN_ROW = 3


def counted(total_milli: int, rule: Rule) -> int:
    """counted(total) = 0 if total < min else min(total, cap)."""
    if total_milli < rule.min_milli:
        return 0
    return min(total_milli, rule.cap_milli)


def credit_mg(counted_milli: int, factor_milli: int) -> int:
    """floor(counted × factor_g × 1000) mg: thousandths × thousandths = millionths of a gram."""
    return counted_milli * factor_milli // 1000


@dataclass(frozen=True)
class CampaignSpec:
    """What the model needs of a campaign: dates, points, rules and its action overrides
    (the document's ``factor_g``, ``daily_cap``, ``min_quantity``, ``sources``)."""

    slug: str
    starts_on: date
    ends_on: date
    late_entry_days: int
    points_per_g: str
    car_free_day_max: bool
    overrides: dict[str, dict]

    def rule(self, action: str) -> Rule:
        base = METHODOLOGY[action]
        override = self.overrides[action]
        return Rule(
            base.kind,
            milli(override["factor_g"]) if "factor_g" in override else base.factor_milli,
            milli(override["daily_cap"]) if "daily_cap" in override else base.cap_milli,
            milli(override["min_quantity"]) if "min_quantity" in override else base.min_milli,
            tuple(override.get("sources", base.sources)),
        )

    def points(self, total_mg: int) -> int:
        """floor(total mg × points_per_g / 1000)."""
        return total_mg * milli(self.points_per_g) // 1_000_000


@dataclass(frozen=True)
class Outcome:
    """What a request should answer: an error code, or the check-in's figures."""

    status: int
    code: str | None = None
    action: str | None = None
    day: date | None = None
    quantity_milli: int = 0
    counted_milli: int = 0
    factor_milli: int = 0
    reduction_mg: int = 0
    capped: bool = False
    claimed_by: str | None = None
    day_mg: int = 0
    total_mg: int = 0
    points: int = 0
    held: bool = False


@dataclass
class _DayAction:
    total_milli: int = 0  # everything submitted in this campaign for the day
    counted_milli: int = 0  # what this campaign counted


@dataclass
class _Member:
    joined_on: date
    days: dict[tuple[date, str], _DayAction] = field(default_factory=dict)
    once_done: set[tuple[date, str]] = field(default_factory=set)
    entries: list[tuple[str, date, int]] = field(default_factory=list)  # action, day, mg
    held: list[tuple[str, date, int]] = field(default_factory=list)  # action, day, quantity


class CheckinModel:
    """Participants joining campaigns and checking in, one request at a time."""

    def __init__(self, campaigns: list[CampaignSpec]) -> None:
        self.campaigns = {c.slug: c for c in campaigns}
        self.order = [c.slug for c in campaigns]  # creation order (lowest id first)
        self.members: dict[tuple[str, str], _Member] = {}

    # -- intake ------------------------------------------------------------------------------

    def _open(self, spec: CampaignSpec, today: date) -> bool:
        return spec.starts_on <= today <= spec.ends_on + timedelta(days=spec.late_entry_days)

    def join(self, person: str, slug: str, today: date) -> Outcome:
        spec = self.campaigns[slug]
        if not self._open(spec, today):
            return Outcome(409, "campaign.not_active")
        if (person, slug) in self.members:
            return Outcome(200)
        self.members[(person, slug)] = _Member(joined_on=today)
        return Outcome(201)

    def checkin(self, person: str, slug: str, action: str, quantity, on: date | None,
                today: date) -> Outcome:
        spec = self.campaigns[slug]
        member = self.members.get((person, slug))
        if member is None:
            return Outcome(409, "campaign.not_joined")
        if not self._open(spec, today):
            return Outcome(409, "campaign.not_active")
        day = on or today
        if (day > today or day < member.joined_on or day < spec.starts_on
                or day > spec.ends_on or day < today - timedelta(days=spec.late_entry_days)):
            return Outcome(422, "checkin.date_out_of_range")
        rule = spec.rule(action)
        if "checkin" not in rule.sources:
            return Outcome(422, "checkin.source_not_allowed")
        quantity_milli = milli(quantity) if quantity is not None else 1000
        if rule.kind == "once_daily":
            if (day, action) in member.once_done:
                return Outcome(409, "checkin.already_done")
            member.once_done.add((day, action))

        state = member.days.setdefault((day, action), _DayAction())
        if self._over_cap_streak(member, rule, action, day, state.total_milli + quantity_milli):
            # held for review: not appended, counts nowhere, not part of the day total
            member.held.append((action, day, quantity_milli))
            total = self.total_mg(person, slug)
            return Outcome(201, None, action, day, quantity_milli, 0, rule.factor_milli, 0,
                           True, None, self.day_credit_mg(person, slug, day), total,
                           spec.points(total), held=True)
        natural = (counted(state.total_milli + quantity_milli, rule)
                   - counted(state.total_milli, rule))
        elsewhere = self._counted_elsewhere(person, slug, day, action)
        room_alone = max(0, rule.cap_milli - state.counted_milli)
        room = max(0, rule.cap_milli - state.counted_milli - sum(elsewhere.values()))
        granted = min(natural, room)
        # claimed_by (API.md): another campaign already counted units of this check-in, i.e.
        # it counted less than its quantity, and less than it would have without the others.
        # (Crossing a minimum may count more than the quantity: then nothing of it is claimed.)
        claimed_by = None
        if granted < quantity_milli and granted < min(natural, room_alone):
            claimed_by = next(s for s in self.order if elsewhere.get(s, 0) > 0)

        before = self.day_credit_mg(person, slug, day)
        state.total_milli += quantity_milli
        state.counted_milli += granted
        after = self.day_credit_mg(person, slug, day)
        reduction = after - before
        member.entries.append((action, day, reduction))
        total = self.total_mg(person, slug)
        return Outcome(201, None, action, day, quantity_milli, granted, rule.factor_milli,
                       reduction, granted < quantity_milli, claimed_by, after, total,
                       spec.points(total))

    @staticmethod
    def _over_cap_streak(member: _Member, rule: Rule, action: str, day: date,
                         total_after: int) -> bool:
        if rule.kind != "count" or total_after <= rule.cap_milli:
            return False
        for back in range(1, OVER_CAP_DAYS_IN_ROW):
            earlier = member.days.get((day - timedelta(days=back), action))
            if earlier is None or earlier.total_milli <= rule.cap_milli:
                return False
        return True

    def _counted_elsewhere(self, person: str, slug: str, day: date, action: str) -> dict:
        result = {}
        for other in self.order:
            member = self.members.get((person, other))
            if other == slug or member is None:
                continue
            state = member.days.get((day, action))
            if state is not None and state.counted_milli:
                result[other] = state.counted_milli
        return result

    # -- figures -----------------------------------------------------------------------------

    def day_credit_mg(self, person: str, slug: str, day: date) -> int:
        """The participant's day credit in a campaign, with the credit groups applied."""
        spec = self.campaigns[slug]
        member = self.members[(person, slug)]
        credits = {action: credit_mg(state.counted_milli, spec.rule(action).factor_milli)
                   for (d, action), state in member.days.items() if d == day}
        # Self-reported only here: a mode's credit is the larger of self-reported and partner
        # credit, and the partner credit is 0.
        partner = 0
        modes = [max(sum(credits.get(a, 0) for a in actions), partner)
                 for actions in MODES.values()]
        car_free = credits.get(CAR_FREE_DAY, 0)
        transport = max(car_free, sum(modes)) if spec.car_free_day_max else car_free + sum(modes)
        others = sum(mg for action, mg in credits.items() if action not in GROUPED)
        return others + transport

    def total_mg(self, person: str, slug: str) -> int:
        return sum(mg for _, _, mg in self.members[(person, slug)].entries)

    def me(self, person: str, slug: str) -> dict:
        """/me figures: reduction_mg, points, days_active, by_action {key: (mg, records)}."""
        member = self.members[(person, slug)]
        total = self.total_mg(person, slug)
        by_action: dict[str, tuple[int, int]] = {}
        for action, _, mg in member.entries:
            mg_sum, records = by_action.get(action, (0, 0))
            by_action[action] = (mg_sum + mg, records + 1)
        days = {d for _, d, _ in member.entries}
        active = sum(1 for d in days if self.day_credit_mg(person, slug, d) > 0)
        return {"reduction_mg": total, "points": self.campaigns[slug].points(total),
                "days_active": active, "by_action": by_action, "held": list(member.held)}

    def ledger_totals(self, slug: str) -> tuple[int, int]:
        """(entries, sum of reduction_mg) of a campaign's ledger."""
        entries = [e for (_, s), m in self.members.items() if s == slug for e in m.entries]
        return len(entries), sum(mg for _, _, mg in entries)
