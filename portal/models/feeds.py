"""What the portal keeps about feeds as a whole: their latest activity, and who read how far."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.messages import Feed
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import enum_column


class FeedSummary(db.Model):
    """A feed's latest visible message, kept by post_message and delete_message in their own
    transaction, so that lists of feeds by recent activity never scan the messages.

    A row exists while the feed has a message that is not deleted.
    """

    __tablename__ = "feed_summaries"
    # The Message Center: a business's feeds, newest activity first, keyset paged on the id.
    __table_args__ = (
        Index("ix_feed_summaries_business_last", "business_id", "last_message_id"),
    )

    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    feed: Mapped[Feed] = mapped_column(enum_column(Feed), primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    last_message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Set while the last message is from the client: when the first of their messages since
    # the business last wrote was sent. NULL once the business has answered.
    awaiting_reply_since: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def last_from_client(self) -> bool:
        return self.awaiting_reply_since is not None


class ReadMarker(db.Model):
    """How far one person has read one feed: the id of the newest message they were shown."""

    __tablename__ = "read_markers"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    feed: Mapped[Feed] = mapped_column(enum_column(Feed), primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    last_read_id: Mapped[int]


class ReadReceipt(db.Model):
    """A read marker's move: the person was shown the feed up to this message at this moment.
    When someone saw a message is the time of their first receipt reaching it (markers only
    move forward); the delivery line under a message says "Seen by Dana 9:14" from these."""

    __tablename__ = "read_receipts"
    # A page's receipts: those of its feed reaching its first message or beyond.
    __table_args__ = (Index("ix_read_receipts_feed", "client_id", "feed", "up_to_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    feed: Mapped[Feed] = mapped_column(enum_column(Feed))
    up_to_id: Mapped[int]
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetiredComposer(db.Model):
    """A composer whose page its viewer left for another feed of the same client.

    Every page with a composer carries a random token in it; following a feed tab without
    JavaScript pings the portal with that token before the next page loads (the browser keeps
    the old page usable meanwhile). A send from a retired composer is refused, so text typed
    for the feed being opened never lands in the feed being left.
    """

    __tablename__ = "retired_composers"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(43), primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class UsedFormKey(db.Model):
    """A form that creates something (a client, a pet, a service), submitted once.

    Every such form carries a new random key each time it is shown. The first post with it
    records it in the same commit as what it made, and where that led; a repeat of the post (a
    double tap, a retried request) finds it and goes there, making nothing. See
    portal/services/form_keys.py. Messages keep their key on themselves (Message.send_key).
    """

    __tablename__ = "used_form_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(43), primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    result_url: Mapped[str] = mapped_column(String(300))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
