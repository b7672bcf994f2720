"""Storage only: one module per aggregate. Importing this package registers every table."""

from backend.models.access import CampaignCredential
from backend.models.audit import AuditEntry
from backend.models.campaign import Campaign, Team
from backend.models.intake import Checkin, DayActionTotal, IdempotencyRecord, PersonDay
from backend.models.ledger import CampaignLedger, LedgerEntry
from backend.models.login import SandboxLogin, SeenLoginCode
from backend.models.participation import Participation
from backend.models.partners import (
    LinkCode,
    Partner,
    PartnerItem,
    PartnerLink,
    PartnerNonce,
    partner_campaigns,
)
from backend.models.projections import (
    CampaignDay,
    CampaignWeek,
    FreezeSnapshot,
    FrozenBoard,
    ParticipantDay,
    ParticipantWeek,
    TeamPeriod,
)
from backend.models.reporting import CampaignAction, CampaignActionDay, ParticipantAction
from backend.models.review import ChallengeCompletion, Hold, WerunDay
from backend.models.staff import StaffAccount, staff_campaigns
from backend.models.user import User

__all__ = [
    "AuditEntry",
    "Campaign",
    "CampaignAction",
    "CampaignActionDay",
    "CampaignCredential",
    "CampaignDay",
    "CampaignLedger",
    "CampaignWeek",
    "ChallengeCompletion",
    "Checkin",
    "DayActionTotal",
    "FreezeSnapshot",
    "FrozenBoard",
    "Hold",
    "IdempotencyRecord",
    "LedgerEntry",
    "LinkCode",
    "ParticipantAction",
    "ParticipantDay",
    "ParticipantWeek",
    "Participation",
    "Partner",
    "PartnerItem",
    "PartnerLink",
    "PartnerNonce",
    "PersonDay",
    "SandboxLogin",
    "SeenLoginCode",
    "StaffAccount",
    "Team",
    "TeamPeriod",
    "User",
    "WerunDay",
    "partner_campaigns",
    "staff_campaigns",
]
