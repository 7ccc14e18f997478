"""Unmatched replies: what came in and could not be posted where its reply address said, kept
(with the raw email or text) for the admin team to file into a feed or discard.

Ingest (emails and texts) adds to the queue with `record_unmatched`; the settings page lists it
and calls `file_reply` or `discard`. The rows are InboundMessage with outcome UNMATCHED.
"""

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import policy
from portal.extensions import db
from portal.inbound.mail import ParsedEmail, parse
from portal.models import (
    Business,
    Client,
    Feed,
    InboundChannel,
    InboundMessage,
    InboundOutcome,
    Message,
    User,
    utcnow,
)
from portal.reply_addresses import ReplyToken
from portal.services import audit, messages
from portal.services.uploads import PreparedFile, UploadError
from portal.storage import StorageUnavailable, forget, storage

# A staff member whose messages need approval: what they email or text waits in this queue, and
# filing it into the feed is the approval (it is posted as theirs).
NEEDS_APPROVAL = "{}'s messages need approval before clients see them: file it to approve it."


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
    if row.business_id is None:
        row.business_id = sole_business_id()
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


def sole_business_id() -> int | None:
    """The business the portal serves, when it serves one: what names no business is theirs
    (the reply domain and the texting number are the portal's), so its admin team sees it."""
    only = db.session.scalars(select(Business.id).limit(2)).all()
    return only[0] if len(only) == 1 else None


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
    forget(key)


# --- the admin team's review ---------------------------------------------------------------------

class AlreadyResolved(Exception):
    """Someone filed or discarded the reply meanwhile: nothing was changed."""


class NothingToFile(Exception):
    """No text and no file the upload path takes: it can only be discarded."""


@dataclass(frozen=True)
class QueuePage:
    replies: list[InboundMessage]
    next_before: int | None  # the keyset of the next (older) page, or None at the end


def pending(viewer: User, *, before: int | None = None, limit: int = 25) -> QueuePage:
    """The replies waiting for the viewer, newest first: one query whatever the page holds."""
    query = (select(InboundMessage).where(*_waiting_for(viewer))
             .options(selectinload(InboundMessage.recipient)))
    if before is not None:
        query = query.where(InboundMessage.id < before)
    rows = list(db.session.scalars(query.order_by(InboundMessage.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return QueuePage(rows, rows[-1].id if more else None)


def pending_count(viewer: User) -> int:
    return db.session.scalar(
        select(func.count()).select_from(InboundMessage).where(*_waiting_for(viewer))
    )


def pending_reply(viewer: User, reply_id: int) -> InboundMessage | None:
    """One reply still waiting, if the viewer may see it."""
    return db.session.scalar(
        select(InboundMessage).where(InboundMessage.id == reply_id, *_waiting_for(viewer))
    )


def _waiting_for(viewer: User) -> list:
    return [
        InboundMessage.outcome == InboundOutcome.UNMATCHED,
        policy.unmatched_replies_clause(viewer, InboundMessage.business_id, InboundMessage.feed,
                                       InboundMessage.unreadable),
    ]


def file_reply(actor: User, reply: InboundMessage, client: Client, feed: Feed) -> Message:
    """Posts a queued reply into the feed the admin team chose, with its files read again
    from the raw email (or text) through the upload path. Its author is the sender's login
    when that login may post there; otherwise the person filing it, the text opening with a
    line naming the sender. Files the upload path refuses are left out, and the text says so.
    Raises AlreadyResolved when someone else filed or discarded it first."""
    raw_key = _resolve(reply, actor, InboundOutcome.FILED)
    parsed = _read_raw(reply, raw_key)
    files, refused = _prepared_files(parsed)
    # The words as the ingest read them (a text is never quote-stripped as an email would
    # be); an email queued because of a fault of ours has none yet, so its raw is read.
    written = reply.text if reply.text is not None else (parsed.text if parsed else "")
    if not written and not files and not refused:
        db.session.rollback()
        raise NothingToFile()
    sender = reply.sender_user
    author = sender if sender is not None and policy.can_post(sender, client, feed) else actor
    text = _filed_text(reply, written, author is actor, refused)
    reply.client_id, reply.feed = client.id, feed
    audit.record(client.business_id, actor, "reply.filed", "inbound_message", reply.id,
                 client_id=client.id, feed=feed.value, sender=reply.sender,
                 channel=reply.channel.value)
    message = messages.post_message(author, client, feed, text, files,
                                     send_key=reply.dedupe_key, via=reply.channel.value,
                                     origin=reply)
    if raw_key:
        delete_raw(raw_key)
    return message


def discard(actor: User, reply: InboundMessage) -> None:
    """Takes a queued reply off the queue for good, its raw bytes with it. Raises
    AlreadyResolved when someone else filed or discarded it first."""
    raw_key = _resolve(reply, actor, InboundOutcome.DISCARDED)
    audit.record(actor.business_id, actor, "reply.discarded", "inbound_message", reply.id,
                 client_id=reply.client_id, feed=reply.feed.value if reply.feed else None,
                 sender=reply.sender, channel=reply.channel.value)
    db.session.commit()
    if raw_key:
        delete_raw(raw_key)


def _resolve(reply: InboundMessage, actor: User, outcome: InboundOutcome) -> str | None:
    """Claims the reply for this outcome in the caller's transaction (two people filing it at
    once: the second finds it taken); returns the raw's key, to delete after the commit."""
    claimed = db.session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == reply.id, InboundMessage.outcome == InboundOutcome.UNMATCHED)
        .values(outcome=outcome),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise AlreadyResolved()
    raw_key = reply.raw_key
    reply.outcome, reply.raw_key = outcome, None
    reply.resolved_by_id, reply.resolved_at = actor.id, utcnow()
    return raw_key


def _read_raw(reply: InboundMessage, raw_key: str | None) -> ParsedEmail | None:
    """The raw email (or text) as the ingest read it; None when it is gone or unreadable,
    then the text kept on the row is filed alone."""
    if not raw_key:
        return None
    try:
        return parse(storage().read(raw_key), current_app.config["INBOUND_AUTHSERV_ID"])
    except StorageUnavailable:
        raise  # filed later, with its files, once the store answers (the request fails: 503)
    except (OSError, ValueError, LookupError):  # MalformedEmail is a ValueError
        current_app.logger.exception("Could not read the raw reply %s", reply.id)
        return None


def _prepared_files(parsed: ParsedEmail | None) -> tuple[list[PreparedFile], list[str]]:
    """The files the upload path takes, and a line for each it refuses."""
    limits = messages.UploadLimits.from_config(current_app.config)
    files, refused = [], []
    for upload in parsed.uploads if parsed else ():
        if len(files) >= limits.max_files:
            refused.append(f"{upload.filename}: at most {limits.max_files} files per message")
            continue
        try:
            files.append(messages.prepare_uploads([upload], limits)[0])
        except UploadError as error:
            refused.append(f"{upload.filename}: {error}")
    return files, refused


def _filed_text(reply: InboundMessage, text: str, on_behalf: bool, refused: list[str]) -> str:
    limit = current_app.config["MESSAGE_MAX_LENGTH"]
    lines = []
    if on_behalf:
        who = f"{reply.sender_name} <{reply.sender}>" if reply.sender_name else reply.sender
        how = "text" if reply.channel == InboundChannel.SMS else "email"
        lines.append(f"Reply by {how} from {who or 'an unknown sender'}:")
    lines.extend(f"Not attached: {line}" for line in refused)
    opening = "\n".join(lines)
    room = limit - len(opening) - 2
    if len(text) > room:
        text = text[:max(room - 1, 0)] + "…"
    return f"{opening}\n\n{text}".strip() if opening else text
