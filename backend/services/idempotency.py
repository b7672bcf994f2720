"""Idempotency-Key (API.md Conventions): the same key and body replay the first 2xx reply and
create nothing, also when the two requests run at once; another body is 422."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, update

from backend.clock import utcnow
from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import IdempotencyRecord
from backend.services.statements import dialect_name, run_together, upsert_insert
from campaigns.ledger import canonical_json

KEEP = timedelta(hours=24)
HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def check_key(key: str | None) -> str | None:
    """The header's value if it is 1-64 visible ASCII characters; 422 naming it otherwise."""
    if key is None:
        return None
    if not 1 <= len(key) <= 64 or any(not 0x21 <= ord(ch) <= 0x7E for ch in key):
        raise validation_error({HEADER: ["Must be 1 to 64 visible ASCII characters."]})
    return key


def request_fingerprint(raw_body: bytes) -> str:
    """A hash of the body as canonical JSON (so key order and spacing do not matter)."""
    try:
        canonical = canonical_json(json.loads(raw_body)) if raw_body.strip() else ""
    except (ValueError, UnicodeDecodeError):
        canonical = raw_body.decode("utf-8", "replace")
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def _claim_insert(dialect: str):
    table = IdempotencyRecord.__table__
    return (upsert_insert(table, dialect).on_conflict_do_nothing()
            .returning(table.c.id))


def claim_call(principal: str, method: str, path: str, key: str, fingerprint: str) -> tuple:
    """The :func:`run_together` call that inserts the record unless the key is taken (it
    returns the new id, or no row)."""
    return (_claim_insert(dialect_name()),
            {"principal": principal, "method": method, "path": path, "key": key,
             "request_hash": fingerprint, "created_dt": utcnow()})


def claim_key(principal: str, method: str, path: str, key: str,
              fingerprint: str) -> int | Replay:
    """Insert the record first in the transaction (returns its id); a concurrent duplicate
    waits on the unique index and then gets the stored reply (Replay)."""
    table = IdempotencyRecord.__table__
    for _attempt in range(2):
        inserted = run_together([claim_call(principal, method, path, key, fingerprint)])[0]
        if inserted:
            return inserted[0].id
        stored = db.session.execute(
            select(table.c.id, table.c.created_dt, table.c.request_hash, table.c.status_code,
                   table.c.response_body)
            .where(table.c.principal == principal, table.c.method == method,
                   table.c.path == path, table.c.key == key)).one_or_none()
        if stored is None:
            continue  # the other request failed and stored nothing: run again
        if stored.created_dt < utcnow() - KEEP:
            db.session.execute(delete(table).where(table.c.id == stored.id))
            continue
        if stored.request_hash != fingerprint:
            raise ApiError(422, "idempotency.mismatch")
        return Replay(stored.status_code, stored.response_body)
    raise ApiError(503, "service.unavailable", headers={"Retry-After": "1"})


@functools.cache
def _reply_update():
    table = IdempotencyRecord.__table__
    return update(table).where(table.c.id == bindparam("record_id")).values(
        status_code=bindparam("status"), response_body=bindparam("body"))


def reply_call(record_id: int, status: int, body: str) -> tuple:
    """The :func:`run_together` call that stores the reply of a claimed key."""
    return (_reply_update(), {"record_id": record_id, "status": status, "body": body})
