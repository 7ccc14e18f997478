from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.attachments import StoredFileColumns
from portal.models.types import UTCDateTime, utcnow


class SavedReply(db.Model):
    """An answer the admin team keeps to send again: its text (with placeholders such as
    {first_name}, filled in for each client) and files copied into each message it starts."""

    __tablename__ = "saved_replies"
    __table_args__ = (Index("ix_saved_replies_business_title", "business_id", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    title: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    files: Mapped[list["SavedReplyFile"]] = relationship(
        order_by="SavedReplyFile.position", cascade="all, delete-orphan",
        back_populates="saved_reply",
    )


class SavedReplyFile(StoredFileColumns, db.Model):
    """A file of a saved reply, stored as a message's attachment is (processed the same way);
    each message the reply starts gets a copy of its own."""

    __tablename__ = "saved_reply_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    saved_reply_id: Mapped[int] = mapped_column(
        ForeignKey("saved_replies.id", ondelete="CASCADE"), index=True)

    saved_reply: Mapped[SavedReply] = relationship(back_populates="files")
