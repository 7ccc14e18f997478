"""The notification worker: loops over the outboxes and dispatches what is due.

Each round claims a batch of due rows from the outbox, builds their notices, checks again who
may still be told, hands the notices to their channel and tells the outbox how it went.
Several workers may run at once: the outbox hands each row to one of them (see outbox.claim).
"""

import logging
import os
import random
import secrets
import socket
import threading
from collections import defaultdict

from flask import Flask

from portal import policy
from portal.bidi import without_bidi_controls
from portal.extensions import db
from portal.models import Channel, Client, DeliveryStatus, Notification, User
from portal.notifications import (
    account_mail,
    email,
    health,
    notices,
    outbox,
    phone_codes,
    push,
    sms,
)
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.notices import Notice
from portal.services import file_sweep, send_later

log = logging.getLogger(__name__)


def deliver_notifications(ids: list[int], stop: threading.Event | None = None) -> None:
    """Delivers claimed notifications: a person's emails about one feed of one client as one
    (its reply address names that feed), every other row alone. Once `stop` is set, leaves the
    rest claimed (the stopping worker releases them)."""
    rows = outbox.claimed(ids)
    found = notices.build({row.message_id for row in rows})
    groups: dict[tuple, list[Notification]] = defaultdict(list)
    for row in outbox.cancel_read_in_portal(rows):
        groups[_batch(row)].append(row)
    db.session.commit()
    sender, claims = email.EmailSender(), outbox.FreshClaims(Notification, ids)
    try:
        for group in groups.values():
            if stop is not None and stop.is_set():
                return
            claims.refresh()
            _deliver_group(group, found, sender)
    finally:
        sender.close()


def _batch(row: Notification) -> tuple:
    """What goes out together: everything held for a person's quiet hours, per channel (one
    summary); a person's emails about one feed; each other row alone."""
    if row.summary:
        return (row.recipient_id, row.channel, "summary")
    if row.channel == Channel.EMAIL:
        return (row.recipient_id, row.message.client_id, row.message.feed)
    return (row.id,)


def _deliver_group(group: list[Notification], found: dict[int, tuple[Notice, Client]],
                   sender: email.EmailSender) -> None:
    recipient = group[0].recipient
    live = []
    for row in group:
        notice, client = found.get(row.message_id, (None, None))
        if notice is None or row.message.is_deleted or not policy.may_be_notified(
            recipient, client, row.message.feed
        ):
            # Deleted, or the person lost access since the message was written: not told.
            outbox.finish(row, DeliveryStatus.CANCELLED, "no longer to be told")
        elif unreachable := outbox.unreachable(recipient, row.channel):
            # The address bounced, or the phone said STOP, since the message was written.
            outbox.finish(row, DeliveryStatus.CANCELLED, unreachable)
        else:
            live.append((row, notice))
    if live:
        try:
            accepted = _send(group[0].channel, recipient, [notice for _, notice in live], sender,
                             summary=group[0].summary)
        except TransientError as error:
            for row, _ in live:
                outbox.retry_later(row, str(error))
        except PermanentError as error:
            for row, _ in live:
                outbox.finish(row, DeliveryStatus.FAILED, str(error))
        else:
            for row, _ in live:
                outbox.finish(row, DeliveryStatus.SENT)
                row.provider_id, row.provider_status = accepted
    db.session.commit()


def _send(channel: Channel, recipient: User, batch: list[Notice],
          sender: email.EmailSender, summary: bool = False) -> tuple[str | None, str | None]:
    """Hands the notices to the channel: one email for the batch; a text message or a push
    notification carries one notice, or sums up what was held for quiet hours. Answers with
    the id the rows keep (an email's Message-ID, a text's id at the SMS provider) and the
    status the provider gave."""
    if channel == Channel.EMAIL:
        composed = email.compose(recipient, batch, recipient.business, summary=summary)
        sender.send(composed.message, envelope_from=composed.bounce_address)
        return composed.provider_id, None
    to_name = without_bidi_controls(recipient.name)
    if channel == Channel.SMS:
        text = (sms.SmsText.quiet_hours_summary(recipient.phone, batch, to_name) if summary
                else sms.SmsText.for_conversation(recipient.phone, batch[0], to_name))
        accepted = sms.provider().send(text)
        return accepted.provider_id, accepted.status
    push.send(recipient, push.summary_payload(batch) if summary else push.payload(batch[0]))
    return None, None


# What each round drains: every outbox's claim, and what delivers the rows claimed. Scheduled
# messages come first: posting one writes notifications this same round may send. Account
# emails have their own templates and links, and codes confirming a phone number their own
# text; their rows settle through the outbox all the same.
DELIVERIES = (
    (send_later.claim, send_later.deliver),
    (outbox.claim, deliver_notifications),
    (account_mail.claim, account_mail.deliver),
    (phone_codes.claim, phone_codes.deliver),
)


def run_once(app: Flask, worker_id: str, limit: int = 100,
             stop: threading.Event | None = None) -> int:
    """One round in a fresh app context (policy caches live per context). Returns rows done."""
    with app.app_context():
        done = 0
        for claim, deliver in DELIVERIES:
            if stop is not None and stop.is_set():
                break
            ids = claim(worker_id, limit)
            if ids:
                deliver(ids, stop)
            done += len(ids)
        db.session.remove()
        return done


# Every worker removes stored files nothing refers to this often (one at a time), in a
# thread of its own, first at a random moment of its first ten minutes (not all at a deploy).
SWEEP_EVERY_SECONDS = 6 * 3600
FIRST_SWEEP_SECONDS = (60, 600)


def new_worker_id() -> str:
    return f"worker-{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


def work(app: Flask, stop: threading.Event, interval: float = 2.0,
         worker_id: str | None = None) -> None:
    """Rounds until `stop` is set (SIGTERM): the round under way stops after the delivery in
    hand, and what it had claimed and not delivered is released for the other workers at once.
    Each round is reported (health); beside the rounds, stored files nothing refers to are
    swept every few hours."""
    worker_id = worker_id or new_worker_id()
    with app.app_context():
        health.started(worker_id)
    threading.Thread(target=_sweep_now_and_then, args=(app, stop), name="file-sweep",
                     daemon=True).start()
    reported = None
    try:
        while not stop.is_set():
            done = 0
            try:
                done = run_once(app, worker_id, stop=stop)
                with app.app_context():
                    reported = health.round_done(worker_id, done, reported)
            except Exception as error:
                log.exception("notification worker round failed")
                _report_failure(app, worker_id, error)
                # What the round had claimed goes back now, not after the stale-claim time.
                _release(app, worker_id, stopping=False)
            if not done:
                stop.wait(interval)
    finally:
        _release(app, worker_id)


def _report_failure(app: Flask, worker_id: str, error: Exception) -> None:
    try:
        with app.app_context():
            health.round_failed(worker_id, error)
    except Exception:
        log.exception("the worker's failure could not be recorded")  # the database is down


def _sweep_now_and_then(app: Flask, stop: threading.Event) -> None:
    if stop.wait(random.uniform(*FIRST_SWEEP_SECONDS)):
        return
    while True:
        try:
            with app.app_context():
                if swept := file_sweep.sweep_unless_running(stop):
                    log.info(swept.summary())
        except Exception:
            log.exception("sweeping stored files failed")
        if stop.wait(SWEEP_EVERY_SECONDS):
            return


def _release(app: Flask, worker_id: str, stopping: bool = True) -> None:
    """Gives back what this worker claimed and did not deliver (nothing is in hand then);
    should the database be gone, its claims go back after NOTIFICATION_STALE_CLAIM_SECONDS."""
    try:
        with app.app_context():
            released = outbox.release(worker_id, health.OUTBOXES)
            if stopping:
                health.stopped(worker_id)
                log.info("worker %s stopped; released %d claimed rows", worker_id, released)
    except Exception:
        log.exception("worker %s could not release its claims", worker_id)


def start_in_process(app: Flask) -> threading.Event:
    """For `make run`: deliveries in a thread of the web process, so nothing else is needed."""
    stop = threading.Event()
    threading.Thread(target=work, args=(app, stop), name="notifications", daemon=True).start()
    return stop
