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


def test_a_page_finding_its_connection_dropped_is_a_503_then_the_next_work(
        app, database_url, admin_browser, household):
    page = f"/clients/{household.id}/feeds/conversation"
    assert admin_browser.get(page).status_code == 200

    _drop_connections_of(app, database_url)
    failed = admin_browser.get(page)
    assert failed.status_code == 503
    assert "Please try again" in failed.get_data(as_text=True)

    assert admin_browser.get(page).status_code == 200


def test_the_poll_finding_its_connection_dropped_is_answered_on_a_new_one(
        app, database_url, admin_browser, household):
    """The poll reads on a connection of its own first: a dropped one is discarded and the
    full route answers, as when the quick answer is not a plain "nothing new"."""
    poll = f"/clients/{household.id}/feeds/conversation/updates?after=0"
    assert admin_browser.htmx("GET", poll).status_code == 204

    _drop_connections_of(app, database_url)
    assert admin_browser.htmx("GET", poll).status_code == 204
    assert admin_browser.get(f"/clients/{household.id}/feeds/conversation").status_code == 200
