from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.attachments import StoredFileColumns, new_token
from portal.models.clients import Client
from portal.models.messages import Feed, Message
from portal.models.notifications import OutboxDelivery
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User, enum_column
from portal.models.visit_reports import VisitReport


class ScheduledMessage(OutboxDelivery, db.Model):
    """A message written now to be posted later ("Send later"): an outbox row like a
    notification, due at its time, that the worker claims once and posts as a message written
    then. Until then only its author and the admin team see it. `status`: pending until its
    time; sent (`message_id` names what it became), cancelled, or failed when it could not be
    posted (`last_error` says why, and its author was emailed).

    A staff member's message that needs approval waits here too, `held` (the worker passes it
    by) until someone of the admin team approves it (then it goes at its time, at once when
    that has passed) or rejects it (cancelled, with `rejection_note` for its author)."""

    __tablename__ = "scheduled_messages"
    __table_args__ = (
        Index("ix_scheduled_messages_due", "status", "due_at"),
        Index("ix_scheduled_messages_feed", "client_id", "feed", "status"),
        Index("ix_scheduled_messages_author_send_key", "author_id", "send_key", unique=True),
        Index("ix_scheduled_messages_held", "business_id", "held", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    feed: Mapped[Feed] = mapped_column(enum_column(Feed))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    # The composer's one-time key: Schedule pressed twice schedules one message.
    send_key: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # Awaiting approval: posted only once the admin team approves it.
    held: Mapped[bool] = mapped_column(default=False)
    # Counts its edits: an approval or rejection names the revision its reviewer read.
    revision: Mapped[int] = mapped_column(default=0)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why it was not approved, for its author; set only when rejected.
    rejection_note: Mapped[str | None] = mapped_column(Text)
    # When its author put the rejection away (it is listed for them until then).
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The visit report it answers (a report's Reply), carried to the message it becomes.
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"))
    # A visit report awaiting approval: this is its note and photos; posted, it becomes the
    # report's message.
    visit_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("visit_reports.id", ondelete="CASCADE"))

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    client: Mapped[Client] = relationship()
    message: Mapped[Message | None] = relationship(foreign_keys=[message_id])
    visit_report: Mapped["VisitReport | None"] = relationship()
    files: Mapped[list["ScheduledMessageFile"]] = relationship(
        order_by="ScheduledMessageFile.position", cascade="all, delete-orphan",
        back_populates="scheduled_message",
    )

    @property
    def rejected(self) -> bool:
        return self.rejection_note is not None

    @property
    def waiting_kind(self) -> str:
        """How the list under the feed heads it: "held", "scheduled" or "rejected"."""
        return "rejected" if self.rejected else "held" if self.held else "scheduled"

    @property
    def goes_later(self) -> bool:
        """Its time is still to come; a message held as written has no time of its own."""
        return self.due_at > utcnow()


class ScheduledMessageFile(StoredFileColumns, db.Model):
    """A file of a message waiting to be posted; the message gets a copy of its own, and this
    one goes once the wait is over (posted, cancelled or rejected)."""

    __tablename__ = "scheduled_message_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(48), unique=True, default=new_token)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    scheduled_message_id: Mapped[int] = mapped_column(
        ForeignKey("scheduled_messages.id", ondelete="CASCADE"), index=True)

    scheduled_message: Mapped[ScheduledMessage] = relationship(back_populates="files")
