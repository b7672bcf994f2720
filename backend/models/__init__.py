"""Storage only: one module per aggregate. Importing this package registers every table."""

from backend.models.access import CampaignCredential
from backend.models.audit import AuditEntry
from backend.models.campaign import Campaign, Team
from backend.models.login import SandboxLogin, SeenLoginCode
from backend.models.participation import Participation
from backend.models.staff import StaffAccount, staff_campaigns
from backend.models.user import User

__all__ = [
    "AuditEntry", "Campaign", "CampaignCredential", "Participation", "SandboxLogin",
    "SeenLoginCode", "StaffAccount", "Team", "User", "staff_campaigns",
]
