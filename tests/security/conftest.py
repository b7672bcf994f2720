"""The staff and campaign fixtures of tests/backend, for the security tests."""

from tests.backend.conftest import add_staff, admin, create_campaign_doc, staff_token

__all__ = ["add_staff", "admin", "create_campaign_doc", "staff_token"]
