import enum
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import enum_column


class AttachmentKind(enum.StrEnum):
    IMAGE = "image"
    FILE = "file"


def new_token() -> str:
    return secrets.token_urlsafe(24)


class StoredFileColumns:
    """A file as the upload path left it (portal/services/uploads.py): checked, converted,
    its bytes and thumbnail stored under random keys. A message's attachments are kept so, and
    so are a saved reply's files and those of a message waiting to be posted (each message
    they go with gets copies of its own)."""

    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[AttachmentKind] = mapped_column(enum_column(AttachmentKind))
    # The sender's file name, cleaned of control and direction characters; shown escaped.
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    # Random storage keys: nothing of the original name reaches the storage.
    storage_key: Mapped[str] = mapped_column(String(100))
    thumbnail_key: Mapped[str | None] = mapped_column(String(100))
    width: Mapped[int | None]
    height: Mapped[int | None]


class Attachment(StoredFileColumns, db.Model):
    """A file of a message. URLs name it by an unguessable token, and are still policy-checked."""

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_message_id", "message_id", "position"),
        # The sweeper of stored files asks which keys rows still hold.
        Index("ix_attachments_storage_key", "storage_key"),
        Index("ix_attachments_thumbnail_key", "thumbnail_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(48), unique=True, default=new_token)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
