"""PostgreSQL restarting, or dropping a connection left idle: the request that finds its
connection gone fails cleanly, and the portal carries on without a restart. (No connection is
tested before use: that would cost every request a round trip.)"""

import pytest
from sqlalchemy import create_engine, text

from portal.extensions import db

from .helpers import POSTGRES_URL

pytestmark = [
    pytest.mark.committed,
    pytest.mark.skipif(not POSTGRES_URL, reason="a database server drops connections; "
                                                "a SQLite file cannot"),
]


def _drop_connections_of(app, database_url):
    """Ends the app's connection on the server's side, as a restart or an idle timeout does."""
    with app.app_context(), db.engine.connect() as connection:
        backend = connection.scalar(text("SELECT pg_backend_pid()"))
    server = create_engine(database_url)
    with server.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    server.dispose()


@pytest.mark.parametrize("path", ["/clients/{client}/feeds/conversation",
                                  "/clients/{client}/feeds/conversation/updates?after=0"])
def test_a_dropped_connection_fails_one_request_with_a_503_then_the_next_work(
        app, database_url, admin_browser, household, path):
    path = path.format(client=household.id)
    assert admin_browser.htmx("GET", path).status_code in (200, 204)

    _drop_connections_of(app, database_url)
    failed = admin_browser.htmx("GET", path)
    assert failed.status_code == 503
    assert "Please try again" in failed.get_data(as_text=True)

    assert admin_browser.htmx("GET", path).status_code in (200, 204)
    assert admin_browser.get(f"/clients/{household.id}/feeds/conversation").status_code == 200
