"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from backend.extensions import db, redis_holder

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__, description="Operations")


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True)
    database = fields.String(required=True)
    redis = fields.String(required=True, metadata={"description": "ok, down or unset"})


@bp.route("/healthz", methods=["GET"])
@bp.response(200, HealthSchema)
def healthz():
    """200 while the process runs."""
    return {"status": "ok"}


def _database_state() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return "ok"
    except Exception as error:  # any failure means "not ready", whatever the driver raises
        db.session.rollback()
        log.warning("readiness: database %s", type(error).__name__)
        return "down"


def _redis_state() -> str:
    client = redis_holder.client(current_app)
    if client is None:
        return "unset"
    try:
        client.ping()
        return "ok"
    except Exception as error:  # Redis is optional: report it, never fail readiness on it
        log.warning("readiness: redis %s", type(error).__name__)
        return "down"


@bp.route("/readyz", methods=["GET"])
@bp.response(200, ReadySchema)
@bp.alt_response(503, schema=ReadySchema, description="the database is unreachable")
def readyz():
    """200 with the state of each service; 503 only when the database is unreachable."""
    state = {"status": "ok", "database": _database_state(), "redis": _redis_state()}
    if state["database"] != "ok":
        state["status"] = "unavailable"
        return state, 503
    return state
