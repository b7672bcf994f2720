"""The stack's own limits, for bench/peak.py (issue 8): a tiny Flask app that does no Tanpu work.

- ``GET /json``: a small JSON document (what Flask + gunicorn cost per request);
- ``POST /insert``: one Core INSERT of a four-column row (bigint, text, integer, timestamptz)
  and a COMMIT, through an engine built with the app's own pool settings
  (``backend.engine_options``: pre-ping, pool size, lock timeout).

Served by the same gunicorn settings as the app: ``gunicorn 'bench.stack_app:create_app()'``
with ``DATABASE_URL`` set (a bench database; peak.py creates the table).
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    insert,
)

from backend import engine_options

metadata = MetaData()
ROWS = Table(
    "bench_stack_rows", metadata,
    Column("ref", BigInteger, nullable=False),
    Column("label", Text, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("created_dt", DateTime(timezone=True), nullable=False),
)


def create_app() -> Flask:
    url = os.environ["DATABASE_URL"]
    engine = create_engine(url, **engine_options(url))
    counter = itertools.count(1)
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    @app.get("/json")
    def small_json():
        return {"status": "ok", "reduction_g": 12.5, "rank": 3, "name": "低碳达人"}

    @app.post("/insert")
    def insert_row():
        ref = next(counter)
        with engine.begin() as connection:
            connection.execute(insert(ROWS).values(
                ref=ref, label="checkin", amount=80_000, created_dt=datetime.now(UTC)))
        return {"status": "ok", "ref": ref}, 201

    return app
