"""Public leaderboards (a participant token adds ``me``)."""

from __future__ import annotations

from flask import after_this_request, current_app, g
from flask_smorest import Blueprint

from backend.api.context import load_read_context
from backend.api.docs import BEARER, documents_errors
from backend.api.reads import reads_only
from backend.api.replies import direct_json
from backend.clock import utcnow
from backend.errors import ApiError
from backend.schemas.boards import LeaderboardArgs, LeaderboardSchema
from backend.schemas.common import format_instant
from backend.services.boards import (
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
@bp.arguments(LeaderboardArgs(), location="query")
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
    load_read_context(slug, required=False)
    campaign, head_seq, participation = g.campaign, g.head_seq, g.participation
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
    response = direct_json(body)
    response.headers["X-Tanpu-Board-Source"] = view.source
    return response
