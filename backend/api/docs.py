"""The OpenAPI document: the Api object, security schemes, documented error responses."""

from __future__ import annotations

import http

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask_smorest import Api
from flask_smorest.spec import prepare_response

from backend.schemas.common import ErrorSchema, ExactNumber

RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
}
WITH_RETRY_AFTER = {429, 503}
BEARER = [{"bearerAuth": []}]


class TanpuApi(Api):
    """flask-smorest's Api with the contract's error body; Tanpu registers its own handlers."""

    ERROR_SCHEMA = ErrorSchema

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
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def schema_name(schema) -> str:
    """OpenAPI component names: the class name less ``Schema``; the campaign document's own
    schemas (campaigns.document_schema) get a ``Document`` prefix so names never collide."""
    resolved = resolve_schema_cls(schema)
    cls = resolved[0] if isinstance(resolved, list) else resolved
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    return f"Document{name}" if cls.__module__.startswith("campaigns.") else name


def new_api(app) -> TanpuApi:
    api = TanpuApi(app, spec_kwargs={
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name)})
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


def register_schemas(api: TanpuApi) -> None:
    """Schemas referenced by hand-written request bodies (the campaign document)."""
    from campaigns.document_schema import CampaignSchema

    api.spec.components.schema("CampaignDocument", schema=CampaignSchema)

