"""Delivering the outbox: claim due rows, check again who may still be told, send, record.

Several workers may run against PostgreSQL: rows are claimed with FOR UPDATE SKIP LOCKED in
one UPDATE ... RETURNING, so each row goes to one worker. (SQLite ignores the lock clause;
its single writer makes the same statement atomic.)
"""

import logging
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import aliased, joinedload

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
    ReadMarker,
    utcnow,
)
from portal.notifications import email, sms
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.outbox import READ_IN_PORTAL
from portal.text import without_bidi_controls, zone

log = logging.getLogger(__name__)
# A claim older than this belongs to a worker that died: its rows are put back.
STALE_CLAIM = timedelta(minutes=10)
# Emails to one person wait while more messages keep coming, but never longer than this.
MAX_BATCH_WAIT = timedelta(minutes=5)
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


def claim(worker_id: str, limit: int = 100) -> list[int]:
    now = utcnow()
    newer = aliased(Notification)
    still_coming = exists().where(
        newer.recipient_id == Notification.recipient_id,
        newer.channel == Channel.EMAIL,
        newer.status == DeliveryStatus.PENDING,
        newer.due_at > now,
    )
    # Emails wait for the person's other messages still in their undo window (one email for
    # them all), but never longer than MAX_BATCH_WAIT: a busy feed must not hold one back.
    ready = or_(
        Notification.channel != Channel.EMAIL, ~still_coming,
        Notification.created_at < now - MAX_BATCH_WAIT,
    )
    return claim_rows(Notification, worker_id, now, limit, ready)


def claim_rows(model, worker_id: str, now, limit: int, *conditions) -> list[int]:
    """Takes due rows of an outbox (notifications, account emails) for this worker: claims
    stale from a worker that died go back first; rows another worker is taking are skipped
    (FOR UPDATE SKIP LOCKED on PostgreSQL). Commits; returns the ids, in order."""
    db.session.execute(
        update(model)
        .where(model.status == DeliveryStatus.SENDING, model.claimed_at < now - STALE_CLAIM)
        .values(status=DeliveryStatus.PENDING, claimed_by=None),
        execution_options={"synchronize_session": False},
    )
    due = (
        select(model.id)
        .where(model.status == DeliveryStatus.PENDING, model.due_at <= now, *conditions)
        .order_by(model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = db.session.scalars(
        update(model)
        .where(model.id.in_(due), model.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SENDING, claimed_by=worker_id, claimed_at=now)
        .returning(model.id),
        execution_options={"synchronize_session": False},
    ).all()
    db.session.commit()
    return sorted(ids)


def deliver(ids: list[int]) -> None:
    rows = list(db.session.scalars(
        select(Notification)
        .where(Notification.id.in_(ids))
        .options(joinedload(Notification.recipient), joinedload(Notification.message))
        .order_by(Notification.id)
    ))
    items = notification_items({row.message_id for row in rows})
    read = _read_in_portal(rows)
    groups: dict[tuple, list[Notification]] = defaultdict(list)
    for row in rows:
        if row.id in read:
            finish(row, DeliveryStatus.CANCELLED, READ_IN_PORTAL)
            continue
        key = (row.recipient_id, row.channel) if row.channel == Channel.EMAIL else (row.id,)
        groups[key].append(row)
    db.session.commit()
    sender = email.EmailSender()
    try:
        for group in groups.values():
            _deliver_group(group, items, sender)
    finally:
        sender.close()


def _read_in_portal(rows: list[Notification]) -> set[int]:
    """The notifications whose message the recipient has already been shown in the portal
    (their read marker has passed it): telling them again would only be noise. One query."""
    if not rows:
        return set()
    markers = {
        (user_id, client_id, feed): last_read_id
        for user_id, client_id, feed, last_read_id in db.session.execute(
            select(ReadMarker.user_id, ReadMarker.client_id, ReadMarker.feed,
                   ReadMarker.last_read_id)
            .where(ReadMarker.user_id.in_({row.recipient_id for row in rows}),
                   ReadMarker.client_id.in_({row.message.client_id for row in rows}))
        )
    }
    return {
        row.id for row in rows
        if markers.get((row.recipient_id, row.message.client_id, row.message.feed), 0)
        >= row.message_id
    }


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
            finish(row, DeliveryStatus.CANCELLED, "no longer to be told")
        else:
            live.append((row, item))
    if live:
        try:
            accepted = _send(group[0].channel, recipient, [item for _, item in live], sender)
        except TransientError as error:
            for row, _ in live:
                retry_later(row, str(error))
        except PermanentError as error:
            for row, _ in live:
                finish(row, DeliveryStatus.FAILED, str(error))
        else:
            for row, _ in live:
                finish(row, DeliveryStatus.SENT)
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


# Twilio's statuses of a text, in the order they come: a late report never moves one back.
SMS_STATUS_ORDER = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4,
                    "undelivered": 4, "failed": 4}
SMS_NOT_DELIVERED = ("undelivered", "failed")


def record_provider_status(provider_id: str, reported: str, error_code: str | None) -> None:
    """What the SMS provider reported of a text: shown in its delivery line; a text that did
    not reach the phone counts as failed, so the admin team sees it with a Retry. Commits."""
    reported = reported.strip().lower()[:20]
    row = db.session.scalar(select(Notification).where(
        Notification.provider_id == provider_id[:64], Notification.channel == Channel.SMS
    ))
    if row is None or reported not in SMS_STATUS_ORDER:
        return
    if SMS_STATUS_ORDER[reported] < SMS_STATUS_ORDER.get(row.provider_status, -1):
        return
    row.provider_status = reported
    if reported in SMS_NOT_DELIVERED and row.status == DeliveryStatus.SENT:
        code = f" (error {error_code[:10]})" if error_code else ""
        finish(row, DeliveryStatus.FAILED, f"the phone company reported the text {reported}{code}")
    db.session.commit()


def finish(row, status: DeliveryStatus, error: str | None = None) -> None:
    """Settles an outbox row: a notification or an account email (the same columns)."""
    row.status = status
    row.last_error = error[:500] if error else None
    if status == DeliveryStatus.SENT:
        row.sent_at = utcnow()
        row.attempts += 1


def retry_later(row, error: str) -> None:
    row.attempts += 1
    if row.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
        finish(row, DeliveryStatus.FAILED, error)
        return
    delay = current_app.config["NOTIFICATION_RETRY_SECONDS"] * 2 ** (row.attempts - 1)
    row.status = DeliveryStatus.PENDING
    row.due_at = utcnow() + timedelta(seconds=min(delay, 3600))
    row.last_error = error[:500]


def failed(business_id: int, limit: int) -> list[Notification]:
    """The business's notifications that could not be delivered, newest first."""
    return failed_rows(Notification, Notification.recipient, business_id, limit)


def failed_rows(model, person, business_id: int, limit: int) -> list:
    """Failed rows of an outbox (notifications or account emails) of one business, newest
    first, each with the person it was for (the `person` relationship)."""
    return list(db.session.scalars(
        select(model)
        .where(model.business_id == business_id, model.status == DeliveryStatus.FAILED)
        .options(joinedload(person))
        .order_by(model.id.desc())
        .limit(limit)
    ))


def retry_failed(notification_ids: list[int], business_id: int) -> int:
    return retry_failed_rows(Notification, notification_ids, business_id)


def retry_failed_of(message: Message) -> int:
    """Retry under one message: its failed notifications go back to the outbox now."""
    ids = list(db.session.scalars(select(Notification.id).where(
        Notification.message_id == message.id, Notification.status == DeliveryStatus.FAILED
    )))
    return retry_failed(ids, message.business_id)


def retry_failed_rows(model, ids: list[int], business_id: int) -> int:
    """An admin's "Retry": failed rows (notifications or account emails) of their business
    go back to the outbox now. Commits; returns how many did."""
    result = db.session.execute(
        update(model)
        .where(model.id.in_(ids), model.business_id == business_id,
               model.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.PENDING, due_at=utcnow(), attempts=0, last_error=None,
                **({"provider_status": None} if model is Notification else {})),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    return result.rowcount


def run_once(app: Flask, worker_id: str, limit: int = 100) -> int:
    """One round in a fresh app context (policy caches live per context). Returns rows done."""
    from portal.notifications import account_mail  # it settles rows with finish/retry_later

    with app.app_context():
        ids = claim(worker_id, limit)
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

