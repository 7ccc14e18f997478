from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from portal.extensions import db
from portal.models import (
    Attachment,
    Client,
    Feed,
    FeedSummary,
    InboundMessage,
    Message,
    ScheduledMessage,
    User,
    VisitReport,
    utcnow,
)
from portal.notifications import outbox
from portal.services import audit, feed_activity
from portal.services.uploads import PreparedFile, Upload, UploadError, prepare
from portal.storage import forget, storage


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_files: int
    max_pixels: int

    @classmethod
    def from_config(cls, config) -> "UploadLimits":
        return cls(
            config["UPLOAD_MAX_FILE_BYTES"], config["UPLOAD_MAX_FILES"], config["UPLOAD_MAX_PIXELS"]
        )


def prepare_uploads(uploads: list[Upload], limits: UploadLimits) -> list[PreparedFile]:
    """Checks and converts every file before anything is written; raises UploadError."""
    if len(uploads) > limits.max_files:
        raise UploadError(f"Attach at most {limits.max_files} files to one message.")
    return [
        prepare(upload, max_bytes=limits.max_file_bytes, max_pixels=limits.max_pixels)
        for upload in uploads
    ]


class AlreadySent(Exception):
    """The send key was used before: `message` is what that send made (a double tap, a retried
    request, an email delivered twice). Nothing was written."""

    def __init__(self, message: Message):
        super().__init__(f"already sent as message {message.id}")
        self.message = message


def sent_with(author: User, send_key: str | None) -> Message | None:
    if not send_key:
        return None
    return db.session.scalar(
        select(Message).where(Message.author_id == author.id, Message.send_key == send_key)
    )


def post_message(
    author: User, client: Client, feed: Feed, text: str, files: list[PreparedFile] = (),
    send_key: str | None = None, via: str | None = None,
    origin: InboundMessage | ScheduledMessage | VisitReport | tuple | None = None,
    audience: outbox.Audience | None = None, summarized: bool = True,
    reply_to_id: int | None = None,
) -> Message:
    """The message, its attachment rows and their bytes: all of them, or none. A send key
    already used by this author raises AlreadySent instead, whichever of two sends racing
    each other commits first. A reply that came in by email or text says so (`via`); the row
    it came from (`origin`: an inbound reply's record, a scheduled message, a visit report, or
    a tuple of them) commits with the message it became, naming it. `audience` is
    outbox.audience(author, client, feed) when the caller has read it already. An automatic
    reply is not `summarized`: the feed's summary (its latest message, whether the client
    waits for an answer) stays the client's message it answers. `reply_to_id`: the visit
    report it answers (the caller checked it is one of this feed)."""
    written: list[str] = []
    told = (audience or outbox.audience(author, client, feed)).told
    if reply_to_id is not None:
        told = outbox.with_report_author(told, author, client, feed, reply_to_id)
    try:
        # The bytes first, under random keys and before any lock: removed if anything fails.
        stored = [store_prepared(prepared, written) for prepared in files]
        message = _insert_message(author, client, feed, text, send_key, via, summarized,
                                  reply_to_id)
        for row in origin if isinstance(origin, tuple) else (origin,) if origin else ():
            row.message_id = message.id
            db.session.add(row)
        db.session.add_all(
            _attachment(message, position, prepared, *keys)
            for position, (prepared, keys) in enumerate(zip(files, stored, strict=True))
        )
        outbox.enqueue(message, told)
        db.session.commit()
    except IntegrityError as error:
        _discard(written)
        # The unique index caught a repeat: one that waited on the client's lock, or one the
        # lock did not hold back (SQLite, another client's page).
        if earlier := sent_with(author, send_key):
            raise AlreadySent(earlier) from error
        raise
    except BaseException:
        _discard(written)
        raise
    return message


def attach_more(message: Message, files: list[PreparedFile]) -> None:
    """Adds files to a message after its others, and commits with whatever the caller
    changed: all of them, or none (bytes stored are removed again)."""
    written: list[str] = []
    try:
        first = (db.session.scalar(select(func.max(Attachment.position))
                                   .where(Attachment.message_id == message.id)) or 0) + 1
        for position, prepared in enumerate(files, start=first):
            db.session.add(_attachment(message, position, prepared,
                                       *store_prepared(prepared, written)))
        db.session.commit()
    except BaseException:
        _discard(written)
        raise


def _discard(written: list[str]) -> None:
    """Rolls back and removes the bytes stored meanwhile; bytes that cannot be removed now (the
    store is what failed) are left to the sweeper, and the first error is the one raised."""
    db.session.rollback()
    for key in written:
        forget(key)


_WRITTEN = ("business_id", "client_id", "feed", "author_id", "text", "created_at", "unsent",
            "send_key", "via", "reply_to_id")


@lru_cache(maxsize=4)
def _insert_statement(dialect: str, summarized: bool = True):
    """One INSERT … SELECT … RETURNING, built once, that takes the client's lock and writes;
    on PostgreSQL the feed summary's upsert rides along (a CTE: one round trip fewer).

    Posts to one client commit in the order of their ids, so that whoever was shown message
    N was shown every message before it: the live feed asks only for what came after the
    newest it shows, and the worker spares notifications of what was read. PostgreSQL would
    otherwise let a slow post (files, many recipients) commit after a later one: the client's
    row is locked until commit (NO KEY: other rows may still point at it meanwhile), and the
    new id is drawn once the lock is held. SQLite has one writer at a time already, and
    renders no lock clause. A repeat of a send key that waited on the lock meets the unique
    index."""
    table = Message.__table__
    row = select(*(
        Client.id if name == "client_id" else bindparam(name, type_=table.c[name].type)
        for name in _WRITTEN
    )).where(Client.id == bindparam("client_id")).with_for_update(key_share=True)
    written = insert(table).from_select(_WRITTEN, row).returning(table.c.id)
    if dialect != "postgresql" or not summarized:
        return written
    new = written.cte("new_message")
    summary = FeedSummary.__table__.c
    summarized = feed_activity.posted_upsert(dialect, select(
        bindparam("client_id", type_=summary.client_id.type),
        bindparam("feed", type_=summary.feed.type),
        bindparam("business_id", type_=summary.business_id.type),
        new.c.id,
        bindparam("created_at", type_=summary.last_message_at.type),
        bindparam("author_id", type_=summary.last_author_id.type),
        bindparam("awaiting_reply_since", type_=summary.awaiting_reply_since.type),
    ).select_from(new))
    return select(new.c.id).add_cte(summarized.cte("feed_summary"))


def _insert_message(author: User, client: Client, feed: Feed, text: str,
                    send_key: str | None, via: str | None, summarized: bool,
                    reply_to_id: int | None = None) -> Message:
    """The message and its feed's summary, written (in one statement on PostgreSQL) and
    kept in the session as written (not read back, nor flushed through the unit of work)."""
    dialect = db.session.get_bind().dialect.name
    values = {
        "business_id": client.business_id, "client_id": client.id, "feed": feed,
        "author_id": author.id, "text": text, "created_at": utcnow(), "unsent": False,
        "send_key": send_key, "via": via, "reply_to_id": reply_to_id,
    }
    summary = {}
    if dialect == "postgresql" and summarized:
        summary = {"awaiting_reply_since": feed_activity.waiting_since(
            author, values["created_at"])}
    message_id = db.session.execute(_insert_statement(dialect, summarized),
                                    values | summary).scalar_one()
    message = Message(id=message_id, deleted_at=None, deleted_by_id=None, **values)
    make_transient_to_detached(message)
    db.session.add(message)
    if dialect != "postgresql" and summarized:
        feed_activity.record_posted(message, author)
    return message


def store_prepared(prepared: PreparedFile, written: list[str]) -> tuple[str, str | None]:
    """Stores a prepared file's bytes and thumbnail under new random keys, each key added to
    `written` as soon as it exists (for the caller to remove should anything fail)."""
    key = storage().save(prepared.data)
    written.append(key)
    thumbnail_key = None
    if prepared.thumbnail:
        thumbnail_key = storage().save(prepared.thumbnail)
        written.append(thumbnail_key)
    return key, thumbnail_key


def stored_row(model, prepared: PreparedFile, written: list[str], **columns):
    """A row of `model` (a StoredFileColumns model) for a prepared file, its bytes stored
    first under new keys (added to `written`, for the caller to remove should anything
    fail); `columns`: the model's own (its owner, business, position)."""
    key, thumbnail_key = store_prepared(prepared, written)
    return model(
        kind=prepared.kind, original_name=prepared.original_name,
        content_type=prepared.content_type, size=len(prepared.data), storage_key=key,
        thumbnail_key=thumbnail_key, width=prepared.width, height=prepared.height, **columns,
    )


def read_back(files) -> list[PreparedFile]:
    """Stored files (StoredFileColumns rows) read back as prepared files, for a message that
    stores copies of its own."""
    return [
        PreparedFile(
            kind=file.kind, original_name=file.original_name, content_type=file.content_type,
            data=storage().read(file.storage_key),
            thumbnail=storage().read(file.thumbnail_key) if file.thumbnail_key else None,
            width=file.width, height=file.height,
        )
        for file in files
    ]


def _attachment(message: Message, position: int, prepared: PreparedFile, key: str,
                thumbnail_key: str | None) -> Attachment:
    return Attachment(
        business_id=message.business_id, message_id=message.id, position=position,
        kind=prepared.kind, original_name=prepared.original_name,
        content_type=prepared.content_type, size=len(prepared.data), storage_key=key,
        thumbnail_key=thumbnail_key, width=prepared.width, height=prepared.height,
    )


class TooLateToUnsend(Exception):
    """Its undo window has passed, or a notification of it has already gone out."""


def in_undo_window(message: Message) -> bool:
    return utcnow() < message.created_at + outbox.undo_window()


def unsend_message(author: User, message: Message) -> int:
    """Takes a message back within its undo window: it leaves the feed ("Message unsent") and
    every notification of it is recalled, none having been sent. Returns how many files it
    carried (they are gone with it). Raises TooLateToUnsend, changing nothing, once the
    window has passed or anything has gone out."""
    if not in_undo_window(message) or not outbox.recall(message):
        db.session.rollback()
        raise TooLateToUnsend()
    message.unsent = True
    return _take_down(author, message, "message.unsent")


def delete_message(actor: User, message: Message) -> Message:
    """Erases the text and the files (not just hides them) and records who did it."""
    _take_down(actor, message, "message.deleted")
    return message


def _take_down(actor: User, message: Message, action: str) -> int:
    """Erases the message's text and files and cancels what is left of its notifications;
    returns how many files it had."""
    attachments = db.session.execute(
        select(Attachment.storage_key, Attachment.thumbnail_key)
        .where(Attachment.message_id == message.id)
    ).all()
    db.session.execute(delete(Attachment).where(Attachment.message_id == message.id))
    outbox.cancel_pending(message)
    message.text = None
    message.deleted_at = utcnow()
    message.deleted_by_id = actor.id
    feed_activity.record_deleted(message)
    audit.record(
        message.business_id, actor, action, "message", message.id,
        client_id=message.client_id, feed=message.feed.value, author_id=message.author_id,
        attachments=len(attachments),
    )
    db.session.commit()
    # Bytes go only once the rows are gone for good; a failure here leaves unreachable bytes.
    for keys in attachments:
        for key in keys:
            if key:
                forget(key)
    return len(attachments)



