"""The one source of "now" for the backend, so tests can fix time in one place."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)
