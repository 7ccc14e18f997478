from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class Business(db.Model):
    """The tenant: every other row belongs to exactly one business."""

    __tablename__ = "businesses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="America/Chicago")
    # Staff see a client's Conversation feed from this many days before a visit of theirs
    # until this many days after it ends (policy.StaffWindow).
    staff_access_days: Mapped[int] = mapped_column(default=7)
    private_messaging_enabled: Mapped[bool] = mapped_column(default=False)
    # Whether clients see "Seen" under their own messages once the business has read them.
    client_read_receipts: Mapped[bool] = mapped_column(default=False)
    # Whether emails about private messages carry the text (otherwise only who wrote).
    private_email_includes_text: Mapped[bool] = mapped_column(default=False)
    # Notification defaults for people who have not chosen; text messages are opt-in.
    notify_email_default: Mapped[bool] = mapped_column(default=True)
    notify_sms_default: Mapped[bool] = mapped_column(default=False)
    notify_push_default: Mapped[bool] = mapped_column(default=True)
    # The business's logo: a storage key, processed through the image path like photos (a WebP
    # of at most 480 px). None: the portal's paw.
    logo_key: Mapped[str | None] = mapped_column(String(255))
    # Business hours (portal/hours.py), in the business's zone: weekday ("0" Monday) ->
    # ["08:00", "18:00"]; a day absent is closed; None: no hours kept (always open).
    weekly_hours: Mapped[dict | None] = mapped_column(JSON)
    # Days closed whatever the week says: [{"day": "2026-12-25", "label": "Christmas Day"}].
    closed_days: Mapped[list | None] = mapped_column(JSON)
    # Said after "We're closed until Monday 8:00 AM." to clients ("Urgent? Call …").
    away_message: Mapped[str | None] = mapped_column(String(300))
    # Whether a client who writes while the business is closed gets an automatic reply.
    auto_reply: Mapped[bool] = mapped_column(default=True)
    # Whether a staff member's messages wait for the admin team's approval before clients
    # see them (each staff member may be set otherwise: User.message_approval).
    staff_messages_need_approval: Mapped[bool] = mapped_column(default=False)
    # The items of a visit report's checklist, in order ("Walked", "Fed", …); None: the
    # portal's (services.visit_reports.DEFAULT_CHECKLIST).
    visit_checklist: Mapped[list | None] = mapped_column(JSON)
    # Whether Start visit records where the phone is (shown to the admin team alone).
    record_visit_location: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<Business {self.id} {self.name!r}>"
