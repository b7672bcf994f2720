"""The participant views under /campaigns/<slug>/: the token's user, the published campaign,
its chain head and the user's participation come in one statement, as rows (the most
frequent requests of a campaign's evening peak each saved round trips and ORM loads this
way).

Errors, in every loader, in the order of :func:`backend.auth.participant_required` then the
campaign: 401 (missing, invalid, expired or revoked token), 403 auth.forbidden (a staff
token), then 404 (unknown or unpublished campaign)."""

from __future__ import annotations

import functools

from flask import g, request

from backend.auth import bearer_token, current_principal, decode_token
from backend.errors import ApiError
from backend.services.idempotency import HEADER, check_key, claim_call, request_fingerprint
from backend.services.public import participation_entity, read_context


def participant_claims(required: bool) -> dict | None:
    """The verified claims of a participant token (None without one when not ``required``);
    a staff token is 403, or 401 when revoked."""
    token = bearer_token()
    if token is None and required:
        raise ApiError(401, "auth.token_missing")
    claims = decode_token(token) if token is not None else None
    if claims is not None and claims["typ"] != "participant":
        current_principal("participant", required)
    return claims


def load_read_context(slug: str, required: bool = True) -> None:
    """Set ``g.user_id``, ``g.campaign`` (a ``CampaignRef``), ``g.head_seq`` and
    ``g.participation`` (a ``ParticipationRef``, None when not joined) from one statement
    built once, the token checked against the user's columns that came with them (no User
    is loaded: ``g.user`` is not set)."""
    read_context_of(slug, participant_claims(required), required)


def read_context_of(slug: str, claims: dict | None, required: bool,
                    also: list = ()) -> list:
    """:func:`load_read_context` for the verified ``claims`` (see
    :func:`participant_claims`), with ``also``, calls sent in the same round trip, whose rows
    are returned (each call's)."""
    user_id = claims["sub"] if claims is not None else None
    context, also_rows = read_context(slug, user_id, also)
    if context is None:
        if claims is not None:
            current_principal("participant", required)  # a revoked token is 401 before 404
        raise ApiError(404, "not_found")
    if claims is not None and context.token_version != claims["ver"]:
        raise ApiError(401, "auth.token_invalid")  # the user is gone, erased or logged out
    g.user_id = user_id
    g.campaign, g.head_seq = context.campaign, context.head_seq
    g.participation = context.participation if claims is not None else None
    return also_rows


def load_campaign_context(slug: str) -> None:
    """:func:`load_read_context` for views that write or need the User: ``g.user`` is the
    token's User (read by its key) and ``g.participation`` a Participation of the
    session."""
    load_read_context(slug)
    g.user = current_principal("participant")
    if g.participation is not None:
        g.participation = participation_entity(g.participation)


def in_campaign(view):
    """A participant's view of the campaign of its ``slug``: see load_campaign_context."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        load_campaign_context(kwargs["slug"])
        return view(*args, **kwargs)

    return wrapper


def intake_in_campaign(view):
    """A participant's intake in the campaign of its ``slug`` (under ``idempotent_write``):
    :func:`load_read_context`, with the Idempotency-Key's claim in the same round trip and
    ``g.participation`` a Participation of the session. ``g.idempotency_claim`` is then the
    claimed record's id, or None when the key was taken (``idempotent_write`` looks up the
    stored reply)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        claims = participant_claims(True)
        key = check_key(request.headers.get(HEADER))
        claim = None
        if key is not None:
            claim = claim_call(f"user:{claims['sub']}", request.method, request.path, key,
                               request_fingerprint(request.get_data()))
        claim_rows = read_context_of(kwargs["slug"], claims, True,
                                     also=[claim] if claim is not None else [])
        if claim is not None:
            g.idempotency_claim = claim_rows[0][0].id if claim_rows[0] else None
        if g.participation is not None:
            g.participation = participation_entity(g.participation)
        return view(*args, **kwargs)

    return wrapper

