"""A person's own phone number for texts: a new number is confirmed with a code texted to it,
and replaces the old one only then.

`request_code` queues the code's text (the notification worker makes the code when it sends
it, and keeps only its keyed hash: see notifications/phone_codes.py); `confirm` checks a code
typed back; `remove` takes the number off. The throttle on sending codes is asked by the route
first (throttle.phone_code_refusal).

Within one business, a number confirmed by one active login cannot be confirmed by another: a
text that comes in is matched to its sender by number (inbound/texts.py), and a number two
logins share (a household's one phone, say) would leave every reply from it unmatched. Another
business's logins may have the same number.
"""

import hashlib
import hmac
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, select, update

from portal.extensions import db
from portal.models import PhoneConfirmation, User, utcnow
from portal.models.notifications import DeliveryStatus
from portal.phones import e164
from portal.services import audit

# Wrong codes typed against one code before it stops working.
WRONG_CODES_ALLOWED = 5
CODE_LENGTH = 6

INVALID_NUMBER = ("Enter a mobile number with its area code, like (312) 555-0142, or an "
                  "international number starting with + and the country code.")


class PhoneError(Exception):
    """A number or code that cannot be taken, with what to tell the person."""


# --- reading ------------------------------------------------------------------------------------

def pending(user: User) -> PhoneConfirmation | None:
    """The number the person asked to confirm, waiting for its code (at most one)."""
    return db.session.scalar(
        select(PhoneConfirmation).where(PhoneConfirmation.user_id == user.id)
        .order_by(PhoneConfirmation.id.desc()).limit(1)
    )


def is_confirmed(user: User) -> bool:
    return bool(user.phone) and user.phone_confirmed_at is not None


def usable(confirmation: PhoneConfirmation, now: datetime | None = None) -> bool:
    """Whether the code sent for this confirmation can still be typed."""
    now = now or utcnow()
    return (confirmation.status == DeliveryStatus.SENT and confirmation.code_hash is not None
            and confirmation.expires_at is not None and now < confirmation.expires_at
            and confirmation.wrong_codes < WRONG_CODES_ALLOWED)


def mask(number: str | None) -> str | None:
    """A number as the audit log keeps it: its last four digits only."""
    if not number:
        return None
    digits = [character for character in number if character.isdigit()]
    return "•••" + "".join(digits[-4:])


def new_number(user: User, text: str | None) -> str:
    """The number typed, in E.164, if the person may ask for a code for it; else PhoneError."""
    number = e164(text)
    if number is None:
        raise PhoneError(INVALID_NUMBER)
    if is_confirmed(user) and e164(user.phone) == number:
        raise PhoneError("Texts already go to this number.")
    if _taken(user, number):
        raise PhoneError(
            "Another login at this business already gets texts at this number. Each login "
            "needs its own number, so that a reply by text shows who sent it."
        )
    return number


def _taken(user: User, number: str) -> bool:
    """Confirmed for texts by another active login of the person's business."""
    others = db.session.execute(
        select(User.id, User.phone).where(
            User.business_id == user.business_id, User.id != user.id,
            User.active.is_(True), User.phone_confirmed_at.is_not(None),
            User.phone.is_not(None),
        )
    )
    return any(e164(phone) == number for _, phone in others)


def code_digest(confirmation_id: int, code: str) -> str:
    """The stored form of a code: keyed by the app's secret and the row, so the table alone
    does not give the code away by trying the million of them."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"phone-code:{confirmation_id}:{code}".encode(),
                    hashlib.sha256).hexdigest()


# --- writing ------------------------------------------------------------------------------------

def request_code(user: User, text: str | None) -> PhoneConfirmation:
    """Queues a code to the number typed (or the one on file): a request before it is
    replaced, and its code no longer works. The number on file stays until the code comes
    back. Commits."""
    number = new_number(user, text)
    db.session.execute(delete(PhoneConfirmation).where(PhoneConfirmation.user_id == user.id))
    confirmation = PhoneConfirmation(business_id=user.business_id, user_id=user.id,
                                     phone=number, due_at=utcnow())
    db.session.add(confirmation)
    db.session.commit()
    return confirmation


def confirm(user: User, code: str | None) -> str:
    """The code typed back: right, and the number becomes the person's number for texts (the
    audit action recorded is returned); wrong, expired or used up, PhoneError, and a wrong
    code counts against the code. Commits."""
    confirmation = pending(user)
    if confirmation is None:
        raise PhoneError("There is no code waiting: enter your number to get one.")
    if confirmation.status != DeliveryStatus.SENT or confirmation.code_hash is None:
        raise PhoneError("The code is still being sent: wait for the text, then enter it.")
    if confirmation.wrong_codes >= WRONG_CODES_ALLOWED:
        raise PhoneError("That code no longer works after too many wrong tries. "
                         "Send a new code.")
    if utcnow() >= confirmation.expires_at:
        raise PhoneError("That code has expired. Send a new code.")
    # Each try takes one of the code's tries in the database before the code is compared, in
    # one UPDATE: requests posted side by side cannot all read the same count and get more
    # tries than allowed between them. (A right code deletes the row, count and all.)
    claimed = db.session.execute(
        update(PhoneConfirmation)
        .where(PhoneConfirmation.id == confirmation.id,
               PhoneConfirmation.wrong_codes < WRONG_CODES_ALLOWED)
        .values(wrong_codes=PhoneConfirmation.wrong_codes + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        raise PhoneError("That code no longer works after too many wrong tries. "
                         "Send a new code.")
    db.session.refresh(confirmation)
    code = "".join((code or "").split())
    right = len(code) == CODE_LENGTH and code.isdigit() and hmac.compare_digest(
        confirmation.code_hash, code_digest(confirmation.id, code))
    if not right:
        left = WRONG_CODES_ALLOWED - confirmation.wrong_codes
        if left <= 0:
            raise PhoneError("That code is not right, and after too many wrong tries it no "
                             "longer works. Send a new code.")
        raise PhoneError(f"That code is not right. Check the text and try again "
                         f"({left} {'try' if left == 1 else 'tries'} left).")
    number = new_number(user, confirmation.phone)
    before = user.phone
    if not before:
        action = "user.phone_added"
    elif e164(before) == number:
        action = "user.phone_confirmed"
    else:
        action = "user.phone_changed"
    # The number first: a different one clears the old number's confirmation and STOP
    # (services/reachability.py); then it is confirmed.
    user.phone = number
    user.phone_confirmed_at = utcnow()
    db.session.delete(confirmation)
    audit.record(user.business_id, user, action, "user", user.id,
                 changes={"phone": [mask(before), mask(number)]})
    db.session.commit()
    return action


def cancel(user: User) -> None:
    """Drops the number waiting for its code; the number on file stays. Commits."""
    db.session.execute(delete(PhoneConfirmation).where(PhoneConfirmation.user_id == user.id))
    db.session.commit()


def remove(user: User) -> None:
    """No number for texts any more (and none waiting). Commits."""
    if not user.phone:
        raise PhoneError("There is no number to remove.")
    before = user.phone
    db.session.execute(delete(PhoneConfirmation).where(PhoneConfirmation.user_id == user.id))
    user.phone = None
    user.phone_confirmed_at = None
    audit.record(user.business_id, user, "user.phone_removed", "user", user.id,
                 changes={"phone": [mask(before), None]})
    db.session.commit()
