"""Several SQL statements in one round trip, compiled once: the appends run under the
chain-head lock, so each round trip and each compilation they save is time every other
writer of the campaign waits."""

from __future__ import annotations

import functools
from collections import namedtuple

import psycopg
from flask import g, has_request_context
from psycopg.rows import namedtuple_row
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from backend.extensions import db

# Called with the SQL of each pipeline's statements and whether the COMMIT went with them (the
# benchmark counts round trips with it: SQLAlchemy's execute events do not see these).
pipeline_listeners: list = []

def dialect_name() -> str:
    """The name of the session's database dialect (statements built once are kept per
    dialect)."""
    return db.session.get_bind().dialect.name


def upsert_insert(table, dialect: str | None = None):
    """An INSERT with ON CONFLICT support for the session's database (or ``dialect``)."""
    return (pg_insert if (dialect or dialect_name()) == "postgresql" else sqlite_insert)(table)


@functools.cache
def _next_id(table, dialect: str):
    if dialect == "postgresql":
        return select(func.nextval(func.pg_get_serial_sequence(table.name, "id")))
    # SQLite: the transaction began IMMEDIATE, so no other writer inserts until it ends.
    return select(func.coalesce(func.max(table.c.id), 0) + 1)


def next_id_call(table) -> tuple:
    """The :func:`run_together` call that reads the id the next row of ``table`` takes (an
    INSERT can then go out in the same round trip as statements that need its id)."""
    return (_next_id(table, dialect_name()), {})


def before_commit(call) -> None:
    """Run ``call`` in the round trip that stores the request's idempotent reply, right
    before its commit (see :func:`backend.api.writes.idempotent_write`); outside such a
    request, now."""
    closing = g.get("tanpu_closing_calls") if has_request_context() else None
    if closing is None:
        run_together([call])
    else:
        closing.append(call)


_COMPILED_LIMIT = 512
_compiled: dict = {}


def run_together(calls: list, commit: bool = False) -> list[list[tuple]]:
    """Run these Core statements in order, in the current transaction, and return each one's
    rows as named tuples (an empty list when it returns none). A call is a statement, or a
    (statement, parameters) pair for a statement built once and reused (see
    :func:`backend.services.projections`): it is compiled once per process. On psycopg the
    calls go out in one pipeline (one network round trip); on SQLite one by one. Pending
    ORM changes are flushed first. With ``commit``, on psycopg the transaction's COMMIT goes
    in the same round trip (its locks are released one round trip sooner); the session's
    own commit, which must follow, then has nothing to send."""
    if not calls and not commit:
        return []
    session = db.session
    session.flush()
    connection = session.connection()
    dialect = connection.dialect
    prepared = [_prepare(call, dialect) for call in calls]
    if dialect.driver != "psycopg":
        return [_run_sqlite(connection.connection.dbapi_connection, compiled, params, dialect)
                for compiled, params in prepared]
    for listener in pipeline_listeners:
        listener([compiled.string for compiled, _ in prepared], commit)
    raw = connection.connection.driver_connection
    cursors = []
    try:
        with raw.pipeline():
            for compiled, params in prepared:
                cursor = raw.cursor(row_factory=namedtuple_row)
                cursor.execute(compiled.string, params)
                cursors.append(cursor)
            if commit:
                raw.commit()
        return [_processed(cursor.fetchall() if _has_rows(cursor) else [], compiled, dialect)
                for cursor, (compiled, _) in zip(cursors, prepared, strict=True)]
    except psycopg.Error as error:
        # The same exception classes a statement run by the session raises (a lock not had
        # in time is an OperationalError: 503), with the statement but not its values.
        raise DBAPIError.instance(None, None, error, psycopg.Error,
                                  hide_parameters=True) from None
    finally:
        for cursor in cursors:
            cursor.close()


def _prepare(call, dialect):
    """(compiled statement, the driver's parameters) of a call, from the process's cache."""
    statement, params = call if isinstance(call, tuple) else (call, None)
    if params is not None:
        key = (id(statement), dialect.name, tuple(params))
        cached = _compiled.get(key)
        if cached is not None and cached[0] is statement:
            compiled = cached[1]
        else:
            compiled = _remember(key, statement, statement.compile(
                dialect=dialect, column_keys=list(params)))
        bound = compiled.construct_params(params)
    else:
        cache_key = statement._generate_cache_key()
        if cache_key is None:
            compiled = statement.compile(dialect=dialect)
            bound = compiled.construct_params()
        else:
            key = (cache_key.key, dialect.name)
            cached = _compiled.get(key)
            compiled = cached[1] if cached is not None else _remember(
                key, statement, statement._compiler(dialect, cache_key=cache_key))
            bound = compiled.construct_params(extracted_parameters=cache_key[1])
    escaped = compiled.escaped_bind_names
    for name, process in compiled._bind_processors.items():
        key = escaped.get(name, name)
        if key in bound:
            bound[key] = process(bound[key])
    if compiled.positiontup is not None:
        return compiled, tuple(bound[escaped.get(name, name)] for name in compiled.positiontup)
    return compiled, bound


def _remember(key, statement, compiled):
    if len(_compiled) >= _COMPILED_LIMIT:
        _compiled.clear()
    _compiled[key] = (statement, compiled)  # the statement kept: its id stays its own
    return compiled


def _run_sqlite(dbapi_connection, compiled, params, dialect) -> list[tuple]:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(compiled.string, params)
        if cursor.description is None:
            return []
        row = namedtuple("Row", [column[0] for column in cursor.description], rename=True)
        return _processed([row(*values) for values in cursor.fetchall()], compiled, dialect)
    finally:
        cursor.close()


def _has_rows(cursor) -> bool:
    """Whether the statement returned rows, read off the result's status (``description``
    builds a Column object for every column of the result, each time it is read)."""
    result = cursor.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK


_processors: dict = {}


def _processed(rows: list, compiled, dialect) -> list[tuple]:
    """The rows with their columns' result processing applied (e.g. UTCDateTime)."""
    if not rows:
        return rows
    cached = _processors.get(id(compiled))
    if cached is None or cached[0] is not compiled:
        processors = [(i, column.type._cached_result_processor(dialect, None))
                      for i, column in enumerate(compiled._result_columns)]
        if len(_processors) >= _COMPILED_LIMIT:
            _processors.clear()
        cached = _processors[id(compiled)] = (
            compiled, [(i, process) for i, process in processors if process is not None])
    processors = cached[1]  # the compiled statement kept with them: its id stays its own
    if not processors:
        return rows
    return [row._replace(**{row._fields[i]: process(row[i]) for i, process in processors})
            for row in rows]
