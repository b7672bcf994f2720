"""Cursor pagination: ``{"items", "next_cursor"}`` with ``limit`` (default 50, max 200)."""

from __future__ import annotations

import base64
import binascii
import json

from marshmallow import fields, validate

from backend.errors import validation_error
from backend.schemas.common import StrictSchema

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageArgs(StrictSchema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


def encode_cursor(position: list) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list | None:
    """The position a cursor stands for; 422 at ``cursor`` when it is not one of ours."""
    if cursor is None:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, list) or not position:
        raise validation_error({"cursor": ["Not a valid cursor."]})
    return position


def page(rows: list, limit: int, position_of) -> tuple[list, str | None]:
    """Split ``limit + 1`` fetched rows into a page and the cursor of the next one."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(position_of(rows[-1]))


def decode_id_cursor(cursor: str | None) -> int | None:
    """The row id a keyset cursor of :func:`encode_cursor` ``[id]`` stands for."""
    position = decode_cursor(cursor)
    if position is None:
        return None
    if len(position) != 1 or not isinstance(position[0], int) or isinstance(position[0], bool):
        raise validation_error({"cursor": ["Not a valid cursor."]})
    return position[0]


def after_cursor(query, id_column, cursor: str | None, descending: bool = True):
    """``query`` continued past the row a keyset cursor ``[id]`` names (newest-first lists
    go below it, oldest-first lists above it)."""
    after_id = decode_id_cursor(cursor)
    if after_id is None:
        return query
    return query.where(id_column < after_id if descending else id_column > after_id)
