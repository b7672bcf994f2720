"""Shared schema pieces: the error body, trimmed strings, list envelopes."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from marshmallow import RAISE, Schema, ValidationError, fields


class StrictSchema(Schema):
    """Input schemas reject unknown fields."""

    class Meta:
        unknown = RAISE


class Trimmed(fields.String):
    """A string with surrounding white space removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return text.strip()


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false`` only: not 0, 1, "yes" or "off" (a body field, where JSON
    has a boolean type; query strings keep marshmallow's spellings)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def no_control_characters(text: str) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
        raise ValidationError("Must not contain control characters.")


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable machine code"})
    message = fields.String(required=True, metadata={"description": "zh-CN, or en on request"})
    fields = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "validation errors: flat dotted path -> messages"},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


def format_instant(value: datetime) -> str:
    """An instant in ISO 8601 UTC with ``Z`` (API.md conventions)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Instant(fields.DateTime):
    """An instant in ISO 8601 UTC with ``Z`` (API.md conventions)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_instant(value)


class ExactNumber(fields.Field):
    """A number dumped as given (an int stays an int, 3700 not 3700.0): grams and quantities
    come from exact integers (campaigns.decimals) and need no float conversion."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value
