"""Counted history is never rewritten (API.md admin campaigns, PUT and revisions).

history_conflicts() says which fields of a replacement document would change how existing
entries were counted (`409 campaign.history_locked`); add_revision() validates the body of the
revisions endpoint and returns the document with the revision appended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import date

from marshmallow import ValidationError

from campaigns.document import DocumentInvalid, override_from_loaded
from campaigns.document_checks import check_document
from campaigns.document_model import CampaignDoc, Revision, effective_actions
from campaigns.document_schema import RevisionSchema, flatten_errors
from campaigns.methodology import load_methodology

_RULE_FIELDS = (("factor_milli", "factor_g"), ("cap_milli", "daily_cap"),
                ("min_milli", "min_quantity"), ("sources", "sources"))


def history_conflicts(old: CampaignDoc, new: CampaignDoc, *, actions_with_entries: Collection[str],
                      last_entry_date: date | None) -> list[str]:
    """Dotted paths of `new` whose change from `old` would rewrite counted history; [] if none.

    With no entries (last_entry_date None) anything may change. Otherwise: timezone, starts_on,
    methodology and rules must not change; ends_on must not move before last_entry_date;
    revisions in force on last_entry_date must stay as they are (entries carry their number);
    an action with entries must stay, with the same effective factor, cap, minimum and sources
    on every day from starts_on to last_entry_date. Changes after last_entry_date (a future
    revision) rewrite nothing; that a new revision starts after today is add_revision's check.
    """
    if last_entry_date is None:
        return []
    paths = [field for field in ("timezone", "starts_on", "methodology")
             if getattr(old, field) != getattr(new, field)]
    if old.car_free_day_max != new.car_free_day_max:
        paths.append("rules.car_free_day_max")
    if new.ends_on < last_entry_date:
        paths.append("ends_on")
    for i, revision in enumerate(old.revisions):
        if revision.effective_from <= last_entry_date and (
                i >= len(new.revisions) or new.revisions[i] != revision):
            paths.append(f"revisions.{i}")
    if old.methodology != new.methodology:
        return paths
    methodology = load_methodology(new.methodology)
    new_keys = new.action_keys
    for key in old.action_keys:
        if key in actions_with_entries and key not in new_keys:
            paths.append("actions")
    # Rules are constant between revision dates, so these days cover every counted day.
    days = sorted({old.starts_on, *(r.effective_from for r in (*old.revisions, *new.revisions)
                                    if r.effective_from <= last_entry_date)})
    changed: set[str] = set()
    for day in days:
        before = {r.key: r for r in effective_actions(old, methodology, day)}
        after = {r.key: r for r in effective_actions(new, methodology, day)}
        for key in actions_with_entries:
            if key not in before or key not in after:
                continue
            for attr, field in _RULE_FIELDS:
                if getattr(before[key], attr) != getattr(after[key], attr):
                    changed.add(f"actions.{new_keys.index(key)}.{field}")
    paths.extend(sorted(changed))
    return paths


def add_revision(doc: CampaignDoc, body: object, *, today: date) -> CampaignDoc:
    """The document with the revision `body` ({"effective_from", "actions"}) appended.

    effective_from must be after `today` (campaign-local) and after the last revision; the
    actions are override items of actions the campaign counts. Raises DocumentInvalid with
    paths relative to the body (`effective_from`, `actions.0.key`).
    """
    if not isinstance(body, dict):
        raise DocumentInvalid({"_schema": ["Invalid input type."]})
    try:
        loaded = RevisionSchema().load(body)
    except ValidationError as exc:
        raise DocumentInvalid(flatten_errors(exc.messages)) from None
    revision = Revision(loaded["effective_from"],
                        tuple(override_from_loaded(a) for a in loaded["actions"]))
    if revision.effective_from <= today:
        raise DocumentInvalid({"effective_from": ["Must be after today."]})
    new = dataclasses.replace(doc, revisions=(*doc.revisions, revision))
    errors = check_document(new, load_methodology(new.methodology))
    if errors:
        prefix = f"revisions.{len(doc.revisions)}."
        raise DocumentInvalid({path.removeprefix(prefix): msgs for path, msgs in errors.items()})
    return new
