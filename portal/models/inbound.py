import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.clients import Client
from portal.models.messages import Feed, Message
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User, enum_column


class InboundChannel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class InboundOutcome(enum.StrEnum):
    """What became of something a person sent to the portal's reply address or number."""

    POSTED = "posted"          # a message in the feed its reply address names
    UNMATCHED = "unmatched"    # waits in Unmatched replies for the admin team
    FILED = "filed"            # the admin team filed it into a feed
    DISCARDED = "discarded"    # the admin team discarded it
    AUTOMATIC = "automatic"    # an out-of-office or other automatic reply: never a message
    BOUNCE = "bounce"          # a delivery failure report: the address was marked
    KEYWORD = "keyword"        # a text saying STOP, START or HELP
    REFUSED = "refused"        # could not be read at all (too large, not a message)


class InboundMessage(db.Model):
    """One email or text that came in, and what became of it: the record that makes a second
    delivery of the same thing a no-op, and the Unmatched replies queue (outcome UNMATCHED)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_queue", "business_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL when nothing in it names a business (an unknown address, a forged reply address).
    business_id: Mapped[int | None] = mapped_column(ForeignKey("businesses.id"))
    channel: Mapped[InboundChannel] = mapped_column(enum_column(InboundChannel))
    # A digest of what identifies this delivery (an email's Message-ID and the reply address
    # it came to; a text's provider id): the same delivery twice is recorded once.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    outcome: Mapped[InboundOutcome] = mapped_column(enum_column(InboundOutcome))
    # Why it is not a message (for the review queue and the log), in words for the admin team.
    reason: Mapped[str | None] = mapped_column(String(300))
    # The sender as they wrote it: an email address or a phone number, and a display name.
    sender: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    # What the person wrote (quotes and signature taken off), as it would be posted.
    text: Mapped[str | None] = mapped_column(Text)
    attachment_count: Mapped[int] = mapped_column(default=0)
    # The raw email (or a text's media list) in storage while it waits for review; removed
    # once it is filed or discarded.
    raw_key: Mapped[str | None] = mapped_column(String(64))
    # What its reply address named, when the address was genuine (signature checked).
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    feed: Mapped[Feed | None] = mapped_column(enum_column(Feed))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The portal could not read it (a fault of ours): when no reply address it came to names
    # its feed either, the feed is unknown, and an unknown feed is treated as Private. (A
    # server default too: a process started before the column came keeps inserting rows.)
    unreadable: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The login that sent it: for an email, only when verified (the reply address's own person
    # writing from their login's address, not found forged); for a text, the login its number
    # belongs to, when exactly one does.
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The feed message it became (posted or filed).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[Client | None] = relationship()
    recipient: Mapped[User | None] = relationship(foreign_keys=[recipient_id])
    sender_user: Mapped[User | None] = relationship(foreign_keys=[sender_user_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])
    message: Mapped[Message | None] = relationship()
