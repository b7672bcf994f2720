"""Extensions, created unbound and attached to an app by ``init_app``."""

from __future__ import annotations

import redis
from flask import Flask
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate(render_as_batch=True, compare_type=True)


class RedisHolder:
    """The Redis client of the app, or None when ``REDIS_URL`` is unset (SQL answers alone)."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        client = None
        if url:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=0.5, socket_timeout=1.0, health_check_interval=30
            )
        app.extensions["tanpu_redis"] = client

    @staticmethod
    def client(app: Flask) -> redis.Redis | None:
        return app.extensions.get("tanpu_redis")


redis_holder = RedisHolder()


def _is_sqlite(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("sqlite3")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys, wait on locks instead of failing at once, use WAL, and
    let SQLAlchemy (not the driver) begin transactions, so they can begin IMMEDIATE."""
    if not _is_sqlite(dbapi_connection):
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(connection) -> None:
    """SQLite: every transaction takes the write lock at its start. Writers then queue on the
    busy timeout instead of failing when a read transaction would upgrade to a write, which
    is what serialises intake on SQLite (PostgreSQL locks rows instead)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _client_address() -> str:
    from flask_limiter.util import get_remote_address

    return get_remote_address() or "unknown"


# Storage: Redis when REDIS_URL is set (limits hold across workers and instances), else memory,
# where they hold per process (the README says so).
limiter = Limiter(key_func=_client_address, default_limits=[], headers_enabled=False)
