"""Fixtures: a test database (TEST_DATABASE_URL or a temporary SQLite file, never DATABASE_URL),
the app, a client that scans every response for secrets, CLI runner and login helpers."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import redis as redis_lib
import sqlalchemy as sa
from flask.testing import FlaskClient

from backend import create_app
from backend.extensions import db
from tests.support.secrets import REGISTRY, scan_response

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()


def _check_test_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith("test"):
        pytest.exit(f"TEST_DATABASE_URL must name a database starting with 'test' (got {name!r})",
                    returncode=2)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A fresh schema built by the migrations: PostgreSQL from TEST_DATABASE_URL, else SQLite."""
    if TEST_DATABASE_URL:
        _check_test_database(TEST_DATABASE_URL)
        engine = sa.create_engine(TEST_DATABASE_URL)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        url = TEST_DATABASE_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'tanpu-test.db'}"
    app = create_app(environ=test_environ(url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture(scope="session")
def secret_key() -> str:
    key = secrets.token_urlsafe(32)
    REGISTRY.add(key, "SECRET_KEY")
    return key


def test_environ(database_url: str, **extra: str) -> dict[str, str]:
    """The environment the app under test sees: built here, never read from os.environ."""
    environ = {
        "TANPU_ENV": "testing",
        "DATABASE_URL": database_url,
        "WECHAT_SANDBOX": "1",
        "RATE_LIMITS_ENABLED": "0",
    }
    if TEST_REDIS_URL:
        environ["REDIS_URL"] = TEST_REDIS_URL
    environ.update(extra)
    return environ


class ScanningClient(FlaskClient):
    """A test client that fails the test when a response carries a registered secret."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        scan_response(response)
        return response


def _empty_tables(app) -> None:
    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 (our own names)
        db.engine.dispose()


def _flush_test_redis() -> None:
    if TEST_REDIS_URL:
        redis_lib.Redis.from_url(TEST_REDIS_URL).flushdb()


@pytest.fixture
def make_app(database_url, secret_key):
    """Build an app on the test database; ``make_app(WECHAT_SANDBOX="0", ...)`` overrides."""
    built = []

    def build(config: dict | None = None, **environ_extra: str):
        environ = test_environ(database_url, SECRET_KEY=secret_key, **environ_extra)
        app = create_app(config=config, environ=environ)
        app.test_client_class = ScanningClient
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if built:
        _empty_tables(create_app(environ=test_environ(database_url, SECRET_KEY=secret_key)))
    _flush_test_redis()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def secret_scan(caplog):
    """Every test: no registered secret in any response (ScanningClient) or captured log line."""
    REGISTRY_SNAPSHOT = dict(REGISTRY._values)
    caplog.set_level(logging.DEBUG)
    yield REGISTRY
    text = "\n".join(
        record.getMessage() + (record.exc_text or "") for record in caplog.records
    )
    leaks = REGISTRY.leaks_in(text)
    REGISTRY._values = REGISTRY_SNAPSHOT
    assert not leaks, f"secret(s) in the logs: {leaks}"


@dataclass
class Participant:
    user_id: int
    token: str
    openid: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def login(app, client):
    """``login("alice")``: a sandbox login; the person's WeChat secrets join the scan."""
    from backend.models import User
    from backend.services.logins import session_key_of
    from backend.wechat import current_wechat

    def do_login(name: str) -> Participant:
        response = client.post("/api/v1/auth/wechat-login", json={"code": f"sandbox:{name}"})
        assert response.status_code == 200, response.json
        body = response.json
        with app.app_context():
            openid, unionid = current_wechat().identity(name)
            user = db.session.get(User, body["user"]["id"])
            REGISTRY.add(openid, f"openid of {name}")
            REGISTRY.add(unionid, f"unionid of {name}")
            REGISTRY.add(session_key_of(user), f"session_key of {name}")
        REGISTRY.add(body["token"], f"token of {name}")
        return Participant(body["user"]["id"], body["token"], openid)

    return do_login


@pytest.fixture
def redis_url() -> str:
    if not TEST_REDIS_URL:
        pytest.skip("TEST_REDIS_URL is unset")
    return TEST_REDIS_URL


@pytest.fixture
def fake_wechat():
    """A fake WeChat server over HTTP on 127.0.0.1 (tests/support/fake_wechat.py)."""
    from tests.support.fake_wechat import FakeWeChat

    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture
def wechat_app(make_app, fake_wechat):
    """An app that talks to the fake WeChat server instead of the sandbox."""
    from tests.support.fake_wechat import APP_SECRET, APPID

    return make_app(WECHAT_SANDBOX="0", WECHAT_APPID=APPID, WECHAT_SECRET=APP_SECRET,
                    WECHAT_API_BASE=fake_wechat.base_url)
