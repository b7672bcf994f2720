"""Reporter API keys and dashboard tokens: random, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from backend.clock import utcnow
from backend.errors import ApiError
from backend.extensions import db
from backend.models import Campaign, CampaignCredential
from backend.services.audit import record_audit

PREFIXES = {"api_key": "tpk_", "dashboard_token": "tpd_"}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_credential(
    campaign: Campaign, kind: str, label: str, actor
) -> tuple[CampaignCredential, str]:
    """A new credential and its secret (the only time the secret exists in clear). Flushes."""
    secret = PREFIXES[kind] + secrets.token_urlsafe(32)
    credential = CampaignCredential(
        campaign_id=campaign.id, kind=kind, label=label, secret_hash=hash_secret(secret),
        created_by=getattr(actor, "id", None),
    )
    db.session.add(credential)
    db.session.flush()
    record_audit(actor, f"{kind}.create", campaign, f"{kind}:{credential.id}", None,
                 {"id": credential.id, "label": label})
    return credential, secret


def list_credentials(campaign: Campaign, kind: str) -> list[CampaignCredential]:
    return list(db.session.scalars(
        select(CampaignCredential)
        .where(CampaignCredential.campaign_id == campaign.id, CampaignCredential.kind == kind)
        .order_by(CampaignCredential.id)
    ))


def revoke_credential(campaign: Campaign, kind: str, credential_id: int, actor) -> None:
    """Revoke (idempotent); a credential of another campaign or kind is 404. Flushes."""
    credential = db.session.get(CampaignCredential, credential_id)
    if credential is None or credential.campaign_id != campaign.id or credential.kind != kind:
        raise ApiError(404, "not_found")
    if credential.revoked_dt is None:
        credential.revoked_dt = utcnow()
        db.session.flush()
        record_audit(actor, f"{kind}.revoke", campaign, f"{kind}:{credential.id}",
                     {"revoked": False}, {"revoked": True})


def campaign_for_secret(secret: str, kind: str) -> Campaign | None:
    """The campaign a live credential of ``kind`` opens, or None."""
    credential = db.session.scalars(
        select(CampaignCredential).where(CampaignCredential.secret_hash == hash_secret(secret))
    ).one_or_none()
    if credential is None or credential.kind != kind or credential.revoked_dt is not None:
        return None
    return db.session.get(Campaign, credential.campaign_id)
