"""Statements run straight on the driver (portal/driver_reads.py): the same rows as SQLAlchemy
gives, values converted both ways, seen by statement listeners, and errors raised as
SQLAlchemy raises them, a dropped connection invalidated."""

from datetime import timedelta

import pytest
from sqlalchemy import Integer, String, bindparam, cast, exc, literal, select, text

from portal import policy, unread
from portal.driver_reads import DriverRead
from portal.extensions import db
from portal.feed_component import query, views
from portal.models import Feed, Message, Role, ServiceStatus, User, utcnow

from .helpers import POSTGRES_URL, drop_connections_of, record_sql, update_row


@pytest.fixture
def feed_with_a_deletion(app, admin, household, household_login, make_message):
    kept = make_message(household, admin, "Walk at noon")
    deleted = make_message(household, household_login, "Wrong client")
    update_row(app, Message, deleted.id, deleted_at=utcnow(), deleted_by_id=admin.id)
    return kept, deleted


def _both_ways(read: DriverRead, values: dict) -> tuple[list, list]:
    driven = read.rows(values)
    return [tuple(row) for row in driven], db.session.execute(read.statement, values).all()


def test_a_feed_page_reads_as_sqlalchemy_reads_it(app, household, feed_with_a_deletion):
    with app.app_context():
        values = {"client_id": household.id, "feed": Feed.CONVERSATION, "limit": 10}
        driven, expected = _both_ways(query._NEWEST, values)
        assert driven == [tuple(row) for row in expected]
        newest = query._NEWEST.rows(values)[0]
        # Times come back aware and in UTC, roles as the enum, flags as booleans, NULL as None.
        assert newest.deleted_at.utcoffset() == timedelta(0)
        assert newest.author_role is Role.CLIENT and newest.unsent is False
        assert query._NEWEST.rows(values)[1].deleted_at is None
        db.session.remove()


def test_values_given_are_converted_as_sqlalchemy_converts_them(app, household, assigned_staff,
                                                                make_service):
    make_service(household, assigned_staff, days_from_now=0.5, status=ServiceStatus.CANCELLED)
    with app.app_context():
        # An aware time given, and the statement's own enum (cancelled visits left out).
        values = {"client_id": household.id, "staff_id": assigned_staff.id,
                  "window_start": utcnow() - timedelta(days=1)}
        driven, expected = _both_ways(views._STAFF_SERVICES, values)
        assert driven == [tuple(row) for row in expected] and len(driven) == 1
        everyone = views._SERVICES.rows(values)
        assert [row.status for row in everyone] == [ServiceStatus.CANCELLED,
                                                    ServiceStatus.SCHEDULED]
        db.session.remove()


def test_values_fixed_in_the_statement_are_written_into_it(app, admin, household,
                                                           assigned_staff):
    # The roster names the staff role with literal_execute: SQLAlchemy writes it at each run.
    with app.app_context():
        admin_row = db.session.get(User, admin.id)
        read = unread._open_feed_statement(policy.viewer_shape(admin_row), (Feed.CONVERSATION,),
                                           None, True)
        values = {**policy.viewer_parameters(admin_row), "client_id": household.id,
                  "newest_id": None, **policy.roster_parameters(household, admin_row.business)}
        driven, expected = _both_ways(read, values)
        assert driven == [tuple(row) for row in expected]
        assert [row.name for row in read.rows(values)] == [assigned_staff.name]
        db.session.remove()


def test_statement_listeners_see_each_run(app, household):
    with app.app_context(), record_sql(app) as statements:
        query._NEWEST.rows({"client_id": household.id, "feed": Feed.CONVERSATION, "limit": 5})
        db.session.remove()
    assert len(statements) == 1 and "FROM messages" in statements[0][0]


def test_a_value_the_statement_needs_must_be_given(app, household):
    with app.app_context():
        with pytest.raises(KeyError, match="limit"):
            query._NEWEST.rows({"client_id": household.id, "feed": Feed.CONVERSATION})
        db.session.remove()


def test_an_in_list_that_expands_per_run_is_refused(app):
    read = DriverRead(select(Message.id).where(Message.id.in_(bindparam("ids", expanding=True))))
    with app.app_context():
        with pytest.raises(ValueError, match="IN list"):
            read.rows({"ids": [1, 2]})
        db.session.remove()


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(app):
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            read = DriverRead(select(text("json(:document)").bindparams(
                bindparam("document", type_=String))))
        else:
            read = DriverRead(select(cast(bindparam("document", type_=String), Integer)))
        with pytest.raises(exc.DBAPIError) as raised:
            read.rows({"document": "{not a number nor json"})
        assert not raised.value.connection_invalidated
        db.session.rollback()
        assert DriverRead(select(literal(1).label("one"))).rows({})[0].one == 1
        db.session.remove()


@pytest.mark.committed
@pytest.mark.skipif(not POSTGRES_URL, reason="a database server drops connections; "
                                             "a SQLite file cannot")
def test_a_dropped_connection_is_invalidated_and_the_next_session_connects_afresh(
        app, database_url, household):
    values = {"client_id": household.id, "feed": Feed.CONVERSATION, "limit": 5}
    with app.app_context():
        query._NEWEST.rows(values)
        db.session.remove()
    drop_connections_of(app, database_url)
    with app.app_context():
        with pytest.raises(exc.DBAPIError) as raised:
            query._NEWEST.rows(values)
        assert raised.value.connection_invalidated
        db.session.remove()
    with app.app_context():
        assert query._NEWEST.rows(values) == []
        db.session.remove()


def test_what_the_session_holds_unwritten_is_read(app, admin, household):
    with app.app_context():
        author = db.session.get(User, admin.id)
        db.session.add(Message(business_id=author.business_id, client_id=household.id,
                               feed=Feed.CONVERSATION, author_id=author.id, text="Unflushed"))
        rows = query._NEWEST.rows({"client_id": household.id, "feed": Feed.CONVERSATION,
                                   "limit": 5})
        assert [row.text for row in rows] == ["Unflushed"]
        db.session.rollback()
        db.session.remove()
