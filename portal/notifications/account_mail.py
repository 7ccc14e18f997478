"""Account emails: invitations, password reset links and "your password was changed" notes.

Queued inside the caller's transaction like message notifications (never network I/O in a
request) and delivered by the same worker, with the same retries through an SMTP outage. The
worker signs each link when it sends it, so a token is never stored and a retried email
carries a link that is still fresh.
"""

import threading
from collections import defaultdict
from datetime import timedelta

from flask import current_app, render_template
from flask_mail import Message as MailMessage
from sqlalchemy import exists, func, select

from portal import policy
from portal.clock import day_and_time, zone
from portal.extensions import db
from portal.models import (
    AccountEmail,
    AccountEmailKind,
    DeliveryStatus,
    Role,
    User,
    utcnow,
)
from portal.notifications import email
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.links import external_url
from portal.notifications.outbox import (
    FreshClaims,
    claim_rows,
    failed_rows,
    finish,
    retry_failed_rows,
    retry_later,
)
from portal.services.account_links import Purpose, make

LINKS = {
    AccountEmailKind.INVITATION: ("auth.accept_invitation", Purpose.INVITATION),
    AccountEmailKind.PASSWORD_RESET: ("auth.reset_password", Purpose.PASSWORD_RESET),
}
SUBJECTS = {
    AccountEmailKind.INVITATION: "Set up your login for {business}",
    AccountEmailKind.PASSWORD_RESET: "Reset your password for {business}",
    AccountEmailKind.PASSWORD_CHANGED: "Your password for {business} was changed",
    AccountEmailKind.SCHEDULED_NOT_SENT: "{business}: your scheduled message was not sent",
    AccountEmailKind.MESSAGE_NOT_APPROVED: "{business}: your message was not approved",
}
HELD_NOT_SENT_SUBJECT = "{business}: your message awaiting approval was not sent"


# --- queueing, inside the caller's transaction -------------------------------------------------

def enqueue(user: User, kind: AccountEmailKind) -> None:
    """One email to this person; an identical one still waiting carries the newest link."""
    waiting = exists().where(
        AccountEmail.user_id == user.id, AccountEmail.kind == kind,
        AccountEmail.status == DeliveryStatus.PENDING,
    )
    if not db.session.scalar(select(waiting)):
        db.session.add(AccountEmail(business_id=user.business_id, user_id=user.id, kind=kind))


def enqueue_reset_request(address: str) -> None:
    """The same single insert whoever the address belongs to, if anyone: the worker looks."""
    db.session.add(AccountEmail(email=address, kind=AccountEmailKind.PASSWORD_RESET))


def undelivered_invitations(business_id: int) -> set[int]:
    """The people of a business whose latest invitation email could not be delivered: one
    query for a whole list of logins."""
    latest = (
        select(func.max(AccountEmail.id))
        .where(AccountEmail.business_id == business_id,
               AccountEmail.kind == AccountEmailKind.INVITATION)
        .group_by(AccountEmail.user_id)
    )
    return set(db.session.scalars(
        select(AccountEmail.user_id)
        .where(AccountEmail.id.in_(latest), AccountEmail.status == DeliveryStatus.FAILED)
    ))


def failed(business_id: int, limit: int) -> list[AccountEmail]:
    """The business's account emails that could not be delivered, newest first, each with
    the person it was for."""
    return failed_rows(AccountEmail, AccountEmail.user, business_id, limit)


def retry_failed(ids: list[int], business_id: int) -> int:
    """An admin's "Retry": failed account emails of their business go back to the outbox.
    Sending checks again that the person may still get it (an accepted invitation is not
    sent again) and signs a fresh link."""
    return retry_failed_rows(AccountEmail, ids, business_id)


# --- delivery, by the notification worker ------------------------------------------------------

def claim(worker_id: str, limit: int = 100) -> list[int]:
    return claim_rows(AccountEmail, worker_id, utcnow(), limit)


def deliver(ids: list[int], stop: threading.Event | None = None) -> None:
    """Sends the claimed emails; once `stop` is set, leaves the rest claimed (the stopping
    worker releases them)."""
    rows = db.session.scalars(
        select(AccountEmail).where(AccountEmail.id.in_(ids)).order_by(AccountEmail.id)
    )
    # Several requests for the same email in one round: it is sent once. Each scheduled
    # message not sent has an email of its own.
    groups: dict[tuple, list[AccountEmail]] = defaultdict(list)
    for row in rows:
        recipient = _recipient(row)
        if recipient is None:
            continue
        groups[(recipient.id, row.kind, row.scheduled_message_id)].append(row)
    db.session.commit()
    sender, claims = email.EmailSender(), FreshClaims(AccountEmail, ids)
    try:
        for group in groups.values():
            if stop is not None and stop.is_set():
                return
            claims.refresh()
            _deliver_group(group, sender)
    finally:
        sender.close()


def _recipient(row: AccountEmail) -> User | None:
    """Who the row is for, while they may still get it; settles the row when nobody may."""
    if row.user_id is None:
        user = db.session.scalar(select(User).where(User.email == row.email))
        if user is None or not user.active:
            # Nobody (or nobody active) has the address: forget it was ever typed.
            db.session.delete(row)
            return None
        row.user_id, row.business_id, row.email = user.id, user.business_id, None
    user = row.user
    if not user.active:
        finish(row, DeliveryStatus.CANCELLED, "the login is deactivated")
    elif row.kind == AccountEmailKind.INVITATION and not user.is_invited:
        finish(row, DeliveryStatus.CANCELLED, "the invitation was accepted")
    else:
        return user
    return None


def _deliver_group(group: list[AccountEmail], sender: email.EmailSender) -> None:
    row = group[0]
    try:
        sender.send(compose(row))
    except TransientError as error:
        for each in group:
            retry_later(each, str(error))
    except PermanentError as error:
        for each in group:
            finish(each, DeliveryStatus.FAILED, str(error))
    else:
        for each in group:
            finish(each, DeliveryStatus.SENT)
    db.session.commit()


def compose(row: AccountEmail) -> MailMessage:
    user, kind, business = row.user, row.kind, row.user.business
    context = {
        "user": user, "business": business, "link": _link(user, kind),
        "for_client": user.role == Role.CLIENT,
        "lifetime": _lifetime_words(kind),
        "when": row.created_at.astimezone(zone(user.time_zone)).strftime("%b %-d at %-I:%M %p"),
        "forgot_link": external_url("auth.forgot_password"),
        **_scheduled_context(row),
    }
    subject = SUBJECTS[kind]
    if kind == AccountEmailKind.SCHEDULED_NOT_SENT and context.get("held_as_written"):
        subject = HELD_NOT_SENT_SUBJECT  # it was never scheduled: it awaited approval
    return MailMessage(
        subject=email.header_safe(subject.format(business=business.name)),
        recipients=[user.email],
        sender=(email.header_safe(business.name), current_app.config["MAIL_DEFAULT_SENDER"]),
        body=render_template(f"email/{kind.value}.txt", **context),
        html=render_template(f"email/{kind.value}.html", **context),
    )


def _scheduled_context(row: AccountEmail) -> dict:
    """For an author whose scheduled message could not be posted, or was not approved: which,
    and why; the feed's link while they may still open it."""
    scheduled = row.scheduled_message
    if scheduled is None:
        return {}
    user, client = row.user, scheduled.client
    may_open = policy.can_view_feed(user, client, scheduled.feed)
    return {
        "scheduled": scheduled,
        "scheduled_for": day_and_time(scheduled.due_at, user.business.time_zone),
        # Written to go at once, it waited for approval: it had no time of its own.
        "held_as_written": scheduled.due_at - scheduled.created_at < timedelta(minutes=1),
        "feed_link": external_url("feeds.show", client_id=client.id,
                                  feed_name=scheduled.feed.value) if may_open else None,
    }


def _link(user: User, kind: AccountEmailKind) -> str | None:
    if kind not in LINKS:
        return None
    endpoint, purpose = LINKS[kind]
    return external_url(endpoint, token=make(user, purpose))


def _lifetime_words(kind: AccountEmailKind) -> str | None:
    if kind not in LINKS:
        return None
    lifetime = LINKS[kind][1].lifetime
    if lifetime.days:
        return f"{lifetime.days} days"
    hours = lifetime.seconds // 3600
    return f"{hours} hour{'s' if hours != 1 else ''}"
