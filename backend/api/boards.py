"""Public leaderboards (a participant token adds ``me``)."""

from __future__ import annotations

import json

from flask import after_this_request, current_app
from flask_smorest import Blueprint

from backend.api.docs import BEARER, documents_errors
from backend.api.reads import reads_only
from backend.auth import bearer_token, current_principal, decode_token
from backend.clock import utcnow
from backend.errors import ApiError
from backend.schemas.boards import LeaderboardArgs, LeaderboardSchema
from backend.schemas.common import format_instant
from backend.services.boards import (
    board_context,
    read_board,
    redis_boards,
    replay_missing,
    settled_seq,
)
from backend.services.campaigns import campaign_doc
from campaigns.calendar import local_today, week_start

bp = Blueprint("boards", __name__, url_prefix="/api/v1/campaigns", description="Leaderboards")
BOARDS = ("individuals", "teams")
SOURCE_HEADER = {"X-Tanpu-Board-Source": {"description": "redis or sql",
                                          "schema": {"type": "string"}}}


@bp.route("/<slug>/leaderboards/<board>", methods=["GET"])
@reads_only
@bp.arguments(LeaderboardArgs, location="query")
@bp.response(200, LeaderboardSchema, headers=SOURCE_HEADER)
@bp.doc(security=[{}, *BEARER])
@documents_errors(bp, 401, 403, 404, 422)
def get_board(args, slug, board):
    """A leaderboard: individuals or teams, for the total, a day or a week (Monday start).

    Ties go to whoever got there first. No token needed; with a participant token ``me`` is my
    standing (teams: my team's), even outside the top.
    """
    if board not in BOARDS:
        raise ApiError(404, "not_found")
    token = bearer_token()
    claims = decode_token(token) if token is not None else None
    if claims is not None and claims["typ"] != "participant":
        current_principal("participant", required=False)  # 403 for a valid token of staff
    # The token's user comes with the campaign in one query; the check of the token below
    # then finds that row in the session (held here: the identity map keeps weak references).
    campaign, head_seq, participation, token_user = board_context(
        slug, claims["sub"] if claims is not None else None)
    if current_principal("participant", required=False) is not token_user:
        participation = None  # defensive: the token's user is the one whose row came along
    now = utcnow()
    doc = campaign_doc(campaign)
    period = args["period"]
    day = args["date"] or local_today(now, doc.timezone)
    start = None if period == "total" else (day if period == "day" else week_start(day))
    view = read_board(campaign, board, period, start, args["limit"], participation, now,
                      head_seq)
    if view.source == "sql" and redis_boards() is not None:
        campaign_id, upto = campaign.id, settled_seq(campaign, now)
        app = current_app._get_current_object()

        @after_this_request
        def replay_later(response):
            def replay():
                with app.app_context():
                    replay_missing(campaign_id, upto)
            response.call_on_close(replay)
            return response

    body = {"period": period, "date": start.isoformat() if start else None,
            "as_of": format_instant(now), "entries": view.entries, "me": view.me}
    # The most read response is written directly: its values are JSON-ready already (exact
    # numbers, strings), so the schema above documents it without dumping it again (a test
    # checks that the two agree).
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), mimetype="application/json")
    response.headers["X-Tanpu-Board-Source"] = view.source
    return response
