from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.notifications import OutboxDelivery
from portal.models.types import UTCDateTime
from portal.models.users import User


class PhoneConfirmation(OutboxDelivery, db.Model):
    """A number a person asked to get texts at, waiting for the code texted to it.

    Also an outbox row (the same delivery columns as notifications): the worker makes the
    six-digit code when it sends the text and keeps only its keyed hash, so the code is never
    stored in clear, and it lives for PHONE_CODE_MINUTES from then. A person has at most one
    (a new request replaces it); confirming moves the number onto the login and deletes it.
    """

    __tablename__ = "phone_confirmations"
    __table_args__ = (Index("ix_phone_confirmations_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The new number, in E.164 (portal/phones.py).
    phone: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256 of the code (services/phone_numbers.py: code_digest); empty until sent.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Wrong codes typed against this code: at WRONG_CODES_ALLOWED it no longer works.
    wrong_codes: Mapped[int] = mapped_column(default=0)

    user: Mapped[User] = relationship()
