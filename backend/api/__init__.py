"""HTTP layer: one blueprint per area, registered from one explicit list."""

from __future__ import annotations

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import Flask, send_from_directory

from backend.api import (
    admin,
    admin_review,
    boards,
    campaigns,
    ops,
    participants,
    participation,
    partners,
    reports,
    sandbox,
    staff,
)
from backend.api.docs import TanpuApi, new_api, register_schemas, register_security_schemes
from backend.api.media import check_media_type
from backend.api.reads import begin_reads_without_transaction
from backend.services.boards import apply_appended_entries

API_TITLE = "Tanpu"
API_VERSION = "v1"
DOCS_ASSETS = "/docs/assets/"

docs_assets = FlaskBlueprint("docs_assets", __name__)


@docs_assets.route(DOCS_ASSETS + "<path:filename>")
def docs_asset(filename: str):
    """Swagger UI's files, served from the installed package: the docs need no internet."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)


def openapi_config() -> dict:
    return {
        "API_TITLE": API_TITLE,
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": DOCS_ASSETS,
        "API_SPEC_OPTIONS": {
            "info": {"description": "The HTTP contract of Tanpu (API.md): WeChat mini-program "
                                    "low-carbon campaigns."},
        },
    }


def register_api(app: Flask) -> TanpuApi:
    """Attach the OpenAPI-documented blueprints, the docs assets and the media-type check."""
    for key, value in openapi_config().items():
        app.config.setdefault(key, value)
    api = new_api(app)
    register_security_schemes(api)
    register_schemas(api)
    blueprints = [ops.bp, participants.bp, campaigns.bp, participation.bp, staff.bp, admin.bp,
                  admin_review.bp, partners.bp, boards.bp, reports.bp, reports.dashboard_bp]
    if app.config["WECHAT_SANDBOX"]:
        blueprints.append(sandbox.bp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_assets)
    app.before_request(check_media_type)
    app.before_request(begin_reads_without_transaction)
    app.after_request(apply_appended_entries)
    return api
