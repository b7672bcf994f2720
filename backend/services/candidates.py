"""Where a WeRun day or partner item is credited: the person's joined campaigns as
candidates for campaigns.crediting.choose_campaign (one unit, one campaign)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime

from sqlalchemy import select

from backend.extensions import db
from backend.models import Campaign, Participation
from backend.services.crediting import CampaignRules
from campaigns.calendar import local_today
from campaigns.crediting import CreditCandidate


def joined(user_id: int, campaign_ids: Iterable[int] | None = None
           ) -> list[tuple[Participation, CampaignRules]]:
    """The person's participations in published campaigns (optionally only these ids)."""
    query = (select(Participation, Campaign)
             .join(Campaign, Campaign.id == Participation.campaign_id)
             .where(Participation.user_id == user_id, Campaign.status == "published")
             .order_by(Participation.joined_dt, Campaign.id))
    if campaign_ids is not None:
        query = query.where(Campaign.id.in_(list(campaign_ids)))
    return [(p, CampaignRules.of(c)) for p, c in db.session.execute(query)]


def candidates(memberships: list[tuple[Participation, CampaignRules]], now: datetime,
               item_date: Callable[[CampaignRules], date],
               not_counted: Callable[[CampaignRules, date], str | None]) -> list[CreditCandidate]:
    """One candidate per membership, the item's date and counting as that campaign sees it."""
    result = []
    for participation, rules in memberships:
        day = item_date(rules)
        doc = rules.doc
        result.append(CreditCandidate(
            campaign_id=rules.campaign.id, joined_dt=participation.joined_dt,
            joined_on=participation.joined_on,
            disqualified=participation.disqualified_dt is not None,
            today=local_today(now, doc.timezone), item_date=day, starts_on=doc.starts_on,
            ends_on=doc.ends_on, late_entry_days=doc.late_entry_days,
            not_counted_code=not_counted(rules, day),
        ))
    return result
