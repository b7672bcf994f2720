"""A model of WeRun syncs, partner trips and records and self-reported check-ins over several
campaigns, written from DESIGN.md ("Counting rules": caps and minimums, milligrams, credit
groups, one unit one campaign, WeRun, partners, entries, points) and API.md (the WeRun and
partner replies) alone, to compare the server with.

It deliberately imports nothing from ``campaigns``, ``backend`` or ``tests``
(test_intake_model.py checks this): factors, caps, minimums and sources are copied from
methodology-cn-consumer-v1.md and every rule is re-stated here in plain integer arithmetic.
Plausibility holds are not modelled: the scenarios stay clear of every signal.

Units: quantities and factors in thousandths (``_milli``), amounts in milligrams (``_mg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

METHODOLOGY_VERSION = "cn-consumer-v1"
WALK = "walk_steps"
CAR_FREE_DAY = "car_free_day"


def milli(value) -> int:
    """An exact decimal with at most 3 decimals (int, str or a float's shortest repr) as an
    integer number of thousandths."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    scaled = number.scaleb(3)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than 3 decimals")
    return int(scaled)


@dataclass(frozen=True)
class Rule:
    kind: str  # steps | once_daily | count | distance | weight
    factor_milli: int  # thousandths of a gram CO2e per unit
    cap_milli: int  # daily cap, thousandths of a unit
    min_milli: int  # minimum day total, thousandths of a unit
    sources: tuple[str, ...]


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

# Credit groups: a trip mode's actions; the car-free day is the alternative to transport.
GROUP_MODES: dict[str, tuple[str, ...]] = {
    "bus": ("bus_ride", "bus_km"),
    "metro": ("metro_ride", "metro_km"),
    "bike": ("cycle_km",),
}
GROUPED = {a for actions in GROUP_MODES.values() for a in actions} | {CAR_FREE_DAY}
# Partner trips: mode -> (the action by distance, the action per ride).
TRIP_ACTIONS: dict[str, tuple[str, str | None]] = {
    "bus": ("bus_km", "bus_ride"),
    "metro": ("metro_km", "metro_ride"),
    "bike": ("cycle_km", None),
}


def counted(total_milli: int, rule: Rule) -> int:
    """counted(total) = 0 if total < min else min(total, cap)."""
    return 0 if total_milli < rule.min_milli else min(total_milli, rule.cap_milli)


def credit_mg(counted_milli: int, factor_milli: int) -> int:
    """floor(counted × factor_g × 1000) mg: thousandths × thousandths = millionths of a gram."""
    return counted_milli * factor_milli // 1000


@dataclass(frozen=True)
class CampaignSpec:
    """What the model needs of a campaign: dates, zone, points, the car-free rule and its
    actions with the document's overrides (``factor_g``, ``daily_cap``, ``min_quantity``,
    ``sources``)."""

    slug: str
    starts_on: date
    ends_on: date
    late_entry_days: int
    points_per_g: str
    car_free_day_max: bool
    overrides: dict[str, dict]
    timezone: str = "Asia/Shanghai"

    def rule(self, action: str) -> Rule | None:
        """The effective rule, or None when the campaign does not count the action."""
        if action not in self.overrides:
            return None
        base, override = METHODOLOGY[action], self.overrides[action]
        return Rule(
            base.kind,
            milli(override["factor_g"]) if "factor_g" in override else base.factor_milli,
            milli(override["daily_cap"]) if "daily_cap" in override else base.cap_milli,
            milli(override["min_quantity"]) if "min_quantity" in override else base.min_milli,
            tuple(override.get("sources", base.sources)),
        )

    def feeds(self, action: str | None, source: str) -> bool:
        rule = self.rule(action) if action else None
        return rule is not None and source in rule.sources

    def intake_open(self, today: date) -> bool:
        return self.starts_on <= today <= self.ends_on + timedelta(days=self.late_entry_days)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(ZoneInfo(self.timezone)).date()

    def points(self, total_mg: int) -> int:
        """floor(total mg × points_per_g / 1000)."""
        return total_mg * milli(self.points_per_g) // 1_000_000


@dataclass(frozen=True)
class Entry:
    slug: str
    person: str
    action: str
    day: date
    quantity_milli: int
    counted_milli: int
    factor_milli: int
    reduction_mg: int
    source: str  # checkin | werun | partner
    source_ref: str | None  # None for check-ins (the server's check-in id)


@dataclass
class _Total:
    total_milli: int = 0  # everything this source brought to the day in this campaign
    counted_milli: int = 0  # what the campaign counted of it


@dataclass
class _Member:
    joined_on: date
    order: int  # join order: the earliest joined wins a WeRun day or partner item
    totals: dict[tuple[date, str, str], _Total] = field(default_factory=dict)  # day, action, src
    once_done: set[tuple[date, str]] = field(default_factory=set)


@dataclass
class _StepDay:
    steps: int = 0  # the highest count seen
    counted_steps: int = 0  # the count the credited increments add up to
    slug: str | None = None  # the campaign the day is credited to


@dataclass(frozen=True)
class Failure:
    status: int
    code: str


class IntakeModel:
    """People joining campaigns, syncing WeRun, checking in, and partners pushing items; one
    request at a time, in the order the test sends them."""

    def __init__(self, campaigns: list[CampaignSpec], partners: dict[str, list[str]]) -> None:
        self.campaigns = {c.slug: c for c in campaigns}
        self.by_id = [c.slug for c in campaigns]  # creation order = ascending campaign id
        self.partners = partners
        self.members: dict[tuple[str, str], _Member] = {}
        self.steps: dict[tuple[str, date], _StepDay] = {}
        self.unionids: dict[str, str] = {}
        self.links: dict[tuple[str, str], str] = {}
        self.remembered: set[tuple[str, str]] = set()
        self.entries: list[Entry] = []
        self._joins = 0

    # -- people --------------------------------------------------------------------------------

    def person_with_unionid(self, person: str, unionid: str) -> None:
        self.unionids[unionid] = person

    def link(self, partner: str, member_ref: str, person: str) -> None:
        self.links[(partner, member_ref)] = person

    def join(self, person: str, slug: str, today: date) -> int | Failure:
        spec = self.campaigns[slug]
        if not spec.intake_open(today):
            return Failure(409, "campaign.not_active")
        if (person, slug) in self.members:
            return 200
        self._joins += 1
        self.members[(person, slug)] = _Member(joined_on=today, order=self._joins)
        return 201

    def _joined(self, person: str, slugs) -> list[str]:
        """The person's joined campaigns among ``slugs``, earliest joined first."""
        found = [s for s in slugs if (person, s) in self.members]
        return sorted(found, key=lambda s: (self.members[(person, s)].order, self.by_id.index(s)))

    # -- day credits ---------------------------------------------------------------------------

    def day_credit_mg(self, person: str, slug: str, day: date) -> int:
        """The participant's day credit in a campaign with the credit groups: each mode the
        larger of its sources' credits (never their sum), transport against the car-free day."""
        spec, member = self.campaigns[slug], self.members[(person, slug)]
        credits: dict[tuple[str, str], int] = {}
        for (d, action, source), total in member.totals.items():
            if d == day:
                credits[(action, source)] = credit_mg(total.counted_milli,
                                                      spec.rule(action).factor_milli)
        ungrouped = sum(mg for (action, _), mg in credits.items() if action not in GROUPED)
        modes = 0
        for actions in GROUP_MODES.values():
            by_source: dict[str, int] = {}
            for (action, source), mg in credits.items():
                if action in actions:
                    by_source[source] = by_source.get(source, 0) + mg
            modes += max(by_source.values(), default=0)
        car_free = sum(mg for (action, _), mg in credits.items() if action == CAR_FREE_DAY)
        transport = max(modes, car_free) if spec.car_free_day_max else modes + car_free
        return ungrouped + transport

    def _add(self, person: str, slug: str, day: date, action: str, source: str,
             quantity_milli: int, granted_milli: int | None = None) -> tuple[int, int]:
        """Add to the (action, source) day total; returns (counted, reduction_mg). The counted
        part is counted(after) - counted(before), or ``granted_milli`` when given."""
        rule = self.campaigns[slug].rule(action)
        member = self.members[(person, slug)]
        state = member.totals.setdefault((day, action, source), _Total())
        natural = counted(state.total_milli + quantity_milli, rule) - counted(state.total_milli,
                                                                            rule)
        granted = natural if granted_milli is None else granted_milli
        before = self.day_credit_mg(person, slug, day)
        state.total_milli += quantity_milli
        state.counted_milli += granted
        return granted, self.day_credit_mg(person, slug, day) - before

    def _counted_elsewhere(self, person: str, slug: str, day: date, action: str) -> dict:
        """{other campaign: counted} for the person, action and day, in campaign id order."""
        result = {}
        for other in self.by_id:
            member = self.members.get((person, other))
            if other == slug or member is None:
                continue
            amount = sum(t.counted_milli for (d, a, _), t in member.totals.items()
                         if d == day and a == action)
            if amount:
                result[other] = amount
        return result

    def _append(self, slug, person, action, day, quantity, counted_milli, mg, source, ref):
        rule = self.campaigns[slug].rule(action)
        self.entries.append(Entry(slug, person, action, day, quantity, counted_milli,
                                  rule.factor_milli, mg, source, ref))

    # -- check-ins -----------------------------------------------------------------------------

    def checkin(self, person: str, slug: str, action: str, quantity, on: date | None,
                today: date) -> dict | Failure:
        """A self-reported check-in: what the 201 reply says, or the error."""
        spec = self.campaigns[slug]
        member = self.members.get((person, slug))
        if member is None:
            return Failure(409, "campaign.not_joined")
        if not spec.intake_open(today):
            return Failure(409, "campaign.not_active")
        day = on or today
        if (day > today or day < member.joined_on or day < spec.starts_on
                or day > spec.ends_on or day < today - timedelta(days=spec.late_entry_days)):
            return Failure(422, "checkin.date_out_of_range")
        rule = spec.rule(action)
        if "checkin" not in rule.sources:
            return Failure(422, "checkin.source_not_allowed")
        if rule.kind == "once_daily":
            if (day, action) in member.once_done:
                return Failure(409, "checkin.already_done")
            member.once_done.add((day, action))
        quantity_milli = milli(quantity) if quantity is not None else 1000
        state = member.totals.get((day, action, "checkin"), _Total())
        natural = (counted(state.total_milli + quantity_milli, rule)
                   - counted(state.total_milli, rule))
        elsewhere = self._counted_elsewhere(person, slug, day, action)
        own_room = max(0, rule.cap_milli - state.counted_milli)
        room = max(0, own_room - sum(elsewhere.values()))
        granted = min(natural, room)
        claimed_by = None
        if granted < min(natural, own_room):
            claimed_by = next(iter(elsewhere))
        granted, mg = self._add(person, slug, day, action, "checkin", quantity_milli, granted)
        self._append(slug, person, action, day, quantity_milli, granted, mg, "checkin", None)
        total = self.total_mg(person, slug)
        return {"action": action, "date": day, "quantity_milli": quantity_milli,
                "counted_milli": granted, "reduction_mg": mg,
                "capped": granted < quantity_milli, "claimed_by": claimed_by,
                "day_mg": self.day_credit_mg(person, slug, day), "total_mg": total,
                "points": spec.points(total)}

    # -- WeRun ---------------------------------------------------------------------------------

    def _werun_campaign(self, person: str, day: date, today: date) -> str | None:
        """Among the joined campaigns that count steps from WeRun, open today, with the day in
        starts_on..ends_on and on or after the join day: the earliest joined."""
        for slug in self._joined(person, self.by_id):
            spec, member = self.campaigns[slug], self.members[(person, slug)]
            if (spec.feeds(WALK, "werun") and spec.intake_open(today)
                    and spec.starts_on <= day <= spec.ends_on and day >= member.joined_on):
                return slug
        return None

    def werun(self, person: str, slug: str, days: dict[date, int], today: date
              ) -> dict | Failure:
        """A sync through ``slug``'s endpoint: the reply in milligrams, or the error."""
        if (person, slug) not in self.members:
            return Failure(409, "campaign.not_joined")
        if not self.campaigns[slug].intake_open(today):
            return Failure(409, "campaign.not_active")
        replies, added = [], 0
        for day in sorted(d for d in days if d <= today):  # a future day is not WeRun data
            steps = days[day]
            record = self.steps.setdefault((person, day), _StepDay())
            if steps <= record.steps:  # an equal or lower count changes nothing
                status = ("outside" if record.slug is None
                          else "unchanged" if record.slug == slug else "claimed")
            else:
                record.steps = steps
                target = record.slug or self._werun_campaign(person, day, today)
                if target is None:
                    status = "outside"
                else:
                    increase = (steps - record.counted_steps) * 1000
                    got, mg = self._add(person, target, day, WALK, "werun", increase)
                    self._append(target, person, WALK, day, increase, got, mg, "werun",
                                 day.isoformat())
                    record.counted_steps, record.slug = steps, target
                    status = "counted" if target == slug else "claimed"
                    added += mg if target == slug else 0
            counted_steps, day_mg = 0, 0
            if record.slug == slug:
                state = self.members[(person, slug)].totals[(day, WALK, "werun")]
                counted_steps = state.counted_milli // 1000
                day_mg = credit_mg(state.counted_milli,
                                   self.campaigns[slug].rule(WALK).factor_milli)
            replies.append({"date": day, "steps": record.steps, "counted_steps": counted_steps,
                            "reduction_mg": day_mg, "status": status})
        return {"days": replies, "added_mg": added, "total_mg": self.total_mg(person, slug)}

    # -- partners ------------------------------------------------------------------------------

    def _person_of(self, partner: str, item: dict) -> str | None:
        if "unionid" in item:
            return self.unionids.get(item["unionid"])
        return self.links.get((partner, item["member_ref"]))

    @staticmethod
    def _trip_action(spec: CampaignSpec, item: dict) -> tuple[str | None, str | None]:
        """(action, None) when the campaign counts the trip from a partner, else (None, code)."""
        mode = item["mode"]
        if mode not in TRIP_ACTIONS:
            return None, "trip.mode_not_counted"
        by_distance, per_ride = TRIP_ACTIONS[mode]
        if "distance_m" in item and spec.feeds(by_distance, "partner"):
            return by_distance, None
        if per_ride is not None and spec.feeds(per_ride, "partner"):
            return per_ride, None
        if per_ride is None and spec.feeds(by_distance, "partner"):
            return None, "trip.distance_required"
        return None, "trip.mode_not_counted"

    def _item_action(self, spec: CampaignSpec, kind: str, item: dict):
        if kind == "trip":
            return self._trip_action(spec, item)
        if spec.feeds(item["action"], "partner"):
            return item["action"], None
        return None, "record.action_not_counted"

    def partner_batch(self, partner: str, kind: str, items: list[dict], today_of) -> dict:
        """A batch of trips or records: the reply. ``today_of(spec)`` is today in a campaign."""
        reply = {"accepted": 0, "held": 0, "duplicates": 0, "unmatched": 0, "rejected": []}
        for item in items:
            item_id = item["trip_id" if kind == "trip" else "record_id"]
            if (partner, item_id) in self.remembered:
                reply["duplicates"] += 1
                continue
            person = self._person_of(partner, item)
            slugs = self._joined(person, self.partners[partner]) if person else []
            if not slugs:
                reply["unmatched"] += 1
                continue
            instant = datetime.fromisoformat(item["ended_at" if kind == "trip"
                                                   else "occurred_at"])
            # The conditions, in DESIGN.md's order, filter the candidates; when one leaves
            # none, its code is the rejection.
            remaining = [s for s in slugs if self.campaigns[s].intake_open(today_of(
                self.campaigns[s]))]
            code = "partner.date_out_of_range"
            remaining = [s for s in remaining if self._date_ok(person, s, instant, today_of)]
            if remaining:
                mapped = [(s, *self._item_action(self.campaigns[s], kind, item))
                          for s in remaining]
                counting = [(s, action) for s, action, _ in mapped if action is not None]
                if counting:
                    self._credit_item(partner, kind, item, person, *counting[0], instant)
                    reply["accepted"] += 1
                    continue
                code = mapped[0][2]
            reply["rejected"].append({"id": item_id, "code": code})
        return reply

    def _date_ok(self, person: str, slug: str, instant: datetime, today_of) -> bool:
        spec, member = self.campaigns[slug], self.members[(person, slug)]
        day, today = spec.local_date(instant), today_of(spec)
        return (spec.starts_on <= day <= spec.ends_on and day >= member.joined_on
                and today - timedelta(days=spec.late_entry_days) <= day <= today)

    def _credit_item(self, partner, kind, item, person, slug, action, instant) -> None:
        item_id = item["trip_id" if kind == "trip" else "record_id"]
        self.remembered.add((partner, item_id))
        spec = self.campaigns[slug]
        day = spec.local_date(instant)
        if kind == "trip":
            quantity = item["distance_m"] if action.endswith("_km") else 1000
        else:
            quantity = milli(item["quantity"])
        got, mg = self._add(person, slug, day, action, "partner", quantity)
        self._append(slug, person, action, day, quantity, got, mg, "partner",
                     f"{partner}:{item_id}")

    # -- figures -------------------------------------------------------------------------------

    def total_mg(self, person: str, slug: str) -> int:
        return sum(e.reduction_mg for e in self.entries if e.slug == slug and e.person == person)

    def me(self, person: str, slug: str) -> dict:
        """/me figures: reduction_mg, points, days_active, by_action {key: (mg, records)}."""
        mine = [e for e in self.entries if e.slug == slug and e.person == person]
        total = sum(e.reduction_mg for e in mine)
        by_action: dict[str, tuple[int, int]] = {}
        for e in mine:
            mg, records = by_action.get(e.action, (0, 0))
            by_action[e.action] = (mg + e.reduction_mg, records + 1)
        days = {e.day for e in mine}
        active = sum(1 for d in days if self.day_credit_mg(person, slug, d) > 0)
        return {"reduction_mg": total, "points": self.campaigns[slug].points(total),
                "days_active": active, "by_action": by_action}

    def participant_days(self, person: str, slug: str) -> dict[date, int]:
        """Day credits on the days the participant has entries."""
        days = {e.day for e in self.entries if e.slug == slug and e.person == person}
        return {d: self.day_credit_mg(person, slug, d) for d in days}

    def campaign_days(self, slug: str) -> dict[date, tuple[int, int]]:
        """{day: (mg, entries)} of a campaign's ledger."""
        result: dict[date, tuple[int, int]] = {}
        for e in self.entries:
            if e.slug == slug:
                mg, n = result.get(e.day, (0, 0))
                result[e.day] = (mg + e.reduction_mg, n + 1)
        return result

    def ledger(self, slug: str) -> list[Entry]:
        return [e for e in self.entries if e.slug == slug]
