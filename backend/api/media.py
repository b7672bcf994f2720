"""Request media types: JSON endpoints answer 415 to anything else."""

from __future__ import annotations

import io

from flask import current_app, request

from backend.errors import ApiError

JSON = "application/json"
BODY_METHODS = {"POST", "PUT", "PATCH"}


def accepts(*media_types: str):
    """Decorator: the view also takes these request media types besides JSON."""

    def decorate(view):
        view.accepted_media_types = frozenset((JSON, *media_types))
        return view

    return decorate


def check_streamed_body_size() -> None:
    """A streamed body (chunked, no Content-Length) over MAX_CONTENT_LENGTH is 413 like any
    other; werkzeug would cut it at the limit without a word and hand the view a prefix."""
    environ = request.environ
    if request.content_length is not None or "wsgi.input_terminated" not in environ:
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    body = b""
    while len(body) <= limit:
        chunk = environ["wsgi.input"].read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise ApiError(413, "request.too_large")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def check_media_type() -> None:
    """before_request: a body of another type than the view takes is 415 (empty bodies pass);
    a streamed body is held to the size limit first."""
    if request.method not in BODY_METHODS or not request.path.startswith("/api/"):
        return
    check_streamed_body_size()
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    accepted = getattr(view, "accepted_media_types", frozenset((JSON,)))
    if request.mimetype not in accepted:
        raise ApiError(415, "request.unsupported_media_type")
