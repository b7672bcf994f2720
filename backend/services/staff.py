"""Staff accounts: creation, password check, token loading."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import StaffAccount
from backend.services.campaigns import campaigns_by_slug

MIN_PASSWORD_LENGTH = 10
# Checked against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = generate_password_hash("tanpu-dummy-password", method="scrypt")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_staff(email: str, password: str, role: str, campaign_slugs: list[str]) -> StaffAccount:
    """A new staff account (scrypt-hashed password). Raises 422 naming the bad field."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise validation_error({"email": ["Not a valid email address."]})
    if role not in ("admin", "organiser"):
        raise validation_error({"role": ["Must be admin or organiser."]})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise validation_error({"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]})
    campaigns = campaigns_by_slug(campaign_slugs)
    staff = StaffAccount(email=email, role=role, campaigns=campaigns,
                         password_hash=generate_password_hash(password, method="scrypt"))
    db.session.add(staff)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise validation_error({"email": ["A staff account with this email exists."]}) from None
    return staff


def authenticate_staff(email: str, password: str) -> StaffAccount:
    """The account with these credentials; 401 auth.credentials_invalid otherwise (the same
    answer, in the same time, for an unknown email)."""
    staff = db.session.scalars(
        select(StaffAccount).where(StaffAccount.email == normalise_email(email))
    ).one_or_none()
    stored = staff.password_hash if staff else _DUMMY_HASH
    if not check_password_hash(stored, password) or staff is None:
        raise ApiError(401, "auth.credentials_invalid")
    return staff


def load_staff(staff_id: int, version: int) -> StaffAccount | None:
    """The staff account whose token carries ``version``; None if gone or revoked."""
    staff = db.session.get(StaffAccount, staff_id)
    if staff is None or staff.token_version != version:
        return None
    return staff


def find_staff(email: str) -> StaffAccount | None:
    return db.session.scalars(
        select(StaffAccount).where(StaffAccount.email == normalise_email(email))
    ).one_or_none()
