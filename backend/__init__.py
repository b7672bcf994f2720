"""Tanpu: the server behind WeChat mini-program low-carbon campaigns (碳普惠)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import auth, models
from backend.api import register_api
from backend.api.dashboard_page import bp as dashboard_page_bp
from backend.cli import register_cli
from backend.config import load_config
from backend.errors import register_error_handlers
from backend.extensions import db, limiter, migrate, redis_holder
from backend.services.logins import next_sandbox_login_number
from backend.services.staff import load_staff
from backend.services.users import load_user
from backend.wechat import build_wechat

MAX_BODY_BYTES = 1024 * 1024


def create_app(config: Mapping | None = None, environ: Mapping | None = None) -> Flask:
    """Build the app: configuration from ``environ`` (default os.environ) overridden by
    ``config``, extensions, blueprints, error handlers and CLI. No I/O besides the dev secret."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(load_config(app.instance_path, environ))
    if config:
        app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.config["RATELIMIT_ENABLED"] = app.config["RATE_LIMITS_ENABLED"]
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    # Redis down must not fail logins and intake (a 500): the limits then hold in memory, per
    # process, until Redis answers again.
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    # A second thread whose check failed while the first was switching to that fallback gets
    # the storage error again (Flask-Limiter falls back once per process): the request goes
    # on unlimited (the error is logged) instead of a 500.
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True

    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_directory())
    redis_holder.init_app(app)
    limiter.init_app(app)
    app.extensions["tanpu_wechat"] = build_wechat(app.config, next_sandbox_login_number)
    auth.PRINCIPAL_LOADERS["participant"] = load_user
    auth.PRINCIPAL_LOADERS["staff"] = load_staff

    register_api(app)
    app.register_blueprint(dashboard_page_bp)
    register_error_handlers(app)
    register_cli(app)
    logging.getLogger("backend").setLevel(logging.INFO)
    assert models  # imported for its side effect: every table is registered
    return app


def engine_options(url: str) -> dict:
    """Pool settings: pre-ping so the pool recovers after the database comes back; parameters
    hidden from SQL error messages, which may be logged (they can hold secrets)."""
    options: dict = {"pool_pre_ping": True, "hide_parameters": True}
    if url.startswith("postgresql"):
        # A row lock not had within 5 s fails the request (503) instead of queueing forever.
        options.update(pool_size=10, max_overflow=10, pool_timeout=5,
                       connect_args={"connect_timeout": 3, "options": "-c lock_timeout=5000"})
    elif url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 5}
    return options


def _migrations_directory() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "migrations")
