"""The outbox: a notification row's whole life, from the message's transaction to sent,
cancelled or failed. Account emails (account_mail) keep their rows through it the same way.

Rows are written and cancelled inside the caller's transaction. Several workers may claim
them on PostgreSQL: rows are claimed with FOR UPDATE SKIP LOCKED in one UPDATE ... RETURNING,
so each row goes to one worker. (SQLite ignores the lock clause; its single writer makes the
same statement atomic.)
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import aliased, joinedload

from portal import policy
from portal.extensions import db
from portal.hours import quiet_end
from portal.models import (
    Business,
    Channel,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    Notification,
    PushSubscription,
    ReadMarker,
    User,
    VisitReport,
    utcnow,
)

# --- who is told, and how ----------------------------------------------------------------------

def wants(user: User, channel: Channel, business: Business | None = None) -> bool:
    """`user` may be a row of the person's columns, given their `business`."""
    choice = getattr(user, f"notify_{channel.value}")
    if choice is None:
        choice = getattr(business or user.business, f"notify_{channel.value}_default")
    return bool(choice)


def channels_for(user: User, feed: Feed, has_device: bool,
                 business: Business | None = None) -> list[Channel]:
    """Email to everyone who wants it, unless their address bounced; text messages only for
    Conversation messages, to people with a phone number they confirmed (with a code texted to
    it) who opted in and have not replied STOP since; push only to devices the person
    enabled."""
    channels = []
    if (user.email and wants(user, Channel.EMAIL, business)
            and not unreachable(user, Channel.EMAIL)):
        channels.append(Channel.EMAIL)
    if (feed == Feed.CONVERSATION and wants(user, Channel.SMS, business)
            and not unreachable(user, Channel.SMS)):
        channels.append(Channel.SMS)
    if has_device and wants(user, Channel.PUSH, business):
        channels.append(Channel.PUSH)
    return channels


# Why nothing goes by a channel to a person who cannot take it there.
UNREACHABLE = {Channel.EMAIL: "the email address bounces", Channel.SMS: "the phone opted out"}
NO_CONFIRMED_PHONE = "no confirmed phone number"
# Every reason a notification was not sent that the admin team is told of.
UNREACHABLE_REASONS = (*UNREACHABLE.values(), NO_CONFIRMED_PHONE)


def unreachable(user: User, channel: Channel) -> str | None:
    """Why nothing goes to the person by this channel now: their email address bounced, they
    have no phone number they confirmed (removed or changed since, say), or their phone opted
    out (STOP). Asked when a message is written and again when it is sent."""
    if channel == Channel.EMAIL and user.email_bounced_at is not None:
        return UNREACHABLE[channel]
    if channel == Channel.SMS and not (user.phone and user.phone_confirmed_at is not None):
        return NO_CONFIRMED_PHONE
    if channel == Channel.SMS and user.sms_opted_out_at is not None:
        return UNREACHABLE[channel]
    return None


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    name: str
    channels: tuple[Channel, ...]
    # Their quiet hours ("22:00", "07:00") and zone: see held_until.
    quiet: tuple[str | None, str | None, str] = (None, None, "UTC")


@dataclass(frozen=True, slots=True)
class Audience:
    # Who is told of a new message, and how.
    told: list[Recipient]
    # The staff who see the feed, by name: the composer's audience line.
    staff: list[policy.StaffMember]


# What channels_for reads of each person told, whether they enabled a device, and their
# quiet hours.
_TOLD_COLUMNS = (
    User.email, User.notify_email, User.notify_sms, User.notify_push, User.email_bounced_at,
    User.phone, User.phone_confirmed_at, User.sms_opted_out_at,
    exists().where(PushSubscription.user_id == User.id).label("has_device"),
    User.quiet_from, User.quiet_until, User.time_zone,
)


def audience(author: User, client: Client, feed: Feed, automatic: bool = False) -> Audience:
    """Who is told of a message in this feed, and how; and who else sees it. One query, read
    before the message is written, so that the write transaction (one writer at a time on
    SQLite) holds only the writes. `automatic`: an automatic reply, told to fewer."""
    found = policy.post_audience(author, client, feed, _TOLD_COLUMNS)
    if automatic:
        found = policy.automatic_reply_audience(found)
    told = (
        Recipient(row.id, row.name, tuple(channels_for(row, feed, row.has_device,
                                                       author.business)),
                  (row.quiet_from, row.quiet_until, row.time_zone))
        for row in found.told
    )
    return Audience([recipient for recipient in told if recipient.channels], found.staff)


def with_report_author(told: list[Recipient], author: User, client: Client, feed: Feed,
                       reply_to_id: int) -> list[Recipient]:
    """An answer to a visit report tells its staff member too while the report's thread is
    open to them (policy.report_thread_open), when the feed's own audience no longer does.
    Two small reads, only for an answer to a report."""
    report = db.session.scalar(select(VisitReport).where(
        VisitReport.message_id == reply_to_id, VisitReport.client_id == client.id))
    if (report is None or feed != Feed.CONVERSATION or report.author_id == author.id
            or any(recipient.user_id == report.author_id for recipient in told)):
        return told
    writer = db.session.get(User, report.author_id)
    if writer is None or not policy.report_thread_open(writer, client, writer.id,
                                                        report.service):
        return told
    row = db.session.execute(select(*_TOLD_COLUMNS).where(User.id == writer.id)).one()
    channels = tuple(channels_for(row, feed, row.has_device, author.business))
    if not channels:
        return told
    return [*told, Recipient(writer.id, writer.name, channels,
                             (row.quiet_from, row.quiet_until, row.time_zone))]


def recipients(author: User, client: Client, feed: Feed) -> list[Recipient]:
    """Who is told of a message in this feed, and how."""
    return audience(author, client, feed).told


# --- writing and cancelling, inside the caller's transaction ----------------------------------

def undo_window() -> timedelta:
    """How long notifications wait after a message is posted, so that it can be unsent."""
    return timedelta(seconds=current_app.config["NOTIFICATION_DELAY_SECONDS"])


def due_at(message: Message):
    """When the message's notifications go: once its undo window has passed."""
    return message.created_at + undo_window()


def enqueue(message: Message, recipients: list[Recipient]) -> None:
    """Writes the message's notification rows in the caller's transaction: they commit with
    the message. One INSERT for them all; nothing reads them back as objects. A recipient's
    quiet hours hold theirs until they end, for one summary."""
    due = due_at(message)
    rows = []
    for recipient in recipients:
        held_until = quiet_end(*recipient.quiet, due)
        rows += [
            {"business_id": message.business_id, "message_id": message.id,
             "recipient_id": recipient.user_id, "channel": channel,
             "due_at": held_until or due, "summary": held_until is not None}
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


# --- claiming, by the worker -------------------------------------------------------------------

# A claim older than this belongs to a worker that died: its rows are put back
# (NOTIFICATION_STALE_CLAIM_SECONDS; longer than any round takes).
STALE_CLAIM = timedelta(minutes=10)
# The advisory lock claims take turns on (any number no other lock of the portal's uses).
CLAIM_TURN = 0x6F7574626F78  # "outbox"
# Emails to one person about one feed wait while more messages keep coming there, but never
# longer than this.
MAX_BATCH_WAIT = timedelta(minutes=5)


def claim(worker_id: str, limit: int = 100) -> list[int]:
    now = utcnow()
    # Emails wait for the person's other messages in the same feed still in their undo window
    # (one email for them all, with that feed's reply address), but never longer than
    # MAX_BATCH_WAIT: a busy feed must not hold one back.
    ready = or_(
        Notification.channel != Channel.EMAIL, Notification.id.not_in(_held_back(now)),
        Notification.created_at < now - MAX_BATCH_WAIT,
    )
    ids = claim_rows(Notification, worker_id, now, limit, ready, Notification.summary.is_(False))
    return sorted(ids + _claim_summaries(worker_id, now, limit))


def _held_back(now):
    """The pending emails that wait for another of their person's about the same feed, still
    in its undo window. Not correlated with the row claimed: the database reads it once per
    claim (a hashed subplan), where a lookup per candidate row took seconds with a backlog of
    thousands in busy feeds. The feeds still coming are few, so the join stays small."""
    newer, newer_message = aliased(Notification), aliased(Message)
    other, other_message = aliased(Notification), aliased(Message)
    coming = (
        select(newer.recipient_id, newer_message.client_id, newer_message.feed)
        .join(newer_message, newer_message.id == newer.message_id)
        .where(newer.channel == Channel.EMAIL, newer.status == DeliveryStatus.PENDING,
               newer.due_at > now,
               newer.summary.is_(False))  # held for quiet hours: goes on its own, later
        .distinct().subquery()
    )
    return (
        select(other.id)
        .join(other_message, other_message.id == other.message_id)
        .join(coming, and_(coming.c.recipient_id == other.recipient_id,
                           coming.c.client_id == other_message.client_id,
                           coming.c.feed == other_message.feed))
        .where(other.channel == Channel.EMAIL, other.status == DeliveryStatus.PENDING)
    )


def _claim_summaries(worker_id: str, now, limit: int) -> list[int]:
    """What was held for quiet hours, claimed whole per person and channel (one summary
    each): never part of someone's rows here and the rest in another claim. Commits."""
    _take_turn()
    due = (Notification.summary.is_(True), Notification.status == DeliveryStatus.PENDING,
           Notification.due_at <= now)
    people = (select(Notification.recipient_id, Notification.channel).where(*due)
              .distinct().limit(limit))
    return _mark_claimed(Notification, worker_id, now, *due, tuple_(
        Notification.recipient_id, Notification.channel).in_(people))


def _mark_claimed(model, worker_id: str, now, *where) -> list[int]:
    """Marks the rows `where` picks as this worker's (sending); commits; returns their ids."""
    ids = db.session.scalars(
        update(model).where(*where)
        .values(status=DeliveryStatus.SENDING, claimed_by=worker_id, claimed_at=now)
        .returning(model.id),
        execution_options={"synchronize_session": False},
    ).all()
    db.session.commit()
    return sorted(ids)


def _take_turn() -> None:
    """Claims take turns on PostgreSQL (a lock held until the claim commits); SQLite writes
    one at a time anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(CLAIM_TURN)))


def claim_rows(model, worker_id: str, now, limit: int, *conditions) -> list[int]:
    """Takes due rows of an outbox (notifications, account emails) for this worker: claims
    stale from a worker that died go back first; rows another worker is taking are skipped
    (FOR UPDATE SKIP LOCKED on PostgreSQL). Commits; returns the ids, in order.

    Claims take turns on PostgreSQL (a lock held until this commit, a few milliseconds): two
    claims running at once would each take part of one person's due emails, and the person
    would get two emails where one was meant. SQLite writes one at a time anyway."""
    _take_turn()
    db.session.execute(
        update(model)
        .where(model.status == DeliveryStatus.SENDING, model.claimed_at < now - stale_claim())
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
    return _mark_claimed(model, worker_id, now, model.id.in_(due),
                         model.status == DeliveryStatus.PENDING)


def stale_claim() -> timedelta:
    return timedelta(seconds=current_app.config.get("NOTIFICATION_STALE_CLAIM_SECONDS",
                                                    STALE_CLAIM.total_seconds()))


class FreshClaims:
    """Keeps a round's claims fresh while it delivers (refresh() between deliveries): however
    slow the mail server, a live worker's rows never look stale, to be taken over and sent a
    second time; only a dead worker's do."""

    def __init__(self, model, ids: list[int]):
        self.model, self.ids = model, ids
        self.claimer = db.session.scalar(select(model.claimed_by).where(model.id == ids[0])) \
            if ids else None
        self.every = stale_claim().total_seconds() / 4
        self.refreshed = time.monotonic()

    def refresh(self) -> None:
        if time.monotonic() - self.refreshed < self.every:
            return
        db.session.execute(
            update(self.model).where(self.model.id.in_(self.ids),
                                     self.model.status == DeliveryStatus.SENDING,
                                     self.model.claimed_by == self.claimer)
            .values(claimed_at=utcnow()),
            execution_options={"synchronize_session": False})
        db.session.commit()
        self.refreshed = time.monotonic()


def release(worker_id: str, models) -> int:
    """Puts back what a stopping worker claimed and did not get to, for the next claim of any
    worker (rather than after the stale-claim time). Commits; returns how many."""
    released = 0
    for model in models:
        released += db.session.execute(
            update(model).where(model.status == DeliveryStatus.SENDING,
                                model.claimed_by == worker_id)
            .values(status=DeliveryStatus.PENDING, claimed_by=None),
            execution_options={"synchronize_session": False},
        ).rowcount
    db.session.commit()
    return released


def claimed(ids: list[int]) -> list[Notification]:
    """The claimed notifications, in order, each with its recipient and message."""
    return list(db.session.scalars(
        select(Notification)
        .where(Notification.id.in_(ids))
        .options(joinedload(Notification.recipient), joinedload(Notification.message))
        .order_by(Notification.id)
    ))


def cancel_read_in_portal(rows: list[Notification]) -> list[Notification]:
    """Cancels the notifications whose message the recipient has already been shown in the
    portal (telling them again would only be noise); returns the others."""
    read = _read_in_portal(rows)
    for row in rows:
        if row.id in read:
            finish(row, DeliveryStatus.CANCELLED, READ_IN_PORTAL)
    return [row for row in rows if row.id not in read]


def _read_in_portal(rows: list[Notification]) -> set[int]:
    """The notifications whose read marker has passed their message. One query."""
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


# --- settling a delivery ------------------------------------------------------------------------

def finish(row, status: DeliveryStatus, error: str | None = None) -> None:
    """Settles an outbox row: a notification or an account email (the same columns)."""
    row.status = status
    row.last_error = error[:500] if error else None
    if status == DeliveryStatus.SENT:
        row.sent_at = utcnow()
        row.attempts += 1


def retry_later(row, error: str) -> None:
    """Back to pending after a transient failure, later each time (exponential backoff, at most
    NOTIFICATION_RETRY_MAX_SECONDS); failed once NOTIFICATION_MAX_ATTEMPTS have been made."""
    row.attempts += 1
    if row.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
        finish(row, DeliveryStatus.FAILED, error)
        return
    delay = current_app.config["NOTIFICATION_RETRY_SECONDS"] * 2 ** (row.attempts - 1)
    row.status = DeliveryStatus.PENDING
    row.due_at = utcnow() + timedelta(
        seconds=min(delay, current_app.config["NOTIFICATION_RETRY_MAX_SECONDS"]))
    row.last_error = error[:500]


# Twilio's statuses of a text, in the order they come: a late report never moves one back.
SMS_STATUS_ORDER = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4,
                    "undelivered": 4, "failed": 4}
SMS_NOT_DELIVERED = ("undelivered", "failed")


def record_provider_status(provider_id: str, reported: str, error_code: str | None) -> None:
    """What the SMS provider reported of a text: shown in its delivery line; a text that did
    not reach the phone counts as failed, so the admin team sees it with a Retry. Commits."""
    reported = reported.strip().lower()[:20]
    if reported not in SMS_STATUS_ORDER:
        return
    # A quiet hours summary is one text for several rows: each of them hears it.
    for row in db.session.scalars(select(Notification).where(
        Notification.provider_id == provider_id[:64], Notification.channel == Channel.SMS
    )):
        if SMS_STATUS_ORDER[reported] < SMS_STATUS_ORDER.get(row.provider_status, -1):
            continue
        row.provider_status = reported
        if reported in SMS_NOT_DELIVERED and row.status == DeliveryStatus.SENT:
            code = f" (error {error_code[:10]})" if error_code else ""
            finish(row, DeliveryStatus.FAILED,
                   f"the phone company reported the text {reported}{code}")
    db.session.commit()


# --- the failed page: what could not be delivered, and its Retry ------------------------------

def failed(business_id: int, limit: int) -> list[Notification]:
    """The business's notifications that could not be delivered, newest first."""
    return failed_rows(Notification, Notification.recipient, business_id, limit)


def retrying(business_id: int, limit: int) -> list[Notification]:
    """The business's notifications that failed and wait to be tried again (the backoff), the
    next due first, each with its recipient."""
    return list(db.session.scalars(
        select(Notification)
        .where(Notification.business_id == business_id,
               Notification.status == DeliveryStatus.PENDING, Notification.attempts > 0)
        .options(joinedload(Notification.recipient))
        .order_by(Notification.due_at, Notification.id)
        .limit(limit)
    ))


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
