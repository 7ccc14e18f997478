"""Reading a feed: one Core query per page, keyset paged, only the columns shown."""

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from sqlalchemy import select, union_all
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.models import Attachment, AttachmentKind, Feed, Message, Role, User, utcnow
from portal.services.uploads import ATTACHMENT_TYPE
from portal.text import exact_time, message_html, relative_time

IMAGE_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
                "image/gif": ".gif"}

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


_ATTACHMENTS = select(
    Attachment.message_id,
    Attachment.token,
    Attachment.kind,
    Attachment.original_name,
    Attachment.size,
    Attachment.width,
    Attachment.height,
    Attachment.content_type,
).order_by(Attachment.message_id, Attachment.position)


@dataclass(frozen=True, slots=True)
class AttachmentView:
    token: str
    is_image: bool
    name: str
    size_label: str
    width: int | None
    height: int | None
    content_type: str = ATTACHMENT_TYPE

    @property
    def download_name(self) -> str:
        """Photos are stored re-encoded: an iPhone HEIC downloads as the JPEG it now is."""
        suffix = IMAGE_SUFFIX.get(self.content_type)
        if not suffix or self.name.lower().endswith(suffix):
            return self.name
        stem = self.name.rpartition(".")[0] if "." in self.name else self.name
        return stem + suffix

    @property
    def type_label(self) -> str:
        suffix = self.name.rpartition(".")[2].upper() if "." in self.name else ""
        return suffix[:5] or "FILE"


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
    images: tuple[AttachmentView, ...] = ()
    files: tuple[AttachmentView, ...] = ()


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
    attachments = _attachments([row.id for row in rows])
    now = utcnow()
    items = [present(row, viewer, now, attachments.get(row.id, ())) for row in reversed(rows)]
    return FeedPage(items, items[0].id if has_earlier else None)


@dataclass(frozen=True, slots=True)
class FeedUpdates:
    added: list[FeedItem]
    deleted: list[FeedItem]

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted)


def load_updates(
    client_id: int, feed: Feed, viewer: User, *, after: int, oldest: int, since: datetime,
    limit: int = 50,
) -> FeedUpdates:
    """What changed in an open feed: messages after the newest shown, and deletions since the
    last look among those shown. One query, on the (client, feed, id) index, when nothing did."""
    in_feed = (Message.client_id == client_id, Message.feed == feed)
    changed = union_all(
        select(Message.id).where(*in_feed, Message.id > after),
        select(Message.id).where(
            *in_feed, Message.id >= oldest, Message.id <= after, Message.deleted_at > since
        ),
    )
    rows = db.session.execute(
        _FEED_PAGE.where(Message.id.in_(changed)).order_by(Message.id).limit(limit)
    ).all()
    if not rows:
        return FeedUpdates([], [])
    attachments = _attachments([row.id for row in rows if row.id > after])
    now = utcnow()
    items = [present(row, viewer, now, attachments.get(row.id, ())) for row in rows]
    return FeedUpdates(
        [item for item in items if item.id > after],
        [item for item in items if item.id <= after],
    )


def load_item(message_id: int, viewer: User) -> FeedItem:
    row = db.session.execute(_FEED_PAGE.where(Message.id == message_id)).one()
    return present(row, viewer, utcnow(), _attachments([message_id]).get(message_id, ()))


def _attachments(message_ids: list[int]) -> dict[int, list[AttachmentView]]:
    """The attachments of a page of messages, in one query."""
    found: dict[int, list[AttachmentView]] = {}
    if message_ids:
        for row in db.session.execute(_ATTACHMENTS.where(Attachment.message_id.in_(message_ids))):
            found.setdefault(row.message_id, []).append(AttachmentView(
                row.token, row.kind == AttachmentKind.IMAGE, row.original_name,
                size_label(row.size), row.width, row.height, row.content_type,
            ))
    return found


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{int(size / 1024 + 0.5)} KB"  # rounds halves up, as the composer's preview does
    return f"{size / (1024 * 1024):.1f} MB"


def present(row, viewer: User, now: datetime, attachments=()) -> FeedItem:
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
        images=tuple(view for view in attachments if view.is_image),
        files=tuple(view for view in attachments if not view.is_image),
    )
