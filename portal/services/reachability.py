"""Whether a person can be reached: an email address that bounced, a phone that said STOP.

The outbox sends no email to a bounced address and no text to a number that opted out; the
person's row and their Notifications page say which, and why.
"""

from sqlalchemy import event, update

from portal.extensions import db
from portal.models import Channel, DeliveryStatus, Notification, User, utcnow
from portal.phones import e164

# How a bounced email's notification rows say why they failed (their delivery line quotes it).
BOUNCED = "the email bounced: "


def mark_email_bounced(user: User, reason: str, provider_id: str | None = None) -> None:
    """A hard bounce: no more emails to this address until it changes. The email that bounced
    (its Message-ID's id part, kept as the rows' provider id) shows as failed under its
    messages. In the caller's transaction."""
    user.email_bounced_at = utcnow()
    user.email_bounce_reason = (reason or "the address does not accept mail")[:300]
    if provider_id:
        db.session.execute(
            update(Notification)
            .where(Notification.recipient_id == user.id, Notification.channel == Channel.EMAIL,
                   Notification.provider_id == provider_id[:64],
                   Notification.status == DeliveryStatus.SENT)
            .values(status=DeliveryStatus.FAILED,
                    last_error=f"{BOUNCED}{user.email_bounce_reason}"[:500]),
            execution_options={"synchronize_session": False},
        )


def clear_email_bounce(user: User) -> None:
    """A new address (or an admin's word that the old one works again): emails resume."""
    user.email_bounced_at = None
    user.email_bounce_reason = None


@event.listens_for(User.email, "set", active_history=True)
def _new_address_has_not_bounced(user: User, address, previous, initiator) -> None:
    """Whatever changes a person's email address, emails go to the new one: the bounce was the
    old address's. (Nothing in the portal changes an address yet; this holds for what will.)"""
    if isinstance(previous, str) and address != previous:
        clear_email_bounce(user)


def set_texts_stopped(user: User, stopped: bool) -> None:
    """STOP turns texts off for the person; START turns them back on. In the caller's
    transaction."""
    user.sms_opted_out_at = utcnow() if stopped else None


@event.listens_for(User.phone, "set", active_history=True)
def _new_number_is_unconfirmed(user: User, number, previous, initiator) -> None:
    """Whatever changes a person's phone to another number (an admin's edit, say), texts wait
    until its owner confirms it with a code; and STOP belonged to the old number, so the new
    one has not opted out. The same number written another way changes neither. Confirming a
    number (services/phone_numbers.py) sets the number first, then when it was confirmed."""
    if previous is not None and not isinstance(previous, str):
        return  # a new row's first number: unconfirmed already
    if _number(number) != _number(previous):
        user.phone_confirmed_at = None
        user.sms_opted_out_at = None


def _number(text: str | None) -> str | None:
    return e164(text) or (text or "").strip() or None
