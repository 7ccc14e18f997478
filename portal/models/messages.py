import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User, enum_column


class Feed(enum.StrEnum):
    CONVERSATION = "conversation"
    PRIVATE = "private"

    @property
    def label(self) -> str:
        return self.value.title()

    @property
    def send_label(self) -> str:
        """The composer's button: a private message says so where it is sent."""
        return "Send privately" if self == Feed.PRIVATE else "Send"


# Message.via of an automatic reply, written for the business while it is closed.
VIA_AUTOMATIC = "auto"
# Message.via of a visit report (the report's details: VisitReport, by message_id).
VIA_REPORT = "report"


class Message(db.Model):
    __tablename__ = "messages"
    # Keyset paging of one client's feed: WHERE client_id=? AND feed=? AND id<? ORDER BY id DESC.
    # deleted_at and author_id ride along for unread counts, counted from the index alone.
    # A send key is used once per author: a repeated send finds the message it already made.
    __table_args__ = (
        Index("ix_messages_client_feed", "client_id", "feed", "id", "deleted_at", "author_id"),
        Index("ix_messages_author_send_key", "author_id", "send_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    feed: Mapped[Feed] = mapped_column(enum_column(Feed))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Erased (NULL) when the message is deleted: the text is gone, not hidden.
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Taken back by its author within the undo window, before anyone was notified.
    unsent: Mapped[bool] = mapped_column(default=False)
    # What made it, once: a composer render's one-time key (or, for a message that arrives by
    # email, a digest of its Message-ID). NULL for messages from before keys existed.
    send_key: Mapped[str | None] = mapped_column(String(64))
    # How it came when not from the portal's composer: "email" or "sms" (a reply), a message
    # scheduled earlier ("scheduled", "late"), or an automatic reply (VIA_AUTOMATIC).
    via: Mapped[str | None] = mapped_column(String(10))
    # The visit report this message answers (the report's Reply): it is linked to that visit.
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"))

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    deleted_by: Mapped[User | None] = relationship(foreign_keys=[deleted_by_id])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None
