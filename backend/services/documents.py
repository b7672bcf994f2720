"""Parsed campaign documents, cached per app and document version (no import of the ledger,
so that appending can read a campaign's rules)."""

from __future__ import annotations

from flask import current_app

from backend.extensions import db
from backend.models import Campaign
from campaigns.document import CampaignDoc, parse_campaign


def campaign_doc(campaign) -> CampaignDoc:
    """The campaign (a Campaign, or a row with its ``id`` and ``doc_version``) as a validated
    document (teams from their rows), cached per app (one database) and document version."""
    cache = current_app.extensions.setdefault("tanpu_campaign_docs", {})
    version = (campaign.id, campaign.doc_version)
    cached = cache.get(version)
    if cached is not None:
        return cached
    if not isinstance(campaign, Campaign):
        return campaign_doc(db.session.get(Campaign, campaign.id))
    data = dict(campaign.settings)
    data["teams"] = {**data["teams"], "list": [{"key": t.key, "name": t.name}
                                              for t in campaign.teams]}
    doc = parse_campaign(data)
    if len(cache) > 256:
        cache.clear()
    cache[version] = doc
    return doc
