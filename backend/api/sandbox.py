"""Sandbox helpers for mini-program developers (registered only with WECHAT_SANDBOX=1)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask import g
from flask_smorest import Blueprint
from marshmallow import fields, validate

from backend.api.docs import BEARER, documents_errors
from backend.auth import participant_required
from backend.errors import ApiError
from backend.schemas.common import StrictSchema
from backend.services.logins import session_key_of
from backend.wechat import current_wechat
from backend.wechat_crypto import encrypt_open_data

bp = Blueprint("sandbox", __name__, url_prefix="/api/v1/sandbox",
               description="Sandbox (development only)")
BEIJING = ZoneInfo("Asia/Shanghai")


class StepDayArgs(StrictSchema):
    date = fields.Date(required=True, metadata={"description": "Beijing date"})
    steps = fields.Integer(required=True, strict=True,
                           validate=validate.Range(min=0, max=1_000_000))


class WeRunDataArgs(StrictSchema):
    days = fields.List(fields.Nested(StepDayArgs), required=True,
                       validate=validate.Length(min=1, max=31))
    appid = fields.String(metadata={"description": "watermark appid (default: ours), to try "
                                                   "werun.watermark_mismatch"})


class WeRunDataSchema(StrictSchema):
    encrypted_data = fields.String(required=True)
    iv = fields.String(required=True)


def _midnight_timestamp(day: date) -> int:
    """WeRun timestamps are midnights in Beijing time."""
    return int(datetime.combine(day, time(0), BEIJING).timestamp())


@bp.route("/werun-data", methods=["POST"])
@participant_required
@bp.arguments(WeRunDataArgs())
@bp.response(200, WeRunDataSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 400, 401, 403, 415)
def werun_data(args):
    """WeRun data for these step counts, encrypted for me exactly as wx.getWeRunData would.

    400 werun.decrypt_failed when I have no session_key (log in again).
    """
    wechat = current_wechat()
    session_key = session_key_of(g.user)
    if session_key is None:
        raise ApiError(400, "werun.decrypt_failed")
    days = sorted(args["days"], key=lambda day: day["date"])
    payload = {"stepInfoList": [
        {"timestamp": _midnight_timestamp(day["date"]), "step": day["steps"]} for day in days
    ]}
    encrypted, iv = encrypt_open_data(session_key, payload, args.get("appid") or wechat.appid)
    return {"encrypted_data": encrypted, "iv": iv}
