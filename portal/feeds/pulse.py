"""The open feed's poll, answered from one prepared query when nothing changed.

An open feed asks every two seconds whether anything changed; nearly always nothing did. That
answer needs who is asking (a live session of an active user), whether the policy lets them see
the feed, and whether the feed changed since. All three come from one statement, built once,
read as plain rows: no ORM objects, no rendering. Whenever the quick answer is not a plain "no"
(not logged in, not allowed, something changed, a remember-me cookie to honour), the full route
answers instead, with the usual login and 404 handling.
"""

from dataclasses import dataclass
from datetime import datetime

from flask import session
from sqlalchemy import bindparam, exists, select

from portal import policy
from portal.extensions import db
from portal.models import Business, Client, Feed, LoginSession, Message, Role, User

_in_feed = (Message.client_id == bindparam("client_id"), Message.feed == bindparam("feed"))
_PULSE = (
    select(
        User.id, User.role, User.business_id, User.client_id, User.private_messages_access,
        Business.private_messaging_enabled, Business.staff_access_days,
        select(Client.business_id).where(Client.id == bindparam("client_id"))
        .scalar_subquery().label("client_business_id"),
        exists().where(*_in_feed, Message.id > bindparam("after")).label("added"),
        exists().where(
            *_in_feed, Message.id >= bindparam("oldest"), Message.id <= bindparam("after"),
            Message.deleted_at > bindparam("since"),
        ).label("deleted"),
    )
    .select_from(LoginSession)
    .join(User, User.id == LoginSession.user_id)
    .join(Business, Business.id == User.business_id)
    .where(LoginSession.key == bindparam("key"), User.active)
)


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


def nothing_new(client_id: int, feed: Feed, *, after: int, oldest: int, since: datetime) -> bool:
    """True only when the session's user may see the feed and it has not changed."""
    key = session.get("_user_id")  # Flask-Login's session key (see LoginSession)
    if not isinstance(key, str):
        return False
    with db.engine.connect() as connection:
        row = connection.execute(_PULSE, {
            "key": key, "client_id": client_id, "feed": feed, "after": after,
            "oldest": oldest, "since": since,
        }).one_or_none()
    if row is None or row.added or row.deleted or row.client_business_id is None:
        return False
    viewer = _Viewer(
        row.id, row.role, row.business_id, row.client_id, row.private_messages_access,
        _BusinessSettings(row.private_messaging_enabled, row.staff_access_days),
    )
    return policy.can_view_feed(viewer, _ClientRef(client_id, row.client_business_id), feed)
