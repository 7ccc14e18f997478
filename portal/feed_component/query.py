"""Reading a feed: one Core query per page, keyset paged, only the columns shown."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from markupsafe import Markup
from sqlalchemy import bindparam, select, union_all
from sqlalchemy.orm import aliased

from portal import policy
from portal.clock import ViewerClock
from portal.driver_reads import DriverRead
from portal.extensions import db
from portal.feed_component import rendered
from portal.feed_component.delivery import Delivery, DeliveryLines
from portal.models import (
    VIA_AUTOMATIC,
    VIA_REPORT,
    Attachment,
    AttachmentKind,
    Client,
    Feed,
    Message,
    Role,
    User,
    VisitReport,
    utcnow,
)
from portal.notifications import outbox
from portal.report_cards import ReportCard
from portal.services import send_later
from portal.services.uploads import ATTACHMENT_TYPE
from portal.text import message_html
from portal.urls import url_pattern

# How a message came, beside its time (Message.via): a reply by email or text, or a message
# scheduled earlier (and posted late when the worker was down at its time); None for what was
# written in the portal then.
VIA_LABELS = {"email": "via email", "sms": "via text", send_later.VIA_SCHEDULED: "scheduled",
              send_later.VIA_LATE: "scheduled, sent late", VIA_AUTOMATIC: "automatic reply",
              VIA_REPORT: "visit report"}

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
        Message.unsent,
        Message.via,
        # A visit report's card (JSON text), read with its message: no query more per page.
        VisitReport.card.label("report_card"),
        Message.reply_to_id,
    )
    .join(_author, Message.author_id == _author.id)
    .outerjoin(_deleter, Message.deleted_by_id == _deleter.id)
    .outerjoin(VisitReport, VisitReport.message_id == Message.id)
)


_ATTACHMENTS = DriverRead(
    select(
        Attachment.message_id,
        Attachment.token,
        Attachment.kind,
        Attachment.original_name,
        Attachment.size,
        Attachment.width,
        Attachment.height,
        Attachment.content_type,
    )
    .join(Message, Message.id == Attachment.message_id)
    # The page's messages by the same index as the page itself: a fixed statement, unlike
    # an IN list of the ids.
    .where(
        Message.client_id == bindparam("client_id"), Message.feed == bindparam("feed"),
        Message.id.between(bindparam("first_id"), bindparam("last_id")),
        Message.deleted_at.is_(None),
    )
    .order_by(Attachment.message_id, Attachment.position)
)


@dataclass(frozen=True, slots=True)
class AttachmentView:
    token: str
    is_image: bool
    name: str
    size_label: str
    width: int | None
    height: int | None
    content_type: str = ATTACHMENT_TYPE
    url: str = ""
    thumbnail_url: str = ""
    view_url: str = ""

    @property
    def shown_width(self) -> int | None:
        """Photos show at most 240 px wide in a feed, keeping their shape."""
        return min(self.width, 240) if self.width else None

    @property
    def shown_height(self) -> int | None:
        if not (self.width and self.height):
            return None
        return round(self.height * self.shown_width / self.width)

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


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to build, pages build fifty
class FeedItem:
    """A message as one viewer sees it, formatted once in Python rather than in the template."""

    id: int
    author_id: int
    author_name: str
    author_role: Role
    # The text as written: made HTML only when the message is rendered (not when its HTML was
    # rendered before and kept, see portal/feed_component/rendered.py).
    text: str | None
    iso_time: str
    exact_time: str
    relative_time: str
    is_own: bool
    deleted: bool
    # Who deleted it and when: only for those the policy shows it (else None).
    deleted_by_name: str | None
    deleted_exact_time: str | None
    images: tuple[AttachmentView, ...] = ()
    files: tuple[AttachmentView, ...] = ()
    # The "Delete" link, for those the policy lets delete this message (else None).
    delete_url: str | None = None
    unsent: bool = False
    # "Unsend", for its author while the undo window lasts: the seconds left of it.
    unsend_url: str | None = None
    unsend_seconds: int = 0
    # A word about the last thing tried on it ("Too late to unsend…"), shown with its actions.
    notice: str | None = None
    # Where it went ("Emailed Dana ✓ · Seen by Dana 9:14"), for those the policy shows it.
    delivery: Delivery | None = None
    # "via email" or "via text" for a reply that came in that way.
    via_label: str | None = None
    # A visit report's card (its times and checklist), for a report not deleted, and where
    # the admin team changes its note.
    report: ReportCard | None = None
    report_note_url: str | None = None
    # A report's Reply (for those who may write here), and the report a reply answers.
    reply_url: str | None = None
    reply_to_id: int | None = None

    @property
    def html(self) -> Markup | None:
        return message_html(self.text) if self.text and not self.text.isspace() else None

    @property
    def css_class(self) -> str:
        return "message" + (" own" if self.is_own else "") + (" deleted" if self.deleted else "")

    @property
    def author_label(self) -> str:
        return "You" if self.is_own else self.author_name

    @property
    def role_label(self) -> str | None:
        """The author's role beside their name; not on one's own messages."""
        return None if self.is_own or self.author_role is None else self.author_role.label


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: "Sequence[FeedItem]"
    # The id to page before for "Load earlier messages", or None at the start of the feed.
    earlier_before: int | None
    # The newest message's id, None for an empty page.
    newest_id: int | None = None


_NEWEST = DriverRead(
    _FEED_PAGE.where(Message.client_id == bindparam("client_id"), Message.feed == bindparam("feed"))
    .order_by(Message.id.desc()).limit(bindparam("limit"))
)
_EARLIER = DriverRead(
    _FEED_PAGE.where(
        Message.client_id == bindparam("client_id"), Message.feed == bindparam("feed"),
        Message.id < bindparam("before"),
    )
    .order_by(Message.id.desc()).limit(bindparam("limit"))
)


def load_page(
    client: Client, feed: Feed, viewer: User, *, before: int | None = None, limit: int = 50
) -> FeedPage:
    parameters = {"client_id": client.id, "feed": feed, "limit": limit + 1, "before": before}
    rows = (_NEWEST if before is None else _EARLIER).rows(parameters)
    has_earlier = len(rows) > limit
    rows = rows[:limit][::-1]
    items = Presenter(viewer, client, feed).presented(rows)
    return FeedPage(items, rows[0].id if has_earlier else None,
                    rows[-1].id if rows else None)


@dataclass(frozen=True, slots=True)
class FeedUpdates:
    added: list[FeedItem]
    deleted: list[FeedItem]

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted)


def load_updates(
    client: Client, feed: Feed, viewer: User, *, after: int, oldest: int, since: datetime,
    limit: int = 50,
) -> FeedUpdates:
    """What changed in an open feed: messages after the newest shown, and deletions since the
    last look among those shown. One query, on the (client, feed, id) index, when nothing did."""
    in_feed = (Message.client_id == client.id, Message.feed == feed)
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
    items = Presenter(viewer, client, feed).items(rows, files_after=after)
    return FeedUpdates(
        [item for item in items if item.id > after],
        [item for item in items if item.id <= after],
    )


_ONE = _FEED_PAGE.where(Message.id == bindparam("message_id"))


def load_item(message_id: int, viewer: User, client: Client, feed: Feed) -> FeedItem:
    """One message as the viewer sees it."""
    row = db.session.execute(_ONE, {"message_id": message_id}).one()
    return Presenter(viewer, client, feed).items([row])[0]


class _Written(NamedTuple):
    """A message just written, in the shape of a _FEED_PAGE row."""

    id: int
    author_id: int
    author_name: str
    author_role: Role
    text: str | None
    created_at: datetime
    deleted_at: None = None
    deleted_by_name: None = None
    unsent: bool = False
    via: str | None = None
    report_card: str | None = None
    reply_to_id: int | None = None


def posted_item(message: Message, author: User, client: Client, feed: Feed, *,
                with_files: bool, told=None) -> FeedItem:
    """The message its author just posted, as they see it: from what was written, not read
    back (only its files are, when it has some; and its notifications, unless `told`, the
    outbox.Recipients they were written for, is given)."""
    row = _Written(message.id, author.id, author.name, author.role, message.text,
                   message.created_at, via=message.via, reply_to_id=message.reply_to_id)
    presenter = Presenter(author, client, feed)
    if told is not None:
        presenter.deliveries.just_posted(message.id, told, outbox.due_at(message))
    return presenter.items([row], files_after=0 if with_files else row.id)[0]


class Presenter:
    """Formats a feed's rows for one viewer. What depends only on the viewer and the feed is
    worked out once (time zone, who may delete what, the shape of each link); each message
    is then plain assembly, so a page of fifty costs little more than one."""

    def __init__(self, viewer: User, client: Client, feed: Feed):
        # The user itself, not the request's proxy to it: read once per message.
        self.viewer = getattr(viewer, "_get_current_object", lambda: viewer)()
        self.client, self.feed = client, feed
        self.clock = ViewerClock(self.viewer.time_zone, utcnow())
        self.sees_deletions = policy.sees_deletion_details(viewer)
        self._deletable: dict[int, bool] = {}
        self.delete_url = url_pattern("messages.confirm_delete", message_id=0)
        self.file_url = url_pattern("files.download", token="")
        self.thumbnail_url = url_pattern("files.thumbnail", token="")
        self.view_url = url_pattern("files.view", token="")
        self.unsend_url = url_pattern("messages.unsend", message_id=0)
        # Only the viewer's own messages can be unsent, and only within the window.
        self.unsends = policy.can_unsend(viewer, client, feed, self.viewer.id, False)
        self.unsend_until = self.clock.now - outbox.undo_window()
        self.deliveries = DeliveryLines(self.viewer, client, feed, self.clock)
        # What of the viewer any article shows (besides whether it is theirs, and whether they
        # may delete it): the zone and date its times are read in, whether deletions are
        # explained, the links' mount point.
        # The business's name signs its automatic replies.
        self.edits_reports = policy.can_edit_report_note(self.viewer, client)
        self.replies = policy.can_post(self.viewer, client, feed)
        self.reply_url = url_pattern("feeds.show", client_id=client.id, feed_name=feed.value)
        self.report_note_url = url_pattern("visits.edit_note", message_id=0)
        self.viewer_facts = (self.viewer.time_zone, self.clock.today, self.sees_deletions,
                             self.delete_url(0), self.viewer.business.name, self.edits_reports,
                             self.replies)

    def items(self, rows, *, files_after: int = 0) -> list[FeedItem]:
        """FeedItems of rows in ascending id order, with the attachments of those above
        files_after (a poll's tombstones need none, and lie far below its new messages)."""
        return list(self.presented(rows, files_after=files_after))

    def presented(self, rows, *, files_after: int = 0) -> "PresentedRows":
        """The rows as items built when read (see PresentedRows), their attachments and
        delivery lines read now."""
        rows = list(rows)
        with_files = [row.id for row in rows if row.id > files_after]
        attachments = self._attachments(with_files[0], with_files[-1]) if with_files else {}
        lines = self.deliveries.for_messages(
            (row.id, row.author_id, row.deleted_at is not None) for row in rows
        )
        return PresentedRows(self, rows, attachments, lines)

    def may_delete(self, author_id: int) -> bool:
        if author_id not in self._deletable:
            self._deletable[author_id] = policy.can_delete(
                self.viewer, self.client, self.feed, author_id, False
            )
        return self._deletable[author_id]

    def unsend_seconds(self, author_id: int, created_at: datetime, deleted: bool) -> int:
        """How long the viewer may still unsend the message (0 or less: not at all)."""
        if self.unsends and author_id == self.viewer.id and not deleted:
            return math.ceil((created_at - self.unsend_until).total_seconds())
        return 0

    def article_key(self, row, attachments, delivery, settings: tuple) -> tuple | None:
        """What the row's article shows, as rendered.shown would find it in the row's FeedItem,
        without building it (None: an article not to keep, as rendered.lasts says). The row
        and the viewer's facts determine every field of the item but the relative time, whose
        words are set by the viewer's date and, within the hour, the minutes passed."""
        (_id, author_id, _name, _role, _text, created_at, deleted_at, *_rest) = row
        deleted = deleted_at is not None
        if self.unsend_seconds(author_id, created_at, deleted) > 0 or (
            delivery is not None and delivery.retry
        ):
            return None
        seconds = (self.clock.now - created_at).total_seconds()
        return (
            "row", settings, self.viewer_facts, tuple(row), author_id == self.viewer.id,
            self.may_delete(author_id),
            int(seconds // 60) if seconds < 3600 else None, attachments, delivery,
        )

    def item(self, row, attachments=()) -> FeedItem:
        # Unpacked, not read by name: a Row's named access costs half a microsecond a field.
        (message_id, author_id, author_name, author_role, text, created_at, deleted_at,
         deleted_by_name, unsent, via, report_card, reply_to_id) = row
        deleted = deleted_at is not None
        unsend_seconds = self.unsend_seconds(author_id, created_at, deleted)
        if via == VIA_AUTOMATIC:
            # The business's, not its nominal author's: nobody's own, nothing to take back.
            author_id, author_name, author_role = None, self.viewer.business.name, None
            unsend_seconds = 0
        exact, relative = self.clock.exact_and_relative(created_at)
        shows_deleter = deleted and self.sees_deletions
        return FeedItem(
            id=message_id,
            author_id=author_id,
            author_name=author_name,
            author_role=author_role,
            text=text,
            iso_time=created_at.isoformat(),
            exact_time=exact,
            relative_time=relative,
            is_own=author_id == self.viewer.id,
            deleted=deleted,
            deleted_by_name=deleted_by_name if shows_deleter else None,
            deleted_exact_time=self.clock.exact(deleted_at) if shows_deleter else None,
            images=tuple(view for view in attachments if view.is_image) if attachments else (),
            files=tuple(view for view in attachments if not view.is_image) if attachments else (),
            delete_url=(
                None if deleted or not self.may_delete(author_id) else self.delete_url(message_id)
            ),
            unsent=unsent,
            unsend_url=self.unsend_url(message_id) if unsend_seconds > 0 else None,
            unsend_seconds=max(unsend_seconds, 0),
            via_label=VIA_LABELS.get(via) if via else None,
            report=ReportCard.of(report_card, self.clock.zone)
            if report_card and not deleted else None,
            report_note_url=self.report_note_url(message_id)
            if report_card and not deleted and self.edits_reports else None,
            reply_url=f"{self.reply_url(self.client.id)}?reply_to={message_id}"
            f"#composer-{self.feed.value}" if report_card and not deleted and self.replies
            else None,
            reply_to_id=reply_to_id,
        )

    def _attachments(self, first_id: int, last_id: int) -> dict[int, list[AttachmentView]]:
        """The attachments of the feed's messages from first_id to last_id, in one query."""
        found: dict[int, list[AttachmentView]] = {}
        rows = _ATTACHMENTS.rows({
            "client_id": self.client.id, "feed": self.feed, "first_id": first_id,
            "last_id": last_id,
        })
        for row in rows:
            found.setdefault(row.message_id, []).append(AttachmentView(
                row.token, row.kind == AttachmentKind.IMAGE, row.original_name,
                size_label(row.size), row.width, row.height, row.content_type,
                url=self.file_url(row.token),
                thumbnail_url=self.thumbnail_url(row.token),
                view_url=self.view_url(row.token),
            ))
        return found


class PresentedRows(Sequence):
    """A page's rows as the viewer's FeedItems, each built the first time it is read. The
    articles kept from an earlier rendering need no item: rendered.render_messages reads
    their keys from the rows (article_keys), and builds only the items it renders."""

    def __init__(self, presenter: Presenter, rows: list, attachments: dict, lines: dict):
        self.presenter, self.rows = presenter, rows
        self.attachments, self.lines = attachments, lines
        self.built: dict[int, FeedItem] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.rows)))]
        index = range(len(self.rows))[index]  # negative indexes, and IndexError past the end
        if index not in self.built:
            row = self.rows[index]
            item = self.presenter.item(row, self.attachments.get(row.id, ()))
            item.delivery = self.lines.get(row.id)
            self.built[index] = item
        return self.built[index]

    def article_keys(self, settings: tuple) -> list[tuple | None]:
        """Each row's key for rendered.render_messages (None: rendered every time). An item
        already built and given a notice since is never kept, as rendered.lasts says."""
        keys = []
        for index, row in enumerate(self.rows):
            built = self.built.get(index)
            if built is not None and not rendered.lasts(built):
                keys.append(None)
                continue
            keys.append(self.presenter.article_key(
                row, tuple(self.attachments.get(row.id, ())), self.lines.get(row.id), settings))
        return keys


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{int(size / 1024 + 0.5)} KB"  # rounds halves up, as the composer's preview does
    return f"{size / (1024 * 1024):.1f} MB"
