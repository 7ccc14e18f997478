from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class PendingImport(db.Model):
    """A CSV file uploaded for import, kept between its preview and the admin's confirm.

    Kept in the database rather than as a file on one server: every worker and every server
    finds it, it expires by a query (swept at each upload), and the confirm marks it imported in
    the same commit as the records it writes, so a confirm sent twice imports once. Reachable
    only by its random token, and only by the person who uploaded it, in their business."""

    __tablename__ = "pending_imports"
    __table_args__ = (Index("ix_pending_imports_user_kind", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))  # clients, pets or services
    file_name: Mapped[str] = mapped_column(String(255))
    # The file as text (decoded from UTF-8); emptied once imported.
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
