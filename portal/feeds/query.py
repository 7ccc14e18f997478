"""Reading a feed: one Core query per page, keyset paged, only the columns shown."""

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.models import Feed, Message, Role, User, utcnow
from portal.text import exact_time, message_html, relative_time

_author = aliased(User)
_deleter = aliased(User)
_FEED_PAGE = (
    select(
        Message.id,
        Message.author_id,
        _author.name.label("author_name"),
        _author.role.label("author_role"),
        Message.text,
        Message.created_at,
        Message.deleted_at,
        _deleter.name.label("deleted_by_name"),
    )
    .join(_author, Message.author_id == _author.id)
    .outerjoin(_deleter, Message.deleted_by_id == _deleter.id)
)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A message as one viewer sees it, formatted once in Python rather than in the template."""

    id: int
    author_id: int
    author_name: str
    author_role: Role
    html: Markup | None
    iso_time: str
    exact_time: str
    relative_time: str
    is_own: bool
    deleted: bool
    deleted_by_name: str | None
    deleted_exact_time: str | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[FeedItem]
    # The id to page before for "Load earlier messages", or None at the start of the feed.
    earlier_before: int | None


def load_page(
    client_id: int, feed: Feed, viewer: User, *, before: int | None = None, limit: int = 50
) -> FeedPage:
    query = _FEED_PAGE.where(Message.client_id == client_id, Message.feed == feed)
    if before is not None:
        query = query.where(Message.id < before)
    rows = db.session.execute(query.order_by(Message.id.desc()).limit(limit + 1)).all()
    has_earlier = len(rows) > limit
    rows = rows[:limit]
    now = utcnow()
    items = [present(row, viewer, now) for row in reversed(rows)]
    return FeedPage(items, items[0].id if has_earlier else None)


def load_item(message_id: int, viewer: User) -> FeedItem:
    row = db.session.execute(_FEED_PAGE.where(Message.id == message_id)).one()
    return present(row, viewer, utcnow())


def present(row, viewer: User, now: datetime) -> FeedItem:
    tz = viewer.time_zone
    return FeedItem(
        id=row.id,
        author_id=row.author_id,
        author_name=row.author_name,
        author_role=row.author_role,
        html=message_html(row.text) if row.text is not None else None,
        iso_time=row.created_at.isoformat(),
        exact_time=exact_time(row.created_at, tz),
        relative_time=relative_time(row.created_at, now, tz),
        is_own=row.author_id == viewer.id,
        deleted=row.deleted_at is not None,
        deleted_by_name=row.deleted_by_name,
        deleted_exact_time=exact_time(row.deleted_at, tz) if row.deleted_at else None,
    )
