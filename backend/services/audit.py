"""The audit log: every staff change, with who, what, before and after, when."""

from __future__ import annotations

from backend.extensions import db
from backend.models import AuditEntry, Campaign, StaffAccount


def record_audit(actor: StaffAccount | str, action: str, campaign: Campaign | None,
                 target: str | None = None, before=None, after=None) -> AuditEntry:
    """Append one audit entry (flushes). ``actor`` is a staff account, or a label such as
    ``cli`` for changes made from the command line."""
    staff_id = actor.id if isinstance(actor, StaffAccount) else None
    label = actor.email if isinstance(actor, StaffAccount) else actor
    entry = AuditEntry(
        campaign_id=campaign.id if campaign is not None else None, staff_id=staff_id,
        actor=label, action=action, target=target, before=before, after=after,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
