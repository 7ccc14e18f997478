"""Send later: messages written now and posted at their time.

A scheduled message is an outbox row (models.ScheduledMessage): due at its time, claimed by one
worker (outbox.claim_rows, FOR UPDATE SKIP LOCKED on PostgreSQL) and posted through
messages.post_message, the one sending path, as a message written then: it takes its place in
the feed's order then, and whoever may see the feed then is told. The row is marked sent in the
transaction that posts the message, so a worker dying midway leaves it claimed, and a stale claim
goes back to the outbox: posted once, never lost.

A staff member whose messages need approval (policy.needs_approval) writes into the same outbox:
their message is held, due at once or at the time they chose, and the worker passes it by until
someone of the admin team approves it. Approved, it goes as any scheduled message (at once when
its time has passed, as written then); rejected, it is cancelled and its author told why. Its
files wait with it (ScheduledMessageFile) and the message posted gets copies of its own.
"""

import logging
import threading
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from portal import policy
from portal.clock import NonexistentLocalTime, day_and_time, to_utc, zone
from portal.extensions import db
from portal.models import (
    VIA_REPORT,
    AccountEmail,
    AccountEmailKind,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    ScheduledMessage,
    ScheduledMessageFile,
    User,
    VisitReport,
    utcnow,
)
from portal.notifications.outbox import claim_rows, finish
from portal.services import audit, messages
from portal.services.uploads import PreparedFile
from portal.storage import StorageUnavailable, forget

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


class Changed(Exception):
    """It was changed after the reviewer read it (it still waits): nothing was approved or
    rejected, so that nobody approves words they did not see."""


class AwaitsApproval(Exception):
    """Its author's messages came to need approval after it was scheduled: it now waits for
    the admin team's approval instead of going."""


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
             send_key: str | None = None, files: list[PreparedFile] = (),
             reply_to_id: int | None = None,
             visit_report: VisitReport | None = None) -> ScheduledMessage:
    """Schedules the message, with its files; held for approval when its author's messages
    need it. The same send key again (Schedule pressed twice, a retried request) answers with
    the one it scheduled first. Bytes stored are removed again if anything fails."""
    scheduled = ScheduledMessage(
        business_id=client.business_id, client_id=client.id, feed=feed, author_id=author.id,
        text=text, due_at=send_at, send_key=send_key, held=policy.needs_approval(author),
        reply_to_id=reply_to_id, visit_report=visit_report,
    )
    written: list[str] = []
    try:
        scheduled.files = [
            messages.stored_row(ScheduledMessageFile, prepared, written,
                                business_id=client.business_id, position=position)
            for position, prepared in enumerate(files)]
        db.session.add(scheduled)
        db.session.flush()
        timed = {"send_at": send_at.isoformat()} if send_at > utcnow() else {}
        _record(author, "message.held" if scheduled.held else "message.scheduled", scheduled,
                files=len(files), **timed)
        db.session.commit()
    except IntegrityError:
        _discard(written)
        if earlier := scheduled_with(author, send_key):
            return earlier
        raise
    except BaseException:
        _discard(written)
        raise
    return scheduled


def hold(author: User, client: Client, feed: Feed, text: str, files: list[PreparedFile] = (),
         send_key: str | None = None, reply_to_id: int | None = None,
         visit_report: VisitReport | None = None) -> ScheduledMessage:
    """A message written now that waits for approval (its author's messages need it): a
    message, or a visit report's note and photos (`visit_report`, written with it)."""
    return schedule(author, client, feed, text, utcnow(), send_key=send_key, files=files,
                    reply_to_id=reply_to_id, visit_report=visit_report)


def _discard(written: list[str]) -> None:
    db.session.rollback()
    for key in written:
        forget(key)


def edit(actor: User, scheduled: ScheduledMessage, text: str, send_at: datetime,
         seen: int | None = None) -> None:
    """New text and time, while it still waits; raises AlreadyGone once it went or was
    cancelled (the worker's claim and this change never both win), and Changed when a
    reviewer who read it at revision `seen` finds it changed since. Changed by anyone but the
    admin team, its words are no longer the ones approved: it waits for approval again when
    its author's messages need it."""
    values = {"text": text, "due_at": send_at, "revision": ScheduledMessage.revision + 1}
    if not policy.is_admin_team(actor):
        values |= {"reviewed_by_id": None, "reviewed_at": None,
                   "held": scheduled.held or policy.needs_approval(scheduled.author)}
    _while_unchanged(scheduled, seen, **values)
    _record(actor, "message.schedule_changed", scheduled, send_at=send_at.isoformat())
    db.session.commit()


def cancel(actor: User, scheduled: ScheduledMessage) -> None:
    _while_pending(scheduled, status=DeliveryStatus.CANCELLED)
    files = _drop_files(scheduled)
    _record(actor, "message.schedule_cancelled", scheduled)
    db.session.commit()
    forget_bytes(files)


def send_now(actor: User, scheduled: ScheduledMessage) -> Message | None:
    """Posts it at once, as its time coming would (the same checks, the same path), as a
    message written now; None when it may not be posted (its author is told why, as at its
    time). Raises AlreadyGone when a worker took it first, it was cancelled, or it awaits
    approval (approving it is what sends it); AwaitsApproval when its author may no longer
    send it unapproved (it then waits for approval). The admin team pressing it approves it."""
    review = {}
    if needs_review(scheduled):
        if not policy.is_admin_team(actor):
            _while_pending(scheduled, held=True)
            db.session.commit()
            raise AwaitsApproval()
        review = {"reviewed_by_id": actor.id, "reviewed_at": utcnow()}
    _claim_now(actor, scheduled, ScheduledMessage.held.is_(False), **review)
    return post(scheduled, sent_by=actor)


def needs_review(scheduled: ScheduledMessage) -> bool:
    """Written unreviewed by someone whose messages (now) need approval: it must not go
    without it, held when written or not (the rule may have come since)."""
    return scheduled.reviewed_by_id is None and policy.needs_approval(scheduled.author)


def _claim_now(actor: User, scheduled: ScheduledMessage, *conditions, **values) -> None:
    _while_pending(scheduled, *conditions, status=DeliveryStatus.SENDING,
                   claimed_by=f"user-{actor.id}", claimed_at=utcnow(), **values)
    db.session.commit()


# --- approval, by the admin team ----------------------------------------------------------------

def approve(actor: User, scheduled: ScheduledMessage, text: str | None = None,
            seen: int | None = None) -> Message | None:
    """Approves a held message, with the reviewer's changes to its text if any. Its time
    passed (a message held as written): posted now, as written now, and None when it may no
    longer be posted (its author is told why). Its time still to come: it goes then. Raises
    AlreadyGone when it no longer awaits approval (approved, rejected, withdrawn), and Changed
    when it was changed since the reviewer read it at revision `seen`."""
    changed = text is not None and text != scheduled.text
    reviewed = {"held": False, "reviewed_by_id": actor.id, "reviewed_at": utcnow(),
                "text": text if changed else ScheduledMessage.text}
    held = ScheduledMessage.held.is_(True)
    later = scheduled.due_at > utcnow()
    # Recorded first: it commits with the approval, or not at all.
    _record(actor, "message.approved", scheduled, changed=changed,
            **({"send_at": scheduled.due_at.isoformat()} if later else {}))
    if later:
        _while_unchanged(scheduled, seen, held, **reviewed)
        db.session.commit()
        return None
    _while_unchanged(scheduled, seen, held, status=DeliveryStatus.SENDING,
                     claimed_by=f"user-{actor.id}", claimed_at=utcnow(), **reviewed)
    db.session.commit()
    return post(scheduled, approved=True)


def reject(actor: User, scheduled: ScheduledMessage, note: str, seen: int | None = None) -> None:
    """Rejects a held message: it is never posted, and its author is emailed the note (and
    sees it under the feed until they put it away). Raises AlreadyGone and Changed as approve
    does."""
    _record(actor, "message.rejected", scheduled)
    _while_unchanged(scheduled, seen, ScheduledMessage.held.is_(True),
                     status=DeliveryStatus.CANCELLED, held=False, reviewed_by_id=actor.id,
                     reviewed_at=utcnow(), rejection_note=note, last_error="not approved")
    files = _drop_files(scheduled)
    db.session.add(AccountEmail(business_id=scheduled.business_id, user_id=scheduled.author_id,
                                kind=AccountEmailKind.MESSAGE_NOT_APPROVED,
                                scheduled_message_id=scheduled.id))
    db.session.commit()
    forget_bytes(files)


def settle_held_of_archived(client: Client) -> list[ScheduledMessageFile]:
    """The client is being archived: what awaits approval for them can never go, and nobody
    could act on it any more. Each is settled as not sent (its author told), in the caller's
    transaction; returns the files whose bytes forget_bytes removes once it is committed."""
    files: list[ScheduledMessageFile] = []
    for scheduled in db.session.scalars(select(ScheduledMessage).where(
            ScheduledMessage.client_id == client.id, ScheduledMessage.held.is_(True),
            ScheduledMessage.status == DeliveryStatus.PENDING)):
        files += _not_sent(scheduled, "the client is archived")
    return files


def dismiss(author: User, scheduled: ScheduledMessage) -> None:
    """The author has read why their message was not approved: no longer listed."""
    db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == scheduled.id, ScheduledMessage.author_id == author.id,
               ScheduledMessage.rejection_note.is_not(None))
        .values(dismissed_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()


def held_count(viewer: User) -> int:
    """How many messages await the viewer's approval (the admin team's): one count."""
    return db.session.scalar(select(func.count()).select_from(ScheduledMessage)
                             .where(policy.held_messages_clause(viewer)))


def held_for(viewer: User, limit: int = 100, search: str = "") -> list[ScheduledMessage]:
    """The messages awaiting the viewer's approval, oldest first (the longest waiting), of
    clients whose name holds `search`, with their clients, authors and files: two queries
    however many."""
    query = (
        select(ScheduledMessage).join(Client, Client.id == ScheduledMessage.client_id)
        .where(policy.held_messages_clause(viewer))
        .options(joinedload(ScheduledMessage.author), joinedload(ScheduledMessage.client),
                 selectinload(ScheduledMessage.files))
        .order_by(ScheduledMessage.created_at, ScheduledMessage.id).limit(limit)
    )
    if search:
        query = query.where(Client.name.icontains(search, autoescape=True))
    return list(db.session.scalars(query))


def cancel_authored_by(author: User) -> tuple[int, list[ScheduledMessageFile]]:
    """Cancels what the person scheduled or wrote awaiting approval (their login is being
    deactivated), in the caller's transaction: how many, and the files they carried (their
    rows go with the cancel; forget_bytes removes their bytes once it is committed)."""
    pending = and_(ScheduledMessage.author_id == author.id,
                   ScheduledMessage.status == DeliveryStatus.PENDING)
    files = list(db.session.scalars(
        select(ScheduledMessageFile).join(ScheduledMessage).where(pending)))
    for file in files:
        db.session.delete(file)
    cancelled = db.session.execute(
        update(ScheduledMessage).where(pending)
        .values(status=DeliveryStatus.CANCELLED, last_error="its author's login was deactivated"),
        execution_options={"synchronize_session": False},
    ).rowcount
    return cancelled, files


def _while_unchanged(scheduled: ScheduledMessage, seen: int | None, *conditions,
                     **values) -> None:
    """_while_pending, for someone who read it at revision `seen` (None: whatever it is
    now): Changed when it still waits but was changed since."""
    if seen is None:
        _while_pending(scheduled, *conditions, **values)
        return
    try:
        _while_pending(scheduled, ScheduledMessage.revision == seen, *conditions, **values)
    except AlreadyGone:
        db.session.refresh(scheduled)
        if scheduled.status == DeliveryStatus.PENDING and scheduled.revision != seen:
            raise Changed() from None
        raise


def _while_pending(scheduled: ScheduledMessage, *conditions, **values) -> None:
    changed = db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == scheduled.id,
               ScheduledMessage.status == DeliveryStatus.PENDING, *conditions)
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
    """The feed's scheduled and held messages the viewer sees, soonest first, and their own
    messages not approved that they have not put away: two queries (the second for files),
    none at all for a viewer who schedules nothing here."""
    if not policy.can_schedule(viewer, client, feed):
        return []
    rejected_unread = and_(ScheduledMessage.author_id == viewer.id,
                           ScheduledMessage.rejection_note.is_not(None),
                           ScheduledMessage.dismissed_at.is_(None))
    return list(db.session.scalars(
        select(ScheduledMessage)
        .where(ScheduledMessage.client_id == client.id, ScheduledMessage.feed == feed,
               or_(and_(ScheduledMessage.status.in_(WAITING),
                        policy.scheduled_messages_clause(viewer)), rejected_unread))
        .options(joinedload(ScheduledMessage.author), joinedload(ScheduledMessage.reviewed_by),
                 joinedload(ScheduledMessage.visit_report), selectinload(ScheduledMessage.files))
        .order_by(ScheduledMessage.due_at, ScheduledMessage.id)
    ))


# --- posting, by the worker ---------------------------------------------------------------------

# How a scheduled message's post is keyed (Message.send_key): a character composer keys never
# hold, so no send from a composer can take its place.
def _post_key(scheduled: ScheduledMessage) -> str:
    return f"scheduled:{scheduled.id}"


def claim(worker_id: str, limit: int = 100) -> list[int]:
    """Due rows, held ones passed by: they wait for a person, not a time."""
    return claim_rows(ScheduledMessage, worker_id, utcnow(), limit,
                      ScheduledMessage.held.is_(False))


def deliver(ids: list[int], stop: threading.Event | None = None) -> None:
    """Posts the claimed messages; once `stop` is set, leaves the rest claimed (the stopping
    worker releases them)."""
    for scheduled in db.session.scalars(
        select(ScheduledMessage).where(ScheduledMessage.id.in_(ids))
        .order_by(ScheduledMessage.due_at, ScheduledMessage.id)
    ).all():
        if stop is not None and stop.is_set():
            return
        try:
            post(scheduled)
        except StorageUnavailable:
            # The file store is away, not the message at fault: no try is counted, and the
            # round ends here; the worker puts back what it claimed, waits and tries again.
            db.session.rollback()
            raise
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
    files = []
    if scheduled.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
        files = _not_sent(scheduled, "it could not be posted (an error in the portal)")
    else:
        scheduled.status, scheduled.claimed_by = DeliveryStatus.PENDING, None
    db.session.commit()
    forget_bytes(files)


def _not_sent(scheduled: ScheduledMessage, reason: str) -> list[ScheduledMessageFile]:
    """Settles it as not sent and emails its author why (unless their login was deactivated:
    then nobody is emailed, and the admin team saw its messages cancelled), in the caller's
    transaction; returns its files, for forget_bytes once that is committed."""
    finish(scheduled, DeliveryStatus.FAILED, reason)
    scheduled.held = False
    db.session.add(AccountEmail(business_id=scheduled.business_id, user_id=scheduled.author_id,
                                kind=AccountEmailKind.SCHEDULED_NOT_SENT,
                                scheduled_message_id=scheduled.id))
    return _drop_files(scheduled)


def post(scheduled: ScheduledMessage, sent_by: User | None = None,
         approved: bool = False) -> Message | None:
    """Posts a claimed scheduled message as written now, or, when its author may not post
    there now, settles it as not sent and emails them why. Commits either way. `sent_by`: who
    pressed Send now (audited with the post); `approved`: posted as it was approved. Either
    way the message is then simply written now (not "scheduled", nor "late")."""
    author, client, feed = scheduled.author, scheduled.client, scheduled.feed
    if refusal := policy.scheduled_send_refusal(author, client, feed):
        files = _not_sent(scheduled, refusal)
        db.session.commit()
        forget_bytes(files)
        return None
    if sent_by is None and not approved and needs_review(scheduled):
        # Its author's messages came to need approval since it was scheduled: not without.
        scheduled.held, scheduled.status, scheduled.claimed_by = True, DeliveryStatus.PENDING, None
        db.session.commit()
        return None
    via = None
    if sent_by is not None:
        _record(sent_by, "message.sent_early", scheduled)
    elif not approved:
        via = VIA_LATE if utcnow() - scheduled.due_at > LATE_AFTER else VIA_SCHEDULED
    finish(scheduled, DeliveryStatus.SENT)
    held_files = list(scheduled.files)
    files = messages.read_back(held_files)
    # The waiting copies go with the post (their bytes once it is committed).
    scheduled.files.clear()
    report = scheduled.visit_report
    try:
        message = messages.post_message(
            author, client, feed, scheduled.text, files, send_key=_post_key(scheduled),
            via=VIA_REPORT if report else via, reply_to_id=scheduled.reply_to_id,
            origin=(scheduled, report) if report else scheduled)
    except messages.AlreadySent as repeat:
        # Posted before (a claim that outlived its worker's commit): settle it as that.
        scheduled = db.session.get(ScheduledMessage, scheduled.id)
        finish(scheduled, DeliveryStatus.SENT)
        scheduled.message_id = repeat.message.id
        held_files = _drop_files(scheduled)
        db.session.commit()
        forget_bytes(held_files)
        return repeat.message
    forget_bytes(held_files)
    return message


def _drop_files(scheduled: ScheduledMessage) -> list[ScheduledMessageFile]:
    """Its files' rows go, in the caller's transaction; returns them, for forget_bytes to
    remove their bytes once that is committed."""
    files = list(scheduled.files)
    scheduled.files.clear()
    return files


def forget_bytes(files: list[ScheduledMessageFile]) -> None:
    for file in files:
        for key in (file.storage_key, file.thumbnail_key):
            if key:
                forget(key)
