"""The pool checks a connection before use (pre-ping): when the database dropped every
connection, the next requests are still answered, not 503, at once or after a pause."""

import time

import pytest
import sqlalchemy as sa

from backend.extensions import db
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL,
                                reason="TEST_DATABASE_URL is unset: a PostgreSQL pool test")


def _drop_app_connections(app) -> int:
    """Terminate every other session on the test database, as a restart would."""
    engine = sa.create_engine(TEST_DATABASE_URL)
    with engine.connect() as conn:
        dropped = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    engine.dispose()
    return dropped


@pytest.mark.parametrize("pause", [0.0, 1.2], ids=["at-once", "after-a-pause"])
def test_requests_after_the_database_dropped_its_connections_are_answered(app, client, login,
                                                                          pause):
    alice = login("alice")
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 200
    with app.app_context():
        assert db.engine.pool.checkedin() >= 1  # a pooled connection that is about to die
    assert _drop_app_connections(app) >= 1
    time.sleep(pause)
    for _ in range(3):
        response = client.get("/api/v1/me", headers=alice.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
