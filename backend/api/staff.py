"""Staff login."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from backend.api.docs import documents_errors
from backend.auth import issue_token
from backend.extensions import db, limiter
from backend.schemas.admin import StaffLoginArgs, StaffLoginSchema
from backend.services.staff import authenticate_staff, normalise_email

bp = Blueprint("staff", __name__, url_prefix="/api/v1/staff", description="Staff")


def _email_and_address() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    email = normalise_email(email) if isinstance(email, str) else ""
    return f"staff-login:{email}:{request.remote_addr}"


def _address() -> str:
    return f"staff-login-address:{request.remote_addr}"


def _failed(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["POST"])
# Only failures count: repeated wrong passwords for one email from one address are throttled,
# and so is one address trying many emails; there is no lockout a stranger could trigger.
@limiter.limit("5 per minute", key_func=_email_and_address, deduct_when=_failed)
@limiter.limit("30 per minute", key_func=_address, deduct_when=_failed)
@bp.arguments(StaffLoginArgs())
@bp.response(200, StaffLoginSchema)
@documents_errors(bp, 400, 401, 415, 429)
def staff_login(args):
    """Log in an organiser or admin with email and password."""
    staff = authenticate_staff(args["email"], args["password"])
    token = issue_token("staff", staff.id, staff.token_version)
    body = {"token": token.token, "expires_in": token.expires_in, "role": staff.role}
    db.session.commit()
    return body
