"""Methodologies: the versioned, cited factor tables shipped under campaigns/methodologies/.

A methodology is loaded by its version id (`cn-consumer-v1`) into frozen dataclasses. Decimal
values become integer thousandths: `factor_milli` is thousandths of a gram per unit, `cap_milli`
and `min_milli` thousandths of the action's unit, `tree_mg` milligrams per display tree.
Anything unknown (a version, an action kind, a signal kind, a key in the file) raises.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml

from campaigns.decimals import DecimalInvalid, parse_milli

METHODOLOGY_DIR = Path(__file__).parent / "methodologies"

# Intake sources an action may allow. The ledger adds `release` (a held intake released by an
# organiser; it keeps the source it was held from for counting) and `reversal`.
SOURCES = ("checkin", "werun", "partner")
LEDGER_SOURCES = (*SOURCES, "release", "reversal")
STATUSES = ("C", "D", "A")

_VERSION_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


class MethodologyError(ValueError):
    """A methodology file or lookup is invalid."""


class UnknownMethodology(MethodologyError):
    """No methodology with that version id is shipped."""


class UnknownKind(MethodologyError):
    """An action or signal kind that is not in its table."""


class UnknownAction(MethodologyError):
    """An action key that the methodology does not define."""


@dataclass(frozen=True)
class KindRule:
    """How quantities of an action kind behave.

    integral: quantities (and caps, minimums) are whole units.
    default_quantity_milli: the quantity of a check-in that gives none; None = quantity required
      (or, for steps, the kind is not self-reported at all).
    once_daily: at most one check-in per participant, action and day.
    """

    integral: bool
    default_quantity_milli: int | None
    once_daily: bool


ACTION_KINDS: Mapping[str, KindRule] = MappingProxyType(
    {
        "steps": KindRule(integral=True, default_quantity_milli=None, once_daily=False),
        "once_daily": KindRule(integral=True, default_quantity_milli=1000, once_daily=True),
        "count": KindRule(integral=True, default_quantity_milli=1000, once_daily=False),
        "distance": KindRule(integral=False, default_quantity_milli=None, once_daily=False),
        "weight": KindRule(integral=False, default_quantity_milli=None, once_daily=False),
    }
)

# Plausibility signal kinds and their parameters: "decimal" params are stored as `<name>_milli`,
# "int" params as is. The checks themselves are in campaigns.plausibility.
SIGNAL_KINDS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "day_total_over": {"threshold": "decimal"},
        "repeated_digit": {"min_digits": "int"},
        "speed_over": {"max_km_per_h": "decimal"},
        "over_cap_days_in_row": {"days": "int"},
    }
)


def kind_rule(kind: str) -> KindRule:
    """The KindRule of an action kind; raises UnknownKind for any other string."""
    try:
        return ACTION_KINDS[kind]
    except KeyError:
        raise UnknownKind(f"unknown action kind {kind!r}") from None


@dataclass(frozen=True)
class ActionSpec:
    """One row of a methodology table."""

    key: str
    name: str
    kind: str
    unit: str
    factor_milli: int
    cap_milli: int | None
    min_milli: int
    sources: tuple[str, ...]
    status: str
    citation: str

    @property
    def kind_rule(self) -> KindRule:
        return kind_rule(self.kind)


@dataclass(frozen=True)
class CreditGroups:
    """Credit groups (DESIGN.md): a unit of travel counts once.

    modes: (mode, action keys) pairs; a mode's credit is the larger of its per-source credits.
    alternative: the action (car_free_day) whose credit competes with the sum of
      transport_modes when a campaign's rules.car_free_day_max is on; None = no such group.
    """

    modes: tuple[tuple[str, tuple[str, ...]], ...]
    alternative: str | None
    transport_modes: tuple[str, ...]

    def mode_of(self, action: str) -> str | None:
        """The mode an action belongs to, or None."""
        for mode, actions in self.modes:
            if action in actions:
                return mode
        return None

    def mode_actions(self, mode: str) -> tuple[str, ...]:
        """The actions of a mode; raises KeyError for an unknown mode."""
        for name, actions in self.modes:
            if name == mode:
                return actions
        raise KeyError(mode)


@dataclass(frozen=True)
class PlausibilitySignal:
    """A plausibility signal: applies to `action` if set, else to every action of `action_kind`."""

    key: str
    kind: str
    action_kind: str | None
    action: str | None
    params: Mapping[str, int]

    def applies_to(self, spec_key: str, spec_kind: str) -> bool:
        if self.action is not None:
            return self.action == spec_key
        return self.action_kind == spec_kind


@dataclass(frozen=True)
class Methodology:
    version: str
    name: str
    tree_mg: int
    actions: Mapping[str, ActionSpec]
    credit_groups: CreditGroups
    plausibility: tuple[PlausibilitySignal, ...]

    def action(self, key: str) -> ActionSpec:
        """The ActionSpec of a key; raises UnknownAction."""
        try:
            return self.actions[key]
        except KeyError:
            raise UnknownAction(f"{self.version} has no action {key!r}") from None


def available_methodologies() -> tuple[str, ...]:
    """Version ids of the shipped methodologies, sorted."""
    return tuple(sorted(p.stem for p in METHODOLOGY_DIR.glob("*.yaml")))


@functools.cache
def load_methodology(version: str) -> Methodology:
    """Load a shipped methodology by version id (cached; the result is immutable).

    Raises UnknownMethodology for an unknown id, MethodologyError for an invalid file.
    """
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise UnknownMethodology(f"unknown methodology {version!r}")
    path = METHODOLOGY_DIR / f"{version}.yaml"
    if not path.is_file():
        raise UnknownMethodology(f"unknown methodology {version!r}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    methodology = parse_methodology(data)
    if methodology.version != version:
        raise MethodologyError(f"{path.name} declares version {methodology.version!r}")
    return methodology


def parse_methodology(data: object) -> Methodology:
    """Build a Methodology from its YAML data; raises MethodologyError on anything unexpected."""
    top = _mapping(data, "methodology", {"version", "name", "tree_g", "actions",
                                          "credit_groups", "plausibility"})
    actions: dict[str, ActionSpec] = {}
    for raw in _list(top["actions"], "actions"):
        spec = _parse_action(raw)
        if spec.key in actions:
            raise MethodologyError(f"duplicate action {spec.key!r}")
        actions[spec.key] = spec
    groups = _parse_groups(top["credit_groups"], actions)
    signals = tuple(_parse_signal(raw, actions) for raw in _list(top["plausibility"],
                                                                 "plausibility"))
    return Methodology(
        version=_str(top["version"], "version"),
        name=_str(top["name"], "name"),
        tree_mg=_decimal(top["tree_g"], "tree_g"),
        actions=MappingProxyType(actions),
        credit_groups=groups,
        plausibility=signals,
    )


def _parse_action(raw: object) -> ActionSpec:
    fields = {"key", "name", "kind", "unit", "factor_g_per_unit", "daily_cap", "min_quantity",
              "sources", "status", "citation"}
    row = _mapping(raw, "action", fields)
    key = _str(row["key"], "key")
    kind = _str(row["kind"], f"{key}.kind")
    rule = kind_rule(kind)
    sources = tuple(_str(s, f"{key}.sources") for s in _list(row["sources"], f"{key}.sources"))
    if not sources or len(set(sources)) != len(sources) or not set(sources) <= set(SOURCES):
        raise MethodologyError(f"{key}: bad sources {sources!r}")
    status = _str(row["status"], f"{key}.status")
    if status not in STATUSES:
        raise MethodologyError(f"{key}: unknown status {status!r}")
    cap = None if row["daily_cap"] is None else _decimal(row["daily_cap"], f"{key}.daily_cap")
    minimum = _decimal(row["min_quantity"], f"{key}.min_quantity")
    if rule.integral and any(v is not None and v % 1000 for v in (cap, minimum)):
        raise MethodologyError(f"{key}: a {kind} action needs whole caps and minimums")
    return ActionSpec(
        key=key,
        name=_str(row["name"], f"{key}.name"),
        kind=kind,
        unit=_str(row["unit"], f"{key}.unit"),
        factor_milli=_decimal(row["factor_g_per_unit"], f"{key}.factor_g_per_unit"),
        cap_milli=cap,
        min_milli=minimum,
        sources=sources,
        status=status,
        citation=_str(row["citation"], f"{key}.citation"),
    )


def _parse_groups(raw: object, actions: Mapping[str, ActionSpec]) -> CreditGroups:
    top = _mapping(raw, "credit_groups", {"modes", "transport"})
    modes_raw = _mapping(top["modes"], "credit_groups.modes", None)
    modes: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for mode, members in modes_raw.items():
        keys = tuple(_str(k, f"modes.{mode}") for k in _list(members, f"modes.{mode}"))
        for key in keys:
            if key not in actions or key in seen:
                raise MethodologyError(f"credit group {mode}: bad or repeated action {key!r}")
            seen.add(key)
        modes.append((_str(mode, "mode"), keys))
    transport = _mapping(top["transport"], "credit_groups.transport", {"alternative", "modes"})
    alternative = transport["alternative"]
    if alternative is not None and (alternative not in actions or alternative in seen):
        raise MethodologyError(f"bad transport alternative {alternative!r}")
    transport_modes = tuple(_list(transport["modes"], "transport.modes"))
    if not set(transport_modes) <= {m for m, _ in modes}:
        raise MethodologyError(f"unknown transport modes {transport_modes!r}")
    return CreditGroups(modes=tuple(modes), alternative=alternative,
                        transport_modes=transport_modes)


def _parse_signal(raw: object, actions: Mapping[str, ActionSpec]) -> PlausibilitySignal:
    if not isinstance(raw, dict) or "kind" not in raw:
        raise MethodologyError("plausibility signal needs a kind")
    kind = _str(raw["kind"], "plausibility.kind")
    if kind not in SIGNAL_KINDS:
        raise UnknownKind(f"unknown plausibility signal kind {kind!r}")
    param_types = SIGNAL_KINDS[kind]
    allowed = {"key", "kind", "action_kind", "action", *param_types}
    if set(raw) - allowed or not {"key", *param_types} <= set(raw):
        raise MethodologyError(f"plausibility signal {raw.get('key')!r}: bad fields")
    action_kind, action = raw.get("action_kind"), raw.get("action")
    if (action_kind is None) == (action is None):
        raise MethodologyError("a signal names exactly one of action_kind and action")
    if action_kind is not None:
        kind_rule(action_kind)
    if action is not None and action not in actions:
        raise MethodologyError(f"signal on unknown action {action!r}")
    params: dict[str, int] = {}
    for name, typ in param_types.items():
        if typ == "decimal":
            params[f"{name}_milli"] = _decimal(raw[name], name)
        elif isinstance(raw[name], int) and not isinstance(raw[name], bool) and raw[name] > 0:
            params[name] = raw[name]
        else:
            raise MethodologyError(f"signal parameter {name} must be a positive integer")
    return PlausibilitySignal(key=_str(raw["key"], "key"), kind=kind, action_kind=action_kind,
                              action=action, params=MappingProxyType(params))


def _mapping(value: object, where: str, fields: set[str] | None) -> dict:
    if not isinstance(value, dict):
        raise MethodologyError(f"{where} must be a mapping")
    if fields is not None and set(value) != fields:
        raise MethodologyError(f"{where}: expected fields {sorted(fields)}, got {sorted(value)}")
    return value


def _list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise MethodologyError(f"{where} must be a list")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MethodologyError(f"{where} must be a non-empty string")
    return value


def _decimal(value: object, where: str) -> int:
    if not isinstance(value, str):
        # Decimals in methodology files are strings so that YAML never makes them floats.
        raise MethodologyError(f"{where} must be a decimal string")
    try:
        return parse_milli(value)
    except DecimalInvalid as exc:
        raise MethodologyError(f"{where}: {exc}") from None
