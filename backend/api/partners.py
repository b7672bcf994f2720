"""Signed partner webhooks: trips, records and link codes."""

from __future__ import annotations

import functools

from flask import g, request
from flask_smorest import Blueprint

from backend.api.docs import IDEMPOTENCY_KEY, PARTNER_SIGNED, documents_errors
from backend.api.writes import idempotent_write
from backend.clock import utcnow
from backend.extensions import limiter
from backend.schemas.partners import (
    BatchResultSchema,
    LinkCodeArgs,
    LinkCodeSchema,
    RecordBatchArgs,
    TripBatchArgs,
)
from backend.services.partner_intake import ingest_items
from backend.services.partners import authenticate_partner, register_link_code

bp = Blueprint("partners", __name__, url_prefix="/api/v1/partners",
               description="Partners (signed with HMAC-SHA256)")


def partner_signed(view):
    """The view runs with ``g.partner`` once the request's signature checked out."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.partner = authenticate_partner(kwargs["partner"], request.headers,
                                         request.get_data(), utcnow())
        return view(*args, **kwargs)

    return wrapper


def _partner_key() -> str:
    return f"partner:{request.view_args.get('partner', '')}"


def _principal() -> str:
    return f"partner:{g.partner.id}"


def _reply(outcome) -> dict:
    return {"accepted": outcome.accepted, "held": outcome.held,
            "duplicates": outcome.duplicates, "unmatched": outcome.unmatched,
            "rejected": outcome.rejected}


@bp.route("/<partner>/trips", methods=["POST"])
@limiter.limit("120 per minute", key_func=_partner_key)
@partner_signed
@idempotent_write(_principal)
@bp.arguments(TripBatchArgs())
@bp.response(200, BatchResultSchema)
@bp.doc(security=PARTNER_SIGNED, parameters=[IDEMPOTENCY_KEY])
@documents_errors(bp, 400, 401, 413, 415, 422, 429, 503)
def post_trips(args, partner):
    """Trips (1-1000): each matched by unionid or a linked member_ref and credited to one
    campaign; each (partner, trip_id) counts once ever."""
    return _reply(ingest_items(g.partner, "trip", args["trips"], utcnow()))


@bp.route("/<partner>/records", methods=["POST"])
@limiter.limit("120 per minute", key_func=_partner_key)
@partner_signed
@idempotent_write(_principal)
@bp.arguments(RecordBatchArgs())
@bp.response(200, BatchResultSchema)
@bp.doc(security=PARTNER_SIGNED, parameters=[IDEMPOTENCY_KEY])
@documents_errors(bp, 400, 401, 413, 415, 422, 429, 503)
def post_records(args, partner):
    """Records of other partner-fed actions (invoices, tickets, meetings, recycling, ETC)."""
    return _reply(ingest_items(g.partner, "record", args["records"], utcnow()))


@bp.route("/<partner>/link-codes", methods=["POST"])
@limiter.limit("120 per minute", key_func=_partner_key)
@partner_signed
@idempotent_write(_principal)
@bp.arguments(LinkCodeArgs())
@bp.response(201, LinkCodeSchema)
@bp.doc(security=PARTNER_SIGNED, parameters=[IDEMPOTENCY_KEY])
@documents_errors(bp, 400, 401, 415, 422, 429)
def post_link_code(args, partner):
    """Register a single-use code (valid 10 minutes) that the partner shows its logged-in
    member, who enters it in the mini-program to link the accounts."""
    code = register_link_code(g.partner, args["member_ref"], args["link_code"], utcnow())
    return {"member_ref": code.member_ref, "expires_at": code.expires_dt}, 201
