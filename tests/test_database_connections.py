"""The portal's connections to PostgreSQL: a read-only transaction keeps the statements
prepared, one that wrote is still rolled back; and the server restarting, or dropping a
connection left idle, fails one request cleanly, after which the portal carries on without a
restart. (No connection is tested before use: that would cost every request a round trip.)"""

import pytest
from sqlalchemy import select, text, update

from portal.extensions import db
from portal.models import Business

from .helpers import POSTGRES_URL, drop_connections_of, record_sql

pytestmark = [
    pytest.mark.committed,
    pytest.mark.skipif(not POSTGRES_URL, reason="a database server drops connections; "
                                                "a SQLite file cannot"),
]


def test_a_page_finding_its_connection_dropped_is_a_503_then_the_next_work(
        app, database_url, admin_browser, household):
    page = f"/clients/{household.id}/feeds/conversation"
    assert admin_browser.get(page).status_code == 200

    drop_connections_of(app, database_url)
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

    drop_connections_of(app, database_url)
    assert admin_browser.htmx("GET", poll).status_code == 204
    assert admin_browser.get(f"/clients/{household.id}/feeds/conversation").status_code == 200


def _prepared_statements(connection) -> int:
    return connection.scalar(text("SELECT count(*) FROM pg_prepared_statements"))


def test_statements_stay_prepared_across_read_only_transactions(app, business):
    with app.app_context():
        for _ in range(8):  # psycopg prepares a statement on its fifth run
            db.session.scalar(select(Business.name).where(Business.id == business.id))
            db.session.rollback()
        assert _prepared_statements(db.session.connection()) >= 1
        db.session.remove()


def test_prepared_statements_are_planned_once(app):
    with app.app_context():
        assert db.session.scalar(text("SHOW plan_cache_mode")) == "force_generic_plan"
        db.session.remove()


@pytest.mark.parametrize("search", ["/messages?q=rivera", "/clients?q=rivera"])
def test_a_search_is_planned_for_its_words(app, logged_in, admin, household, make_message,
                                           search):
    # One plan for every word took 138 ms for a common one on 5,000 clients: searches are planned
    # for theirs, in a transaction that still only reads (its statements stay prepared).
    make_message(household, admin, "Walk at noon")
    browser = logged_in(admin)
    with record_sql(app) as statements:
        page = browser.get(search).get_data(as_text=True)
    assert "The Rivera Household" in page
    texts = [statement for statement, _ in statements]
    planned = next(index for index, sql in enumerate(texts)
                   if "set_config('plan_cache_mode'" in sql)
    assert any("ILIKE" in sql for sql in texts[planned + 1:])
    assert not any(sql.startswith(("SET", "set")) for sql in texts)
    with app.app_context():
        assert db.session.scalar(text("SHOW plan_cache_mode")) == "force_generic_plan"
        db.session.remove()


def test_pages_without_a_search_keep_one_plan(app, logged_in, admin, household):
    browser = logged_in(admin)
    with record_sql(app) as statements:
        for page in ("/messages", "/clients", f"/clients/{household.id}"):
            assert browser.get(page).status_code == 200
    assert not any("plan_cache_mode" in statement for statement, _ in statements)


def test_a_transaction_that_wrote_is_still_rolled_back(app, business):
    with app.app_context():
        db.session.execute(update(Business).where(Business.id == business.id)
                           .values(name="Not kept"))
        db.session.scalar(select(Business.name).where(Business.id == business.id))
        db.session.rollback()
        assert db.session.get(Business, business.id).name == business.name
        db.session.remove()
