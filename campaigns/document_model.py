"""The campaign document's values: frozen dataclasses, and rules resolved for a date.

Decimals are integer thousandths (`*_milli`), amounts milligrams (`*_mg`). Parsing and
validation live in campaigns.document; this module has no marshmallow and no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from campaigns.methodology import Methodology


@dataclass(frozen=True)
class ActionOverride:
    """An action the campaign counts; None fields take the methodology's value."""

    key: str
    name: str | None = None
    factor_milli: int | None = None
    cap_milli: int | None = None
    min_milli: int | None = None
    sources: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Team:
    key: str
    name: str


@dataclass(frozen=True)
class TeamsConfig:
    """teams.mode none|optional|required, ranking total|average, and the document's teams."""

    mode: str = "none"
    ranking: str = "total"
    min_active_members: int = 1
    teams: tuple[Team, ...] = ()


@dataclass(frozen=True)
class Challenge:
    """streak: `target` days in a row with at least min_milli counted of `action`;
    count: `target` records (per record) or days (per day) of `action`;
    total: reach target_mg in the campaign. Fields of other kinds are None."""

    key: str
    name: str
    kind: str
    action: str | None = None
    target: int | None = None
    per: str | None = None
    min_milli: int | None = None
    target_mg: int | None = None


@dataclass(frozen=True)
class Revision:
    """Overrides in force from effective_from (a campaign-local date) on; numbered from 1."""

    effective_from: date
    actions: tuple[ActionOverride, ...]


@dataclass(frozen=True)
class CampaignDoc:
    slug: str
    name: str
    description: str
    timezone: str
    starts_on: date
    ends_on: date
    target_mg: int
    methodology: str
    late_entry_days: int
    points_per_g_milli: int
    invite_code: str | None
    teams: TeamsConfig
    car_free_day_max: bool
    dashboard_public: bool
    actions: tuple[ActionOverride, ...]
    challenges: tuple[Challenge, ...]
    freeze_at: datetime | None
    revisions: tuple[Revision, ...]

    @property
    def action_keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.actions)


@dataclass(frozen=True)
class ActionRule:
    """The rules one action is counted with on a date, and the version entries record."""

    key: str
    name: str
    kind: str
    unit: str
    factor_milli: int
    cap_milli: int | None
    min_milli: int
    sources: tuple[str, ...]
    methodology_version: str


def revision_in_force(doc: CampaignDoc, on_date: date | None) -> int:
    """The number (1-based) of the last revision in force on on_date; 0 for none or None."""
    if on_date is None:
        return 0
    return sum(1 for r in doc.revisions if r.effective_from <= on_date)


def effective_actions(doc: CampaignDoc, methodology: Methodology,
                      on_date: date | None = None) -> tuple[ActionRule, ...]:
    """One ActionRule per action of the campaign (document order) for entries dated on_date.

    Starts from the methodology row, applies the document's overrides, then every revision
    with effective_from <= on_date in order; on_date None gives the rules before any revision.
    methodology_version is `<methodology>` or `<methodology>+r<N>` with N the last revision in
    force (for every action, whichever actions it changed). Raises ValueError when
    `methodology` is not the document's.
    """
    if methodology.version != doc.methodology:
        raise ValueError(f"document uses {doc.methodology}, not {methodology.version}")
    number = revision_in_force(doc, on_date)
    version = doc.methodology if number == 0 else f"{doc.methodology}+r{number}"
    patches = [doc.actions, *(r.actions for r in doc.revisions[:number])]
    rules = []
    for key in doc.action_keys:
        spec = methodology.action(key)
        name, factor, cap, minimum, sources = (spec.name, spec.factor_milli, spec.cap_milli,
                                               spec.min_milli, spec.sources)
        for patch in patches:
            for o in patch:
                if o.key != key:
                    continue
                name = o.name if o.name is not None else name
                factor = o.factor_milli if o.factor_milli is not None else factor
                cap = o.cap_milli if o.cap_milli is not None else cap
                minimum = o.min_milli if o.min_milli is not None else minimum
                sources = o.sources if o.sources is not None else sources
        rules.append(ActionRule(key=key, name=name, kind=spec.kind, unit=spec.unit,
                                factor_milli=factor, cap_milli=cap, min_milli=minimum,
                                sources=sources, methodology_version=version))
    return tuple(rules)


def action_rule(doc: CampaignDoc, methodology: Methodology, key: str,
                on_date: date | None = None) -> ActionRule:
    """The ActionRule of one action (see effective_actions); KeyError if the campaign lacks it."""
    for rule in effective_actions(doc, methodology, on_date):
        if rule.key == key:
            return rule
    raise KeyError(key)
