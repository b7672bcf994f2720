"""The OpenAPI document: the Api object, security schemes, documented error responses."""

from __future__ import annotations

import http

from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask_smorest import Api
from flask_smorest.spec import prepare_response

from backend.schemas.common import ErrorSchema, ExactNumber

RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait", "required": True,
                    "schema": {"type": "integer", "minimum": 0}},
}
WITH_RETRY_AFTER = {429, 503}
BEARER = [{"bearerAuth": []}]
PARTNER_SIGNED = [{"partnerTimestamp": [], "partnerNonce": [], "partnerSignature": []}]
IDEMPOTENCY_KEY = {"in": "header", "name": "Idempotency-Key", "required": False,
                   "schema": {"type": "string", "pattern": "^[!-~]{1,64}$"},
                   "description": "1-64 visible ASCII characters: the same key and body replay "
                                  "the first 2xx reply and create nothing"}

# The formats of path variables, wherever they appear: a value outside them names nothing
# (404), and the document says so instead of "any string".
PATH_VARIABLES = {
    "slug": {"type": "string", "pattern": "^[a-z0-9-]{3,64}$"},
    "board": {"type": "string", "enum": ["individuals", "teams"]},
    "key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "team key"},
    "partner": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{1,63}$"},
    "pid": {"type": "string", "pattern": "^[0-9a-f]{16}$",
            "description": "the participant's pseudonym in this campaign"},
}
BODY_METHODS = ("post", "put", "patch")
# Errors that come from the request's envelope or from the database rather than from a view:
# every operation with a body can meet the first set, every POST/PUT/PATCH the media-type
# check, and every API operation a database that is down or a lock not had in time.
BODY_ERRORS = (400, 413, 415, 422)
ANY_BODY_METHOD_ERRORS = (415,)
DATABASE_ERRORS = (503,)


class TanpuApi(Api):
    """flask-smorest's Api with the contract's error body; Tanpu registers its own handlers."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" response: each operation lists the statuses it can answer, so a
    # status it does not list is a documentation bug that a conformance check can catch.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):
        """Left to backend.errors, which answers every error with the contract's body."""

    def _register_responses(self):
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status in WITH_RETRY_AFTER:
                response["headers"] = RETRY_AFTER_HEADER
            prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)


def schema_name(schema) -> str:
    """OpenAPI component names: the class name less ``Schema``; the campaign document's own
    schemas (campaigns.document_schema) get a ``Document`` prefix so names never collide."""
    resolved = resolve_schema_cls(schema)
    cls = resolved[0] if isinstance(resolved, list) else resolved
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    return f"Document{name}" if cls.__module__.startswith("campaigns.") else name


class ContractPlugin(BasePlugin):
    """What every route shares, documented once: the formats of path variables and the errors
    of the request envelope and the database (the views document their own errors)."""

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        for parameter in parameters or []:
            if isinstance(parameter, dict) and parameter.get("in") == "path" \
                    and parameter.get("name") in PATH_VARIABLES:
                parameter["schema"] = dict(PATH_VARIABLES[parameter["name"]])

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not (path or "").startswith("/api/"):
            return
        for method, operation in (operations or {}).items():
            statuses = list(DATABASE_ERRORS)
            if method in BODY_METHODS:
                statuses += ANY_BODY_METHOD_ERRORS
                if "requestBody" in operation:
                    statuses += BODY_ERRORS
            responses = operation.setdefault("responses", {})
            documented = {str(status) for status in responses}
            for status in sorted(set(statuses)):
                if str(status) not in documented:
                    responses[str(status)] = http.HTTPStatus(status).name


def new_api(app) -> TanpuApi:
    api = TanpuApi(app, spec_kwargs={
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name),
        "extra_plugins": [ContractPlugin()]})
    api.register_field(ExactNumber, "number", None)
    return api


def documents_errors(bp, *statuses: int):
    """Decorator: the view documents these error statuses with the contract's error body."""

    def decorate(view):
        for status in sorted(statuses, reverse=True):
            view = bp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorate


def register_security_schemes(api: TanpuApi) -> None:
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
         "description": "participant token (WeChat login) or staff token (staff login); "
                        "the big screen's data takes a dashboard token"},
    )
    api.spec.components.security_scheme(
        "apiKey", {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                   "description": "reporter key (read-only, scoped to campaigns)"})
    # A partner signs each request with three headers, all required together (API.md).
    for name, header, description in (
        ("partnerTimestamp", "X-Tanpu-Timestamp", "unix seconds, within 300 s of ours"),
        ("partnerNonce", "X-Tanpu-Nonce", "1-64 characters, accepted once per partner"),
        ("partnerSignature", "X-Tanpu-Signature",
         "lowercase hex HMAC-SHA256 with the partner's secret over "
         "timestamp + \\n + nonce + \\n + the raw body"),
    ):
        api.spec.components.security_scheme(
            name, {"type": "apiKey", "in": "header", "name": header, "description": description})


# What a stored campaign document always carries (campaigns.document.dump_campaign fills every
# default): the input schema leaves these optional, a response has them all.
STORED_DOCUMENT = {"allOf": [{"$ref": "#/components/schemas/CampaignDocument"}, {
    "type": "object",
    "required": ["slug", "name", "description", "timezone", "starts_on", "ends_on",
                 "target_kg", "methodology", "late_entry_days", "points_per_g", "join", "teams",
                 "rules", "dashboard", "actions", "challenges", "leaderboard", "revisions"],
    "properties": {
        "join": {"required": ["invite_code"]},
        "teams": {"required": ["mode", "ranking", "min_active_members", "list"]},
        "rules": {"required": ["car_free_day_max"]},
        "dashboard": {"required": ["public"]},
        "leaderboard": {"required": ["freeze_at"]},
    },
}]}


def register_schemas(api: TanpuApi) -> None:
    """Schemas referenced by hand-written request bodies and responses (the campaign
    document as sent, and as stored)."""
    from campaigns.document_schema import CampaignSchema

    api.spec.components.schema("CampaignDocument", schema=CampaignSchema)
    api.spec.components.schema("StoredCampaignDocument", STORED_DOCUMENT)

