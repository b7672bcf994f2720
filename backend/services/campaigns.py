"""Campaigns: stored from validated documents, read back as documents, published, teamed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backend.clock import utcnow
from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, LedgerEntry, Participation, Team
from backend.services.audit import record_audit
from backend.services.documents import campaign_doc
from backend.services.ledger import new_ledger
from campaigns.calendar import local_today
from campaigns.document import CampaignDoc, DocumentInvalid, dump_campaign, parse_campaign
from campaigns.document_model import Team as DocTeam
from campaigns.history import add_revision, history_conflicts


def parse_document(data: object) -> CampaignDoc:
    """A validated campaign document; 422 validation.failed naming each bad field."""
    try:
        return parse_campaign(data)
    except DocumentInvalid as invalid:
        raise validation_error(invalid.fields) from None


def _settings_of(doc: CampaignDoc) -> dict:
    """What the campaign row keeps: the canonical document without its team list (rows)."""
    settings = dump_campaign(doc)
    settings["teams"] = {k: v for k, v in settings["teams"].items() if k != "list"}
    return settings


def touch_document(campaign: Campaign) -> None:
    """Mark the campaign's document (settings or teams) changed."""
    campaign.updated_dt = utcnow()
    if campaign.id is not None:
        campaign.doc_version = Campaign.doc_version + 1


def campaign_document(campaign: Campaign) -> dict:
    """The stored campaign as its canonical document (GET, export)."""
    return dump_campaign(campaign_doc(campaign))


def find_campaign(slug: str) -> Campaign | None:
    return db.session.scalars(select(Campaign).where(Campaign.slug == slug)).one_or_none()


def campaigns_by_slug(slugs: list[str], field: str = "campaigns") -> list[Campaign]:
    """The campaigns named, in order; 422 at ``<field>.<index>`` for an unknown slug."""
    campaigns = []
    for index, slug in enumerate(slugs):
        campaign = find_campaign(slug)
        if campaign is None:
            raise validation_error({f"{field}.{index}": [f"No campaign {slug!r}."]})
        campaigns.append(campaign)
    return campaigns


def _apply_doc(campaign: Campaign, doc: CampaignDoc) -> None:
    campaign.slug = doc.slug
    campaign.name = doc.name
    campaign.timezone = doc.timezone
    campaign.starts_on = doc.starts_on
    campaign.ends_on = doc.ends_on
    campaign.target_mg = doc.target_mg
    campaign.settings = _settings_of(doc)
    touch_document(campaign)


def _sync_teams(campaign: Campaign, teams: tuple[DocTeam, ...]) -> None:
    """Upsert teams by key and remove those the document no longer lists."""
    wanted = {team.key: team.name for team in teams}
    for team in list(campaign.teams):
        if team.key not in wanted:
            ensure_team_removable(team)
            campaign.teams.remove(team)
        else:
            team.name = wanted.pop(team.key)
    for key, name in wanted.items():
        campaign.teams.append(Team(key=key, name=name))


def team_member_count(team: Team) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Participation).where(Participation.team_id == team.id)
    )


def ensure_team_removable(team: Team) -> None:
    """409 team.conflict when the team has members."""
    if team_member_count(team) > 0:
        raise ApiError(409, "team.conflict")


def create_campaign(doc: CampaignDoc, actor) -> Campaign:
    """Store a new (draft) campaign; a taken slug is 422 at ``slug``. Flushes."""
    if find_campaign(doc.slug) is not None:
        raise validation_error({"slug": ["A campaign with this slug exists."]})
    campaign = Campaign(status="draft", settings={})
    _apply_doc(campaign, doc)
    _sync_teams(campaign, doc.teams.teams)
    db.session.add(campaign)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise validation_error({"slug": ["A campaign with this slug exists."]}) from None
    new_ledger(campaign)
    db.session.flush()
    record_audit(actor, "campaign.create", campaign, campaign.slug, None, dump_campaign(doc))
    return campaign


def replace_campaign(campaign: Campaign, doc: CampaignDoc, actor) -> Campaign:
    """Replace the campaign's document (PUT). The slug cannot change. Flushes."""
    if doc.slug != campaign.slug:
        raise validation_error({"slug": ["The slug of a campaign cannot change."]})
    before = campaign_document(campaign)
    conflicts = history_conflicts(campaign_doc(campaign), doc, **counted_history(campaign))
    if conflicts:
        raise ApiError(409, "campaign.history_locked")
    _apply_doc(campaign, doc)
    _sync_teams(campaign, doc.teams.teams)
    db.session.flush()
    record_audit(actor, "campaign.update", campaign, campaign.slug, before, dump_campaign(doc))
    return campaign


def counted_history(campaign: Campaign) -> dict:
    """The actions that have entries and the last entry's date (what a change must keep)."""
    actions = set(db.session.scalars(
        select(LedgerEntry.action).where(LedgerEntry.campaign_id == campaign.id).distinct()))
    last = db.session.scalar(
        select(func.max(LedgerEntry.local_date)).where(LedgerEntry.campaign_id == campaign.id))
    return {"actions_with_entries": actions, "last_entry_date": last}


def add_campaign_revision(campaign: Campaign, body: object, actor, now) -> Campaign:
    """Append a revision (new factors, caps, minimums, sources from a future local date);
    entries before it keep theirs. 422 naming the body's field. Flushes."""
    doc = campaign_doc(campaign)
    before = dump_campaign(doc)
    try:
        revised = add_revision(doc, body, today=local_today(now, doc.timezone))
    except DocumentInvalid as invalid:
        raise validation_error(invalid.fields) from None
    _apply_doc(campaign, revised)
    db.session.flush()
    record_audit(actor, "campaign.revision", campaign, campaign.slug,
                 {"revisions": before["revisions"]},
                 {"revisions": dump_campaign(revised)["revisions"]})
    return campaign


def publish_campaign(campaign: Campaign, actor) -> Campaign:
    """Make the campaign visible to the public (idempotent). Flushes."""
    if campaign.status != "published":
        campaign.status = "published"
        campaign.published_dt = utcnow()
        db.session.flush()
        record_audit(actor, "campaign.publish", campaign, campaign.slug,
                     {"status": "draft"}, {"status": "published"})
    return campaign
