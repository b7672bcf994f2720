"""ApiError, the one error body of API.md, and the handlers that produce it for every failure."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping

from flask import Flask, current_app, has_request_context, jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from backend.extensions import db
from backend.messages import message_for

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "request.malformed",
    404: "not_found",
    405: "request.method_not_allowed",
    413: "request.too_large",
    415: "request.unsupported_media_type",
    422: "validation.failed",
    429: "rate_limited",
}
RETRY_AFTER_UNAVAILABLE = 5


class ApiError(Exception):
    """An expected failure: its status, stable code, optional field messages and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        fields: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers or {})


def validation_error(fields: Mapping[str, list[str]]) -> ApiError:
    """A 422 ``validation.failed`` naming the fields (flat dotted paths)."""
    return ApiError(422, "validation.failed", fields=fields)


def unavailable(code: str = "service.unavailable", retry_after: int = RETRY_AFTER_UNAVAILABLE):
    """A 503 with ``Retry-After``."""
    return ApiError(503, code, headers={"Retry-After": str(retry_after)})


def flatten_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into flat dotted paths (``actions.2.key``).

    ``_schema`` stands for the whole object; a bare list of messages at the top level too.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, path))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    elif isinstance(messages, list | tuple):
        for item in messages:
            for path, texts in flatten_messages(item, prefix).items():
                flat.setdefault(path, []).extend(texts)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def _webargs_fields(data: Mapping) -> dict[str, list[str]]:
    """Field messages of a webargs 422, without the location prefix (json, query, headers)."""
    messages = data.get("messages") or {}
    fields: dict[str, list[str]] = {}
    for _location, per_location in messages.items():
        fields.update(flatten_messages(per_location))
    return fields


def wants_english() -> bool:
    if not has_request_context():
        return False
    return request.accept_languages.best_match(["zh", "en"], default="zh") == "en"


def error_response(status: int, code: str, fields=None, headers=None):
    body: dict = {"code": code, "message": message_for(code, wants_english())}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection may be gone; the error we answer matters more
        log.warning("rollback failed", exc_info=False)


def handle_api_error(error: ApiError):
    _rollback()
    return error_response(error.status, error.code, error.fields, error.headers)


def handle_http_exception(error: HTTPException):
    _rollback()
    status = error.code or 500
    code = HTTP_CODES.get(status)
    if code is None:
        return handle_unexpected(error)
    fields = None
    headers = {}
    data = getattr(error, "data", None)
    if status == 422 and isinstance(data, Mapping):
        fields = _webargs_fields(data)
    if status == 400 and isinstance(data, Mapping) and data.get("messages"):
        fields = None  # webargs' "Invalid JSON body."
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    if status == 429:
        headers["Retry-After"] = str(getattr(error, "retry_after", None) or 60)
    return error_response(status, code, fields, headers)


def handle_database_unavailable(error: Exception):
    """The database is down or a lock was not had in time: 503, nothing written."""
    _rollback()
    log.error("database unavailable: %s", type(error).__name__)
    return error_response(
        503, "service.unavailable", headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}
    )


def has_body() -> bool:
    return has_request_context() and bool(
        request.content_length or request.headers.get("Transfer-Encoding"))


def handle_recursion(error: RecursionError):
    """A body nested deeper than the JSON parser goes (thousands of brackets) is refused as
    malformed, not answered with a 500; without a body it is a bug like any other."""
    if not has_body():
        return handle_unexpected(error)
    _rollback()
    log.warning("request body nested too deeply in %s %s", request.method, request.path)
    return error_response(400, "request.malformed")


def handle_unexpected(error: Exception):
    """A bug. The body carries no trace; the log names the exception type and where it arose."""
    _rollback()
    if current_app.config.get("PROPAGATE_EXCEPTIONS"):
        raise error
    # The frames, never the exception's message: a message may quote a URL or a parameter
    # that holds a secret.
    log.error(
        "unhandled %s in %s %s\n%s", type(error).__name__,
        request.method if has_request_context() else "-",
        request.path if has_request_context() else "-",
        "".join(traceback.format_tb(error.__traceback__)),
    )
    return error_response(500, "server.error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(PoolTimeoutError, handle_database_unavailable)
    app.register_error_handler(RecursionError, handle_recursion)
    app.register_error_handler(Exception, handle_unexpected)
