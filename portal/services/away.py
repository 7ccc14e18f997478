"""While the business is closed: one automatic reply to a client who writes.

The reply is a message of the feed the client wrote in, marked as automatic (Message.via) and
shown as the business's, not a person's. It is written in the business's name by its first
admin (a message needs an author) and told to the household alone (policy.
automatic_reply_audience). At most one goes to a household every AUTO_REPLY_EVERY.
"""

import logging
from datetime import timedelta

from sqlalchemy import exists, select

from portal import policy
from portal.extensions import db
from portal.hours import Hours, opening_words
from portal.models import VIA_AUTOMATIC, Client, Message, Role, User, utcnow
from portal.notifications import outbox
from portal.services import messages

log = logging.getLogger(__name__)

AUTO_REPLY_EVERY = timedelta(hours=12)


def reply_text(business, opening, now) -> str:
    when = (f"We're closed until {opening_words(opening, now, business.time_zone)} and will "
            "answer then." if opening else "We're closed right now and will answer when we "
            "are back.")
    extra = (business.away_message or "").strip()
    return f"Thanks for your message. {when}{' ' + extra if extra else ''}"


def reply_if_closed(message: Message, author: User, client: Client) -> Message | None:
    """After a client's message: the automatic reply, when the business is closed, keeps hours,
    wants replies sent, and has not replied to this household within AUTO_REPLY_EVERY. Never
    raises: the client's message is in already, whatever becomes of the reply."""
    try:
        return _reply(message, author, client)
    except Exception:
        db.session.rollback()
        log.exception("automatic reply to message %s failed", message.id)
        return None


def _reply(message: Message, author: User, client: Client) -> Message | None:
    business = author.business
    now = utcnow()
    hours = Hours.of(business)
    if not (policy.is_client(author) and business.auto_reply) or hours.is_open(now):
        return None
    if _replied_since(client, now - AUTO_REPLY_EVERY):
        return None
    sender = _sender(business.id)
    if sender is None or not policy.can_post(sender, client, message.feed):
        return None
    text = reply_text(business, hours.next_opening(now), now)
    # Not summarized: the client still waits for an answer, and the Message Center shows
    # their message as the feed's latest.
    return messages.post_message(
        sender, client, message.feed, text, via=VIA_AUTOMATIC,
        audience=outbox.audience(sender, client, message.feed, automatic=True),
        summarized=False,
    )


def _replied_since(client: Client, since) -> bool:
    return bool(db.session.scalar(select(exists().where(
        Message.client_id == client.id, Message.via == VIA_AUTOMATIC, Message.created_at > since,
    ))))


def _sender(business_id: int) -> User | None:
    """Who automatic replies are written by: the business's first active admin."""
    return db.session.scalar(
        select(User).where(User.business_id == business_id, User.role == Role.ADMIN,
                           User.active).order_by(User.id).limit(1)
    )
