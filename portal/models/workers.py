from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class DeliveryWorker(db.Model):
    """A notification worker process, as it last reported itself: how the health page and
    `flask --app wsgi notifications health` tell a worker that runs from one that died."""

    __tablename__ = "delivery_workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the claims' claimed_by
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The last round whose claims went through (found work or not), and the last that found some.
    last_claim_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_work_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed: Mapped[int] = mapped_column(default=0)  # rows, over all its rounds
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
