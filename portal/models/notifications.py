import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.messages import Message
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User, enum_column


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"

    @property
    def noun(self) -> str:
        """"email", "text message", "app notification": one of what the channel sends."""
        return {"email": "email", "sms": "text message", "push": "app notification"}[self.value]

    def count(self, number: int) -> str:
        return f"{number} {self.noun}{'' if number == 1 else 's'}"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Notification(db.Model):
    """The outbox: one row per person, channel and message, written with the message."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "due_at"),
        Index("ix_notifications_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    # Not before the undo window has passed; later again after a transient failure.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Held for the recipient's quiet hours: due when they end, and sent with the others held
    # for them as one summary per channel.
    summary: Mapped[bool] = mapped_column(default=False)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The text message's id at the SMS provider, and the latest status it reported for it
    # ("delivered", "undelivered", …) through its status callback. For an email, the id part
    # of its Message-ID (every row the email carried has it), which a bounce report names.
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(20))

    recipient: Mapped[User] = relationship()
    message: Mapped[Message] = relationship()


class PushSubscription(db.Model):
    """A browser or phone that accepted web push for this user."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccountEmailKind(enum.StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"
    PASSWORD_CHANGED = "password_changed"
    # A message its author scheduled could not be posted at its time.
    SCHEDULED_NOT_SENT = "scheduled_not_sent"
    # A message that waited for approval was not approved: the note says why.
    MESSAGE_NOT_APPROVED = "message_not_approved"

    @property
    def label(self) -> str:
        """"Invitation email", as the list of failed deliveries names it."""
        if self == AccountEmailKind.SCHEDULED_NOT_SENT:
            return "Scheduled message not sent email"
        if self == AccountEmailKind.MESSAGE_NOT_APPROVED:
            return "Message not approved email"
        return self.value.replace("_", " ").capitalize() + " email"


class OutboxDelivery:
    """The delivery columns of a one-off outbox row the worker claims, sends and settles as it
    does notifications: due now, retried with backoff, failed after too many attempts."""

    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccountEmail(OutboxDelivery, db.Model):
    """The outbox of one-off account emails, delivered by the notification worker.

    Rows hold no link: the worker signs it when it sends, so no token is ever stored. A reset
    request holds only the address typed; the worker looks the person up (and deletes the row
    when nobody has that address), so the request does the same work whether or not they exist.
    """

    __tablename__ = "account_emails"
    __table_args__ = (Index("ix_account_emails_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int | None] = mapped_column(ForeignKey("businesses.id"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(String(254))
    kind: Mapped[AccountEmailKind] = mapped_column(enum_column(AccountEmailKind))
    # For SCHEDULED_NOT_SENT: which one.
    scheduled_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduled_messages.id", ondelete="CASCADE")
    )

    user: Mapped[User | None] = relationship()
    scheduled_message: Mapped["ScheduledMessage | None"] = relationship()  # noqa: F821
