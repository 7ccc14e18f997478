"""Unmatched replies: what came in and could not be posted where its reply address said, kept
(with the raw email or text) for the admin team to file into a feed or discard.

Ingest (emails and texts) adds to the queue with `record_unmatched`; the settings page lists it
and calls `file_reply` or `discard`. The rows are InboundMessage with outcome UNMATCHED.
"""

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Business, Client, InboundChannel, InboundMessage, InboundOutcome, User
from portal.reply_addresses import ReplyToken
from portal.storage import storage


def find(dedupe_key: str) -> InboundMessage | None:
    """The record of an earlier delivery of the same email or text."""
    return db.session.scalar(select(InboundMessage).where(InboundMessage.dedupe_key == dedupe_key))


def record_unmatched(
    *, channel: InboundChannel, dedupe_key: str, reason: str, raw: bytes | None, sender: str,
    sender_name: str = "", subject: str = "", text: str | None = None, attachment_count: int = 0,
    business_id: int | None = None, token: ReplyToken | None = None,
    sender_user: User | None = None,
) -> InboundMessage:
    """Queues a reply for the admin team, its raw bytes in storage, and commits. A second
    delivery of the same thing (its dedupe key taken, even by a delivery racing this one)
    returns the first record and stores nothing."""
    row, _ = queue_reply(
        channel=channel, dedupe_key=dedupe_key, reason=reason, raw=raw, sender=sender,
        sender_name=sender_name, subject=subject, text=text, attachment_count=attachment_count,
        business_id=business_id, token=token, sender_user=sender_user,
    )
    return row


def queue_reply(*, dedupe_key: str, raw: bytes | None, token: ReplyToken | None,
                sender_user: User | None, reason: str, **fields) -> tuple[InboundMessage, bool]:
    """record_unmatched, also saying whether the row is new (False: an earlier delivery's)."""
    if earlier := find(dedupe_key):
        return earlier, False
    raw_key = storage().save(raw) if raw is not None else None
    row = InboundMessage(
        dedupe_key=dedupe_key, outcome=InboundOutcome.UNMATCHED, reason=reason[:300],
        raw_key=raw_key, sender_user_id=sender_user.id if sender_user else None,
        **_fitted(fields),
    )
    if token is not None:
        _name_what_still_exists(row, token)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if raw_key:
            delete_raw(raw_key)
        earlier = find(dedupe_key)
        if earlier is None:
            raise
        return earlier, False
    return row, True


def _fitted(fields: dict) -> dict:
    """What a sender wrote in the header fields, cut to the columns' lengths."""
    limits = {"sender": 320, "sender_name": 200, "subject": 300}
    return {name: value[:limits[name]] if name in limits and value else value
            for name, value in fields.items()}


def _name_what_still_exists(row: InboundMessage, token: ReplyToken) -> None:
    """What a genuine token names, as far as it exists in this business (a token signed for
    another database names rows that are not here)."""
    if row.business_id is None and db.session.get(Business, token.business_id) is not None:
        row.business_id = token.business_id
    client = db.session.get(Client, token.client_id)
    if client is None or client.business_id != row.business_id:
        return
    row.business_id, row.client_id, row.feed = client.business_id, client.id, token.feed
    recipient = db.session.get(User, token.recipient_id)
    if recipient is not None and recipient.business_id == client.business_id:
        row.recipient_id = recipient.id


def delete_raw(key: str) -> None:
    """Removes a queued reply's raw bytes; a failure leaves unreachable bytes, not an error."""
    try:
        storage().delete(key)
    except OSError:
        current_app.logger.exception("Could not remove the raw reply %s", key)
