"""Marshmallow schemas of the campaign document (API.md "Campaign document"): types and shape.

These only check types, shapes, formats and ranges, and fill defaults; rules that need the
methodology or relate fields (campaigns.document) run after. Unknown fields are rejected at
every level; strings are stripped. Field values come from JSON (dates and instants as strings)
or YAML (dates and instants may already be date/datetime objects).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from campaigns.calendar import DEFAULT_TIMEZONE, UnknownTimezone, validate_timezone
from campaigns.decimals import DecimalInvalid, parse_milli
from campaigns.methodology import UnknownMethodology, load_methodology

DEFAULT_METHODOLOGY = "cn-consumer-v1"
SLUG_PATTERN = r"[a-z0-9-]{3,64}"
KEY_PATTERN = r"[A-Za-z0-9_-]{1,64}"
# Dates far from today are mistakes, and keeping them away from date.max means that
# `ends_on + late_entry_days` can never overflow.
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2099, 12, 31)
MAX_LATE_ENTRY_DAYS = 30
TEAM_MODES = ("none", "optional", "required")
TEAM_RANKINGS = ("total", "average")
CHALLENGE_KINDS = ("streak", "count", "total")
COUNT_PER = ("record", "day")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Milli(fields.Field):
    """An exact decimal (int, plain decimal string or JSON number) -> int thousandths, >= 0."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_milli(value)
        except DecimalInvalid as exc:
            raise ValidationError(str(exc)) from None


class LocalDate(fields.Field):
    """A calendar day: "YYYY-MM-DD" or a date object (YAML), within MIN_DATE..MAX_DATE."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and _DATE_RE.fullmatch(value):
            with contextlib.suppress(ValueError):
                value = date.fromisoformat(value)
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValidationError("Not a valid date (YYYY-MM-DD).")
        if not MIN_DATE <= value <= MAX_DATE:
            raise ValidationError(f"Date must be between {MIN_DATE} and {MAX_DATE}.")
        return value


class Instant(fields.Field):
    """An ISO 8601 instant with a zone ("2022-02-20T12:00:00Z") or an aware datetime -> UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and "T" in value:
            with contextlib.suppress(ValueError):
                value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise ValidationError("Not a valid instant (ISO 8601, e.g. 2022-02-20T12:00:00Z).")
        if value.utcoffset() is None:
            raise ValidationError("An instant needs a time zone (e.g. Z).")
        if not MIN_DATE <= value.date() <= MAX_DATE:
            raise ValidationError(f"Date must be between {MIN_DATE} and {MAX_DATE}.")
        return value.astimezone(UTC)


class Text(fields.String):
    """A string, stripped before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _strict_int(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, **kwargs)


class _StrictBoolean(fields.Boolean):
    """Only JSON/YAML true and false: marshmallow would otherwise take "yes", "on", and 1 or
    1.0 (which equal True in Python, so even truthy={True} lets them through)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _strict_bool(**kwargs) -> fields.Boolean:
    return _StrictBoolean(**kwargs)


def _check_timezone(value: str) -> None:
    try:
        validate_timezone(value)
    except UnknownTimezone:
        raise ValidationError("Unknown time zone (an IANA name such as Asia/Shanghai).") from None


def _check_methodology(value: str) -> None:
    try:
        load_methodology(value)
    except UnknownMethodology:
        raise ValidationError("Unknown methodology version.") from None


def _key(**kwargs) -> Text:
    return Text(validate=validate.Regexp(KEY_PATTERN, error="Must be 1-64 letters, digits, "
                                         "'-' or '_'."), **kwargs)


def _name(max_len: int, **kwargs) -> Text:
    return Text(validate=validate.Length(min=1, max=max_len), **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class OverrideSchema(_Strict):
    """An action the campaign counts, with optional overrides of the methodology row."""

    key = Text(required=True, validate=validate.Length(min=1, max=64))
    name = _name(32)
    factor_g = Milli()
    daily_cap = Milli()
    min_quantity = Milli()
    sources = fields.List(Text())


class JoinSchema(_Strict):
    invite_code = Text(load_default=None, allow_none=True,
                       validate=validate.Length(min=1, max=64))


class TeamSchema(_Strict):
    key = _key(required=True)
    name = _name(64, required=True)


class TeamsSchema(_Strict):
    mode = Text(load_default="none", validate=validate.OneOf(TEAM_MODES))
    ranking = Text(load_default="total", validate=validate.OneOf(TEAM_RANKINGS))
    min_active_members = _strict_int(load_default=1, validate=validate.Range(min=1,
                                                                            max=100_000))
    list = fields.List(fields.Nested(TeamSchema), load_default=list)


class RulesSchema(_Strict):
    car_free_day_max = _strict_bool(load_default=True)


class DashboardSchema(_Strict):
    public = _strict_bool(load_default=False)


class LeaderboardSchema(_Strict):
    freeze_at = Instant(load_default=None, allow_none=True)


class RevisionSchema(_Strict):
    effective_from = LocalDate(required=True)
    actions = fields.List(fields.Nested(OverrideSchema), required=True,
                          validate=validate.Length(min=1))


class _ChallengeBase(_Strict):
    key = _key(required=True)
    name = _name(64, required=True)
    kind = Text(required=True, validate=validate.OneOf(CHALLENGE_KINDS))


class StreakChallengeSchema(_ChallengeBase):
    """N consecutive days on which the action's counted quantity reaches min_quantity."""

    action = Text(required=True)
    min_quantity = Milli(required=True)
    target = _strict_int(required=True, validate=validate.Range(min=1, max=3660))


class CountChallengeSchema(_ChallengeBase):
    """target records (per: record) or days with a record (per: day) of the action."""

    action = Text(required=True)
    per = Text(load_default="record", validate=validate.OneOf(COUNT_PER))
    target = _strict_int(required=True, validate=validate.Range(min=1, max=1_000_000))


class TotalChallengeSchema(_ChallengeBase):
    """Reach target_g grams reduced in the campaign."""

    target_g = Milli(required=True)


CHALLENGE_SCHEMAS: Mapping[str, type[Schema]] = {
    "streak": StreakChallengeSchema,
    "count": CountChallengeSchema,
    "total": TotalChallengeSchema,
}


class CampaignSchema(_Strict):
    slug = Text(required=True, validate=validate.Regexp(
        SLUG_PATTERN, error="Must be 3-64 lowercase letters, digits or '-'."))
    name = _name(64, required=True)
    description = Text(load_default="", validate=validate.Length(max=2000))
    timezone = Text(load_default=DEFAULT_TIMEZONE, validate=_check_timezone)
    starts_on = LocalDate(required=True)
    ends_on = LocalDate(required=True)
    target_kg = Milli(required=True)
    methodology = Text(load_default=DEFAULT_METHODOLOGY, validate=_check_methodology)
    late_entry_days = _strict_int(load_default=1, validate=validate.Range(
        min=0, max=MAX_LATE_ENTRY_DAYS))
    points_per_g = Milli(load_default=1000)
    join = fields.Nested(JoinSchema, load_default=lambda: JoinSchema().load({}))
    teams = fields.Nested(TeamsSchema, load_default=lambda: TeamsSchema().load({}))
    rules = fields.Nested(RulesSchema, load_default=lambda: RulesSchema().load({}))
    dashboard = fields.Nested(DashboardSchema, load_default=lambda: DashboardSchema().load({}))
    actions = fields.List(fields.Nested(OverrideSchema), required=True,
                          validate=validate.Length(min=1, error="At least one action is "
                                                   "required."))
    # Challenges are checked one by one against the schema of their kind (load_challenges).
    challenges = fields.List(fields.Raw(), load_default=list)
    leaderboard = fields.Nested(LeaderboardSchema,
                                load_default=lambda: LeaderboardSchema().load({}))
    revisions = fields.List(fields.Nested(RevisionSchema), load_default=list)


def flatten_errors(messages: object, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested error messages as flat dotted, 0-based paths -> messages."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for sub, msgs in flatten_errors(value, path).items():
                flat.setdefault(sub, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for msgs in messages:
            for sub, more in flatten_errors(msgs, prefix).items():
                flat.setdefault(sub, []).extend(more)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def load_challenges(raw: list) -> tuple[list[dict], dict[str, list[str]]]:
    """Load each challenge with the schema of its kind; returns (loaded, flat errors)."""
    loaded: list[dict] = []
    errors: dict[str, list[str]] = {}
    for i, item in enumerate(raw):
        kind = item.get("kind") if isinstance(item, dict) else None
        schema = CHALLENGE_SCHEMAS.get(kind) if isinstance(kind, str) else None
        if not isinstance(item, dict):
            errors[f"challenges.{i}"] = ["Invalid input type."]
            continue
        if schema is None:
            errors[f"challenges.{i}.kind"] = [f"Must be one of: {', '.join(CHALLENGE_KINDS)}."]
            continue
        try:
            loaded.append(schema().load(item))
        except ValidationError as exc:
            errors.update(flatten_errors(exc.messages, f"challenges.{i}"))
    return loaded, errors
