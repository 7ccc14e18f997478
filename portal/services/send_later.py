"""Send later: messages written now and posted at their time.

A scheduled message is an outbox row (models.ScheduledMessage): due at its time, claimed by one
worker (outbox.claim_rows, FOR UPDATE SKIP LOCKED on PostgreSQL) and posted through
messages.post_message, the one sending path, as a message written then: it takes its place in
the feed's order then, and whoever may see the feed then is told. The row is marked sent in the
transaction that posts the message, so a worker dying midway leaves it claimed, and a stale claim
goes back to the outbox: posted once, never lost.
"""

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import policy
from portal.clock import NonexistentLocalTime, day_and_time, to_utc, zone
from portal.extensions import db
from portal.models import (
    AccountEmail,
    AccountEmailKind,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    ScheduledMessage,
    User,
    utcnow,
)
from portal.notifications.outbox import claim_rows, finish
from portal.services import audit, messages

log = logging.getLogger(__name__)

# A message is scheduled at most this far ahead.
MAX_AHEAD = timedelta(days=366)
# Posted this long after its time (the worker was down, say), a message says it was late.
LATE_AFTER = timedelta(minutes=2)
# What the datetime-local input sends.
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
# Shown beside its time: scheduled, or scheduled and posted late (Message.via).
VIA_SCHEDULED, VIA_LATE = "scheduled", "late"


class ScheduleRefused(ValueError):
    """The time cannot be used: why, in words for the person who chose it. Nothing changed."""


class AlreadyGone(Exception):
    """The scheduled message was sent, or cancelled, before this change reached it."""


# --- choosing a time ----------------------------------------------------------------------------

def send_time(value: str | None, time_zone: str, now: datetime | None = None) -> datetime:
    """The UTC moment of a date and time typed in the business's zone (a datetime-local
    value). Refuses a malformed value, a time that has passed, one more than a year ahead and
    one the clocks skip in that zone."""
    try:
        local = datetime.strptime((value or "").strip(), INPUT_FORMAT)
    except ValueError:
        raise ScheduleRefused("Choose the date and time to send it.") from None
    try:
        moment = to_utc(local.date(), local.time(), time_zone)
    except NonexistentLocalTime as error:
        raise ScheduleRefused(str(error)) from None
    return checked_time(moment, time_zone, now)


def checked_time(moment: datetime, time_zone: str, now: datetime | None = None) -> datetime:
    """The moment, when it is still to come and at most a year ahead; else ScheduleRefused."""
    now = now or utcnow()
    if moment <= now:
        raise ScheduleRefused(
            f"{day_and_time(moment, time_zone)} has passed: choose a time still to come.")
    if moment > now + MAX_AHEAD:
        raise ScheduleRefused("Schedule it at most a year ahead.")
    return moment


def input_value(moment: datetime, time_zone: str) -> str:
    """The datetime-local value showing a moment in the business's zone."""
    return moment.astimezone(zone(time_zone)).strftime(INPUT_FORMAT)


# --- the author's and the admin team's moves ----------------------------------------------------

def scheduled_with(author: User, send_key: str | None) -> ScheduledMessage | None:
    if not send_key:
        return None
    return db.session.scalar(select(ScheduledMessage).where(
        ScheduledMessage.author_id == author.id, ScheduledMessage.send_key == send_key))


def schedule(author: User, client: Client, feed: Feed, text: str, send_at: datetime,
             send_key: str | None = None) -> ScheduledMessage:
    """Schedules the message; the same send key again (Schedule pressed twice, a retried
    request) answers with the one it scheduled first."""
    scheduled = ScheduledMessage(
        business_id=client.business_id, client_id=client.id, feed=feed, author_id=author.id,
        text=text, due_at=send_at, send_key=send_key,
    )
    try:
        db.session.add(scheduled)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        if earlier := scheduled_with(author, send_key):
            return earlier
        raise
    _record(author, "message.scheduled", scheduled, send_at=send_at.isoformat())
    db.session.commit()
    return scheduled


def edit(actor: User, scheduled: ScheduledMessage, text: str, send_at: datetime) -> None:
    """New text and time, while it still waits; raises AlreadyGone once it went or was
    cancelled (the worker's claim and this change never both win)."""
    _while_pending(scheduled, text=text, due_at=send_at)
    _record(actor, "message.schedule_changed", scheduled, send_at=send_at.isoformat())
    db.session.commit()


def cancel(actor: User, scheduled: ScheduledMessage) -> None:
    _while_pending(scheduled, status=DeliveryStatus.CANCELLED)
    _record(actor, "message.schedule_cancelled", scheduled)
    db.session.commit()


def send_now(actor: User, scheduled: ScheduledMessage) -> Message | None:
    """Posts it at once, as its time coming would (the same checks, the same path), as a
    message written now; None when it may not be posted (its author is told why, as at its
    time). Raises AlreadyGone when a worker took it first, or it was cancelled."""
    _while_pending(scheduled, status=DeliveryStatus.SENDING, claimed_by=f"user-{actor.id}",
                   claimed_at=utcnow())
    db.session.commit()
    return post(scheduled, sent_by=actor)


def cancel_authored_by(author: User) -> int:
    """Cancels what the person scheduled (their login is being deactivated), in the caller's
    transaction; returns how many."""
    return db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.author_id == author.id,
               ScheduledMessage.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, last_error="its author's login was deactivated"),
        execution_options={"synchronize_session": False},
    ).rowcount


def _while_pending(scheduled: ScheduledMessage, **values) -> None:
    changed = db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == scheduled.id,
               ScheduledMessage.status == DeliveryStatus.PENDING)
        .values(**values),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not changed:
        db.session.rollback()
        raise AlreadyGone()
    db.session.refresh(scheduled)


def _record(actor: User, action: str, scheduled: ScheduledMessage, **details) -> None:
    audit.record(scheduled.business_id, actor, action, "scheduled_message", scheduled.id,
                 client_id=scheduled.client_id, feed=scheduled.feed.value,
                 author_id=scheduled.author_id, **details)


# --- what waits, for the feed page --------------------------------------------------------------

WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


def waiting(viewer: User, client: Client, feed: Feed) -> list[ScheduledMessage]:
    """The feed's scheduled messages the viewer sees, soonest first: one query, none at all
    for a viewer who schedules nothing here."""
    if not policy.can_schedule(viewer, client, feed):
        return []
    return list(db.session.scalars(
        select(ScheduledMessage)
        .where(ScheduledMessage.client_id == client.id, ScheduledMessage.feed == feed,
               ScheduledMessage.status.in_(WAITING), policy.scheduled_messages_clause(viewer))
        .options(joinedload(ScheduledMessage.author))
        .order_by(ScheduledMessage.due_at, ScheduledMessage.id)
    ))


# --- posting, by the worker ---------------------------------------------------------------------

# How a scheduled message's post is keyed (Message.send_key): a character composer keys never
# hold, so no send from a composer can take its place.
def _post_key(scheduled: ScheduledMessage) -> str:
    return f"scheduled:{scheduled.id}"


def claim(worker_id: str, limit: int = 100) -> list[int]:
    return claim_rows(ScheduledMessage, worker_id, utcnow(), limit)


def deliver(ids: list[int]) -> None:
    for scheduled in db.session.scalars(
        select(ScheduledMessage).where(ScheduledMessage.id.in_(ids))
        .order_by(ScheduledMessage.due_at, ScheduledMessage.id)
    ).all():
        try:
            post(scheduled)
        except Exception:
            # The others of the round go on; this one is tried again next round, and given up
            # (its author told) after as many tries as a notification gets.
            db.session.rollback()
            log.exception("scheduled message %s could not be posted", scheduled.id)
            _failed_attempt(scheduled)


def _failed_attempt(scheduled: ScheduledMessage) -> None:
    """Counts a try that raised. Were even this write to fail (the database gone), the row
    stays claimed, and its stale claim puts it back in the outbox."""
    scheduled = db.session.get(ScheduledMessage, scheduled.id)
    scheduled.attempts += 1
    if scheduled.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
        _not_sent(scheduled, "it could not be posted (an error in the portal)")
    else:
        scheduled.status, scheduled.claimed_by = DeliveryStatus.PENDING, None
    db.session.commit()


def _not_sent(scheduled: ScheduledMessage, reason: str) -> None:
    """Settles it as not sent and emails its author why (unless their login was deactivated:
    then nobody is emailed, and the admin team saw its messages cancelled)."""
    finish(scheduled, DeliveryStatus.FAILED, reason)
    db.session.add(AccountEmail(business_id=scheduled.business_id, user_id=scheduled.author_id,
                                kind=AccountEmailKind.SCHEDULED_NOT_SENT,
                                scheduled_message_id=scheduled.id))


def post(scheduled: ScheduledMessage, sent_by: User | None = None) -> Message | None:
    """Posts a claimed scheduled message as written now, or, when its author may not post
    there now, settles it as not sent and emails them why. Commits either way. `sent_by`: who
    pressed Send now (audited with the post; the message is then simply written now)."""
    author, client, feed = scheduled.author, scheduled.client, scheduled.feed
    if refusal := policy.scheduled_send_refusal(author, client, feed):
        _not_sent(scheduled, refusal)
        db.session.commit()
        return None
    via = None
    if sent_by is not None:
        _record(sent_by, "message.sent_early", scheduled)
    else:
        via = VIA_LATE if utcnow() - scheduled.due_at > LATE_AFTER else VIA_SCHEDULED
    finish(scheduled, DeliveryStatus.SENT)
    try:
        return messages.post_message(author, client, feed, scheduled.text,
                                     send_key=_post_key(scheduled), via=via, origin=scheduled)
    except messages.AlreadySent as repeat:
        # Posted before (a claim that outlived its worker's commit): settle it as that.
        scheduled = db.session.get(ScheduledMessage, scheduled.id)
        finish(scheduled, DeliveryStatus.SENT)
        scheduled.message_id = repeat.message.id
        db.session.commit()
        return repeat.message
