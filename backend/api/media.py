"""Request media types: JSON endpoints answer 415 to anything else."""

from __future__ import annotations

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


def check_media_type() -> None:
    """before_request: a body of another type than the view takes is 415 (empty bodies pass)."""
    if request.method not in BODY_METHODS or not request.path.startswith("/api/"):
        return
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    accepted = getattr(view, "accepted_media_types", frozenset((JSON,)))
    if request.mimetype not in accepted:
        raise ApiError(415, "request.unsupported_media_type")
