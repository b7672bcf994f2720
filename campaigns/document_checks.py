"""Rules of a well-typed campaign document that need the methodology or relate fields.

check_document returns flat dotted paths -> English messages (empty when valid); it never
raises for a bad document.
"""

from __future__ import annotations

from collections.abc import Iterable

from campaigns.calendar import WERUN_TIMEZONE
from campaigns.document_model import ActionOverride, CampaignDoc, effective_actions
from campaigns.methodology import Methodology

Errors = dict[str, list[str]]


def _add(errors: Errors, path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def _duplicates(keys: Iterable[str]) -> list[int]:
    """Indexes of keys already seen earlier in the sequence."""
    seen: set[str] = set()
    repeated = []
    for i, key in enumerate(keys):
        if key in seen:
            repeated.append(i)
        seen.add(key)
    return repeated


def check_document(doc: CampaignDoc, methodology: Methodology) -> Errors:
    """Every cross-field and methodology rule of the document; {} when it is valid."""
    errors: Errors = {}
    if doc.ends_on < doc.starts_on:
        _add(errors, "ends_on", "Must not be before starts_on.")
    _check_overrides(errors, "actions", doc.actions, methodology, known=None)
    counted = set(doc.action_keys) & set(methodology.actions)
    if any(methodology.actions[k].kind == "steps" for k in counted) \
            and doc.timezone != WERUN_TIMEZONE:
        _add(errors, "timezone", f"A campaign that counts steps must use {WERUN_TIMEZONE} "
                                 "(WeRun days are Beijing days).")
    for i in _duplicates(t.key for t in doc.teams.teams):
        _add(errors, f"teams.list.{i}.key", "Duplicate team key.")
    for i in _duplicates(c.key for c in doc.challenges):
        _add(errors, f"challenges.{i}.key", "Duplicate challenge key.")
    for i, challenge in enumerate(doc.challenges):
        if challenge.action is not None and challenge.action not in counted:
            _add(errors, f"challenges.{i}.action", "Not an action this campaign counts.")
    _check_revisions(errors, doc, methodology, counted)
    if not errors:
        _check_min_below_cap(errors, doc, methodology)
    return errors


def _check_overrides(errors: Errors, prefix: str, overrides: tuple[ActionOverride, ...],
                     methodology: Methodology, known: set[str] | None) -> None:
    """Keys (in the methodology, and in `known` when given), duplicates, sources, whole units."""
    for i in _duplicates(o.key for o in overrides):
        _add(errors, f"{prefix}.{i}.key", "Duplicate action key.")
    for i, o in enumerate(overrides):
        path = f"{prefix}.{i}"
        if o.key not in methodology.actions:
            _add(errors, f"{path}.key", f"Unknown action for methodology {methodology.version}.")
            continue
        if known is not None and o.key not in known:
            _add(errors, f"{path}.key", "Not an action this campaign counts.")
        spec = methodology.actions[o.key]
        if o.sources is not None:
            if not o.sources:
                _add(errors, f"{path}.sources", "At least one source is required.")
            seen: set[str] = set()
            for j, source in enumerate(o.sources):
                if source not in spec.sources:
                    _add(errors, f"{path}.sources.{j}", "The methodology does not allow this "
                         f"source for {o.key} (allowed: {', '.join(spec.sources)}).")
                elif source in seen:
                    _add(errors, f"{path}.sources.{j}", "Duplicate source.")
                seen.add(source)
        if spec.kind_rule.integral:
            for field, value in (("daily_cap", o.cap_milli), ("min_quantity", o.min_milli)):
                if value is not None and value % 1000:
                    _add(errors, f"{path}.{field}", f"A {spec.kind} action counts whole units.")


def _check_revisions(errors: Errors, doc: CampaignDoc, methodology: Methodology,
                     counted: set[str]) -> None:
    previous = doc.starts_on
    for i, revision in enumerate(doc.revisions):
        day = revision.effective_from
        if day <= previous:
            after = "starts_on" if i == 0 else "the previous revision"
            _add(errors, f"revisions.{i}.effective_from", f"Must be after {after}.")
        elif day > doc.ends_on:
            _add(errors, f"revisions.{i}.effective_from", "Must not be after ends_on.")
        previous = max(previous, day)
        _check_overrides(errors, f"revisions.{i}.actions", revision.actions, methodology,
                         known=counted)


def _check_min_below_cap(errors: Errors, doc: CampaignDoc, methodology: Methodology) -> None:
    """A minimum above the cap would make every day total count the cap or nothing: a mistake."""
    dates = [None, *(r.effective_from for r in doc.revisions)]
    reported: set[str] = set()
    for n, day in enumerate(dates):
        for rule in effective_actions(doc, methodology, day):
            if rule.cap_milli is not None and rule.min_milli > rule.cap_milli \
                    and rule.key not in reported:
                reported.add(rule.key)
                index = doc.action_keys.index(rule.key)
                if n == 0:
                    path = f"actions.{index}.min_quantity"
                else:
                    keys = [o.key for o in doc.revisions[n - 1].actions]
                    path = (f"revisions.{n - 1}.actions.{keys.index(rule.key)}.min_quantity"
                            if rule.key in keys else f"revisions.{n - 1}.effective_from")
                _add(errors, path, "Must not exceed daily_cap.")
