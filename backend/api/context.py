"""The participant views under /campaigns/<slug>/: the token's user, the published campaign,
its chain head and the user's participation come in one query (the most frequent requests
of a campaign's evening peak each saved two round trips and two ORM loads this way)."""

from __future__ import annotations

import functools

from flask import g

from backend.auth import bearer_token, current_principal, decode_token
from backend.errors import ApiError
from backend.services.public import campaign_context, read_context


def load_campaign_context(slug: str, required: bool = True) -> None:
    """Set ``g.user`` (None without a token when not ``required``), ``g.campaign``,
    ``g.head_seq`` and ``g.participation`` (None when not joined). Errors in the order of
    :func:`participant_required` then the campaign: 401 (missing, invalid, expired or
    revoked token), 403 auth.forbidden (a staff token), then 404 (unknown or unpublished)."""
    token = bearer_token()
    if token is None and required:
        raise ApiError(401, "auth.token_missing")
    claims = decode_token(token) if token is not None else None
    if claims is not None and claims["typ"] != "participant":
        current_principal("participant", required)  # 401 for a revoked one, else 403
    context = campaign_context(slug, claims["sub"] if claims is not None else None)
    # The user's row came with the campaign: the token check finds it in the session.
    g.user = current_principal("participant", required)
    if context is None:
        raise ApiError(404, "not_found")
    g.campaign, g.head_seq = context.campaign, context.head_seq
    g.participation = context.participation if g.user is not None else None


def load_read_context(slug: str, required: bool = True) -> None:
    """:func:`load_campaign_context` for views that only read: ``g.campaign`` and
    ``g.participation`` are plain rows (``CampaignRef``, ``ParticipationRef``) from one
    statement, and the token is checked against the user's columns that came with them;
    ``g.user`` is not set. Same errors, in the same order."""
    token = bearer_token()
    if token is None and required:
        raise ApiError(401, "auth.token_missing")
    claims = decode_token(token) if token is not None else None
    if claims is not None and claims["typ"] != "participant":
        current_principal("participant", required)  # 401 for a revoked one, else 403
    context = read_context(slug, claims["sub"] if claims is not None else None)
    if context is None:
        if claims is not None:
            current_principal("participant", required)  # a revoked token is 401 before 404
        raise ApiError(404, "not_found")
    if claims is not None and context.token_version != claims["ver"]:
        raise ApiError(401, "auth.token_invalid")  # the user is gone, erased or logged out
    g.campaign, g.head_seq = context.campaign, context.head_seq
    g.participation = context.participation if claims is not None else None


def reads_in_campaign(view):
    """A participant's read-only view of the campaign of its ``slug``: see
    :func:`load_read_context`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        load_read_context(kwargs["slug"])
        return view(*args, **kwargs)

    return wrapper


def in_campaign(view):
    """A participant's view of the campaign of its ``slug``: see :func:`load_campaign_context`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        load_campaign_context(kwargs["slug"])
        return view(*args, **kwargs)

    return wrapper
