"""Read-only views whose statements run without a transaction on PostgreSQL: a request then
saves the BEGIN and ROLLBACK round trips (SQLite, local, keeps its BEGIN IMMEDIATE). Each
statement already had its own snapshot (READ COMMITTED), so what they read is the same. A
write such a view may need (the frozen boards) commits first, and the connection it then
gets begins a transaction as usual."""

from __future__ import annotations

from flask import current_app, request

from backend.extensions import db


def reads_only(view):
    """Mark a view (put it right under ``@bp.route``) as one that only reads."""
    view.tanpu_reads_only = True
    return view


def begin_reads_without_transaction() -> None:
    """before_request: check out the connection of a marked view in autocommit mode."""
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "tanpu_reads_only", False) and db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
