"""Feed summaries and read markers: small rows kept up to date on write, so that lists and unread
counts never scan whole feeds. Upserts speak the dialect (SQLite or PostgreSQL) in use."""

from functools import lru_cache

from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import (
    Client,
    Feed,
    FeedSummary,
    Message,
    ReadMarker,
    ReadReceipt,
    Role,
    User,
    utcnow,
)


def dialect_insert(model):
    """INSERT … ON CONFLICT for the database in use: both dialects spell it the same way. On
    the model's table: through the mapped class, the ORM's bulk path triples the cost."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)


# --- read markers ---------------------------------------------------------------------------

def mark_read(user: User, client: Client, feed: Feed, up_to_id: int) -> None:
    """The person has been shown the feed up to this message. Markers only move forward: two
    tabs or a late request never make read messages unread again. Commits."""
    statement = dialect_insert(ReadMarker).values(
        user_id=user.id, client_id=client.id, feed=feed, business_id=client.business_id,
        last_read_id=up_to_id,
    )
    moved = db.session.execute(statement.on_conflict_do_update(
        index_elements=[ReadMarker.user_id, ReadMarker.client_id, ReadMarker.feed],
        set_={"last_read_id": statement.excluded.last_read_id},
        where=ReadMarker.last_read_id < statement.excluded.last_read_id,
    ).returning(ReadMarker.last_read_id)).first()
    if moved:
        # When they saw it: the delivery lines' "Seen by" (a marker that did not move saw
        # nothing new).
        db.session.execute(insert(ReadReceipt.__table__).values(
            business_id=client.business_id, user_id=user.id, client_id=client.id, feed=feed,
            up_to_id=up_to_id, read_at=utcnow(),
        ))
    db.session.commit()


# --- feed summaries, inside the caller's transaction ---------------------------------------------

def record_posted(message: Message, author: User) -> None:
    """The new message is now its feed's latest. A message from the client starts (or keeps)
    the wait for a reply; one from the business ends it."""
    db.session.execute(_posted_statement(db.session.get_bind().dialect.name),
                       posted_values(message, author))


def posted_values(message: Message, author: User) -> dict:
    """The values posted_upsert binds."""
    return {
        "client_id": message.client_id, "feed": message.feed,
        "business_id": message.business_id, "last_message_id": message.id,
        "last_message_at": message.created_at, "last_author_id": author.id,
        "awaiting_reply_since": waiting_since(author, message.created_at),
    }


def waiting_since(author: User, posted_at):
    """A message from the client starts (or keeps) the wait for a reply; one from the
    business ends it."""
    return posted_at if author.role == Role.CLIENT else None


POSTED_COLUMNS = ("client_id", "feed", "business_id", "last_message_id", "last_message_at",
                  "last_author_id", "awaiting_reply_since")


@lru_cache(maxsize=2)
def _posted_statement(dialect: str):
    """record_posted's upsert, built once per dialect; the values are bound at execution."""
    table = FeedSummary.__table__
    return posted_upsert(dialect, {name: bindparam(name, type_=table.c[name].type)
                                   for name in POSTED_COLUMNS})


def posted_upsert(dialect: str, values):
    """The feed summary's upsert of a new message, from `values`: bound parameters by column
    (POSTED_COLUMNS), or a SELECT of them in that order."""
    table = FeedSummary.__table__  # not the mapped class: the ORM's bulk path triples the cost
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    if isinstance(values, dict):
        statement = statement.values(values)
    else:
        statement = statement.from_select(POSTED_COLUMNS, values)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[FeedSummary.client_id, FeedSummary.feed],
        set_={
            "last_message_id": new.last_message_id,
            "last_message_at": new.last_message_at,
            "last_author_id": new.last_author_id,
            "awaiting_reply_since": case(
                (new.awaiting_reply_since.is_(None), None),
                else_=func.coalesce(FeedSummary.awaiting_reply_since, new.awaiting_reply_since),
            ),
        },
        # Concurrent posts may commit out of order: the newest message always wins.
        where=FeedSummary.last_message_id < new.last_message_id,
    )


def record_deleted(message: Message) -> None:
    """A deleted message is no longer anyone's latest: when it was its feed's, the summary falls
    back to the newest message left (and the wait is worked out again), or goes."""
    in_feed = (
        Message.client_id == message.client_id, Message.feed == message.feed,
        Message.deleted_at.is_(None),
    )
    latest = db.session.execute(
        select(Message.id, Message.created_at, Message.author_id, User.role)
        .join(User, User.id == Message.author_id)
        .where(*in_feed, Message.id != message.id)
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    was_latest = (
        FeedSummary.client_id == message.client_id, FeedSummary.feed == message.feed,
        FeedSummary.last_message_id == message.id,
    )
    if latest is None:
        db.session.execute(delete(FeedSummary).where(*was_latest))
        return
    waiting_since = None
    if latest.role == Role.CLIENT:
        last_answer = (
            select(func.max(Message.id))
            .join(User, User.id == Message.author_id)
            .where(*in_feed, User.role != Role.CLIENT, Message.id != message.id)
            .scalar_subquery()
        )
        waiting_since = db.session.scalar(
            select(func.min(Message.created_at))
            .join(User, User.id == Message.author_id)
            .where(*in_feed, User.role == Role.CLIENT, Message.id != message.id,
                   Message.id > func.coalesce(last_answer, 0))
        )
    db.session.execute(
        update(FeedSummary).where(*was_latest).values(
            last_message_id=latest.id, last_message_at=latest.created_at,
            last_author_id=latest.author_id, awaiting_reply_since=waiting_since,
        )
    )
