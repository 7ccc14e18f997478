from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.messages import Message
from portal.models.schedule import ScheduledService
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User


class VisitReport(db.Model):
    """What a staff member saw on a visit: a message of the client's Conversation feed (its
    note as the text, its photos as attachments, Message.via "report") tied to the visit. One
    per visit: a second report of the same visit changes the first.

    `card` is what the feed's card shows besides the message (the visit's title, arrival and
    departure, the checklist's answers), as JSON text kept with each change: the feed reads it
    in its one query, and its articles are kept by what they show (feed_component/rendered)."""

    __tablename__ = "visit_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("scheduled_services.id"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True)
    # [["Walked", "yes"], ["Fed", "na"], …]: each item of the checklist and its answer.
    checklist: Mapped[list] = mapped_column(JSON, default=list)
    card: Mapped[str] = mapped_column(Text, default="{}")
    # The report form's one-time key of its latest change: a change sent twice (no signal,
    # a second tap) is made once.
    send_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    service: Mapped[ScheduledService] = relationship()
    author: Mapped[User] = relationship()
    message: Mapped[Message | None] = relationship()
