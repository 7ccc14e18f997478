"""Writing and cancelling notification rows, inside the caller's transaction."""

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, func, insert, select, update

from portal import policy
from portal.extensions import db
from portal.models import (
    Channel,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    Notification,
    PushSubscription,
    User,
    utcnow,
)


def wants(user: User, channel: Channel) -> bool:
    choice = getattr(user, f"notify_{channel.value}")
    if choice is None:
        choice = getattr(user.business, f"notify_{channel.value}_default")
    return bool(choice)


def channels_for(user: User, feed: Feed, has_device: bool) -> list[Channel]:
    """Email to everyone who wants it; text messages only for Conversation messages, to people
    with a phone number who opted in; push only to devices the person enabled."""
    channels = [Channel.EMAIL] if user.email and wants(user, Channel.EMAIL) else []
    if feed == Feed.CONVERSATION and user.phone and wants(user, Channel.SMS):
        channels.append(Channel.SMS)
    if has_device and wants(user, Channel.PUSH):
        channels.append(Channel.PUSH)
    return channels


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    channels: tuple[Channel, ...]


def recipients(author: User, client: Client, feed: Feed) -> list[Recipient]:
    """Who is told of a message in this feed, and how. Read before the message is written,
    so that the write transaction (one writer at a time on SQLite) holds only the writes."""
    audience = policy.notification_audience(author, client, feed)
    with_devices = set(db.session.scalars(
        select(PushSubscription.user_id)
        .where(PushSubscription.user_id.in_([person.id for person in audience]))
    )) if audience else set()
    found = [
        Recipient(person.id, tuple(channels_for(person, feed, person.id in with_devices)))
        for person in audience
    ]
    return [recipient for recipient in found if recipient.channels]


def undo_window() -> timedelta:
    """How long notifications wait after a message is posted, so that it can be unsent."""
    return timedelta(seconds=current_app.config["NOTIFICATION_DELAY_SECONDS"])


def enqueue(message: Message, recipients: list[Recipient]) -> None:
    """Writes the message's notification rows in the caller's transaction: they commit with
    the message. One INSERT for them all; nothing reads them back as objects."""
    due_at = utcnow() + undo_window()
    rows = [
        {"business_id": message.business_id, "message_id": message.id,
         "recipient_id": recipient.user_id, "channel": channel, "due_at": due_at}
        for recipient in recipients
        for channel in recipient.channels
    ]
    if rows:
        db.session.execute(insert(Notification.__table__), rows)  # Core: no ORM bulk path


def cancel_pending(message: Message) -> None:
    """A deleted message is never delivered: its waiting notifications are cancelled."""
    db.session.execute(
        update(Notification)
        .where(
            Notification.message_id == message.id,
            Notification.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.CANCELLED)
    )


# Why a notification was not sent: the person saw the message in the portal first.
READ_IN_PORTAL = "read in the portal first"
GONE_OUT = (DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED)


def recall(message: Message) -> bool:
    """Cancels every notification of the message when none has gone out, or is going, yet:
    True then. In the caller's transaction, which must roll back on False.

    Cancels first and looks after: a worker claiming a row meanwhile either finds it cancelled
    or holds it as sending, which the look then sees (on PostgreSQL the UPDATE waits for the
    worker's claim to commit; SQLite has one writer at a time)."""
    cancel_pending(message)
    return not db.session.scalar(select(exists().where(
        Notification.message_id == message.id, Notification.status.in_(GONE_OUT)
    )))


def delivered(message: Message) -> dict[Channel, int]:
    """How many notifications of the message went out, by channel: what deleting it cannot
    take back."""
    rows = db.session.execute(
        select(Notification.channel, func.count())
        .where(Notification.message_id == message.id,
               Notification.status == DeliveryStatus.SENT)
        .group_by(Notification.channel)
    )
    return dict(rows.all())
