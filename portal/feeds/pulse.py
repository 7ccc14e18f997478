"""The open feed's poll, answered from one statement (built once) when nothing changed.

An open feed asks every two seconds whether anything changed; nearly always nothing did. That
answer needs who is asking (a live session of an active user), whether the policy lets them see
the feed, and whether the feed changed since. All three come from one statement, read as plain
rows: no ORM objects, no rendering (staff also run the policy's own access query). Whenever
the quick answer is not a plain "no" (not logged in, not allowed, something changed, a
remember-me cookie to honour), the full route answers instead, with the usual login and 404
handling.
"""

from dataclasses import dataclass
from datetime import datetime

from flask import session
from sqlalchemy import Connection, bindparam, exists, select

from portal import policy
from portal.driver_reads import DriverRead
from portal.extensions import db
from portal.models import Business, Client, Feed, LoginSession, Message, Role, User
from portal.services.accounts import LIVE_SESSION, live_session

_in_feed = (Message.client_id == bindparam("client_id"), Message.feed == bindparam("feed"))
_PULSE = (
    select(
        User.id, User.role, User.business_id, User.client_id, User.private_messages_access,
        Business.private_messaging_enabled, Business.staff_access_days,
        select(Client.business_id).where(Client.id == bindparam("client_id"))
        .scalar_subquery().label("client_business_id"),
        select(Client.archived_at.is_not(None)).where(Client.id == bindparam("client_id"))
        .scalar_subquery().label("client_archived"),
        exists().where(*_in_feed, Message.id > bindparam("after")).label("added"),
        exists().where(
            *_in_feed, Message.id >= bindparam("oldest"), Message.id <= bindparam("after"),
            Message.deleted_at > bindparam("since"),
        ).label("deleted"),
    )
    .select_from(LoginSession)
    .join(User, User.id == LoginSession.user_id)
    .join(Business, Business.id == User.business_id)
    .where(LIVE_SESSION, User.active)
)
# Compiled once per dialect; run here by the driver itself, outside any transaction (_run).
_PULSE_READ = DriverRead(_PULSE)


@dataclass(frozen=True, slots=True)
class _BusinessSettings:
    private_messaging_enabled: bool
    staff_access_days: int


@dataclass(frozen=True, slots=True)
class _Viewer:
    """The asking user as the policy reads them (the attributes of User it uses)."""

    id: int
    role: Role
    business_id: int
    client_id: int | None
    private_messages_access: bool
    business: _BusinessSettings
    is_authenticated: bool = True


@dataclass(frozen=True, slots=True)
class _ClientRef:
    id: int
    business_id: int
    archived_at: bool | None  # set when archived: the policy asks only whether it is


def nothing_new(client_id: int, feed: Feed, *, after: int, oldest: int, since: datetime) -> bool:
    """True only when the session's user may see the feed and it has not changed."""
    key = session.get("_user_id")  # Flask-Login's session key (see LoginSession)
    if not isinstance(key, str):
        return False
    row = _run({**live_session(key), "client_id": client_id, "feed": feed,
                "after": after, "oldest": oldest, "since": since})
    if row is None:
        return False
    (user_id, role, business_id, user_client_id, private_access, private_enabled,
     staff_access_days, client_business_id, client_archived, added, deleted) = row
    if added or deleted or client_business_id is None:
        return False
    viewer = _Viewer(
        user_id, Role(role), business_id, user_client_id, bool(private_access),
        _BusinessSettings(bool(private_enabled), staff_access_days),
    )
    client = _ClientRef(client_id, client_business_id, client_archived or None)
    return policy.can_view_feed(viewer, client, feed)


def _run(values: dict) -> tuple | None:
    """The statement as the driver's SQL, prepared once, on the driver's own connection:
    compiling, SQLAlchemy's result processing and the ORM session's transaction cost more than
    the query itself here, on the request made most often. Statement listeners (the query
    counts of tests and benchmarks) still see it."""
    engine = db.engine
    plan = _PULSE_READ.plan(engine.dialect)
    sql, parameters = plan.sql, plan.parameters(values)
    bound = db.session.session_factory.kw.get("bind")
    if isinstance(bound, Connection):  # sessions bound to one transaction read inside it
        return _fetch(engine, bound.connection.dbapi_connection, sql, parameters)
    pooled = engine.raw_connection()
    try:
        return _fetch_alone(engine, pooled, sql, parameters)
    finally:
        pooled.close()


def _fetch_alone(engine, pooled, sql: str, parameters) -> tuple | None:
    """One statement outside any transaction (PostgreSQL: no BEGIN and no ROLLBACK round
    trips around it). A connection the server dropped is discarded, and None lets the full
    route answer on a fresh one."""
    connection = pooled.dbapi_connection
    in_autocommit = engine.dialect.name == "postgresql"
    try:
        if in_autocommit:
            connection.autocommit = True
        return _fetch(engine, connection, sql, parameters)
    except engine.dialect.loaded_dbapi.Error as error:
        if not engine.dialect.is_disconnect(error, connection, None):
            raise
        pooled.invalidate(error)
        return None
    finally:
        if in_autocommit and not connection.closed:
            connection.autocommit = False


def _fetch(engine, connection, sql: str, parameters) -> tuple | None:
    cursor = connection.cursor()
    try:
        for listener in engine.dispatch.before_cursor_execute:
            # No SQLAlchemy Connection or execution context runs this statement: None for both.
            listener(None, cursor, sql, parameters, None, False)
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
        for listener in engine.dispatch.after_cursor_execute:
            listener(None, cursor, sql, parameters, None, False)
        return row
    finally:
        cursor.close()
