"""Responses written directly, without dumping them through their schema: for the most
frequent ones (a board, my figures in a campaign, a check-in, a WeRun sync), whose dump was
up to a tenth of their cost. Their values
are JSON-ready already (exact numbers, strings) but for dates and instants, written here as
the schemas write them. The schema on the view still documents the response, and the tests
validate these responses against it."""

from __future__ import annotations

import json
from datetime import date, datetime

from flask import Response, current_app

from backend.schemas.common import format_instant


def _dates(value):
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


def direct_json(body: dict, status: int = 200) -> Response:
    """A JSON response of ``body``."""
    return current_app.response_class(
        json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_dates),
        status=status, mimetype="application/json")
