"""The campaign document (API.md "Campaign document"): parse, validate and dump.

parse_campaign(data) validates a document (a dict from JSON or YAML) into a frozen CampaignDoc
with every default filled, or raises DocumentInvalid whose `fields` maps flat dotted 0-based
paths (`actions.2.key`, `slug`) to English messages. dump_campaign(doc) is the canonical form:
every field present, a fixed key order, dates as ISO strings, decimals as JSON numbers, so that
parse(dump(parse(x))) == parse(x) and an export is byte-identical to the export of its import.
effective_actions() (campaigns.document_model) resolves the rules in force on a date.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml
from marshmallow import ValidationError

from campaigns.decimals import milli_to_number
from campaigns.document_checks import check_document
from campaigns.document_model import (
    ActionOverride,
    ActionRule,
    CampaignDoc,
    Challenge,
    Revision,
    Team,
    TeamsConfig,
    action_rule,
    effective_actions,
    revision_in_force,
)
from campaigns.document_schema import CampaignSchema, flatten_errors, load_challenges
from campaigns.methodology import load_methodology

__all__ = [
    "ActionOverride", "ActionRule", "CampaignDoc", "Challenge", "DocumentInvalid", "Revision",
    "Team", "TeamsConfig", "action_rule", "dump_campaign", "dump_campaign_json",
    "dump_campaign_yaml", "effective_actions", "format_instant", "load_campaign_yaml",
    "override_from_loaded", "parse_campaign", "revision_in_force",
]


class DocumentInvalid(ValueError):
    """An invalid campaign document; `fields` maps dotted paths to lists of messages."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__(f"invalid campaign document: {sorted(fields)}")
        self.fields = fields


def parse_campaign(data: object) -> CampaignDoc:
    """Validate a campaign document into a CampaignDoc; raises DocumentInvalid.

    Shape and types are checked first (all such errors reported together); the rules that need
    the methodology or relate fields run only on a well-typed document.
    Defaults: description "", timezone Asia/Shanghai, methodology cn-consumer-v1,
    late_entry_days 1, points_per_g 1, join.invite_code null, teams {mode none, ranking total,
    min_active_members 1, list []}, rules.car_free_day_max true, dashboard.public false,
    challenges [], count challenges per record, leaderboard.freeze_at null, revisions [].
    Required: slug, name, starts_on, ends_on, target_kg, actions (at least one).
    """
    if not isinstance(data, dict):
        raise DocumentInvalid({"_schema": ["Invalid input type."]})
    errors: dict[str, list[str]] = {}
    try:
        loaded = CampaignSchema().load(data)
    except ValidationError as exc:
        errors = flatten_errors(exc.messages)
        loaded = None
    raw_challenges = data.get("challenges", [])
    challenges: list[dict] = []
    if isinstance(raw_challenges, list):
        challenges, challenge_errors = load_challenges(raw_challenges)
        errors.update(challenge_errors)
    if errors or loaded is None:
        raise DocumentInvalid(errors)
    doc = _build(loaded, challenges)
    errors = check_document(doc, load_methodology(doc.methodology))
    if errors:
        raise DocumentInvalid(errors)
    return doc


def override_from_loaded(raw: dict) -> ActionOverride:
    """An ActionOverride from an OverrideSchema-loaded dict."""
    sources = raw.get("sources")
    return ActionOverride(
        key=raw["key"],
        name=raw.get("name"),
        factor_milli=raw.get("factor_g"),
        cap_milli=raw.get("daily_cap"),
        min_milli=raw.get("min_quantity"),
        sources=None if sources is None else tuple(sources),
    )


def _build(raw: dict, challenges: list[dict]) -> CampaignDoc:
    teams = raw["teams"]
    return CampaignDoc(
        slug=raw["slug"],
        name=raw["name"],
        description=raw["description"],
        timezone=raw["timezone"],
        starts_on=raw["starts_on"],
        ends_on=raw["ends_on"],
        # target_kg in thousandths of a kg is grams; grams x 1000 are milligrams.
        target_mg=raw["target_kg"] * 1000,
        methodology=raw["methodology"],
        late_entry_days=raw["late_entry_days"],
        points_per_g_milli=raw["points_per_g"],
        invite_code=raw["join"]["invite_code"],
        teams=TeamsConfig(
            mode=teams["mode"], ranking=teams["ranking"],
            min_active_members=teams["min_active_members"],
            teams=tuple(Team(t["key"], t["name"]) for t in teams["list"]),
        ),
        car_free_day_max=raw["rules"]["car_free_day_max"],
        dashboard_public=raw["dashboard"]["public"],
        actions=tuple(override_from_loaded(a) for a in raw["actions"]),
        challenges=tuple(
            Challenge(key=c["key"], name=c["name"], kind=c["kind"], action=c.get("action"),
                      target=c.get("target"), per=c.get("per"), min_milli=c.get("min_quantity"),
                      target_mg=c.get("target_g"))
            for c in challenges
        ),
        freeze_at=raw["leaderboard"]["freeze_at"],
        revisions=tuple(
            Revision(r["effective_from"], tuple(override_from_loaded(a) for a in r["actions"]))
            for r in raw["revisions"]
        ),
    )


def format_instant(instant: datetime) -> str:
    """An aware instant as ISO 8601 UTC with Z: seconds, or microseconds when it has them."""
    utc = instant.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return utc.strftime(pattern)


def _dump_override(o: ActionOverride) -> dict:
    out: dict[str, object] = {"key": o.key}
    if o.name is not None:
        out["name"] = o.name
    if o.factor_milli is not None:
        out["factor_g"] = milli_to_number(o.factor_milli)
    if o.cap_milli is not None:
        out["daily_cap"] = milli_to_number(o.cap_milli)
    if o.min_milli is not None:
        out["min_quantity"] = milli_to_number(o.min_milli)
    if o.sources is not None:
        out["sources"] = list(o.sources)
    return out


def _dump_challenge(c: Challenge) -> dict:
    out: dict[str, object] = {"key": c.key, "name": c.name, "kind": c.kind}
    if c.kind == "streak":
        out.update(action=c.action, min_quantity=milli_to_number(c.min_milli or 0),
                   target=c.target)
    elif c.kind == "count":
        out.update(per=c.per, action=c.action, target=c.target)
    else:
        out["target_g"] = milli_to_number(c.target_mg or 0)
    return out


def dump_campaign(doc: CampaignDoc) -> dict:
    """The canonical document: all top-level fields with defaults filled, in API.md's order.

    Dates are "YYYY-MM-DD", freeze_at "YYYY-MM-DDTHH:MM:SSZ" (microseconds only if present),
    decimals JSON numbers (int when whole, else a float whose repr is exact: 26.9, 0.02).
    Action overrides list only the fields that were given (an absent override follows the
    methodology); challenges list the fields of their kind.
    """
    return {
        "slug": doc.slug,
        "name": doc.name,
        "description": doc.description,
        "timezone": doc.timezone,
        "starts_on": doc.starts_on.isoformat(),
        "ends_on": doc.ends_on.isoformat(),
        "target_kg": milli_to_number(doc.target_mg // 1000),
        "methodology": doc.methodology,
        "late_entry_days": doc.late_entry_days,
        "points_per_g": milli_to_number(doc.points_per_g_milli),
        "join": {"invite_code": doc.invite_code},
        "teams": {
            "mode": doc.teams.mode,
            "ranking": doc.teams.ranking,
            "min_active_members": doc.teams.min_active_members,
            "list": [{"key": t.key, "name": t.name} for t in doc.teams.teams],
        },
        "rules": {"car_free_day_max": doc.car_free_day_max},
        "dashboard": {"public": doc.dashboard_public},
        "actions": [_dump_override(o) for o in doc.actions],
        "challenges": [_dump_challenge(c) for c in doc.challenges],
        "leaderboard": {
            "freeze_at": None if doc.freeze_at is None else format_instant(doc.freeze_at),
        },
        "revisions": [
            {"effective_from": r.effective_from.isoformat(),
             "actions": [_dump_override(o) for o in r.actions]}
            for r in doc.revisions
        ],
    }


def load_campaign_yaml(text: str) -> CampaignDoc:
    """parse_campaign of a YAML (or JSON) text; unparsable text is DocumentInvalid(`_schema`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise DocumentInvalid({"_schema": ["Not a valid YAML or JSON document."]}) from None
    return parse_campaign(data)


def dump_campaign_yaml(doc: CampaignDoc) -> str:
    """The canonical document as YAML (Chinese kept, key order of dump_campaign)."""
    return yaml.safe_dump(dump_campaign(doc), allow_unicode=True, sort_keys=False,
                          default_flow_style=False, width=100)


def dump_campaign_json(doc: CampaignDoc) -> str:
    """The canonical document as indented JSON (non-ASCII kept), ending with a newline."""
    return json.dumps(dump_campaign(doc), ensure_ascii=False, indent=2) + "\n"
