"""Campaign presets shipped under campaigns/presets/ (demo data and templates)."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta
from pathlib import Path

from campaigns.document import CampaignDoc, load_campaign_yaml

PRESET_DIR = Path(__file__).parent / "presets"
DEMO_PRESET = "winter-2022"
# The demo opens a week in: today is the campaign's eighth day, so boards and series have data.
DEMO_DAY_INDEX = 7

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class UnknownPreset(ValueError):
    """No preset with that name is shipped."""


def available_presets() -> tuple[str, ...]:
    """Names of the shipped presets, sorted."""
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))


def load_preset(name: str) -> CampaignDoc:
    """Parse a shipped preset (e.g. "winter-2022"); raises UnknownPreset, or DocumentInvalid if
    the file is broken (a test keeps them valid)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise UnknownPreset(f"unknown preset {name!r}")
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UnknownPreset(f"unknown preset {name!r}")
    return load_campaign_yaml(path.read_text(encoding="utf-8"))


def shift_document(doc: CampaignDoc, today: date) -> CampaignDoc:
    """The same campaign moved in time so that `today` is its eighth day.

    Every date moves by the same whole number of days: starts_on becomes today - 7 days, and
    ends_on, each revision's effective_from and leaderboard.freeze_at follow (freeze_at keeps
    its time of day in UTC). Nothing else changes.
    """
    delta = (today - timedelta(days=DEMO_DAY_INDEX)) - doc.starts_on
    return dataclasses.replace(
        doc,
        starts_on=doc.starts_on + delta,
        ends_on=doc.ends_on + delta,
        freeze_at=None if doc.freeze_at is None else doc.freeze_at + delta,
        revisions=tuple(dataclasses.replace(r, effective_from=r.effective_from + delta)
                        for r in doc.revisions),
    )
