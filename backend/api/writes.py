"""Record-creating writes: the Idempotency-Key, then one commit for the whole request."""

from __future__ import annotations

import functools

from flask import Response, g, request

from backend.extensions import db
from backend.services.idempotency import (
    HEADER,
    Replay,
    check_key,
    claim_key,
    reply_call,
    request_fingerprint,
)
from backend.services.statements import run_together


def idempotent_write(principal_of):
    """Decorator for a POST that creates records: claims the Idempotency-Key (if sent) before
    any other write, replays the stored reply for a repeat, stores a 2xx reply, and commits
    once. ``principal_of()`` names the caller (e.g. ``user:5``). The view sees
    ``g.idempotency_key`` (None when absent) to require it where a retry could count twice."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = check_key(request.headers.get(HEADER))
            g.idempotency_key = key
            record = None
            if key is not None:
                # Claimed already in the round trip that read the context (intake views)?
                claimed = g.pop("idempotency_claim", None)
                if claimed is None:
                    claimed = claim_key(principal_of(), request.method, request.path, key,
                                        request_fingerprint(request.get_data()))
                if isinstance(claimed, Replay):
                    db.session.rollback()
                    response = Response(claimed.body, status=claimed.status,
                                        mimetype="application/json")
                    response.headers["Idempotent-Replayed"] = "true"
                    return response
                record = claimed
            g.tanpu_closing_calls = []
            response = view(*args, **kwargs)
            closing = g.pop("tanpu_closing_calls")
            if record is not None and 200 <= response.status_code < 300:
                closing.append(reply_call(record, response.status_code,
                                          response.get_data(as_text=True)))
            if closing:  # the view's last statements and the COMMIT: one round trip
                run_together(closing, commit=True)
            db.session.commit()
            return response

        return wrapper

    return decorate
