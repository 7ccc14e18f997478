"""Codes that confirm a person's phone number, texted by the notification worker.

The request queues a row (services/phone_numbers.py: request_code) and never sends anything
itself. The worker makes the six-digit code as it sends the text, keeps only its keyed hash and
starts the code's PHONE_CODE_MINUTES from then; through the outbox's claims, retries and
failures like any other text. A retried text carries a new code: one that never arrived is
not left working.
"""

import secrets
import threading
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.bidi import without_bidi_controls
from portal.extensions import db
from portal.models import DeliveryStatus, PhoneConfirmation, User, utcnow
from portal.notifications import sms
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.outbox import claim_rows, finish, retry_later
from portal.services.phone_numbers import CODE_LENGTH, code_digest


def claim(worker_id: str, limit: int = 100) -> list[int]:
    return claim_rows(PhoneConfirmation, worker_id, utcnow(), limit)


def deliver(ids: list[int], stop: threading.Event | None = None) -> None:
    """Texts the claimed codes; once `stop` is set, leaves the rest claimed (the stopping
    worker releases them)."""
    rows = db.session.scalars(
        select(PhoneConfirmation).where(PhoneConfirmation.id.in_(ids))
        .options(joinedload(PhoneConfirmation.user).joinedload(User.business))
        .order_by(PhoneConfirmation.id)
    ).all()
    minutes = current_app.config["PHONE_CODE_MINUTES"]
    for row in rows:
        if stop is not None and stop.is_set():
            return
        if not row.user.active:
            # Deactivated since asking: no code for a login that cannot use it.
            finish(row, DeliveryStatus.CANCELLED, "the login was deactivated")
            db.session.commit()
            continue
        code = f"{secrets.randbelow(10 ** CODE_LENGTH):0{CODE_LENGTH}d}"
        row.code_hash = code_digest(row.id, code)
        row.wrong_codes = 0
        text = sms.SmsText.confirmation_code(
            row.phone, code, row.user.business.name, minutes,
            without_bidi_controls(row.user.name),
        )
        try:
            sms.provider().send(text)
        except TransientError as error:
            row.code_hash = None
            retry_later(row, str(error))
        except PermanentError as error:
            row.code_hash = None
            finish(row, DeliveryStatus.FAILED, str(error))
        else:
            finish(row, DeliveryStatus.SENT)
            row.expires_at = row.sent_at + timedelta(minutes=minutes)
        db.session.commit()
