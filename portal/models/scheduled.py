from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.clients import Client
from portal.models.messages import Feed, Message
from portal.models.notifications import OutboxDelivery
from portal.models.users import User, enum_column


class ScheduledMessage(OutboxDelivery, db.Model):
    """A message written now to be posted later ("Send later"): an outbox row like a
    notification, due at its time, that the worker claims once and posts as a message written
    then. Until then only its author and the admin team see it. `status`: pending until its
    time; sent (`message_id` names what it became), cancelled, or failed when it could not be
    posted (`last_error` says why, and its author was emailed)."""

    __tablename__ = "scheduled_messages"
    __table_args__ = (
        Index("ix_scheduled_messages_due", "status", "due_at"),
        Index("ix_scheduled_messages_feed", "client_id", "feed", "status"),
        Index("ix_scheduled_messages_author_send_key", "author_id", "send_key", unique=True),
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

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    client: Mapped[Client] = relationship()
    message: Mapped[Message | None] = relationship()
