import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User, enum_column


class ServiceStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ServiceSeries(db.Model):
    """A recurring service: the rule its visits were made from. Each visit is its own
    ScheduledService row (so access, lists and edits of one visit read rows, never the rule);
    the series is what "this and following" and "all" edits reach through."""

    __tablename__ = "service_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    # The RFC 5545 recurrence rule (RRULE text, e.g. FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;COUNT=10),
    # read in the business's zone from the first visit's local start.
    rule: Mapped[str] = mapped_column(String(500))
    time_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScheduledService(db.Model):
    """A visit, walk or stay: who goes to which client, from when until when (across days for
    overnight stays). Without a staff member it is unassigned and gives nobody access."""

    __tablename__ = "scheduled_services"
    __table_args__ = (
        Index("ix_scheduled_services_staff_client", "staff_id", "client_id", "ends_at"),
        Index("ix_scheduled_services_client_starts", "client_id", "starts_at"),
        # The week's schedule and a staff member's Today list.
        Index("ix_scheduled_services_business_starts", "business_id", "starts_at"),
        Index("ix_scheduled_services_staff_starts", "staff_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    series_id: Mapped[int | None] = mapped_column(ForeignKey("service_series.id"), index=True)
    title: Mapped[str] = mapped_column(String(100), default="Dog walk")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[ServiceStatus] = mapped_column(
        enum_column(ServiceStatus), default=ServiceStatus.SCHEDULED
    )
    # Every UPDATE of the row, by the ORM or a bulk statement, stamps the time and counts one
    # more revision: a calendar that copied the visit reads them as LAST-MODIFIED and SEQUENCE.
    updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )
    revision: Mapped[int] = mapped_column(
        default=0, server_default=text("0"), onupdate=text("revision + 1")
    )

    # Start visit and End visit: when the staff member arrived and left.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where the phone was at Start visit, only while the business records it (admin team's).
    start_latitude: Mapped[float | None] = mapped_column(Float)
    start_longitude: Mapped[float | None] = mapped_column(Float)

    staff: Mapped[User | None] = relationship()
    series: Mapped[ServiceSeries | None] = relationship()
