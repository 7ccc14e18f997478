"""Delivering the outbox: claim due rows, check again who may still be told, send, record.

Several workers may run at once: the outbox hands each row to one of them (see outbox.claim).
"""

import logging
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal import policy
from portal.extensions import db
from portal.models import (
    Attachment,
    Channel,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    Notification,
)
from portal.notifications import account_mail, email, outbox, sms
from portal.notifications.errors import PermanentError, TransientError
from portal.text import without_bidi_controls, zone

log = logging.getLogger(__name__)
EXCERPT_LENGTH = 280


@dataclass(frozen=True)
class NotificationItem:
    """What a notification says about its message, as channels render it."""

    message_id: int
    client_id: int
    client_name: str
    feed: Feed
    author_name: str
    business_name: str
    excerpt: str | None
    # A private message whose text the business keeps out of emails (the default).
    text_withheld: bool
    attachments: int
    link: str
    time: str

    @property
    def private(self) -> bool:
        return self.feed == Feed.PRIVATE

    @property
    def feed_label(self) -> str:
        return self.feed.label


def deliver(ids: list[int]) -> None:
    rows = outbox.claimed(ids)
    items = notification_items({row.message_id for row in rows})
    groups: dict[tuple, list[Notification]] = defaultdict(list)
    for row in outbox.cancel_read_in_portal(rows):
        key = (row.recipient_id, row.channel) if row.channel == Channel.EMAIL else (row.id,)
        groups[key].append(row)
    db.session.commit()
    sender = email.EmailSender()
    try:
        for group in groups.values():
            _deliver_group(group, items, sender)
    finally:
        sender.close()


def notification_items(message_ids: set[int]) -> dict[int, tuple[NotificationItem, Client]]:
    """What every channel says of these messages, by message id, with each one's client."""
    attachment_counts = (
        select(func.count(Attachment.id)).where(Attachment.message_id == Message.id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Message, Client, attachment_counts)
        .join(Client, Message.client_id == Client.id)
        .options(joinedload(Message.author))
        .where(Message.id.in_(message_ids))
    ).all()
    return {message.id: (_item(message, client, count), client) for message, client, count in rows}


def _item(message: Message, client: Client, attachments: int) -> NotificationItem:
    business = message.author.business
    show_text = message.feed == Feed.CONVERSATION or business.private_email_includes_text
    # Every channel shows these as plain text: the text messages and push notifications too,
    # not only the pages and emails that Jinja cleans, lose their direction controls.
    text = without_bidi_controls(message.text or "").strip()
    excerpt = None
    if show_text and text:
        excerpt = text if len(text) <= EXCERPT_LENGTH else text[:EXCERPT_LENGTH - 1] + "…"
    # Built without a request: the worker has none.
    path = current_app.url_map.bind("portal").build(
        "feeds.show", {"client_id": client.id, "feed_name": message.feed.value}
    )
    link = current_app.config["PORTAL_BASE_URL"].rstrip("/") + path
    local = message.created_at.astimezone(zone(business.time_zone))
    return NotificationItem(
        message.id, client.id, without_bidi_controls(client.name), message.feed,
        without_bidi_controls(message.author.name), without_bidi_controls(business.name),
        excerpt, bool(text) and not show_text, attachments, link,
        local.strftime("%b %-d at %-I:%M %p"),
    )


def _deliver_group(group: list[Notification], items, sender: email.EmailSender) -> None:
    recipient = group[0].recipient
    live = []
    for row in group:
        item, client = items.get(row.message_id, (None, None))
        if item is None or row.message.is_deleted or not policy.may_be_notified(
            recipient, client, row.message.feed
        ):
            # Deleted, or the person lost access since the message was written: not told.
            outbox.finish(row, DeliveryStatus.CANCELLED, "no longer to be told")
        else:
            live.append((row, item))
    if live:
        try:
            accepted = _send(group[0].channel, recipient, [item for _, item in live], sender)
        except TransientError as error:
            for row, _ in live:
                outbox.retry_later(row, str(error))
        except PermanentError as error:
            for row, _ in live:
                outbox.finish(row, DeliveryStatus.FAILED, str(error))
        else:
            for row, _ in live:
                outbox.finish(row, DeliveryStatus.SENT)
                if accepted:
                    row.provider_id, row.provider_status = accepted.provider_id, accepted.status
    db.session.commit()


def _send(channel: Channel, recipient, items: list[NotificationItem], sender):
    """Sends; a text message answers with what the SMS provider said (sms.Accepted)."""
    if channel == Channel.EMAIL:
        sender.send(email.compose(recipient, items, recipient.business))
    elif channel == Channel.SMS:
        return sms.provider().send(sms.SmsText.for_conversation(
            recipient.phone, items[0], without_bidi_controls(recipient.name)
        ))
    else:
        from portal.notifications import push

        push.send(recipient, items[0])
    return None


def run_once(app: Flask, worker_id: str, limit: int = 100) -> int:
    """One round in a fresh app context (policy caches live per context). Returns rows done."""
    with app.app_context():
        ids = outbox.claim(worker_id, limit)
        if ids:
            deliver(ids)
        account_ids = account_mail.claim(worker_id, limit)
        if account_ids:
            account_mail.deliver(account_ids)
        db.session.remove()
        return len(ids) + len(account_ids)


def work(app: Flask, stop: threading.Event, interval: float = 2.0) -> None:
    worker_id = f"worker-{secrets.token_hex(4)}"
    while not stop.is_set():
        try:
            done = run_once(app, worker_id)
        except Exception:
            log.exception("notification worker round failed")
            done = 0
        if not done:
            stop.wait(interval)


def start_in_process(app: Flask) -> threading.Event:
    """For `make run`: deliveries in a thread of the web process, so nothing else is needed."""
    stop = threading.Event()
    threading.Thread(target=work, args=(app, stop), name="notifications", daemon=True).start()
    return stop

