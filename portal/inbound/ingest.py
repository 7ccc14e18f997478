"""The one way an email comes in: `ingest_email` takes the raw bytes and does everything.

An email to a reply address becomes a message in the feed its address names, written by the
person it was given to, when everything holds: the address is genuine, its client and person
are still here, the sender is that person (and the business's mail server did not find the
sender forged), they may still post there (asked now, not when the email went out), and what
they wrote and attached is what the composer would take. Anything else waits in Unmatched
replies, with the reason, for the admin team. Automatic replies and delivery failure reports
are recorded and never become messages; a hard bounce marks the address.

Replies count against the sender's posting limits (THROTTLE_MESSAGES_PER_USER and
THROTTLE_FILES_PER_USER) like messages from the composer: a flood of replies from one address
does not flood a feed, and what is over the limit is queued with that reason, not lost.

Every outcome is recorded once per delivery (InboundMessage.dedupe_key): the same email
delivered again, or two deliveries racing, give back the first outcome and change nothing.
"""

import hashlib
import logging
import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from portal import policy, throttle
from portal.extensions import db
from portal.inbound import queue
from portal.inbound.mail import Bounce, MalformedEmail, ParsedEmail, parse
from portal.models import (
    VIA_REPORT,
    Business,
    Channel,
    Client,
    Feed,
    InboundChannel,
    InboundMessage,
    InboundOutcome,
    Message,
    Notification,
    User,
)
from portal.reply_addresses import ReplyToken, is_reply_address, token_from_address
from portal.services import away, messages, reachability
from portal.services.accounts import normalize_email
from portal.services.uploads import UploadError

log = logging.getLogger(__name__)

NOT_OUR_ADDRESS = "The reply address is not one the portal gave out."
FORGED_SENDER = ("The business's mail server found the sender's address forged "
                 "(DKIM or SPF failed).")


@dataclass(frozen=True)
class Outcome:
    """What became of a delivery, for the receiver's SMTP answer and the command's output."""

    kind: InboundOutcome
    reason: str = ""
    message_id: int | None = None      # the feed message it became
    inbound_id: int | None = None      # its InboundMessage row
    duplicate: bool = False            # the same delivery was taken before
    business_id: int | None = None     # whose it is, when anything names a business

    @property
    def returned_to_sender(self) -> bool:
        """Nobody at any business will see it: unreadable, or queued for no business (a
        reply address the portal never gave out, from an address no login has). The way in
        hands it back, so the sender's own mail server tells them it was not delivered."""
        return self.kind == InboundOutcome.REFUSED or (
            self.kind == InboundOutcome.UNMATCHED and self.business_id is None)


class Unmatched(Exception):
    """Why a reply cannot be posted where its address says: it goes to the queue."""


@dataclass(frozen=True)
class Delivery:
    """One email as it arrived: its bytes, what they say, and the reply address it came to."""

    raw: bytes
    parsed: ParsedEmail
    address: str
    dedupe_key: str
    token: ReplyToken | None


def ingest_email(raw: bytes, recipient: str | None = None) -> Outcome:
    """Takes one delivery of an email to the portal (`recipient`: the envelope address it was
    delivered to, when the way in knows it). Commits; never raises for what a sender sent,
    only when the database cannot be reached (the sender's server should try again later)."""
    try:
        return _ingest(raw, recipient)
    except SQLAlchemyError:
        db.session.rollback()
        raise
    except Exception:
        # A fault of ours must not lose what the person sent: it waits for the admin team.
        log.exception("Could not take an email in; queued for review")
        db.session.rollback()
        return _queue_unreadable(raw, recipient)


def _queue_unreadable(raw: bytes, recipient: str | None) -> Outcome:
    """Queues an email the portal failed to read, with what its header lines still tell (read
    without the parser that failed): the reply address, so the row keeps its token's business,
    client and feed, and the sender's address. Marked unreadable: without a genuine token
    its feed is unknown, and it is treated as private."""
    if recipient and is_reply_address(recipient):
        address = recipient.strip().strip("<>").lower()
    else:
        address = _header_address(raw, _ADDRESSED_TO, is_reply_address)
    row, new = queue.queue_reply(
        channel=InboundChannel.EMAIL, dedupe_key=_dedupe_key(raw, None, address),
        reason="The portal could not read this email.", raw=raw,
        sender=_header_address(raw, (b"from",), lambda _: True),
        token=token_from_address(address) if address else None, sender_user=None,
        unreadable=True,
    )
    return _outcome(row, duplicate=not new)


_ADDRESSED_TO = (b"delivered-to", b"x-original-to", b"to", b"cc")
_ADDRESS = re.compile(rb"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _header_address(raw: bytes, names: tuple[bytes, ...], wanted) -> str:
    """The first address in these header fields (in the order named) that `wanted` takes,
    read from the bytes as they are: whatever else a field holds (raw UTF-8, bad encodings,
    broken folding) is passed over."""
    fields = _header_fields(raw)
    for name in names:
        for field_name, value in fields:
            if field_name != name:
                continue
            for found in _ADDRESS.findall(value):
                address = found.decode("ascii").strip(".").lower()
                if wanted(address):
                    return address
    return ""


def _header_fields(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The header block's fields as (lowercase name, unfolded value), up to the first blank line."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    fields: list[tuple[bytes, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + line.strip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower(), value.strip()))
    return fields


def _ingest(raw: bytes, recipient: str | None) -> Outcome:
    limit = current_app.config["INBOUND_MAX_BYTES"]
    if len(raw) > limit:
        return _refused(raw, recipient, f"The email is larger than {limit // (1024 * 1024)} MB.")
    try:
        parsed = parse(raw, current_app.config["INBOUND_AUTHSERV_ID"])
    except MalformedEmail as error:
        return _refused(raw, recipient, f"Not an email the portal can read: {error}")
    address = _reply_address(parsed, recipient)
    delivery = Delivery(raw, parsed, address, _dedupe_key(raw, parsed.message_id, address),
                        token_from_address(address) if address else None)
    if earlier := queue.find(delivery.dedupe_key):
        return _outcome(earlier, duplicate=True)
    if parsed.bounce is not None:
        return _bounce(delivery, parsed.bounce)
    if parsed.automatic:
        return _record(delivery, InboundOutcome.AUTOMATIC,
                       "An automatic reply (out of office or similar): not a message.")
    return _reply(delivery)


def _reply_address(parsed: ParsedEmail, recipient: str | None) -> str:
    if recipient and is_reply_address(recipient):
        return recipient.strip().strip("<>").lower()
    return next((address for address in parsed.addressed_to if is_reply_address(address)), "")


def _dedupe_key(raw: bytes, message_id: str | None, address: str) -> str:
    identity = message_id or hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(f"{identity}\n{address.lower()}".encode()).hexdigest()


# --- what is never a message -------------------------------------------------------------------

def _refused(raw: bytes, recipient: str | None, reason: str) -> Outcome:
    """Not readable at all: recorded with the reason, nothing of it stored."""
    key = _dedupe_key(raw, None, (recipient or "").lower())
    if earlier := queue.find(key):
        return _outcome(earlier, duplicate=True)
    log.warning("Refused an email: %s", reason)
    return _commit(InboundMessage(
        channel=InboundChannel.EMAIL, dedupe_key=key, outcome=InboundOutcome.REFUSED,
        reason=reason[:300],
    ))


def _bounce(delivery: Delivery, bounce: Bounce) -> Outcome:
    """A delivery failure report comes to the reply address of the email that failed: its
    token names the person, whose address is marked when the report says it failed for good."""
    if not bounce.permanent:
        return _record(delivery, InboundOutcome.AUTOMATIC,
                       "A report that an email is delayed: nothing to do yet.")
    person = _token_recipient(delivery.token)
    failed = {address.lower() for address in bounce.recipients}
    if person is None or person.email.lower() not in failed:
        return _record(delivery, InboundOutcome.BOUNCE,
                       "A delivery failure report for no address the portal sent to.")
    reachability.mark_email_bounced(person, bounce.diagnostic,
                                     _provider_id(bounce.original_message_id))
    return _record(delivery, InboundOutcome.BOUNCE,
                   f"Emails to {person.email} bounce: {bounce.diagnostic or bounce.status}")


def _provider_id(message_id: str | None) -> str | None:
    """The id part of an outgoing email's Message-ID, as its notification rows keep it."""
    local = (message_id or "").strip().strip("<>").partition("@")[0]
    return local or None


def _token_recipient(token: ReplyToken | None) -> User | None:
    if token is None:
        return None
    person = db.session.get(User, token.recipient_id)
    return person if person is not None and person.business_id == token.business_id else None


def _record(delivery: Delivery, kind: InboundOutcome, reason: str) -> Outcome:
    """An outcome that is not a message, committed with whatever was changed before it."""
    parsed, token = delivery.parsed, delivery.token
    business = db.session.get(Business, token.business_id) if token else None
    return _commit(InboundMessage(
        channel=InboundChannel.EMAIL, dedupe_key=delivery.dedupe_key, outcome=kind,
        reason=reason[:300], sender=parsed.sender[:320], sender_name=parsed.sender_name[:200],
        subject=parsed.subject[:300], business_id=business.id if business else None,
    ))


def _commit(row: InboundMessage) -> Outcome:
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        # The same delivery, taken meanwhile by another connection.
        db.session.rollback()
        if earlier := queue.find(row.dedupe_key):
            return _outcome(earlier, duplicate=True)
        raise
    return _outcome(row)


def _outcome(row: InboundMessage, duplicate: bool = False) -> Outcome:
    return Outcome(row.outcome, row.reason or "", row.message_id, row.id, duplicate,
                   row.business_id)


# --- a reply ------------------------------------------------------------------------------------

def _reply(delivery: Delivery) -> Outcome:
    parsed = delivery.parsed
    try:
        client, author = _destination(delivery)
        files = _checked_content(parsed, author)
    except Unmatched as unmatched:
        return _queue(delivery, str(unmatched))
    token = delivery.token
    row = InboundMessage(
        channel=InboundChannel.EMAIL, dedupe_key=delivery.dedupe_key,
        outcome=InboundOutcome.POSTED, sender=parsed.sender[:320],
        sender_name=parsed.sender_name[:200], subject=parsed.subject[:300],
        text=parsed.text, attachment_count=len(files), business_id=client.business_id,
        client_id=client.id, feed=token.feed, recipient_id=author.id, sender_user_id=author.id,
    )
    try:
        message = messages.post_message(author, client, token.feed, parsed.text, files,
                                        send_key=delivery.dedupe_key, via="email", origin=row,
                                        reply_to_id=_report_answered(parsed, client,
                                                                     token.feed, author))
    except messages.AlreadySent as already:
        earlier = queue.find(delivery.dedupe_key)
        if earlier is not None:
            return _outcome(earlier, duplicate=True)
        return Outcome(InboundOutcome.POSTED, "", already.message.id, None, True)
    except IntegrityError:
        earlier = queue.find(delivery.dedupe_key)
        if earlier is None:
            raise
        return _outcome(earlier, duplicate=True)
    log.info("Reply posted as message %s", message.id)
    away.reply_if_closed(message, author, client)
    return _outcome(row)


# Our notification emails' Message-ID: <provider id@domain> (notifications/email.py).
_OUR_MESSAGE_ID = re.compile(r"<([0-9a-f]{24})@[^<>\s]+>")


def _report_answered(parsed, client: Client, feed: Feed, author: User) -> int | None:
    """The visit report an emailed reply answers: the (latest) report of this feed in the
    notification email it replies to (In-Reply-To), one that was sent to its author."""
    found = _OUR_MESSAGE_ID.search(parsed.headers.get("In-Reply-To", ""))
    if found is None:
        return None
    return db.session.scalar(
        select(Message.id).join(Notification, Notification.message_id == Message.id)
        .where(Notification.provider_id == found.group(1),
               Notification.recipient_id == author.id, Notification.channel == Channel.EMAIL,
               Message.client_id == client.id, Message.feed == feed,
               Message.via == VIA_REPORT, Message.deleted_at.is_(None))
        .order_by(Message.id.desc()).limit(1))


def _destination(delivery: Delivery) -> tuple[Client, User]:
    """The client and the author of the message a reply becomes; raises Unmatched."""
    token, parsed = delivery.token, delivery.parsed
    if token is None:
        raise Unmatched(NOT_OUR_ADDRESS)
    client = db.session.get(Client, token.client_id)
    business = db.session.get(Business, token.business_id)
    if business is None or client is None or client.business_id != business.id:
        raise Unmatched("The reply address names a client who is no longer in the portal.")
    person = _token_recipient(token)
    if person is None or not person.active:
        raise Unmatched("The reply address was given to a person who no longer has a login.")
    if parsed.sender != person.email.lower():
        raise Unmatched(f"Sent from {parsed.sender or 'no address'}, not from {person.email}, "
                        "to whom this reply address was given.")
    if parsed.authentication == "fail":
        raise Unmatched(FORGED_SENDER)
    if token.feed == Feed.PRIVATE and not business.private_messaging_enabled:
        raise Unmatched("A reply to a private message, and Private Messaging is turned off.")
    if not policy.can_post(person, client, token.feed):
        raise Unmatched(f"{person.name} can no longer write in this feed.")
    if policy.needs_approval(person):
        raise Unmatched(queue.NEEDS_APPROVAL.format(person.name))
    return client, person


def _checked_content(parsed: ParsedEmail, author: User) -> list:
    """The files as the composer would store them; raises Unmatched for what it would refuse."""
    if not parsed.text and not parsed.uploads:
        raise Unmatched("Nothing was written and nothing attached.")
    limit = current_app.config["MESSAGE_MAX_LENGTH"]
    if len(parsed.text) > limit:
        raise Unmatched(f"Longer than the {limit:,} characters a message may have.")
    try:
        files = messages.prepare_uploads(
            list(parsed.uploads), messages.UploadLimits.from_config(current_app.config)
        )
    except UploadError as error:
        raise Unmatched(f"An attachment was refused: {error}") from error
    if refusal := throttle.message_refusal(author, len(files)):
        raise Unmatched(f"Too many replies from this address in a short time ({refusal.reason})")
    return files


def _login_with_address(address: str) -> User | None:
    """Logins keep their address normalised (accounts.normalize_email), so the unique index
    finds it; lower() on the column would read every user for every email that comes in."""
    if not address:
        return None
    return db.session.scalar(select(User).where(User.email == normalize_email(address)))


def _verified_sender(delivery: Delivery) -> User | None:
    """The login that sent the email, when that is known for sure: the person a genuine reply
    address was given to, writing from their login's address, and the business's mail server
    did not find it forged. A From line alone is what anyone can write."""
    person = _token_recipient(delivery.token)
    parsed = delivery.parsed
    if person is None or parsed.sender != person.email.lower():
        return None
    return None if parsed.authentication == "fail" else person


def _queue(delivery: Delivery, reason: str) -> Outcome:
    parsed, token = delivery.parsed, delivery.token
    if parsed.authentication == "fail" and FORGED_SENDER not in reason:
        reason = f"{FORGED_SENDER} {reason}"
    log.info("Reply queued for review: %s", reason)
    # Without a reply address of ours, the login with the From address says whose admin team
    # reviews it; it does not make that login the sender.
    from_login = None if token else _login_with_address(parsed.sender)
    row, new = queue.queue_reply(
        channel=InboundChannel.EMAIL, dedupe_key=delivery.dedupe_key, reason=reason,
        raw=delivery.raw, sender=parsed.sender, sender_name=parsed.sender_name,
        subject=parsed.subject, text=parsed.text or None,
        attachment_count=len(parsed.uploads), token=token,
        business_id=from_login.business_id if from_login else None,
        sender_user=_verified_sender(delivery),
    )
    return _outcome(row, duplicate=not new)
